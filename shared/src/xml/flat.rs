//! The fast path of [`parse_document`](super::parse_document): a byte scanner for the exact shape
//! the platforms send — `<xml>` then leaf elements whose content is one CDATA section or plain text,
//! whitespace between them. It either returns what the general reader would return for the
//! document, or `None`, and the general reader (quick-xml) decides.
//!
//! Anything outside that shape falls back: a declaration, comment, processing instruction or
//! DOCTYPE; attributes, namespace prefixes or spaces in a tag; nested or self-closing children
//! beside text; entity or character references; a carriage return in content (line-end
//! normalisation); split CDATA or text mixed with CDATA; an end tag that does not match.

use std::borrow::Cow;

use super::Node;

const CDATA_OPEN: &[u8] = b"<![CDATA[";
const CDATA_CLOSE: &[u8] = b"]]>";

/// The fields of a flat document, or `None` when the general reader must decide.
pub(super) fn parse(doc: &str) -> Option<Vec<(Cow<'_, str>, Node<'_>)>> {
    let bytes = doc.as_bytes();
    let mut at = skip_space(bytes, 0);
    let (root, after) = open_tag(bytes, at)?;
    at = after;
    let mut fields = Vec::with_capacity(16);
    loop {
        at = skip_space(bytes, at);
        if bytes.get(at..at + 2)? == b"</" {
            at = close_tag(bytes, at, root)?;
            break;
        }
        let (name, after) = open_tag(bytes, at)?;
        let (value, after) = content(doc, after)?;
        at = close_tag(bytes, after, name)?;
        fields.push((Cow::Borrowed(name), Node::Text(Cow::Borrowed(value))));
    }
    (skip_space(bytes, at) == bytes.len()).then_some(fields)
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// `<Name>` at `at`: the name and the index after `>`. Names are ASCII letters, digits, `_`, `-`
/// and `.`, starting with a letter or `_`.
fn open_tag(bytes: &[u8], at: usize) -> Option<(&str, usize)> {
    if bytes.get(at) != Some(&b'<') {
        return None;
    }
    let start = at + 1;
    let end = name_end(bytes, start)?;
    if bytes.get(end) != Some(&b'>') {
        return None;
    }
    Some((std::str::from_utf8(&bytes[start..end]).ok()?, end + 1))
}

/// `</name>` at `at`: the index after it.
fn close_tag(bytes: &[u8], at: usize, name: &str) -> Option<usize> {
    let end = at + 2 + name.len();
    (bytes.get(at..at + 2)? == b"</"
        && bytes.get(at + 2..end)? == name.as_bytes()
        && bytes.get(end) == Some(&b'>'))
    .then_some(end + 1)
}

fn name_end(bytes: &[u8], start: usize) -> Option<usize> {
    let first = *bytes.get(start)?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let mut end = start + 1;
    while bytes
        .get(end)
        .is_some_and(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        end += 1;
    }
    Some(end)
}

/// A leaf's content at `at`: one CDATA section or plain text (no `&`, no `\r`), up to the next `<`.
fn content(doc: &str, at: usize) -> Option<(&str, usize)> {
    let bytes = doc.as_bytes();
    if bytes.get(at..at + CDATA_OPEN.len()) == Some(CDATA_OPEN) {
        let start = at + CDATA_OPEN.len();
        let len = memchr::memmem::find(&bytes[start..], CDATA_CLOSE)?;
        let value = &bytes[start..start + len];
        if memchr::memchr(b'\r', value).is_some() {
            return None;
        }
        let after = start + len + CDATA_CLOSE.len();
        // A second section or text after the section: the general reader joins them.
        (bytes.get(after) == Some(&b'<')).then_some(())?;
        return Some((doc.get(start..start + len)?, after));
    }
    let len = memchr::memchr(b'<', &bytes[at..])?;
    let value = &bytes[at..at + len];
    if memchr::memchr2(b'&', b'\r', value).is_some() {
        return None;
    }
    Some((doc.get(at..at + len)?, at + len))
}

#[cfg(test)]
mod tests {
    use super::super::{general, parse_document};
    use super::*;
    use proptest::strategy::Strategy as _;

    #[test]
    fn reads_the_platforms_shape() {
        let doc = "<xml>\n  <ToUserName><![CDATA[gh_1]]></ToUserName>\n  <CreateTime>1482048670</CreateTime><Empty></Empty>\n</xml>\n";
        let fields = parse(doc).expect("fast path");
        assert_eq!(fields, general(doc).unwrap());
        assert_eq!(fields.len(), 3);
    }

    #[test]
    fn leaves_everything_else_to_the_general_reader() {
        for doc in [
            "<?xml version=\"1.0\"?><xml><A>1</A></xml>",
            "<xml><!-- c --><A>1</A></xml>",
            "<xml><A x=\"1\">1</A></xml>",
            "<xml><a:A>1</a:A></xml>",
            "<xml><A>1 &amp; 2</A></xml>",
            "<xml><A>a\r\nb</A></xml>",
            "<xml><A><![CDATA[a]]><![CDATA[b]]></A></xml>",
            "<xml><A> <![CDATA[a]]></A></xml>",
            "<xml><A><B>1</B></A></xml>",
            "<xml><A/></xml>",
            "<xml><A>1</B></xml>",
            "<xml><A>1</A></xmk>",
            "<xml><A>1</A></xml><more/>",
            "<!DOCTYPE x><xml></xml>",
        ] {
            assert_eq!(parse(doc), None, "{doc}");
        }
    }

    proptest::proptest! {
        /// Whenever the fast path answers, it answers what the general reader does.
        #[test]
        fn agrees_with_the_general_reader(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    "[A-Za-z_][A-Za-z0-9_.:-]{0,6}".prop_map(|n| format!("<{n}>")),
                    "[A-Za-z_][A-Za-z0-9_.:-]{0,6}".prop_map(|n| format!("</{n}>")),
                    proptest::strategy::Just("<A>".to_owned()),
                    proptest::strategy::Just("</A>".to_owned()),
                    "[ -;=-~\r\n\t中]{0,8}",
                    "[ -~\r\n中]{0,8}".prop_map(|t| format!("<![CDATA[{t}]]>")),
                    proptest::strategy::Just("&amp;".to_owned()),
                    proptest::strategy::Just("<B/>".to_owned()),
                    proptest::strategy::Just(" \n".to_owned()),
                ],
                0..12,
            ),
        ) {
            let doc = format!("<xml>{}</xml>", parts.concat());
            if let Some(fast) = parse(&doc) {
                let slow = general(&doc);
                proptest::prop_assert!(slow.is_ok(), "general reader refused {doc:?}");
                proptest::prop_assert_eq!(&fast, &slow.unwrap(), "{:?}", doc);
            }
            // The public entry point never disagrees with the general reader.
            proptest::prop_assert_eq!(
                parse_document(&doc).ok(),
                general(&doc).ok()
            );
        }
    }
}
