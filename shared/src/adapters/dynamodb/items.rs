//! DynamoDB item schema of the conversations and messages tables: every attribute name (once, here),
//! and the mapping between items and the port's structs.
//!
//! Not here: expressions (`expressions.rs`) or SDK calls (`mod.rs`). Mapping never guesses: an
//! attribute of the wrong type is [`StoreError::Corrupt`] naming the attribute.
//!
//! **messages** (`pk` S hash, `sk` S range), one item per message, inbound or outbound:
//!
//! | attribute | type | value |
//! | --- | --- | --- |
//! | `pk` | S | the conversation, `platform#app_id#open_id` ([`ConversationKey::partition_key`]) |
//! | `sk` | S | the dedupe sort key: `CreateTime` zero-padded, then `#m#MsgId` / `#e#Event` / `#t#MsgType` |
//! | `direction` | S | `in` (written here) or `out` (written by the sender) |
//! | `msg_type` | S | the platform's `MsgType` ([`InboundMessage::msg_type`](crate::message::InboundMessage::msg_type)) |
//! | `create_time` | N | `CreateTime`, Unix seconds |
//! | `received_at_ms` | N | when ingress accepted the push, Unix milliseconds (inbound only) |
//! | `mode` | S | how the push was protected: `plaintext`, `compatible`, `safe` (inbound only) |
//! | `msg_id` | S | the platform `MsgId`, exact (only when present) |
//! | `content` | S | text messages only, exact (may be the empty string) |
//! | `media` | S | image: `PicUrl`, else `MediaId`; mini program card: `ThumbMediaId`, else `PagePath` ([`content_and_media`], shared with the in-memory fake) |
//! | `raw` | S | serde_json of the whole [`InboundMessage`](crate::message::InboundMessage), exact (inbound only; left out for texts over [`RAW_TEXT_LIMIT`], whose `content` is exact) |
//! | `status` | S | outbound only: [`OutboundStatus`] — `sent`, `partial`, `failed`, `unknown` |
//! | `parts`, `parts_sent` | N | outbound only: platform parts of the send, and how many reached the platform |
//! | `errcode` | N | outbound only: the platform error code of a failed send |
//! | `truncated` | N | only when a text field was cut to fit the queue: its original UTF-8 byte length |
//! | `ttl` | N | only with a message retention (`MESSAGE_RETENTION_DAYS`): `CreateTime` + retention, for DynamoDB's TTL |
//!
//! Plaintext-mode pushes also leave a replay item in the messages table ([`replay_item`]): `pk`
//! `replay#platform#app_id`, `sk` timestamp + nonce digest, `digest` S, `ttl` N.
//!
//! **conversations** (`pk` S hash), one item per conversation:
//!
//! | attribute | type | value |
//! | --- | --- | --- |
//! | `pk` | S | as in messages |
//! | `platform`, `app_id`, `open_id` | S | the parts of `pk` |
//! | `remaining` | N | send units left in the window (0 when never granted) |
//! | `expires_at` | N | Unix seconds after which nothing may be sent (0 when never granted) |
//! | `grant_at` | N | action time of the grant that last set the window ([`Ledger`]) |
//! | `grant_gen` | N | grants applied so far; releases and platform refusals are conditioned on it (0 when absent) |
//! | `spent` | N | units reserved since a grant last restarted the count ([`Ledger`]; 0 when absent; only grows in between) |
//! | `spent_at` | N | until when the latest reserved units may reach the platform (reservation + [`SEND_HORIZON_SECS`](crate::quota::SEND_HORIZON_SECS)) |
//! | `last_in_at` | N | action time ([`action_time`](crate::quota::action_time)) of the newest inbound message |
//! | `last_in_preview` | S | its preview, at most [`PREVIEW_CHARS`] characters |
//! | `last_in_type` | S | its `MsgType` |
//! | `status` | S | workspace status, `open` when created |
//! | `assignee` | S | the assigned agent (written by the workspace, later) |
//! | `created_at`, `updated_at` | N | Unix seconds, wall clock of the writer |
//! | `unread` | N | inbound messages not yet read by an agent (+1 per new inbound) |
//! | `inbound_count` | N | inbound messages stored (+1 per new inbound) |

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::message::{
    ConversationKey, DedupeKey, MessageBody, QueueEnvelope, RAW_TEXT_LIMIT, ReplayTag,
    content_and_media,
};
use crate::ports::StoreError;
use crate::quota::{Ledger, Window};
use crate::records::{Conversation, Direction, OutboundStatus, StoredMessage};

/// One DynamoDB item: attribute name → value.
pub type Item = HashMap<String, AttributeValue>;

/// Partition key of every table (S): the conversation's `platform#app_id#open_id`.
pub const PK: &str = "pk";
/// Sort key of the messages table (S): the message's dedupe sort key.
pub const SK: &str = "sk";

/// messages: Unix seconds after which DynamoDB's TTL may delete the item (N; only with a retention).
pub const TTL: &str = "ttl";
/// messages: `in` or `out` (S).
pub const DIRECTION: &str = "direction";
/// messages: the platform's `MsgType` (S).
pub const MSG_TYPE: &str = "msg_type";
/// messages: `CreateTime`, Unix seconds (N).
pub const CREATE_TIME: &str = "create_time";
/// messages: when ingress accepted the push, Unix milliseconds (N).
pub const RECEIVED_AT_MS: &str = "received_at_ms";
/// messages: how the push was protected (S).
pub const MODE: &str = "mode";
/// messages: the platform `MsgId`, exact (S).
pub const MSG_ID: &str = "msg_id";
/// messages: text content, exact (S, may be empty).
pub const CONTENT: &str = "content";
/// messages: media reference, picture URL or media id (S).
pub const MEDIA: &str = "media";
/// messages: serde_json of the whole inbound message (S).
pub const RAW: &str = "raw";
/// messages: original byte length of a text field cut to fit the queue (N; only when cut).
pub const TRUNCATED: &str = "truncated";
/// messages (replay items): SHA-256 of a plaintext push's body (S).
pub const DIGEST: &str = "digest";
/// messages: outbound send status (S); conversations: workspace status (S).
pub const STATUS: &str = "status";
/// messages: platform error code of a failed send (N).
pub const ERRCODE: &str = "errcode";

/// conversations: the platform (S).
pub const PLATFORM: &str = "platform";
/// conversations: the mini program's AppID (S).
pub const APP_ID: &str = "app_id";
/// conversations: the user's open id (S).
pub const OPEN_ID: &str = "open_id";
/// conversations: send units left in the window (N).
pub const REMAINING: &str = "remaining";
/// conversations: end of the send window, Unix seconds (N).
pub const EXPIRES_AT: &str = "expires_at";
/// conversations: action time of the grant that last set the window (N).
pub const GRANT_AT: &str = "grant_at";
/// conversations: units reserved since the count restarted (N).
pub const SPENT: &str = "spent";
/// conversations: when units were last reserved (N).
pub const SPENT_AT: &str = "spent_at";
/// conversations: grants applied so far (N; absent = 0).
pub const GENERATION: &str = "grant_gen";
/// conversations: `CreateTime` of the newest inbound message (N).
pub const LAST_IN_AT: &str = "last_in_at";
/// conversations: preview of the newest inbound message (S).
pub const LAST_IN_PREVIEW: &str = "last_in_preview";
/// conversations: `MsgType` of the newest inbound message (S).
pub const LAST_IN_TYPE: &str = "last_in_type";
/// conversations: the assigned agent (S), written by the workspace.
pub const ASSIGNEE: &str = "assignee";
/// conversations: creation time, Unix seconds (N).
pub const CREATED_AT: &str = "created_at";
/// conversations: last write, Unix seconds (N).
pub const UPDATED_AT: &str = "updated_at";
/// conversations: inbound messages not yet read (N).
pub const UNREAD: &str = "unread";
/// conversations: inbound messages stored (N).
pub const INBOUND_COUNT: &str = "inbound_count";

/// `direction` of an inbound message.
pub const DIRECTION_IN: &str = "in";
/// `direction` of an outbound message.
pub const DIRECTION_OUT: &str = "out";
/// `status` of a new conversation.
pub const STATUS_OPEN: &str = "open";
/// Length of `last_in_preview`, in characters.
pub const PREVIEW_CHARS: usize = 80;

/// An S value.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// An N value.
pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The messages-table item of an inbound message (`key` is `envelope.key()`).
pub fn inbound_message_item(
    envelope: &QueueEnvelope,
    key: &DedupeKey,
    retention_secs: Option<u64>,
) -> Result<Item, StoreError> {
    let message = &envelope.message;
    let raw = serde_json::to_string(message).map_err(|e| StoreError::Corrupt {
        key: crate::secret::redact_key(&key.to_string()),
        reason: format!("cannot serialise the message as JSON: {e}"),
    })?;
    let mut item = Item::with_capacity(11);
    item.insert(PK.into(), s(key.conversation.partition_key()));
    item.insert(SK.into(), s(key.sort_key.as_str()));
    item.insert(DIRECTION.into(), s(DIRECTION_IN));
    item.insert(MSG_TYPE.into(), s(message.msg_type()));
    item.insert(CREATE_TIME.into(), n(message.create_time));
    item.insert(RECEIVED_AT_MS.into(), n(envelope.received_at_ms));
    item.insert(MODE.into(), s(envelope.mode.as_str()));
    if let Some(msg_id) = &message.msg_id {
        item.insert(MSG_ID.into(), s(msg_id.0.as_str()));
    }
    let (content, media) = content_and_media(message);
    if let Some(content) = content {
        item.insert(CONTENT.into(), s(content));
    }
    if let Some(media) = media {
        item.insert(MEDIA.into(), s(media));
    }
    // A text's `raw` repeats its content: beyond RAW_TEXT_LIMIT it is left out, so a text cut to
    // the queue's limit still fits DynamoDB's 400 KB item (content, the exact text, is kept).
    let long_text =
        matches!(&message.body, MessageBody::Text { content } if content.len() > RAW_TEXT_LIMIT);
    if !long_text {
        item.insert(RAW.into(), s(raw));
    }
    if let Some(len) = envelope.truncated {
        item.insert(TRUNCATED.into(), n(len));
    }
    if let Some(secs) = retention_secs {
        item.insert(TTL.into(), n(message.create_time.saturating_add(secs)));
    }
    Ok(item)
}

/// How long a plaintext push's replay tag is remembered: far beyond any replay window.
pub const REPLAY_TTL_SECS: u64 = 86_400;

/// The replay-memory item of a plaintext-mode push (messages table, its own partition per app):
/// `pk` = `replay#platform#app_id`, `sk` = timestamp zero-padded + `#` + SHA-256 of the nonce (so
/// any nonce fits the key), `digest` = the body's, `ttl` = timestamp + [`REPLAY_TTL_SECS`].
pub fn replay_item(envelope: &QueueEnvelope, tag: &ReplayTag) -> Item {
    use sha2::{Digest, Sha256};
    let nonce: String = Sha256::digest(tag.nonce.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut item = Item::with_capacity(4);
    item.insert(
        PK.into(),
        s(format!("replay#{}#{}", envelope.platform, envelope.app_id)),
    );
    item.insert(SK.into(), s(format!("{:010}#{nonce}", tag.timestamp)));
    item.insert(DIGEST.into(), s(tag.digest.as_str()));
    item.insert(TTL.into(), n(tag.timestamp.saturating_add(REPLAY_TTL_SECS)));
    item
}

/// Typed, attribute-naming access to one item's attributes.
pub struct ItemReader<'a> {
    item: &'a Item,
    key: String,
}

impl<'a> ItemReader<'a> {
    /// A reader over `item`, which errors name as `key`.
    pub fn new(item: &'a Item, key: impl Into<String>) -> Self {
        Self {
            item,
            key: crate::secret::redact_key(&key.into()),
        }
    }

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            key: self.key.clone(),
            reason,
        }
    }

    /// An optional S attribute; any other type is corrupt.
    pub fn opt_s(&self, name: &str) -> Result<Option<&'a str>, StoreError> {
        match self.item.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v)),
            Some(other) => Err(self.corrupt(format!(
                "attribute {name} is not a string (S): {}",
                type_name(other)
            ))),
        }
    }

    /// A required S attribute.
    pub fn req_s(&self, name: &str) -> Result<&'a str, StoreError> {
        self.opt_s(name)?
            .ok_or_else(|| self.corrupt(format!("attribute {name} is missing")))
    }

    /// An optional N attribute parsed as `T` (an integer type); other types or values are corrupt.
    pub fn opt_n<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        match self.item.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| {
                self.corrupt(format!(
                    "attribute {name} is not a {} (N {v:?})",
                    std::any::type_name::<T>()
                ))
            }),
            Some(other) => Err(self.corrupt(format!(
                "attribute {name} is not a number (N): {}",
                type_name(other)
            ))),
        }
    }

    /// A required N attribute parsed as `T`.
    pub fn req_n<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.opt_n(name)?
            .ok_or_else(|| self.corrupt(format!("attribute {name} is missing")))
    }
}

fn type_name(value: &AttributeValue) -> &'static str {
    match value {
        AttributeValue::S(_) => "S",
        AttributeValue::N(_) => "N",
        AttributeValue::B(_) => "B",
        AttributeValue::Bool(_) => "BOOL",
        AttributeValue::Null(_) => "NULL",
        AttributeValue::L(_) => "L",
        AttributeValue::M(_) => "M",
        AttributeValue::Ss(_) => "SS",
        AttributeValue::Ns(_) => "NS",
        AttributeValue::Bs(_) => "BS",
        _ => "an unknown type",
    }
}

/// The parts of a conversation item the store's compare-and-set reads: `None` where absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConversationState {
    /// `remaining`.
    pub remaining: Option<u32>,
    /// `expires_at`.
    pub expires_at: Option<u64>,
    /// `last_in_at`.
    pub last_in_at: Option<u64>,
    /// `grant_at`.
    pub grant_at: Option<u64>,
    /// `grant_gen`.
    pub generation: Option<u64>,
    /// `spent`.
    pub spent: Option<u32>,
    /// `spent_at`.
    pub spent_at: Option<u64>,
}

impl ConversationState {
    /// Reads the state from a conversation item (`pk` names it in errors).
    pub fn from_item(item: &Item, pk: &str) -> Result<Self, StoreError> {
        let r = ItemReader::new(item, pk);
        Ok(Self {
            remaining: r.opt_n(REMAINING)?,
            expires_at: r.opt_n(EXPIRES_AT)?,
            last_in_at: r.opt_n(LAST_IN_AT)?,
            grant_at: r.opt_n(GRANT_AT)?,
            generation: r.opt_n(GENERATION)?,
            spent: r.opt_n(SPENT)?,
            spent_at: r.opt_n(SPENT_AT)?,
        })
    }

    /// The ledger as stored (a missing window counts as 0, a missing generation as 0).
    pub fn ledger(&self) -> Option<Ledger> {
        (self.window().is_some() || self.grant_at.is_some()).then(|| Ledger {
            window: self.window().unwrap_or_default(),
            grant_at: self.grant_at,
            generation: self.generation.unwrap_or(0),
            spent: self.spent.unwrap_or(0),
            spent_at: self.spent_at,
        })
    }

    /// The send window, if the item has one (a missing half counts as 0).
    pub fn window(&self) -> Option<Window> {
        (self.remaining.is_some() || self.expires_at.is_some()).then(|| Window {
            remaining: self.remaining.unwrap_or(0),
            expires_at: self.expires_at.unwrap_or(0),
        })
    }
}

/// Maps a conversation item; a missing window counts as 0, a missing status as `open`.
pub fn conversation_from_item(item: &Item) -> Result<Conversation, StoreError> {
    let pk = match item.get(PK) {
        Some(AttributeValue::S(pk)) => pk.as_str(),
        _ => "<conversation without pk>",
    };
    let r = ItemReader::new(item, pk);
    let pk = r.req_s(PK)?;
    let state = ConversationState::from_item(item, pk)?;
    Ok(Conversation {
        key: ConversationKey::parse(pk),
        window: state.window().unwrap_or_default(),
        grant_at: state.grant_at,
        generation: state.generation.unwrap_or(0),
        spent: state.spent.unwrap_or(0),
        spent_at: state.spent_at,
        last_in_at: state.last_in_at,
        last_in_preview: r.opt_s(LAST_IN_PREVIEW)?.map(str::to_owned),
        status: r.opt_s(STATUS)?.unwrap_or(STATUS_OPEN).to_owned(),
        assignee: r.opt_s(ASSIGNEE)?.map(str::to_owned),
        unread: r.opt_n(UNREAD)?.unwrap_or(0),
        inbound_count: r.opt_n(INBOUND_COUNT)?.unwrap_or(0),
    })
}

/// Maps a messages-table item, inbound or outbound.
pub fn stored_message_from_item(item: &Item) -> Result<StoredMessage, StoreError> {
    let name = match (item.get(PK), item.get(SK)) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => format!("{pk}|{sk}"),
        _ => "<message without pk/sk>".to_owned(),
    };
    let r = ItemReader::new(item, name);
    let direction = match r.req_s(DIRECTION)? {
        DIRECTION_IN => Direction::In,
        DIRECTION_OUT => Direction::Out,
        other => {
            return Err(r.corrupt(format!(
                "attribute {DIRECTION} is {other:?}, expected \"in\" or \"out\""
            )));
        }
    };
    let owned = |v: Option<&str>| v.map(str::to_owned);
    Ok(StoredMessage {
        sort_key: r.req_s(SK)?.to_owned(),
        direction,
        msg_type: r.req_s(MSG_TYPE)?.to_owned(),
        create_time: r.req_n(CREATE_TIME)?,
        msg_id: owned(r.opt_s(MSG_ID)?),
        content: owned(r.opt_s(CONTENT)?),
        media: owned(r.opt_s(MEDIA)?),
        status: match r.opt_s(STATUS)? {
            None => None,
            Some(name) => Some(OutboundStatus::parse(name).ok_or_else(|| {
                r.corrupt(format!(
                    "attribute {STATUS} is {name:?}, not an outbound status"
                ))
            })?),
        },
        errcode: r.opt_n(ERRCODE)?,
        raw: owned(r.opt_s(RAW)?),
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn messages_get_a_ttl_only_with_a_retention() {
        use crate::message::{InboundMessage, MessageBody, MsgId};
        use crate::protocol::{DataFormat, Mode, Platform};
        let m = InboundMessage {
            to_user_name: None,
            from_user_name: "oU".into(),
            create_time: 1000,
            msg_id: Some(MsgId("1".into())),
            body: MessageBody::Text {
                content: "x".into(),
            },
        };
        let env = QueueEnvelope::new(Platform::Wechat, "wx1", 1, Mode::Safe, DataFormat::Json, m);
        let kept = inbound_message_item(&env, &env.key(), None).unwrap();
        assert!(!kept.contains_key(TTL));
        let expiring = inbound_message_item(&env, &env.key(), Some(86_400)).unwrap();
        assert_eq!(expiring.get(TTL), Some(&n(87_400)));
    }
    use super::*;
    use crate::message::{InboundMessage, MessageBody, MsgId};
    use crate::protocol::{DataFormat, Mode, Platform};
    use serde_json::Map;

    fn envelope(body: MessageBody, msg_id: Option<&str>) -> QueueEnvelope {
        let message = InboundMessage {
            to_user_name: Some("gh_1".into()),
            from_user_name: "oUser".into(),
            create_time: 1_700_000_000,
            msg_id: msg_id.map(|m| MsgId(m.into())),
            body,
        };
        QueueEnvelope::new(
            Platform::Wechat,
            "wx1",
            1_700_000_000_123,
            Mode::Safe,
            DataFormat::Xml,
            message,
        )
    }

    fn item_of(env: &QueueEnvelope) -> Item {
        inbound_message_item(env, &env.key(), None).unwrap()
    }

    #[test]
    fn text_message_item_keeps_content_msg_id_and_raw_exactly() {
        // GIVEN a text message with a 64-bit MsgId and untrimmed content
        let env = envelope(
            MessageBody::Text {
                content: " 你好\n ".into(),
            },
            Some("18446744073709551000"),
        );
        // WHEN it is mapped to an item and back
        let item = item_of(&env);
        let stored = stored_message_from_item(&item).unwrap();
        // THEN every field is exact
        assert_eq!(item[PK], s("wechat#wx1#oUser"));
        assert_eq!(item[RECEIVED_AT_MS], n(1_700_000_000_123u64));
        assert_eq!(item[MODE], s("safe"));
        assert_eq!(stored.sort_key, "1700000000#m#18446744073709551000");
        assert_eq!(stored.direction, Direction::In);
        assert_eq!(stored.msg_type, "text");
        assert_eq!(stored.create_time, 1_700_000_000);
        assert_eq!(stored.msg_id.as_deref(), Some("18446744073709551000"));
        assert_eq!(stored.content.as_deref(), Some(" 你好\n "));
        assert_eq!(stored.media, None);
        assert_eq!((stored.status, stored.errcode), (None, None));
        let raw: InboundMessage = serde_json::from_str(stored.raw.as_deref().unwrap()).unwrap();
        assert_eq!(raw, env.message);
    }

    #[test]
    fn empty_text_is_stored_as_an_empty_string() {
        let env = envelope(
            MessageBody::Text {
                content: String::new(),
            },
            Some("1"),
        );
        let stored = stored_message_from_item(&item_of(&env)).unwrap();
        assert_eq!(stored.content.as_deref(), Some(""));
    }

    #[test]
    fn media_is_the_picture_or_the_card_thumbnail() {
        let image = envelope(
            MessageBody::Image {
                pic_url: Some("http://p".into()),
                media_id: Some("m".into()),
            },
            Some("2"),
        );
        let stored = stored_message_from_item(&item_of(&image)).unwrap();
        assert_eq!(
            (stored.media.as_deref(), stored.content),
            (Some("http://p"), None)
        );
        let card = envelope(
            MessageBody::MiniProgramPage {
                title: "t".into(),
                app_id: "wx2".into(),
                page_path: "pages/a?x=1".into(),
                thumb_url: "http://t".into(),
                thumb_media_id: "tm".into(),
            },
            Some("3"),
        );
        let stored = stored_message_from_item(&item_of(&card)).unwrap();
        assert_eq!(
            (stored.media.as_deref(), stored.msg_type.as_str()),
            (Some("tm"), "miniprogrampage")
        );
    }

    #[test]
    fn events_have_no_msg_id_content_or_media() {
        let env = envelope(
            MessageBody::Event {
                event: "debug_demo".into(),
                fields: Map::new(),
            },
            None,
        );
        let item = item_of(&env);
        for absent in [MSG_ID, CONTENT, MEDIA] {
            assert!(!item.contains_key(absent), "{absent}");
        }
        assert_eq!(item[MSG_TYPE], s("event"));
        assert_eq!(item[SK], s("1700000000#e#debug_demo"));
    }

    #[test]
    fn outbound_items_map_status_and_errcode() {
        let item: Item = [
            (PK, s("baidu#b1#o1")),
            (SK, s("0000000100#o#abc")),
            (DIRECTION, s(DIRECTION_OUT)),
            (MSG_TYPE, s("text")),
            (CREATE_TIME, n(100)),
            (CONTENT, s("hello")),
            (STATUS, s("failed")),
            (ERRCODE, n(-1)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let stored = stored_message_from_item(&item).unwrap();
        assert_eq!(stored.direction, Direction::Out);
        assert_eq!(stored.status, Some(OutboundStatus::Failed));
        assert_eq!(stored.errcode, Some(-1));
        assert_eq!(stored.raw, None);
    }

    #[test]
    fn conversation_item_maps_window_and_defaults() {
        let full: Item = [
            (PK, s("wechat#wx1#oUser")),
            (REMAINING, n(3)),
            (EXPIRES_AT, n(1_700_172_800u64)),
            (LAST_IN_AT, n(1_700_000_000u64)),
            (LAST_IN_PREVIEW, s("hi")),
            (STATUS, s("closed")),
            (ASSIGNEE, s("agent-7")),
            (UNREAD, n(2)),
            (INBOUND_COUNT, n(9)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let c = conversation_from_item(&full).unwrap();
        assert_eq!(
            c.key,
            Some(ConversationKey {
                platform: Platform::Wechat,
                app_id: "wx1".into(),
                open_id: "oUser".into()
            })
        );
        assert_eq!(
            c.window,
            Window {
                remaining: 3,
                expires_at: 1_700_172_800
            }
        );
        assert_eq!(c.last_in_at, Some(1_700_000_000));
        assert_eq!(c.last_in_preview.as_deref(), Some("hi"));
        assert_eq!(
            (c.status.as_str(), c.assignee.as_deref()),
            ("closed", Some("agent-7"))
        );
        assert_eq!((c.unread, c.inbound_count), (2, 9));

        let bare: Item = [(PK.to_owned(), s("baidu#b1#o1"))].into_iter().collect();
        let c = conversation_from_item(&bare).unwrap();
        assert_eq!(c.window, Window::default());
        assert_eq!(
            (c.last_in_at, c.status.as_str(), c.unread),
            (None, "open", 0)
        );
        assert_eq!(
            ConversationState::from_item(&bare, "k").unwrap().window(),
            None
        );
    }

    #[test]
    fn wrong_attribute_types_are_corrupt_and_named() {
        let mut item: Item = [(PK.to_owned(), s("wechat#wx1#oUser"))]
            .into_iter()
            .collect();
        item.insert(REMAINING.into(), s("three"));
        let err = conversation_from_item(&item).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { key, reason } if key.starts_with("wechat#wx1#~") && !key.contains("oUser") && reason.contains(REMAINING)),
            "{err}"
        );
        item.insert(REMAINING.into(), n(-1));
        assert!(
            conversation_from_item(&item)
                .unwrap_err()
                .to_string()
                .contains(REMAINING)
        );
        item.insert(REMAINING.into(), n(1));
        item.insert(LAST_IN_PREVIEW.into(), AttributeValue::Bool(true));
        assert!(
            conversation_from_item(&item)
                .unwrap_err()
                .to_string()
                .contains(LAST_IN_PREVIEW)
        );

        let env = envelope(
            MessageBody::Text {
                content: "x".into(),
            },
            Some("4"),
        );
        let mut msg = item_of(&env);
        msg.insert(DIRECTION.into(), s("sideways"));
        assert!(
            stored_message_from_item(&msg)
                .unwrap_err()
                .to_string()
                .contains(DIRECTION)
        );
        msg.insert(DIRECTION.into(), s(DIRECTION_IN));
        msg.remove(CREATE_TIME);
        let err = stored_message_from_item(&msg).unwrap_err();
        assert!(err.to_string().contains("create_time is missing"), "{err}");
    }
}
