//! The fallback for an authenticated plaintext that [`parse`] cannot turn into a known shape: it is
//! kept as [`MessageBody::Raw`] with whatever header fields can still be read, so a push that passed
//! authentication is never refused for its content (docs/protocol.md §4.1).
//!
//! Not here: the strict parse (`parse`), admission, key limits.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::parse::parse_as;
use super::{InboundMessage, MessageBody, sha256_hex};
use crate::ids::MsgId;
use crate::protocol::DataFormat;
use crate::xml::{self, Node};

/// The `msg_type` of a raw message whose `MsgType` cannot be read.
pub const UNKNOWN_MSG_TYPE: &str = "unknown";

/// Parses `plaintext`, or keeps it raw when it is not a known shape: `ToUserName`, `FromUserName`
/// (else empty), `CreateTime` (else `fallback_time`, Unix seconds), `MsgType` (else
/// [`UNKNOWN_MSG_TYPE`]) and `MsgId` are read where they can be. The format is `None` when the
/// plaintext is neither JSON nor XML. It is sniffed once, here.
pub fn parse_or_raw(
    plaintext: &str,
    fallback_time: u64,
) -> (Option<DataFormat>, InboundMessage<'_>) {
    parse_or_raw_as(
        DataFormat::sniff(plaintext.as_bytes()),
        plaintext,
        fallback_time,
    )
}

/// [`parse_or_raw`] for a plaintext whose format the caller already knows (a plaintext-mode push
/// is its own body, sniffed when the body was read); `None`: neither JSON nor XML.
pub fn parse_or_raw_as(
    format: Option<DataFormat>,
    plaintext: &str,
    fallback_time: u64,
) -> (Option<DataFormat>, InboundMessage<'_>) {
    if let Some(message) = format.and_then(|f| parse_as(f, plaintext).ok()) {
        return (format, message);
    }
    let text = plaintext.trim_start_matches('\u{feff}');
    let header = match format {
        Some(DataFormat::Json) => Header::from_json(text),
        Some(DataFormat::Xml) => Header::from_xml(text),
        None => Header::default(),
    };
    let message = InboundMessage {
        to_user_name: header.to.map(Cow::Owned),
        from_user_name: Cow::Owned(header.from.unwrap_or_default()),
        create_time: header.create_time.unwrap_or(fallback_time),
        msg_id: header.msg_id.map(MsgId),
        body: MessageBody::Raw {
            msg_type: header
                .msg_type
                .map_or(Cow::Borrowed(UNKNOWN_MSG_TYPE), Cow::Owned),
            raw: Cow::Borrowed(plaintext),
            digest: Cow::Owned(sha256_hex(plaintext.as_bytes())),
        },
    };
    (format, message)
}

/// The header fields that could be read from a plaintext that does not parse.
#[derive(Default)]
struct Header {
    to: Option<String>,
    from: Option<String>,
    create_time: Option<u64>,
    msg_type: Option<String>,
    msg_id: Option<String>,
}

impl Header {
    /// Reads a JSON object's header; anything that is not valid JSON, or of the wrong kind, is unread.
    fn from_json(text: &str) -> Self {
        let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
            return Self::default();
        };
        let string = |name: &str| match object.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let integer = |name: &str| match object.get(name) {
            Some(Value::Number(n)) => n.as_u64().map(|v| v.to_string()),
            _ => None,
        };
        Self::default().with(
            string("ToUserName"),
            string("FromUserName"),
            string("CreateTime").or_else(|| integer("CreateTime")),
            string("MsgType"),
            string("MsgId").or_else(|| integer("MsgId")),
        )
    }

    /// Reads an XML document's header from its text elements; a document that does not parse is unread.
    fn from_xml(text: &str) -> Self {
        let Ok(fields) = xml::parse_document(text) else {
            return Self::default();
        };
        let mut texts = Map::new();
        for (name, node) in fields {
            if let Node::Text(value) = node {
                texts.insert(name.into_owned(), Value::String(value.into_owned()));
            }
        }
        let string = |name: &str| texts.get(name).and_then(Value::as_str).map(str::to_owned);
        Self::default().with(
            string("ToUserName"),
            string("FromUserName"),
            string("CreateTime"),
            string("MsgType"),
            string("MsgId"),
        )
    }

    /// Keeps what is usable: blank open ids, types and ids are unread; a time must be digits.
    fn with(
        self,
        to: Option<String>,
        from: Option<String>,
        create_time: Option<String>,
        msg_type: Option<String>,
        msg_id: Option<String>,
    ) -> Self {
        let present = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        Self {
            to,
            from: present(from),
            create_time: create_time.and_then(|t| t.trim().parse().ok()),
            msg_type: present(msg_type),
            msg_id: present(msg_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Platform;
    use crate::message::{DedupeKey, render};

    fn raw_parts<'m>(m: &'m InboundMessage<'_>) -> (&'m str, &'m str, &'m str) {
        match &m.body {
            MessageBody::Raw {
                msg_type,
                raw,
                digest,
            } => (msg_type, raw, digest),
            other => panic!("not raw: {other:?}"),
        }
    }

    #[test]
    fn a_known_shape_is_parsed_as_before() {
        let m = InboundMessage {
            to_user_name: Some("gh_1".into()),
            from_user_name: "o1".into(),
            create_time: 5,
            msg_id: Some(MsgId("7".into())),
            body: MessageBody::Text {
                content: "hi".into(),
            },
        };
        for format in [DataFormat::Json, DataFormat::Xml] {
            assert_eq!(
                parse_or_raw(&render(&m, format), 99),
                (Some(format), m.clone())
            );
        }
    }

    #[test]
    fn what_is_not_a_document_is_kept_whole() {
        let (format, m) = parse_or_raw("not a document", 1_700_000_000);
        assert_eq!(format, None);
        assert_eq!(m.from_user_name, "");
        assert_eq!(m.to_user_name, None);
        assert_eq!(m.create_time, 1_700_000_000);
        assert_eq!(m.msg_id, None);
        let (msg_type, raw, digest) = raw_parts(&m);
        assert_eq!((msg_type, raw), (UNKNOWN_MSG_TYPE, "not a document"));
        assert_eq!(digest, sha256_hex(b"not a document"));
        assert_eq!(m.msg_type(), UNKNOWN_MSG_TYPE);
        assert!(!matches!(m.body, MessageBody::Event { .. }));
    }

    #[test]
    fn the_readable_header_of_a_broken_message_is_kept() {
        let cases = [
            // Content missing on a text.
            (
                r#"{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":"5","MsgType":"text","MsgId":18446744073709551000}"#,
                Some("gh_1"),
                "o1",
                5,
                "text",
                Some("18446744073709551000"),
            ),
            // FromUserName missing, XML.
            (
                "<xml><ToUserName>gh_1</ToUserName><CreateTime>7</CreateTime><MsgType>image</MsgType><MsgId> </MsgId></xml>",
                Some("gh_1"),
                "",
                7,
                "image",
                None,
            ),
            // Fields of the wrong kind are unread.
            (
                r#"{"FromUserName":["o1"],"CreateTime":1.5,"MsgType":{"a":1},"MsgId":"m1"}"#,
                None,
                "",
                42,
                UNKNOWN_MSG_TYPE,
                Some("m1"),
            ),
            // Not well-formed: nothing is read.
            (
                "<xml><FromUserName>o1</FromUserName>",
                None,
                "",
                42,
                UNKNOWN_MSG_TYPE,
                None,
            ),
        ];
        for (plaintext, to, from, time, msg_type, msg_id) in cases {
            let (_, m) = parse_or_raw(plaintext, 42);
            assert_eq!(m.to_user_name.as_deref(), to, "{plaintext}");
            assert_eq!(m.from_user_name, from, "{plaintext}");
            assert_eq!(m.create_time, time, "{plaintext}");
            assert_eq!(
                m.msg_id.as_ref().map(|i| i.0.as_str()),
                msg_id,
                "{plaintext}"
            );
            assert_eq!(raw_parts(&m).0, msg_type, "{plaintext}");
            assert_eq!(raw_parts(&m).1, plaintext);
        }
    }

    #[test]
    fn raw_messages_dedupe_on_their_digest() {
        let key = |p: &str| DedupeKey::derive(Platform::Wechat, "wx1", &parse_or_raw(p, 42).1);
        let a = key("first");
        assert_eq!(a, key("first"), "a retry lands on the same key");
        assert_ne!(a, key("second"), "different pushes never collide");
        let digest = sha256_hex(b"first");
        assert_eq!(
            a.position,
            format!("0000000042#t#unknown#{}", &digest[..16])
        );
        // With a readable MsgId the id decides, as for every message.
        let with_id = key(r#"{"FromUserName":"o","MsgType":"text","MsgId":9,"CreateTime":3}"#);
        assert_eq!(with_id.position, "0000000003#m#9");
    }
}
