//! The versioned queue envelope: the JSON ingress puts on SQS and the processor reads, and the replay
//! tag of plaintext-mode pushes. Cutting an envelope to SQS's size limit is in `fit`.
//!
//! Changing a field is a contract change: add a version, keep reading the old one (the optional
//! `replay` and `truncated` are absent from envelopes that do not need them, so old readers and
//! old envelopes keep working).

use serde::{Deserialize, Serialize};

use super::{DedupeKey, InboundMessage, MessageBody, sha256_hex};
use crate::protocol::{DataFormat, Mode, Platform};

/// The envelope version this crate writes.
pub const ENVELOPE_VERSION: u32 = 1;

/// One inbound message on its way from ingress to the processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueEnvelope {
    /// Envelope version ([`ENVELOPE_VERSION`]).
    pub v: u32,
    /// The platform it came from.
    pub platform: Platform,
    /// The mini program it was sent to (the `{app}` of the route).
    pub app_id: String,
    /// When ingress accepted it, Unix milliseconds.
    pub received_at_ms: u64,
    /// How the push was protected.
    pub mode: Mode,
    /// The plaintext message's data format.
    pub format: DataFormat,
    /// The dedupe key, `partition|sort` (for logs and cross-checks).
    pub dedupe_key: String,
    /// The parsed message.
    pub message: InboundMessage,
    /// Set on plaintext-mode pushes only (their body is not covered by the signature): what the
    /// processor's replay memory compares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayTag>,
    /// Set when a text field was cut to fit [`QueueEnvelope::MAX_BYTES`]: the original UTF-8 byte
    /// length of the (first, largest) field cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<u64>,
}

/// The identity of a plaintext-mode push: the signed nonce and timestamp, and a digest of the body
/// they do not sign. The same nonce and timestamp with another digest is a forged replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayTag {
    /// The request's `nonce`.
    pub nonce: String,
    /// The request's signed `timestamp`, Unix seconds.
    pub timestamp: u64,
    /// Lowercase hex SHA-256 of the raw HTTP body (64 characters).
    pub digest: String,
}

impl ReplayTag {
    /// The tag of a push with this `nonce`, `timestamp` and raw `body`.
    pub fn new(nonce: &str, timestamp: u64, body: &[u8]) -> Self {
        Self {
            nonce: nonce.to_owned(),
            timestamp,
            digest: sha256_hex(body),
        }
    }
}

/// Why an SQS body is not a usable envelope (a poison record).
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeDecodeError {
    /// Not JSON of the envelope's shape (the message omits serde's text, which may quote content).
    #[error("not a queue envelope: {:?} error at line {} column {}", .0.classify(), .0.line(), .0.column())]
    Json(#[from] serde_json::Error),
    /// A version this build does not read.
    #[error("unsupported envelope version {0}")]
    Version(u32),
}

impl QueueEnvelope {
    /// Builds the envelope for a parsed message.
    pub fn new(
        platform: Platform,
        app_id: &str,
        received_at_ms: u64,
        mode: Mode,
        format: DataFormat,
        message: InboundMessage,
    ) -> Self {
        let dedupe_key = DedupeKey::render(platform, app_id, &message);
        Self {
            v: ENVELOPE_VERSION,
            platform,
            app_id: app_id.to_owned(),
            received_at_ms,
            mode,
            format,
            dedupe_key,
            message,
            replay: None,
            truncated: None,
        }
    }

    /// The envelope with the replay tag of a plaintext-mode push.
    pub fn with_replay(mut self, tag: ReplayTag) -> Self {
        self.replay = Some(tag);
        self
    }

    /// Serialises the envelope as the SQS message body. Hand-written for the hot path (byte-identical
    /// to serde_json's output, which a property test checks); event and unknown bodies go through serde.
    pub fn to_json(&self) -> String {
        use std::fmt::Write as _;
        let m = &self.message;
        let mut out = String::with_capacity(256 + self.dedupe_key.len() * 2 + body_len(&m.body));
        // Writing into a String cannot fail.
        let _ = write!(
            out,
            "{{\"v\":{},\"platform\":\"{}\",\"app_id\":",
            self.v, self.platform
        );
        push_json_str(&mut out, &self.app_id);
        let _ = write!(
            out,
            ",\"received_at_ms\":{},\"mode\":\"{}\",\"format\":\"{}\",\"dedupe_key\":",
            self.received_at_ms,
            self.mode.as_str(),
            self.format.as_str()
        );
        push_json_str(&mut out, &self.dedupe_key);
        out.push_str(",\"message\":{");
        if let Some(to) = &m.to_user_name {
            out.push_str("\"to_user_name\":");
            push_json_str(&mut out, to);
            out.push(',');
        }
        out.push_str("\"from_user_name\":");
        push_json_str(&mut out, &m.from_user_name);
        let _ = write!(out, ",\"create_time\":{}", m.create_time);
        if let Some(id) = &m.msg_id {
            out.push_str(",\"msg_id\":");
            push_json_str(&mut out, &id.0);
        }
        out.push_str(",\"body\":");
        match &m.body {
            MessageBody::Text { content } => {
                out.push_str("{\"type\":\"text\",\"content\":");
                push_json_str(&mut out, content);
                out.push('}');
            }
            other => out.push_str(&serde_json::to_string(other).unwrap_or_default()),
        }
        out.push('}');
        if let Some(tag) = &self.replay {
            out.push_str(",\"replay\":{\"nonce\":");
            push_json_str(&mut out, &tag.nonce);
            let _ = write!(out, ",\"timestamp\":{},\"digest\":", tag.timestamp);
            push_json_str(&mut out, &tag.digest);
            out.push('}');
        }
        if let Some(len) = self.truncated {
            let _ = write!(out, ",\"truncated\":{len}");
        }
        out.push('}');
        sqs_safe(out)
    }

    /// Reads an SQS message body.
    pub fn from_json(body: &str) -> Result<Self, EnvelopeDecodeError> {
        let envelope: QueueEnvelope = serde_json::from_str(body)?;
        if envelope.v != ENVELOPE_VERSION {
            return Err(EnvelopeDecodeError::Version(envelope.v));
        }
        Ok(envelope)
    }

    /// The message's dedupe key, recomputed from its fields.
    pub fn key(&self) -> DedupeKey {
        DedupeKey::derive(self.platform, &self.app_id, &self.message)
    }
}

/// SQS refuses U+FFFE and U+FFFF in a message body (its allowed set is `#x9 #xA #xD #x20-#xD7FF
/// #xE000-#xFFFD #x10000-#x10FFFF`); inside a JSON string they can be written as escapes instead.
/// Everything else serde_json writes raw is allowed.
pub(super) fn sqs_safe(json: String) -> String {
    if json.contains(['\u{fffe}', '\u{ffff}']) {
        json.replace('\u{fffe}', "\\ufffe")
            .replace('\u{ffff}', "\\uffff")
    } else {
        json
    }
}

fn body_len(body: &MessageBody) -> usize {
    match body {
        MessageBody::Text { content } => content.len() + content.len() / 8,
        MessageBody::Raw { raw, .. } => raw.len() + raw.len() / 8 + 128,
        _ => 256,
    }
}

/// Appends `s` as a JSON string literal, escaping exactly as serde_json does.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    // Fast path: nothing to escape (the common case; the check vectorises).
    if !bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
    } else {
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    use std::fmt::Write as _;
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{MessageBody, MsgId};

    #[test]
    fn round_trips_and_rejects_other_versions() {
        let message = InboundMessage {
            to_user_name: None,
            from_user_name: "o1".into(),
            create_time: 5,
            msg_id: Some(MsgId("18446744073709551000".into())),
            body: MessageBody::Text {
                content: " 你好 \n".into(),
            },
        };
        let env = QueueEnvelope::new(
            Platform::Wechat,
            "wx1",
            7,
            Mode::Safe,
            DataFormat::Xml,
            message,
        );
        let json = env.to_json();
        assert!(
            json.contains("\"msg_id\":\"18446744073709551000\""),
            "{json}"
        );
        assert_eq!(QueueEnvelope::from_json(&json).unwrap(), env);
        let v2 = json.replacen("\"v\":1", "\"v\":2", 1);
        assert!(matches!(
            QueueEnvelope::from_json(&v2),
            Err(EnvelopeDecodeError::Version(2))
        ));
        assert!(QueueEnvelope::from_json("{}").is_err());
    }

    #[test]
    fn replay_and_truncated_are_written_only_when_set() {
        let message = InboundMessage {
            to_user_name: None,
            from_user_name: "o1".into(),
            create_time: 5,
            msg_id: None,
            body: MessageBody::Text {
                content: "hi".into(),
            },
        };
        let env = QueueEnvelope::new(
            Platform::Wechat,
            "wx1",
            7,
            Mode::Plaintext,
            DataFormat::Xml,
            message,
        );
        let plain = env.to_json();
        assert!(!plain.contains("replay") && !plain.contains("truncated"));
        let mut tagged = env.with_replay(ReplayTag::new("n1", 9, b"abc"));
        tagged.truncated = Some(300_000);
        let json = tagged.to_json();
        assert!(
            json.ends_with(
                r#","replay":{"nonce":"n1","timestamp":9,"digest":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},"truncated":300000}"#
            ),
            "{json}"
        );
        assert_eq!(QueueEnvelope::from_json(&json).unwrap(), tagged);
    }

    proptest::proptest! {
        #[test]
        fn hand_written_json_equals_serde(
            content in "\\PC*|[\\x00-\\x1f\"\\\\a-z\u{fffe}\u{ffff}]{0,20}",
            from in "[a-zA-Z0-9_\"\\-]{1,30}",
            msg_id in proptest::option::of("[0-9]{1,20}"),
            to in proptest::option::of("gh_[a-z0-9]{4}"),
            kind in 0u8..3,
            replay in proptest::option::of(("[0-9a-z\"\\\x01]{0,12}", proptest::num::u64::ANY)),
            truncated in proptest::option::of(proptest::num::u64::ANY),
        ) {
            let body = match kind {
                0 => MessageBody::Text { content },
                1 => MessageBody::Image { pic_url: Some(content.clone()), media_id: None },
                _ => MessageBody::Raw { msg_type: "unknown".into(), digest: sha256_hex(content.as_bytes()), raw: content },
            };
            let message = InboundMessage { to_user_name: to, from_user_name: from, create_time: 42, msg_id: msg_id.map(MsgId), body };
            let mut env = QueueEnvelope::new(Platform::Baidu, "app", 1, Mode::Compatible, DataFormat::Json, message);
            if let Some((nonce, timestamp)) = replay {
                env = env.with_replay(ReplayTag::new(&nonce, timestamp, nonce.as_bytes()));
            }
            env.truncated = truncated;
            let json = env.to_json();
            proptest::prop_assert_eq!(&json, &sqs_safe(serde_json::to_string(&env).unwrap()));
            proptest::prop_assert_eq!(QueueEnvelope::from_json(&json).unwrap(), env);
            let forbidden = json.contains(['\u{fffe}', '\u{ffff}']);
            proptest::prop_assert!(!forbidden, "SQS-forbidden character in the body");
        }
    }
}
