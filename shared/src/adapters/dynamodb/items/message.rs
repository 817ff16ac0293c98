//! Items of the messages table: an inbound message ([`inbound_message_item`]), an outbound record
//! ([`outbound_message_item`]), a plaintext push's replay memory ([`replay_item`]), and the mapping of
//! a message item back to [`StoredMessage`].
//!
//! Not here: the attribute names and the table's schema ([`super`]), conversation items
//! (`conversation`), or when an item is written (the `MessageStore` and `OutboundStore` adapters).

use super::reader::ItemReader;
use super::*;
use crate::message::{
    DedupeKey, MessageBody, QueueEnvelope, RAW_TEXT_LIMIT, ReplayTag, content_and_media,
};
use crate::ports::StoreError;
use crate::records::{Direction, OutboundRecord, OutboundStatus, StoredMessage};

/// The messages-table item of an inbound message (`key` is `envelope.key()`).
pub fn inbound_message_item(
    envelope: &QueueEnvelope<'_>,
    key: &DedupeKey,
    retention_secs: Option<u64>,
) -> Result<Item, StoreError> {
    let message = &envelope.message;
    let raw = serde_json::to_string(message).map_err(|e| StoreError::Corrupt {
        key: crate::secret::redact_key(&key.to_string()),
        reason: format!("cannot serialise the message as JSON: {e}"),
    })?;
    let mut item = Item::with_capacity(11);
    item.insert(PK.into(), s(key.conversation.to_string()));
    item.insert(SK.into(), s(key.position.as_str()));
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
pub fn replay_item(envelope: &QueueEnvelope<'_>, tag: &ReplayTag) -> Item {
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

/// The messages-table item of an outbound record: `sk` is the send time (as
/// [`crate::message::sort_time`]), `#o#` and kefu's id, so it sorts among the inbound messages and
/// writing it twice leaves one item.
pub fn outbound_message_item(record: &OutboundRecord, retention_secs: Option<u64>) -> Item {
    let mut item = Item::with_capacity(12);
    item.insert(PK.into(), s(record.key.to_string()));
    item.insert(
        SK.into(),
        s(format!(
            "{}#o#{}",
            crate::message::sort_time(record.sent_at),
            record.id
        )),
    );
    item.insert(DIRECTION.into(), s(DIRECTION_OUT));
    item.insert(MSG_TYPE.into(), s(&record.msg_type));
    item.insert(CREATE_TIME.into(), n(record.sent_at));
    item.insert(STATUS.into(), s(record.status.as_str()));
    item.insert(PARTS.into(), n(record.parts));
    item.insert(PARTS_SENT.into(), n(record.parts_sent));
    if let Some(c) = &record.content {
        item.insert(CONTENT.into(), s(c));
    }
    if let Some(m) = &record.media {
        item.insert(MEDIA.into(), s(m));
    }
    if let Some(a) = &record.agent {
        item.insert(AGENT.into(), s(a));
    }
    if let Some(e) = record.errcode {
        item.insert(ERRCODE.into(), n(e));
    }
    if let Some(secs) = retention_secs {
        item.insert(TTL.into(), n(record.sent_at.saturating_add(secs)));
    }
    item
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
        DIRECTION_DESK => Direction::Desk,
        other => {
            return Err(r.corrupt(format!(
                "attribute {DIRECTION} is {other:?}, expected \"in\", \"out\" or \"desk\""
            )));
        }
    };
    let owned = |v: Option<&str>| v.map(str::to_owned);
    Ok(StoredMessage {
        position: r.req_s(SK)?.to_owned(),
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
        agent: owned(r.opt_s(AGENT)?),
        stored_media: owned(r.opt_s(STORED_MEDIA)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{MsgId, Platform};
    use crate::message::InboundMessage;
    use crate::protocol::{DataFormat, Mode};
    use serde_json::Map;

    #[test]
    fn messages_get_a_ttl_only_with_a_retention() {
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

    fn envelope(body: MessageBody<'static>, msg_id: Option<&str>) -> QueueEnvelope<'static> {
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

    fn item_of(env: &QueueEnvelope<'_>) -> Item {
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
        assert_eq!(stored.position, "1700000000#m#18446744073709551000");
        assert_eq!(stored.direction, Direction::In);
        assert_eq!(stored.msg_type, "text");
        assert_eq!(stored.create_time, 1_700_000_000);
        assert_eq!(stored.msg_id.as_deref(), Some("18446744073709551000"));
        assert_eq!(stored.content.as_deref(), Some(" 你好\n "));
        assert_eq!(stored.media, None);
        assert_eq!((stored.status, stored.errcode), (None, None));
        let raw: InboundMessage<'static> =
            serde_json::from_str(stored.raw.as_deref().unwrap()).unwrap();
        assert_eq!(raw, env.message);
    }

    #[test]
    fn empty_text_is_stored_as_an_empty_string() {
        let env = envelope(
            MessageBody::Text {
                content: String::new().into(),
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
    fn wrong_attribute_types_are_corrupt_and_named() {
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

    #[test]
    fn outbound_records_map_back_with_their_parts_in_the_item() {
        let record = OutboundRecord {
            key: crate::ids::ConversationKey {
                platform: Platform::Baidu,
                app_id: "b1".into(),
                open_id: "o1".into(),
            },
            id: "abc".into(),
            sent_at: 100,
            msg_type: "text".into(),
            content: Some("hello".into()),
            media: None,
            status: OutboundStatus::Partial,
            errcode: Some(-1),
            parts: 2,
            parts_sent: 1,
            agent: Some("sub-1".into()),
        };
        let item = outbound_message_item(&record, Some(50));
        assert_eq!(item[SK], s("0000000100#o#abc"));
        assert_eq!((&item[PARTS], &item[PARTS_SENT]), (&n(2), &n(1)));
        assert_eq!(item[TTL], n(150));
        let stored = stored_message_from_item(&item).unwrap();
        assert_eq!(stored.direction, Direction::Out);
        assert_eq!(stored.status, Some(OutboundStatus::Partial));
        assert_eq!(stored.content.as_deref(), Some("hello"));
        assert_eq!(stored.agent.as_deref(), Some("sub-1"));
        assert!(!outbound_message_item(&record, None).contains_key(TTL));
    }
}
