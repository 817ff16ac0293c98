//! The fast path for the flat JSON objects both platforms send (`{"Name":"text","CreateTime":1,…}`):
//! a byte scanner that hands each member to a callback, or gives up and lets serde_json decide.
//!
//! It answers only for objects whose values are strings without escapes or control characters, or
//! unsigned integers of at most 19 digits (so they fit a `u64`), with JSON whitespace between
//! tokens and nothing after the object. Everything else — escapes, nested values, negative or
//! fractional numbers, `true` / `false` / `null`, malformed input — returns `None`, and the caller
//! parses the document with serde_json as if the fast path did not exist (its callers discard
//! whatever the callback collected). Not here: what the members mean.

use crate::scan;

/// A member's value as the fast path reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlatValue<'a> {
    /// A string's content (no escapes, so the content is the raw text).
    Str(&'a str),
    /// An unsigned integer's digits, exactly as written.
    Int(&'a str),
}

/// Calls `member` for each member of the flat object `doc`, in order; `None` when the document
/// is not of the fast path's shape (the callback may have been called for some members).
pub(crate) fn each_member<'a>(
    doc: &'a str,
    mut member: impl FnMut(&'a str, FlatValue<'a>) -> Option<()>,
) -> Option<()> {
    let bytes = doc.as_bytes();
    // Two scans of the whole document instead of one per string: an escape anywhere leaves the
    // document to serde; without a control byte anywhere, no string can hold one.
    if memchr::memchr(b'\\', bytes).is_some() {
        return None;
    }
    let controls = has_control(bytes);
    let mut at = skip_space(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_space(bytes, at + 1);
    if bytes.get(at) == Some(&b'}') {
        return (skip_space(bytes, at + 1) == bytes.len()).then_some(());
    }
    loop {
        let (name, after) = string(doc, at, controls)?;
        at = skip_space(bytes, after);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        at = skip_space(bytes, at + 1);
        let (value, after) = match bytes.get(at)? {
            b'"' => {
                let (s, after) = string(doc, at, controls)?;
                (FlatValue::Str(s), after)
            }
            b'0'..=b'9' => {
                let (digits, after) = integer(doc, at)?;
                (FlatValue::Int(digits), after)
            }
            _ => return None,
        };
        member(name, value)?;
        at = skip_space(bytes, after);
        match bytes.get(at)? {
            b',' => at = skip_space(bytes, at + 1),
            b'}' => return (skip_space(bytes, at + 1) == bytes.len()).then_some(()),
            _ => return None,
        }
    }
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// A string at `at` (its opening quote) of a document without backslashes: its content and the
/// index after the closing quote. `controls`: whether the document has control bytes at all.
fn string(doc: &str, at: usize, controls: bool) -> Option<(&str, usize)> {
    let bytes = doc.as_bytes();
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let start = at + 1;
    let len = scan::find(&bytes[start..], b'"')?;
    if controls && has_control(&bytes[start..start + len]) {
        return None;
    }
    // Both ends are ASCII quotes, so the slice is on character boundaries.
    Some((doc.get(start..start + len)?, start + len + 1))
}

/// Whether any byte is a C0 control (JSON refuses them raw in strings). Branch-free, so the loop
/// vectorises (the strings are short; an early exit costs more than it saves).
fn has_control(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |hit, &b| hit | (b < 0x20))
}

/// An unsigned integer at `at`: its digits and the index after them. JSON forbids leading zeros;
/// a fraction or exponent, or more than 19 digits, is left to serde_json.
fn integer(doc: &str, at: usize) -> Option<(&str, usize)> {
    let bytes = doc.as_bytes();
    let mut end = at;
    while bytes.get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    let digits = &bytes[at..end];
    if digits.len() > 19
        || (digits.len() > 1 && digits[0] == b'0')
        || matches!(bytes.get(end), Some(b'.' | b'e' | b'E'))
    {
        return None;
    }
    Some((doc.get(at..end)?, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(doc: &str) -> Option<Vec<(&str, FlatValue<'_>)>> {
        let mut out = Vec::new();
        each_member(doc, |k, v| {
            out.push((k, v));
            Some(())
        })?;
        Some(out)
    }

    #[test]
    fn reads_flat_objects() {
        assert_eq!(
            members(" {\"A\" : \"x\",\n\"B\":12}\n"),
            Some(vec![
                ("A", FlatValue::Str("x")),
                ("B", FlatValue::Int("12"))
            ])
        );
        assert_eq!(members("{}"), Some(vec![]));
    }

    #[test]
    fn leaves_everything_else_to_serde() {
        for doc in [
            "{\"A\":\"x\\\"\"}",
            "{\"A\":\"\u{1}\"}",
            "{\"A\":-1}",
            "{\"A\":1.5}",
            "{\"A\":1e3}",
            "{\"A\":01}",
            "{\"A\":12345678901234567890}",
            "{\"A\":true}",
            "{\"A\":null}",
            "{\"A\":{}}",
            "{\"A\":[]}",
            "{\"A\":\"x\",}",
            "{\"A\":\"x\"} x",
            "{\"A\":\"x\"",
            "[1]",
            "",
        ] {
            assert_eq!(members(doc), None, "{doc}");
        }
    }

    proptest::proptest! {
        /// Whenever the fast path answers, serde_json reads the same members.
        #[test]
        fn agrees_with_serde(doc in r#"\{( ?"[a-zA-Z\\"\x01中]{0,4}" ?: ?("[ -~中]{0,6}"|[0-9]{1,21}|-1|true|1\.0) ?,?){0,4}\}"#) {
            if let Some(fast) = members(&doc) {
                let serde: serde_json::Value = serde_json::from_str(&doc)
                    .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{doc}: {e}")))?;
                let object = serde.as_object().expect("an object");
                // serde's map keeps the last of duplicate names.
                let mut last = std::collections::BTreeMap::new();
                for (k, v) in fast {
                    last.insert(k.to_owned(), v);
                }
                proptest::prop_assert_eq!(object.len(), last.len());
                for (k, v) in last {
                    let expected = match v {
                        FlatValue::Str(s) => serde_json::Value::String(s.to_owned()),
                        FlatValue::Int(d) => serde_json::Value::Number(d.parse::<u64>().unwrap().into()),
                    };
                    proptest::prop_assert_eq!(&object[&k], &expected, "{}", doc);
                }
            }
        }
    }
}
