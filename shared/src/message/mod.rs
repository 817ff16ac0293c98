//! The typed inbound message model, parsed from JSON or XML, with its dedupe key and the queue
//! envelope ingress puts on SQS.
//!
//! Not here: crypto, HTTP, SQS or DynamoDB. Unknown message types are kept, never rejected, and an
//! authenticated plaintext that does not parse at all is kept raw ([`parse_or_raw`]).

mod dedupe;
mod envelope;
mod fit;
mod json_write;
mod parse;
mod raw;
mod render;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::MsgId;

pub use dedupe::{DedupeKey, KeyTooLong, check_key_limits, sort_time};
pub use envelope::{
    ENVELOPE_VERSION, EnvelopeDecodeError, OLDEST_READ_VERSION, QueueEnvelope, ReplayTag,
};
pub use parse::{ParseError, parse};
pub use raw::{UNKNOWN_MSG_TYPE, parse_or_raw, parse_or_raw_as};
pub use render::render;

/// Texts longer than this (UTF-8 bytes) are stored without the `raw` copy of the whole message:
/// their `content` is exact, and the copy would push a text cut to the queue's limit past
/// DynamoDB's 400 KB item limit.
pub const RAW_TEXT_LIMIT: usize = 64 * 1024;

/// One inbound message or event: the common header and the typed body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// `ToUserName`: WeChat's original id (`gh_…`) or Baidu's app id; absent in some events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_user_name: Option<String>,
    /// `FromUserName`: the user's open id.
    pub from_user_name: String,
    /// `CreateTime`, Unix seconds.
    pub create_time: u64,
    /// `MsgId`, present on user messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<MsgId>,
    /// The type-specific part.
    pub body: MessageBody,
}

/// The type-specific part of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageBody {
    /// `text`: `Content`.
    Text {
        /// The text, exactly as sent (never trimmed).
        content: String,
    },
    /// `image`: `PicUrl` and, on WeChat, `MediaId` (valid 3 days).
    Image {
        /// System-generated picture link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pic_url: Option<String>,
        /// Temporary media id (WeChat only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_id: Option<String>,
    },
    /// `miniprogrampage`: a mini program card the user sent.
    #[serde(rename = "miniprogrampage")]
    MiniProgramPage {
        /// Card title.
        title: String,
        /// The mini program's AppID.
        app_id: String,
        /// Page path with query.
        page_path: String,
        /// Thumbnail CDN link.
        thumb_url: String,
        /// Thumbnail temporary media id.
        thumb_media_id: String,
    },
    /// `event` / `user_enter_tempsession`: the user opened the chat from a contact button.
    UserEnterTempSession {
        /// The button's `session-from` attribute.
        session_from: String,
    },
    /// Any other event; its fields besides the header are kept.
    Event {
        /// `Event`.
        event: String,
        /// The remaining fields, as sent.
        fields: Map<String, Value>,
    },
    /// A message type kefu does not model; its fields besides the header are kept.
    Unknown {
        /// `MsgType`.
        msg_type: String,
        /// The remaining fields, as sent.
        fields: Map<String, Value>,
    },
    /// An authenticated plaintext that is not a known shape (not JSON or XML, a required field
    /// missing, a field of the wrong kind), kept as it came rather than refused.
    Raw {
        /// `MsgType` when it could be read, else [`UNKNOWN_MSG_TYPE`].
        msg_type: String,
        /// The decrypted plaintext, exactly (cut only to fit the queue: see `QueueEnvelope::truncated`).
        raw: String,
        /// Lowercase hex SHA-256 of the whole plaintext, kept when `raw` is cut: the dedupe digest.
        digest: String,
    },
}

/// The text content and media reference stored beside a message, for listings:
/// text → its content; image → picture URL (else media id); miniprogrampage → thumb media id
/// (else page path); others → none.
pub fn content_and_media(message: &InboundMessage) -> (Option<String>, Option<String>) {
    match &message.body {
        MessageBody::Text { content } => (Some(content.clone()), None),
        MessageBody::Image { pic_url, media_id } => {
            (None, pic_url.clone().or_else(|| media_id.clone()))
        }
        MessageBody::MiniProgramPage {
            thumb_media_id,
            page_path,
            ..
        } => (
            None,
            Some(if thumb_media_id.is_empty() {
                page_path.clone()
            } else {
                thumb_media_id.clone()
            }),
        ),
        _ => (None, None),
    }
}

impl InboundMessage {
    /// The platform's `MsgType` value for this message.
    pub fn msg_type(&self) -> &str {
        match &self.body {
            MessageBody::Text { .. } => "text",
            MessageBody::Image { .. } => "image",
            MessageBody::MiniProgramPage { .. } => "miniprogrampage",
            MessageBody::UserEnterTempSession { .. } | MessageBody::Event { .. } => "event",
            MessageBody::Unknown { msg_type, .. } | MessageBody::Raw { msg_type, .. } => msg_type,
        }
    }

    /// A short human preview (at most `max_chars` characters) for conversation lists.
    pub fn preview(&self, max_chars: usize) -> String {
        let full: String = match &self.body {
            MessageBody::Text { content } => content.clone(),
            MessageBody::Image { .. } => "[image]".into(),
            MessageBody::MiniProgramPage { title, .. } => format!("[miniprogrampage] {title}"),
            MessageBody::UserEnterTempSession { .. } => "[entered session]".into(),
            MessageBody::Event { event, .. } => format!("[event {event}]"),
            MessageBody::Unknown { msg_type, .. } => format!("[{msg_type}]"),
            MessageBody::Raw { msg_type, .. } => format!("[unreadable {msg_type}]"),
        };
        match full.char_indices().nth(max_chars) {
            Some((cut, _)) => full[..cut].to_owned(),
            None => full,
        }
    }
}

/// Lowercase hex SHA-256 of `bytes` (64 characters).
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in Sha256::digest(bytes) {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_matches_the_standard_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
