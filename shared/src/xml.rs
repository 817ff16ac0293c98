//! A small reader for the flat XML documents both platforms use (`<xml><Field>value</Field>…</xml>`).
//!
//! DOCTYPE declarations are rejected, so no DTD or custom entity is ever processed (XXE); only the
//! five predefined entities and character references are resolved. Text and CDATA get XML 1.0
//! end-of-line normalisation and are never trimmed. Not a general XML library: attributes are ignored.

use std::borrow::Cow;

mod flat;

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;

/// Deepest nesting accepted below the root element.
const MAX_DEPTH: usize = 16;

/// The value of one element: its text, or its child elements in document order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'a> {
    /// Text and CDATA content joined, entities resolved.
    Text(Cow<'a, str>),
    /// Child elements.
    Element(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum XmlError {
    #[error("XML is not well-formed: {0}")]
    Syntax(#[from] quick_xml::Error),
    #[error("DOCTYPE declarations are not accepted")]
    Doctype,
    #[error("unknown entity reference &{0};")]
    UnknownEntity(String),
    #[error("XML nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("XML has no root element")]
    NoRoot,
    #[error("content after the root element")]
    TrailingContent,
}

/// Reads a document and returns the children of its root element, in order.
pub(crate) fn parse_document(doc: &str) -> Result<Vec<(Cow<'_, str>, Node<'_>)>, XmlError> {
    match flat::parse(doc) {
        Some(fields) => Ok(fields),
        None => general(doc),
    }
}

/// The general reader (quick-xml): every document [`parse_document`] accepts.
fn general(doc: &str) -> Result<Vec<(Cow<'_, str>, Node<'_>)>, XmlError> {
    let mut reader = Reader::from_str(doc);
    // Prologue: declaration, comments, processing instructions and whitespace only.
    let children = loop {
        match reader.read_event()? {
            Event::Start(_) => match read_content(doc, &mut reader, 0)? {
                Node::Element(children) => break children,
                Node::Text(_) => break Vec::new(),
            },
            Event::Empty(_) => break Vec::new(),
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Text(t) if t.bytes().all(|b| b.is_ascii_whitespace()) => {}
            Event::Eof => return Err(XmlError::NoRoot),
            _ => return Err(XmlError::NoRoot),
        }
    };
    loop {
        match reader.read_event()? {
            Event::Eof => return Ok(children),
            Event::Comment(_) | Event::PI(_) => {}
            Event::Text(t) if t.bytes().all(|b| b.is_ascii_whitespace()) => {}
            Event::DocType(_) => return Err(XmlError::Doctype),
            _ => return Err(XmlError::TrailingContent),
        }
    }
}

/// Reads the content of the element whose start tag was just read, up to its end tag.
fn read_content<'a>(
    doc: &'a str,
    reader: &mut Reader<&'a [u8]>,
    depth: usize,
) -> Result<Node<'a>, XmlError> {
    if depth > MAX_DEPTH {
        return Err(XmlError::TooDeep);
    }
    let mut text = TextBuf::default();
    let mut children: Vec<(Cow<'a, str>, Node<'a>)> = Vec::new();
    loop {
        match reader.read_event()? {
            Event::Start(start) => {
                let name = reslice(doc, start.local_name().into_inner());
                let node = read_content(doc, reader, depth + 1)?;
                children.push((name, node));
            }
            Event::Empty(start) => {
                let name = reslice(doc, start.local_name().into_inner());
                children.push((name, Node::Text(Cow::Borrowed(""))));
            }
            Event::End(_) => break,
            // An element with children keeps no text (the whitespace between them).
            Event::Text(t) if children.is_empty() => text.push(t.xml10_content()),
            Event::CData(c) if children.is_empty() => text.push(c.xml10_content()),
            Event::Text(_) | Event::CData(_) => {}
            Event::GeneralRef(r) => {
                if let Some(ch) = r.resolve_char_ref()? {
                    let mut buf = [0u8; 4];
                    text.push(Cow::Owned(ch.encode_utf8(&mut buf).to_owned()));
                } else {
                    let name: &str = &r;
                    match resolve_predefined_entity(name) {
                        Some(s) => text.push(Cow::Borrowed(s)),
                        None => return Err(XmlError::UnknownEntity(name.to_owned())),
                    }
                }
            }
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
            Event::Eof => {
                return Err(XmlError::Syntax(quick_xml::Error::IllFormed(
                    quick_xml::errors::IllFormedError::MissingEndTag(String::new()),
                )));
            }
        }
    }
    if children.is_empty() {
        Ok(Node::Text(text.finish()))
    } else {
        Ok(Node::Element(children))
    }
}

/// Borrows `part` from `doc` when it lies inside it (the slice reader hands out views of the
/// input, but tied to the event's lifetime); copies it otherwise.
fn reslice<'a>(doc: &'a str, part: &str) -> Cow<'a, str> {
    let start = (part.as_ptr() as usize).wrapping_sub(doc.as_ptr() as usize);
    match doc.get(start..start.wrapping_add(part.len())) {
        Some(view) if view.as_ptr() == part.as_ptr() => Cow::Borrowed(view),
        _ => Cow::Owned(part.to_owned()),
    }
}

/// Joins text pieces, borrowing when there is only one.
#[derive(Default)]
struct TextBuf<'a> {
    first: Option<Cow<'a, str>>,
    rest: Option<String>,
}

impl<'a> TextBuf<'a> {
    fn push(&mut self, piece: Cow<'a, str>) {
        match (&mut self.first, &mut self.rest) {
            (None, _) => self.first = Some(piece),
            (Some(first), None) => {
                let mut s = String::with_capacity(first.len() + piece.len());
                s.push_str(first);
                s.push_str(&piece);
                self.rest = Some(s);
            }
            (Some(_), Some(s)) => s.push_str(&piece),
        }
    }

    fn finish(self) -> Cow<'a, str> {
        match (self.first, self.rest) {
            (_, Some(s)) => Cow::Owned(s),
            (Some(first), None) => first,
            (None, None) => Cow::Borrowed(""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<'a>(fields: &'a [(Cow<'a, str>, Node<'a>)], name: &str) -> Option<&'a str> {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| match v {
                Node::Text(t) => Some(t.as_ref()),
                Node::Element(_) => None,
            })
    }

    #[test]
    fn joins_split_cdata_and_resolves_predefined_entities() {
        let doc = "<xml><A><![CDATA[x ]]]]><![CDATA[> y]]></A><B>5 &gt; 3 &amp; &#x4e2d;</B></xml>";
        let fields = parse_document(doc).unwrap();
        assert_eq!(text(&fields, "A"), Some("x ]]> y"));
        assert_eq!(text(&fields, "B"), Some("5 > 3 & 中"));
    }

    #[test]
    fn normalises_line_ends_and_keeps_whitespace() {
        let fields = parse_document("<xml><C><![CDATA[  a\r\nb\r c  ]]></C></xml>").unwrap();
        assert_eq!(text(&fields, "C"), Some("  a\nb\n c  "));
    }

    #[test]
    fn rejects_doctype_and_unknown_entities() {
        let xxe = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><A>&e;</A></xml>";
        assert!(matches!(parse_document(xxe), Err(XmlError::Doctype)));
        assert!(matches!(
            parse_document("<xml><A>&e;</A></xml>"),
            Err(XmlError::UnknownEntity(_))
        ));
    }

    #[test]
    fn keeps_nested_elements() {
        let fields = parse_document("<xml><Video><MediaId>m</MediaId></Video></xml>").unwrap();
        assert_eq!(
            fields[0].1,
            Node::Element(vec![(
                Cow::Borrowed("MediaId"),
                Node::Text(Cow::Borrowed("m"))
            )])
        );
    }

    #[test]
    fn rejects_garbage_and_trailing_content() {
        assert!(parse_document("not xml").is_err());
        assert!(parse_document("<xml><A>1</A></xml><more/>").is_err());
        assert!(parse_document("<xml><A>1</A>").is_err());
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert!(parse_document(&deep).is_err());
    }
}
