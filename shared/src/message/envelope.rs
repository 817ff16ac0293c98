//! The versioned queue envelope: the JSON ingress puts on SQS and the processor reads.
//!
//! Changing a field is a contract change: add a version, keep reading the old one.

use serde::{Deserialize, Serialize};

use super::{DedupeKey, InboundMessage};
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
}

/// Why an SQS body is not a usable envelope (a poison record).
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeDecodeError {
    /// Not JSON of the envelope's shape.
    #[error("not a queue envelope: {0}")]
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
        let dedupe_key = DedupeKey::derive(platform, app_id, &message).to_string();
        Self {
            v: ENVELOPE_VERSION,
            platform,
            app_id: app_id.to_owned(),
            received_at_ms,
            mode,
            format,
            dedupe_key,
            message,
        }
    }

    /// Serialises the envelope as the SQS message body.
    pub fn to_json(&self) -> String {
        // Serialising plain structs, strings and maps of JSON values cannot fail.
        serde_json::to_string(self).unwrap_or_default()
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
            body: MessageBody::Text { content: " 你好 \n".into() },
        };
        let env = QueueEnvelope::new(Platform::Wechat, "wx1", 7, Mode::Safe, DataFormat::Xml, message);
        let json = env.to_json();
        assert!(json.contains("\"msg_id\":\"18446744073709551000\""), "{json}");
        assert_eq!(QueueEnvelope::from_json(&json).unwrap(), env);
        let v2 = json.replacen("\"v\":1", "\"v\":2", 1);
        assert!(matches!(QueueEnvelope::from_json(&v2), Err(EnvelopeDecodeError::Version(2))));
        assert!(QueueEnvelope::from_json("{}").is_err());
    }
}
