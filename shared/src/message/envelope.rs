//! The versioned queue envelope: the JSON ingress puts on SQS and the processor reads, and the replay
//! tag of plaintext-mode pushes. Cutting an envelope to SQS's size limit is in `fit`; the JSON
//! writer in `json_write`.
//!
//! Changing a field is a contract change: add a version, keep reading the old one. Version 2 carries
//! the message's `position` in its conversation, derived once at ingress (version 1 carried a
//! rendered `dedupe_key` nobody read; a version-1 record gets its position derived when it is
//! read). The optional `replay` and `truncated` are absent from envelopes that do not need them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::json_write::{push_str_literal, push_u64, sqs_safe};
use super::{DedupeKey, InboundMessage, MessageBody, sha256_hex};
use crate::ids::{ConversationKey, Platform};
use crate::protocol::{DataFormat, Mode};

/// The envelope version this crate writes.
pub const ENVELOPE_VERSION: u32 = 2;

/// The oldest envelope version this crate still reads.
pub const OLDEST_READ_VERSION: u32 = 1;

/// One inbound message on its way from ingress to the processor. At ingress it borrows from the
/// request and its plaintext (`'a`); read back from the queue it owns its texts
/// (`QueueEnvelope<'static>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueEnvelope<'a> {
    /// Envelope version ([`ENVELOPE_VERSION`]).
    pub v: u32,
    /// The platform it came from.
    pub platform: Platform,
    /// The mini program it was sent to (the `{app}` of the route).
    pub app_id: Cow<'a, str>,
    /// When ingress accepted it, Unix milliseconds.
    pub received_at_ms: u64,
    /// How the push was protected.
    pub mode: Mode,
    /// The plaintext message's data format.
    pub format: DataFormat,
    /// The message's place in its conversation ([`DedupeKey::position`]): derived once, when the
    /// envelope is built, and used as is by the processor and the store.
    pub position: String,
    /// The parsed message.
    pub message: InboundMessage<'a>,
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
    /// A version-2 envelope without its `position`.
    #[error("queue envelope version 2 without position")]
    MissingPosition,
}

/// Every version's fields as read from the queue (version 1's `dedupe_key` is ignored).
#[derive(Deserialize)]
struct Wire {
    v: u32,
    platform: Platform,
    app_id: String,
    received_at_ms: u64,
    mode: Mode,
    format: DataFormat,
    #[serde(default)]
    position: Option<String>,
    message: InboundMessage<'static>,
    #[serde(default)]
    replay: Option<ReplayTag>,
    #[serde(default)]
    truncated: Option<u64>,
}

impl<'a> QueueEnvelope<'a> {
    /// Builds the envelope for a parsed message, deriving its position.
    pub fn new(
        platform: Platform,
        app_id: &'a str,
        received_at_ms: u64,
        mode: Mode,
        format: DataFormat,
        message: InboundMessage<'a>,
    ) -> Self {
        Self {
            v: ENVELOPE_VERSION,
            platform,
            app_id: Cow::Borrowed(app_id),
            received_at_ms,
            mode,
            format,
            position: DedupeKey::position_of(&message),
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
    /// to serde_json's output apart from SQS's forbidden characters, which a property test checks);
    /// bodies other than text go through serde.
    pub fn to_json(&self) -> String {
        let m = &self.message;
        // The fixed text of a text envelope is about 240 bytes.
        let mut out = String::with_capacity(
            256 + self.app_id.len()
                + self.position.len()
                + m.from_user_name.len()
                + m.to_user_name.as_ref().map_or(0, |to| to.len())
                + m.msg_id.as_ref().map_or(0, |id| id.0.len())
                + body_len(&m.body),
        );
        out.push_str("{\"v\":");
        push_u64(&mut out, u64::from(self.v));
        out.push_str(",\"platform\":\"");
        out.push_str(self.platform.as_str());
        out.push_str("\",\"app_id\":");
        push_str_literal(&mut out, &self.app_id);
        out.push_str(",\"received_at_ms\":");
        push_u64(&mut out, self.received_at_ms);
        out.push_str(",\"mode\":\"");
        out.push_str(self.mode.as_str());
        out.push_str("\",\"format\":\"");
        out.push_str(self.format.as_str());
        out.push_str("\",\"position\":");
        push_str_literal(&mut out, &self.position);
        out.push_str(",\"message\":{");
        if let Some(to) = &m.to_user_name {
            out.push_str("\"to_user_name\":");
            push_str_literal(&mut out, to);
            out.push(',');
        }
        out.push_str("\"from_user_name\":");
        push_str_literal(&mut out, &m.from_user_name);
        out.push_str(",\"create_time\":");
        push_u64(&mut out, m.create_time);
        if let Some(id) = &m.msg_id {
            out.push_str(",\"msg_id\":");
            push_str_literal(&mut out, &id.0);
        }
        out.push_str(",\"body\":");
        match &m.body {
            MessageBody::Text { content } => {
                out.push_str("{\"type\":\"text\",\"content\":");
                push_str_literal(&mut out, content);
                out.push('}');
            }
            other => out.push_str(&sqs_safe(serde_json::to_string(other).unwrap_or_default())),
        }
        out.push('}');
        if let Some(tag) = &self.replay {
            out.push_str(",\"replay\":{\"nonce\":");
            push_str_literal(&mut out, &tag.nonce);
            out.push_str(",\"timestamp\":");
            push_u64(&mut out, tag.timestamp);
            out.push_str(",\"digest\":");
            push_str_literal(&mut out, &tag.digest);
            out.push('}');
        }
        if let Some(len) = self.truncated {
            out.push_str(",\"truncated\":");
            push_u64(&mut out, len);
        }
        out.push('}');
        out
    }

    /// Reads an SQS message body of any version from [`OLDEST_READ_VERSION`] to
    /// [`ENVELOPE_VERSION`]; a version-1 record's position is derived from its message.
    pub fn from_json(body: &str) -> Result<QueueEnvelope<'static>, EnvelopeDecodeError> {
        let wire: Wire = serde_json::from_str(body)?;
        let position = match (wire.v, wire.position) {
            (OLDEST_READ_VERSION, _) => DedupeKey::position_of(&wire.message),
            (ENVELOPE_VERSION, Some(position)) => position,
            (ENVELOPE_VERSION, None) => return Err(EnvelopeDecodeError::MissingPosition),
            (v, _) => return Err(EnvelopeDecodeError::Version(v)),
        };
        Ok(QueueEnvelope {
            v: ENVELOPE_VERSION,
            platform: wire.platform,
            app_id: Cow::Owned(wire.app_id),
            received_at_ms: wire.received_at_ms,
            mode: wire.mode,
            format: wire.format,
            position,
            message: wire.message,
            replay: wire.replay,
            truncated: wire.truncated,
        })
    }

    /// The conversation the message belongs to.
    pub fn conversation(&self) -> ConversationKey {
        ConversationKey {
            platform: self.platform,
            app_id: self.app_id.to_string(),
            open_id: self.message.from_user_name.to_string(),
        }
    }

    /// The message's dedupe key: its conversation and the position carried in the envelope.
    pub fn key(&self) -> DedupeKey {
        DedupeKey {
            conversation: self.conversation(),
            position: self.position.clone(),
        }
    }
}

fn body_len(body: &MessageBody<'_>) -> usize {
    match body {
        MessageBody::Text { content } => content.len() + content.len() / 8,
        MessageBody::Raw { raw, .. } => raw.len() + raw.len() / 8 + 128,
        _ => 256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MsgId;
    use crate::message::MessageBody;

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
        assert!(json.starts_with("{\"v\":2,"), "{json}");
        assert_eq!(QueueEnvelope::from_json(&json).unwrap(), env);
        let v3 = json.replacen("\"v\":2", "\"v\":3", 1);
        assert!(matches!(
            QueueEnvelope::from_json(&v3),
            Err(EnvelopeDecodeError::Version(3))
        ));
        let unplaced = json.replacen("\"position\":", "\"place\":", 1);
        assert!(matches!(
            QueueEnvelope::from_json(&unplaced),
            Err(EnvelopeDecodeError::MissingPosition)
        ));
        assert!(QueueEnvelope::from_json("{}").is_err());
    }

    /// A record written by a version-1 ingress (still on the queue, or in the DLQ, during an
    /// upgrade): read with the position derived from its message, as version 1's processor did.
    #[test]
    fn version_one_records_still_decode() {
        let v1 = r#"{"v":1,"platform":"wechat","app_id":"wx1","received_at_ms":7,"mode":"safe","format":"json","dedupe_key":"wechat#wx1#o1|0000000005#m#42","message":{"from_user_name":"o1","create_time":5,"msg_id":"42","body":{"type":"text","content":"hi"}}}"#;
        let env = QueueEnvelope::from_json(v1).unwrap();
        assert_eq!(env.position, "0000000005#m#42");
        assert_eq!(env.key().to_string(), "wechat#wx1#o1|0000000005#m#42");
        assert_eq!(env.v, ENVELOPE_VERSION, "read as the current version");
        let again = QueueEnvelope::from_json(&env.to_json()).unwrap();
        assert_eq!(again, env);
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
                0 => MessageBody::Text { content: content.into() },
                1 => MessageBody::Image { pic_url: Some(content.clone().into()), media_id: None },
                _ => MessageBody::Raw { msg_type: "unknown".into(), digest: sha256_hex(content.as_bytes()).into(), raw: content.into() },
            };
            let message = InboundMessage { to_user_name: to.map(Into::into), from_user_name: from.into(), create_time: 42, msg_id: msg_id.map(MsgId), body };
            let mut env = QueueEnvelope::new(Platform::Baidu, "app", 1, Mode::Compatible, DataFormat::Json, message);
            if let Some((nonce, timestamp)) = replay {
                env = env.with_replay(ReplayTag::new(&nonce, timestamp, nonce.as_bytes()));
            }
            env.truncated = truncated;
            let json = env.to_json();
            let serde = serde_json::to_string(&env).unwrap()
                .replace('\u{fffe}', "\\ufffe")
                .replace('\u{ffff}', "\\uffff");
            proptest::prop_assert_eq!(&json, &serde);
            proptest::prop_assert_eq!(QueueEnvelope::from_json(&json).unwrap(), env);
            let forbidden = json.contains(['\u{fffe}', '\u{ffff}']);
            proptest::prop_assert!(!forbidden, "SQS-forbidden character in the body");
        }
    }
}
