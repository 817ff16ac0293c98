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

use std::borrow::Cow;

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

/// One inbound message or event: the common header and the typed body. Its texts borrow from the
/// document they were read from (`'a`); one read back from the queue or the store owns them
/// (`InboundMessage<'static>`, see [`InboundMessage::into_owned`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage<'a> {
    /// `ToUserName`: WeChat's original id (`gh_…`) or Baidu's app id; absent in some events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_user_name: Option<Cow<'a, str>>,
    /// `FromUserName`: the user's open id.
    pub from_user_name: Cow<'a, str>,
    /// `CreateTime`, Unix seconds.
    pub create_time: u64,
    /// `MsgId`, present on user messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<MsgId>,
    /// The type-specific part.
    pub body: MessageBody<'a>,
}

/// The type-specific part of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageBody<'a> {
    /// `text`: `Content`.
    Text {
        /// The text, exactly as sent (never trimmed).
        content: Cow<'a, str>,
    },
    /// `image`: `PicUrl` and, on WeChat, `MediaId` (valid 3 days).
    Image {
        /// System-generated picture link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pic_url: Option<Cow<'a, str>>,
        /// Temporary media id (WeChat only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_id: Option<Cow<'a, str>>,
    },
    /// `miniprogrampage`: a mini program card the user sent.
    #[serde(rename = "miniprogrampage")]
    MiniProgramPage {
        /// Card title.
        title: Cow<'a, str>,
        /// The mini program's AppID.
        app_id: Cow<'a, str>,
        /// Page path with query.
        page_path: Cow<'a, str>,
        /// Thumbnail CDN link.
        thumb_url: Cow<'a, str>,
        /// Thumbnail temporary media id.
        thumb_media_id: Cow<'a, str>,
    },
    /// `event` / `user_enter_tempsession`: the user opened the chat from a contact button.
    UserEnterTempSession {
        /// The button's `session-from` attribute.
        session_from: Cow<'a, str>,
    },
    /// Any other event; its fields besides the header are kept.
    Event {
        /// `Event`.
        event: Cow<'a, str>,
        /// The remaining fields, as sent.
        fields: Map<String, Value>,
    },
    /// A message type kefu does not model; its fields besides the header are kept.
    Unknown {
        /// `MsgType`.
        msg_type: Cow<'a, str>,
        /// The remaining fields, as sent.
        fields: Map<String, Value>,
    },
    /// An authenticated plaintext that is not a known shape (not JSON or XML, a required field
    /// missing, a field of the wrong kind), kept as it came rather than refused.
    Raw {
        /// `MsgType` when it could be read, else [`UNKNOWN_MSG_TYPE`].
        msg_type: Cow<'a, str>,
        /// The decrypted plaintext, exactly (cut only to fit the queue: see `QueueEnvelope::truncated`).
        raw: Cow<'a, str>,
        /// Lowercase hex SHA-256 of the whole plaintext, kept when `raw` is cut: the dedupe digest.
        digest: Cow<'a, str>,
    },
}

/// The text content and media reference stored beside a message, for listings:
/// text → its content; image → picture URL (else media id); miniprogrampage → thumb media id
/// (else page path); others → none.
pub fn content_and_media(message: &InboundMessage<'_>) -> (Option<String>, Option<String>) {
    match &message.body {
        MessageBody::Text { content } => (Some(content.to_string()), None),
        MessageBody::Image { pic_url, media_id } => (
            None,
            pic_url
                .as_ref()
                .or(media_id.as_ref())
                .map(|m| m.to_string()),
        ),
        MessageBody::MiniProgramPage {
            thumb_media_id,
            page_path,
            ..
        } => (
            None,
            Some(if thumb_media_id.is_empty() {
                page_path.to_string()
            } else {
                thumb_media_id.to_string()
            }),
        ),
        _ => (None, None),
    }
}

impl InboundMessage<'_> {
    /// The same message owning its texts, free of the document it was read from.
    pub fn into_owned(self) -> InboundMessage<'static> {
        InboundMessage {
            to_user_name: self.to_user_name.map(owned),
            from_user_name: owned(self.from_user_name),
            create_time: self.create_time,
            msg_id: self.msg_id,
            body: self.body.into_owned(),
        }
    }

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
            MessageBody::Text { content } => content.to_string(),
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

impl MessageBody<'_> {
    /// The same body owning its texts.
    pub fn into_owned(self) -> MessageBody<'static> {
        use MessageBody as B;
        match self {
            B::Text { content } => B::Text {
                content: owned(content),
            },
            B::Image { pic_url, media_id } => B::Image {
                pic_url: pic_url.map(owned),
                media_id: media_id.map(owned),
            },
            B::MiniProgramPage {
                title,
                app_id,
                page_path,
                thumb_url,
                thumb_media_id,
            } => B::MiniProgramPage {
                title: owned(title),
                app_id: owned(app_id),
                page_path: owned(page_path),
                thumb_url: owned(thumb_url),
                thumb_media_id: owned(thumb_media_id),
            },
            B::UserEnterTempSession { session_from } => B::UserEnterTempSession {
                session_from: owned(session_from),
            },
            B::Event { event, fields } => B::Event {
                event: owned(event),
                fields,
            },
            B::Unknown { msg_type, fields } => B::Unknown {
                msg_type: owned(msg_type),
                fields,
            },
            B::Raw {
                msg_type,
                raw,
                digest,
            } => B::Raw {
                msg_type: owned(msg_type),
                raw: owned(raw),
                digest: owned(digest),
            },
        }
    }
}

/// A text that no longer borrows.
fn owned(text: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(text.into_owned())
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
    fn an_owned_copy_equals_the_borrowed_message_and_outlives_its_document() {
        let documents = [
            r#"{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1,"MsgType":"text","Content":"您好","MsgId":1}"#,
            r#"{"FromUserName":"o1","CreateTime":1,"MsgType":"image","PicUrl":"https://p","MediaId":"m","MsgId":2}"#,
            r#"{"FromUserName":"o1","CreateTime":1,"MsgType":"miniprogrampage","Title":"t","AppId":"wx","PagePath":"p","ThumbUrl":"u","ThumbMediaId":"m"}"#,
            r#"{"FromUserName":"o1","CreateTime":1,"MsgType":"event","Event":"user_enter_tempsession","SessionFrom":"s"}"#,
            r#"{"FromUserName":"o1","CreateTime":1,"MsgType":"event","Event":"other","Key":"v"}"#,
            r#"{"FromUserName":"o1","CreateTime":1,"MsgType":"video","MediaId":"m"}"#,
            r#"{"FromUserName":"o1","CreateTime":"not a time","MsgType":"text"}"#,
        ];
        let owned: Vec<(InboundMessage<'static>, String)> = documents
            .iter()
            .map(|doc| {
                let document = doc.to_string();
                let (_, borrowed) = parse_or_raw(&document, 7);
                let copy = borrowed.clone().into_owned();
                assert_eq!(copy, borrowed);
                (copy, borrowed.msg_type().to_owned())
            })
            .collect();
        let types: Vec<&str> = owned.iter().map(|(m, _)| m.msg_type()).collect();
        assert_eq!(
            types,
            [
                "text",
                "image",
                "miniprogrampage",
                "event",
                "event",
                "video",
                "text"
            ]
        );
        assert!(matches!(owned[6].0.body, MessageBody::Raw { .. }));
        assert!(owned.iter().all(|(m, t)| m.msg_type() == t));
    }

    #[test]
    fn sha256_hex_matches_the_standard_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
