//! Deterministic keys: which conversation a message belongs to, and the dedupe key that makes a
//! platform retry or an SQS redelivery land on the same item (docs/design.md §5).
//!
//! Messages dedupe on `MsgId`; events on `FromUserName + CreateTime + Event` (both platforms'
//! advice, docs/protocol.md §8); raw messages without a `MsgId` on their plaintext's digest; everything
//! is scoped by platform and app. The fields that enter a key have length limits ([`check_key_limits`])
//! that keep every key inside DynamoDB's. Not here: enforcement (that is the store's conditional put).

use std::fmt;

use super::{InboundMessage, MessageBody};
use crate::ids::{ConversationKey, Platform};

/// Longest `FromUserName` accepted, in bytes: it is part of the conversation key, which storage
/// keys must hold (DynamoDB allows 2048 bytes).
pub const MAX_OPEN_ID_BYTES: usize = 256;
/// Longest `MsgId` accepted, in bytes: it is part of the position (DynamoDB allows 1024 bytes).
pub const MAX_MSG_ID_BYTES: usize = 128;
/// Longest `Event` accepted, in bytes (part of an event's position).
pub const MAX_EVENT_BYTES: usize = 64;
/// Longest `MsgType` accepted, in bytes (part of the position of a message without `MsgId`).
pub const MAX_MSG_TYPE_BYTES: usize = 64;

/// A field of a message is too long to be part of a storage key; it names the field
/// (`open_id`, `msg_id`, `event` or `msg_type`), never its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message field {field} is too long for a storage key")]
pub struct KeyTooLong {
    /// `open_id`, `msg_id`, `event` or `msg_type`.
    pub field: &'static str,
}

/// Whether every field that enters `message`'s keys is within its limit (`MAX_*_BYTES`).
pub fn check_key_limits(message: &InboundMessage<'_>) -> Result<(), KeyTooLong> {
    let over = |value: &str, max: usize, field: &'static str| {
        if value.len() > max {
            Err(KeyTooLong { field })
        } else {
            Ok(())
        }
    };
    over(&message.from_user_name, MAX_OPEN_ID_BYTES, "open_id")?;
    if let Some(id) = &message.msg_id {
        over(&id.0, MAX_MSG_ID_BYTES, "msg_id")?;
    }
    match &message.body {
        MessageBody::Event { event, .. } => over(event, MAX_EVENT_BYTES, "event"),
        MessageBody::Unknown { msg_type, .. } | MessageBody::Raw { msg_type, .. } => {
            over(msg_type, MAX_MSG_TYPE_BYTES, "msg_type")
        }
        _ => Ok(()),
    }
}

/// Times below this keep the 10-digit sort-key prefix that existing items have.
const TEN_DIGITS: u64 = 10_000_000_000;

/// The sort-key prefix of a time in Unix seconds: zero-padded to 10 digits below 10^10 (the format
/// of existing items), else `~` and 20 digits, so string order is numeric order for every `u64`.
pub fn sort_time(secs: u64) -> String {
    let mut out = String::with_capacity(21);
    write_sort_time(&mut out, secs);
    out
}

fn write_sort_time(out: &mut String, secs: u64) {
    // `~` sorts after every digit.
    let width = if secs < TEN_DIGITS {
        10
    } else {
        out.push('~');
        20
    };
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(secs);
    out.extend(std::iter::repeat_n('0', width - digits.len()));
    out.push_str(digits);
}

/// The deterministic identity of one inbound message: its conversation and its position in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DedupeKey {
    /// The conversation the message belongs to.
    pub conversation: ConversationKey,
    /// The message's position in its conversation: `CreateTime` as [`sort_time`] writes it, then
    /// `#m#MsgId`, `#e#Event` or `#t#MsgType#digest`. Text order is `CreateTime` order, and two
    /// messages share a position only if they are the same message.
    pub position: String,
}

impl DedupeKey {
    /// Derives the key of `message` received for `app_id` on `platform`.
    pub fn derive(platform: Platform, app_id: &str, message: &InboundMessage<'_>) -> Self {
        Self {
            conversation: ConversationKey {
                platform,
                app_id: app_id.to_owned(),
                open_id: message.from_user_name.to_string(),
            },
            position: Self::position_of(message),
        }
    }

    /// The message's position in its conversation ([`DedupeKey::position`]).
    pub fn position_of(message: &InboundMessage<'_>) -> String {
        let mut out = String::with_capacity(40);
        write_position(&mut out, message);
        out
    }
}

fn write_position(out: &mut String, message: &InboundMessage<'_>) {
    write_sort_time(out, message.create_time);
    out.push('#');
    match (&message.body, &message.msg_id) {
        (MessageBody::UserEnterTempSession { .. }, _) => out.push_str("e#user_enter_tempsession"),
        (MessageBody::Event { event, .. }, _) => {
            out.push_str("e#");
            out.push_str(event);
        }
        (_, Some(msg_id)) => {
            out.push_str("m#");
            out.push_str(&msg_id.0);
        }
        (
            MessageBody::Raw {
                msg_type, digest, ..
            },
            None,
        ) => {
            // The digest of the whole plaintext: unchanged when the raw text is cut to fit the queue.
            out.push_str("t#");
            out.push_str(msg_type);
            out.push('#');
            out.push_str(digest.get(..16).unwrap_or(digest));
        }
        (_, None) => {
            // No MsgId: the content decides (a platform retry carries the same plaintext, so the
            // same digest; two different messages in the same second do not collide).
            out.push_str("t#");
            out.push_str(message.msg_type());
            out.push('#');
            out.push_str(&content_digest(message));
        }
    }
}

/// First 16 hex digits of the SHA-1 of the message's JSON form.
fn content_digest(message: &InboundMessage<'_>) -> String {
    use sha1::{Digest, Sha1};
    let json = serde_json::to_vec(message).unwrap_or_default();
    Sha1::digest(&json)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl fmt::Display for DedupeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|{}", self.conversation, self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MsgId;
    use serde_json::Map;

    fn msg(body: MessageBody<'static>, msg_id: Option<&str>) -> InboundMessage<'static> {
        InboundMessage {
            to_user_name: Some("gh_1".into()),
            from_user_name: "oUser".into(),
            create_time: 1_482_048_670,
            msg_id: msg_id.map(|m| MsgId(m.into())),
            body,
        }
    }

    #[test]
    fn messages_dedupe_on_msg_id_and_events_on_time_and_name() {
        let text = msg(
            MessageBody::Text {
                content: "hi".into(),
            },
            Some("18446744073709551000"),
        );
        let key = DedupeKey::derive(Platform::Wechat, "wx1", &text);
        assert_eq!(key.conversation.to_string(), "wechat#wx1#oUser");
        assert_eq!(key.position, "1482048670#m#18446744073709551000");

        let event = msg(
            MessageBody::Event {
                event: "debug_demo".into(),
                fields: Map::new(),
            },
            None,
        );
        assert_eq!(
            DedupeKey::derive(Platform::Baidu, "b1", &event).position,
            "1482048670#e#debug_demo"
        );
        let enter = msg(
            MessageBody::UserEnterTempSession {
                session_from: "x".into(),
            },
            None,
        );
        assert_eq!(
            DedupeKey::derive(Platform::Wechat, "wx1", &enter).to_string(),
            "wechat#wx1#oUser|1482048670#e#user_enter_tempsession"
        );
    }

    #[test]
    fn messages_without_msg_id_dedupe_on_their_content() {
        let a = msg(
            MessageBody::Text {
                content: "a".into(),
            },
            None,
        );
        let b = msg(
            MessageBody::Text {
                content: "b".into(),
            },
            None,
        );
        let ka = DedupeKey::derive(Platform::Wechat, "wx1", &a);
        assert_ne!(ka, DedupeKey::derive(Platform::Wechat, "wx1", &b));
        assert_eq!(ka, DedupeKey::derive(Platform::Wechat, "wx1", &a.clone()));
        assert!(
            ka.position.starts_with("1482048670#t#text#"),
            "{}",
            ka.position
        );
    }

    #[test]
    fn the_position_is_the_derived_keys_second_part() {
        let text = msg(
            MessageBody::Text {
                content: "hi".into(),
            },
            Some("42"),
        );
        let key = DedupeKey::derive(Platform::Wechat, "wx1", &text);
        assert_eq!(DedupeKey::position_of(&text), key.position);
        assert_eq!(key.position, format!("{:010}#m#42", text.create_time));
        assert_eq!(sort_time(0), "0000000000");
        assert_eq!(sort_time(7), "0000000007");
        assert_eq!(sort_time(9_999_999_999), "9999999999");
        assert_eq!(sort_time(10_000_000_000), "~00000000010000000000");
        assert_eq!(sort_time(u64::MAX), format!("~{}", u64::MAX));
    }

    #[test]
    fn keys_sort_by_create_time() {
        let mut early = msg(
            MessageBody::Text {
                content: "a".into(),
            },
            Some("9"),
        );
        early.create_time = 999;
        let late = msg(
            MessageBody::Text {
                content: "b".into(),
            },
            Some("1"),
        );
        let (a, b) = (
            DedupeKey::derive(Platform::Wechat, "wx1", &early),
            DedupeKey::derive(Platform::Wechat, "wx1", &late),
        );
        assert!(a.position < b.position);
    }

    fn at(create_time: u64) -> String {
        let mut m = msg(
            MessageBody::Text {
                content: "a".into(),
            },
            Some("1"),
        );
        m.create_time = create_time;
        DedupeKey::derive(Platform::Wechat, "wx1", &m).position
    }

    #[test]
    fn ten_digit_times_keep_their_format_and_later_ones_sort_after() {
        assert_eq!(at(1_482_048_670), "1482048670#m#1");
        assert_eq!(at(0), "0000000000#m#1");
        assert_eq!(at(9_999_999_999), "9999999999#m#1");
        assert_eq!(at(10_000_000_000), "~00000000010000000000#m#1");
        assert_eq!(at(u64::MAX), "~18446744073709551615#m#1");
        assert!(at(9_999_999_999) < at(10_000_000_000));
    }

    proptest::proptest! {
        #[test]
        fn positions_order_as_create_times_do(a in proptest::num::u64::ANY, b in proptest::num::u64::ANY) {
            proptest::prop_assert_eq!(at(a).cmp(&at(b)), a.cmp(&b));
        }

        #[test]
        fn positions_order_near_the_format_change(a in 9_999_999_000u64..10_000_001_000, b in 9_999_999_000u64..10_000_001_000) {
            proptest::prop_assert_eq!(at(a).cmp(&at(b)), a.cmp(&b));
        }
    }
}
