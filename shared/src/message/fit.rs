//! Cutting a queue envelope to fit SQS, whose message bodies are at most 262,144 bytes: JSON writes
//! a control character as a 6-byte escape, so an envelope can be several times its push's size.
//!
//! The rule (docs/protocol.md §4.1): while the envelope's JSON is over [`QueueEnvelope::MAX_BYTES`],
//! the message's largest text field (by its size in the JSON) is cut at a character boundary, by
//! just enough; `truncated` records the original byte length of the first field cut. A field *name*
//! of an event or unknown type larger than every text is cut by dropping its entry. The fields that
//! make up keys (open id, `MsgId`, `Event`, `MsgType`) are never cut: they are bounded.
//! Not here: the envelope's shape (`envelope`).

use std::borrow::Cow;

use serde_json::Value;

use super::{InboundMessage, MessageBody, QueueEnvelope};

impl QueueEnvelope<'_> {
    /// Largest envelope JSON ingress sends, in bytes: SQS's 262,144-byte limit minus 4 KiB kept for
    /// message attributes.
    pub const MAX_BYTES: usize = 262_144 - 4_096;

    /// The envelope's JSON, at most [`QueueEnvelope::MAX_BYTES`]: the message is cut until it fits
    /// (the rule is in the module docs) and the cut recorded in `truncated`. The position stays the
    /// one derived from the whole message, so a retry of the same push lands on the same key.
    /// An envelope that fits is left as it is and written once.
    pub fn to_fitted_json(&mut self) -> String {
        let mut json = self.to_json();
        while json.len() > Self::MAX_BYTES {
            let excess = json.len() - Self::MAX_BYTES;
            if !cut_largest(&mut self.message, excess, &mut self.truncated) {
                // Only bounded key fields are left; nothing more can be cut.
                break;
            }
            json = self.to_json();
        }
        json
    }
}

/// Bytes that `c` takes inside a JSON string of the envelope (escapes included).
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        // `\u00XX`, and SQS's forbidden U+FFFE / U+FFFF written as escapes.
        c if (c as u32) < 0x20 => 6,
        '\u{fffe}' | '\u{ffff}' => 6,
        c => c.len_utf8(),
    }
}

fn escaped_size(s: &str) -> usize {
    s.chars().map(escaped_len).sum()
}

/// Removes characters from the end of `field` until at least `excess` escaped bytes are gone.
fn cut(field: TextField<'_, '_>, excess: usize) {
    let s = field.text();
    let mut removed = 0;
    let mut at = s.len();
    for (i, c) in s.char_indices().rev() {
        if removed >= excess {
            break;
        }
        removed += escaped_len(c);
        at = i;
    }
    field.truncate(at);
}

/// One free-text string of a message: a field of its own (which may borrow) or a string nested in
/// an event's or unknown type's fields.
enum TextField<'m, 'a> {
    Field(&'m mut Cow<'a, str>),
    Nested(&'m mut String),
}

impl TextField<'_, '_> {
    fn text(&self) -> &str {
        match self {
            TextField::Field(s) => s,
            TextField::Nested(s) => s,
        }
    }

    /// Keeps the first `at` bytes (`at` is a character boundary); a borrowed text stays borrowed.
    fn truncate(self, at: usize) {
        match self {
            TextField::Field(Cow::Borrowed(s)) => {
                let whole: &str = s;
                *s = &whole[..at];
            }
            TextField::Field(Cow::Owned(s)) | TextField::Nested(s) => s.truncate(at),
        }
    }
}

/// Cuts the largest text by `excess` escaped bytes, or drops the entry of a larger field name;
/// `false` when there is nothing left to cut.
fn cut_largest(
    message: &mut InboundMessage<'_>,
    excess: usize,
    truncated: &mut Option<u64>,
) -> bool {
    let name = largest_name(message);
    let texts = text_fields(message);
    let text_size = texts
        .iter()
        .map(|s| escaped_size(s.text()))
        .max()
        .unwrap_or(0);
    match name {
        Some((name, size)) if size > text_size => {
            drop(texts);
            if let MessageBody::Event { fields, .. } | MessageBody::Unknown { fields, .. } =
                &mut message.body
            {
                fields.remove(&name);
            }
            truncated.get_or_insert(name.len() as u64);
            true
        }
        _ => match texts
            .into_iter()
            .filter(|s| !s.text().is_empty())
            .max_by_key(|s| escaped_size(s.text()))
        {
            Some(field) => {
                truncated.get_or_insert(field.text().len() as u64);
                cut(field, excess);
                true
            }
            None => false,
        },
    }
}

/// The largest top-level field name of an event or unknown type, with its escaped size.
fn largest_name(message: &InboundMessage<'_>) -> Option<(String, usize)> {
    match &message.body {
        MessageBody::Event { fields, .. } | MessageBody::Unknown { fields, .. } => fields
            .keys()
            .map(|name| (name.clone(), escaped_size(name)))
            .max_by_key(|(_, size)| *size),
        _ => None,
    }
}

/// Every free-text string of the message: `ToUserName` and the body's strings, nested ones included.
fn text_fields<'m, 'a>(message: &'m mut InboundMessage<'a>) -> Vec<TextField<'m, 'a>> {
    let mut out: Vec<TextField<'m, 'a>> = message
        .to_user_name
        .iter_mut()
        .map(TextField::Field)
        .collect();
    match &mut message.body {
        MessageBody::Text { content } => out.push(TextField::Field(content)),
        MessageBody::Image { pic_url, media_id } => {
            out.extend(pic_url.iter_mut().map(TextField::Field));
            out.extend(media_id.iter_mut().map(TextField::Field));
        }
        MessageBody::MiniProgramPage {
            title,
            app_id,
            page_path,
            thumb_url,
            thumb_media_id,
        } => {
            out.extend([title, app_id, page_path, thumb_url, thumb_media_id].map(TextField::Field))
        }
        MessageBody::UserEnterTempSession { session_from } => {
            out.push(TextField::Field(session_from));
        }
        MessageBody::Event { fields, .. } | MessageBody::Unknown { fields, .. } => {
            for value in fields.values_mut() {
                strings_in(value, &mut out);
            }
        }
        MessageBody::Raw { raw, .. } => out.push(TextField::Field(raw)),
    }
    out
}

fn strings_in<'m>(value: &'m mut Value, out: &mut Vec<TextField<'m, '_>>) {
    match value {
        Value::String(s) => out.push(TextField::Nested(s)),
        Value::Array(items) => items.iter_mut().for_each(|v| strings_in(v, out)),
        Value::Object(map) => map.values_mut().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::ids::{MsgId, Platform};
    use crate::message::parse_or_raw;
    use crate::protocol::{DataFormat, Mode};

    fn envelope<'a>(body: MessageBody<'a>, msg_id: Option<&str>) -> QueueEnvelope<'a> {
        let message = InboundMessage {
            to_user_name: Some("gh_1".into()),
            from_user_name: "o1".into(),
            create_time: 5,
            msg_id: msg_id.map(|m| MsgId(m.into())),
            body,
        };
        QueueEnvelope::new(
            Platform::Wechat,
            "wx1",
            7,
            Mode::Safe,
            DataFormat::Xml,
            message,
        )
    }

    fn text(content: String) -> MessageBody<'static> {
        MessageBody::Text {
            content: content.into(),
        }
    }

    /// Fits `env` and checks what every fitted envelope must satisfy.
    fn fitted(mut env: QueueEnvelope<'_>) -> QueueEnvelope<'_> {
        let json = env.to_fitted_json();
        assert_eq!(
            json,
            env.to_json(),
            "the JSON returned is the fitted envelope's"
        );
        assert!(
            json.len() <= QueueEnvelope::MAX_BYTES,
            "{} bytes",
            json.len()
        );
        assert_eq!(QueueEnvelope::from_json(&json).unwrap(), env);
        env
    }

    #[test]
    fn an_envelope_that_fits_is_left_alone() {
        let env = envelope(text("\u{1}".repeat(40_000)), Some("1"));
        assert_eq!(fitted(env.clone()), env);
    }

    #[test]
    fn escaped_text_is_cut_by_just_enough() {
        for (c, n) in [('\u{1}', 65_536), ('\u{ffff}', 50_000), ('"', 140_000)] {
            let content: String = std::iter::repeat_n(c, n).collect();
            let env = fitted(envelope(text(content.clone()), None));
            let MessageBody::Text { content: cut } = &env.message.body else {
                panic!("not a text")
            };
            assert!(content.starts_with(cut.as_ref()));
            assert_eq!(env.truncated, Some(content.len() as u64), "{c:?}");
            let len = env.to_json().len();
            assert!(
                len + 6 > QueueEnvelope::MAX_BYTES,
                "{c:?}: cut too much, {len}"
            );
        }
    }

    #[test]
    fn raw_text_is_cut_and_keeps_its_dedupe_digest() {
        let plaintext = format!("<xml><Content>{}</Content>", "\u{2}".repeat(60_000));
        let (_, message) = parse_or_raw(&plaintext, 9);
        let whole = envelope(message.body, None);
        let before = whole.key();
        let env = fitted(whole);
        let MessageBody::Raw { raw, digest, .. } = &env.message.body else {
            panic!("not raw")
        };
        assert!(plaintext.starts_with(raw.as_ref()) && raw.len() < plaintext.len());
        assert_eq!(env.truncated, Some(plaintext.len() as u64));
        assert_eq!(*digest, super::super::sha256_hex(plaintext.as_bytes()));
        assert_eq!(
            env.key(),
            before,
            "the cut does not move the raw message's key"
        );
    }

    #[test]
    fn the_largest_field_is_cut_first_and_the_first_cut_is_recorded() {
        let mut fields = Map::new();
        fields.insert("small".into(), Value::String("\u{3}".repeat(10_000)));
        fields.insert(
            "nested".into(),
            serde_json::json!({ "deep": ["\u{3}".repeat(50_000)] }),
        );
        let env = fitted(envelope(
            MessageBody::Event {
                event: "debug_demo".into(),
                fields,
            },
            None,
        ));
        let MessageBody::Event { fields, .. } = &env.message.body else {
            panic!("not an event")
        };
        assert_eq!(fields["small"].as_str().map(str::len), Some(10_000));
        assert_eq!(env.truncated, Some(50_000));
    }

    #[test]
    fn an_oversized_field_name_drops_its_entry() {
        let mut fields = Map::new();
        fields.insert("\u{4}".repeat(50_000), Value::from(1));
        fields.insert("\u{4}".repeat(10_000), Value::from(1));
        fields.insert("kept".into(), Value::from(2));
        let env = fitted(envelope(
            MessageBody::Unknown {
                msg_type: "voice".into(),
                fields,
            },
            Some("3"),
        ));
        let MessageBody::Unknown { fields, .. } = &env.message.body else {
            panic!("not unknown")
        };
        assert_eq!(fields.len(), 2, "only the largest name is dropped");
        assert!(fields.contains_key("kept"));
        assert_eq!(env.message.to_user_name.as_deref(), Some("gh_1"));
        assert_eq!(env.truncated, Some(50_000));
    }
}
