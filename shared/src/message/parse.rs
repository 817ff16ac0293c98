//! Decrypted plaintext (JSON or XML) → [`InboundMessage`].
//!
//! Both formats fill the same slots, so a field means the same thing whichever format the console
//! chose. `MsgId` is kept exact (number or string); `CreateTime` is read from a number or a string.
//! Unknown fields are ignored on modelled types and kept on `Event` / `Unknown`.

mod json;

use std::borrow::Cow;

use serde::de::DeserializeSeed;
use serde_json::{Map, Value};

use self::json::{Scalar, SlotsSeed};

use super::{InboundMessage, MessageBody};
use crate::flat_json::{self, FlatValue};
use crate::ids::MsgId;
use crate::protocol::DataFormat;
use crate::xml::{self, Node};

/// Why a plaintext message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Neither a JSON object nor an XML document.
    #[error("message is neither JSON nor XML")]
    UnknownFormat,
    /// Malformed JSON.
    #[error("message is not valid JSON: {0}")]
    Json(String),
    /// Malformed XML, or XML with a DOCTYPE.
    #[error("message is not valid XML: {0}")]
    Xml(String),
    /// A required field is absent.
    #[error("message has no {0}")]
    MissingField(&'static str),
    /// A field has a value of the wrong kind.
    #[error("message field {0} is invalid")]
    InvalidField(&'static str),
}

/// Parses a plaintext message, sniffing JSON or XML from its first byte.
pub fn parse(plaintext: &str) -> Result<(DataFormat, InboundMessage<'_>), ParseError> {
    let format = DataFormat::sniff(plaintext.as_bytes()).ok_or(ParseError::UnknownFormat)?;
    Ok((format, parse_as(format, plaintext)?))
}

/// Parses a plaintext message already known to be `format` (sniffed once by the caller).
pub(super) fn parse_as(
    format: DataFormat,
    plaintext: &str,
) -> Result<InboundMessage<'_>, ParseError> {
    let text = plaintext.trim_start_matches('\u{feff}');
    match format {
        DataFormat::Json => Slots::flat_json_message(text)
            .unwrap_or_else(|| Slots::from_json(text).and_then(Slots::build)),
        DataFormat::Xml => Slots::from_xml(text)?.build(),
    }
}

/// Known fields, filled from either format; everything else goes to `extras`.
#[derive(Default)]
struct Slots<'a> {
    to: Option<Cow<'a, str>>,
    from: Option<Cow<'a, str>>,
    create_time: Option<u64>,
    msg_type: Option<Cow<'a, str>>,
    event: Option<Cow<'a, str>>,
    msg_id: Option<String>,
    content: Option<Cow<'a, str>>,
    pic_url: Option<Cow<'a, str>>,
    media_id: Option<Cow<'a, str>>,
    title: Option<Cow<'a, str>>,
    app_id: Option<Cow<'a, str>>,
    page_path: Option<Cow<'a, str>>,
    thumb_url: Option<Cow<'a, str>>,
    thumb_media_id: Option<Cow<'a, str>>,
    session_from: Option<Cow<'a, str>>,
    extras: Map<String, Value>,
}

/// Slot names, in one place for both formats.
#[derive(PartialEq, Eq)]
enum Field {
    To,
    From,
    CreateTime,
    MsgType,
    Event,
    MsgId,
    Content,
    PicUrl,
    MediaId,
    Title,
    AppId,
    PagePath,
    ThumbUrl,
    ThumbMediaId,
    SessionFrom,
    Other,
}

impl Field {
    fn of(name: &str) -> Field {
        match name {
            "ToUserName" => Field::To,
            "FromUserName" => Field::From,
            "CreateTime" => Field::CreateTime,
            "MsgType" => Field::MsgType,
            "Event" => Field::Event,
            "MsgId" => Field::MsgId,
            "Content" => Field::Content,
            "PicUrl" => Field::PicUrl,
            "MediaId" => Field::MediaId,
            "Title" => Field::Title,
            "AppId" => Field::AppId,
            "PagePath" => Field::PagePath,
            "ThumbUrl" => Field::ThumbUrl,
            "ThumbMediaId" => Field::ThumbMediaId,
            "SessionFrom" => Field::SessionFrom,
            _ => Field::Other,
        }
    }
}

impl Field {
    fn name(&self) -> &'static str {
        match self {
            Field::To => "ToUserName",
            Field::From => "FromUserName",
            Field::CreateTime => "CreateTime",
            Field::MsgType => "MsgType",
            Field::Event => "Event",
            Field::MsgId => "MsgId",
            Field::Content => "Content",
            Field::PicUrl => "PicUrl",
            Field::MediaId => "MediaId",
            Field::Title => "Title",
            Field::AppId => "AppId",
            Field::PagePath => "PagePath",
            Field::ThumbUrl => "ThumbUrl",
            Field::ThumbMediaId => "ThumbMediaId",
            Field::SessionFrom => "SessionFrom",
            Field::Other => "field",
        }
    }
}

impl<'a> Slots<'a> {
    fn slot(&mut self, field: &Field) -> Option<&mut Option<Cow<'a, str>>> {
        Some(match field {
            Field::To => &mut self.to,
            Field::From => &mut self.from,
            Field::MsgType => &mut self.msg_type,
            Field::Event => &mut self.event,
            Field::Content => &mut self.content,
            Field::PicUrl => &mut self.pic_url,
            Field::MediaId => &mut self.media_id,
            Field::Title => &mut self.title,
            Field::AppId => &mut self.app_id,
            Field::PagePath => &mut self.page_path,
            Field::ThumbUrl => &mut self.thumb_url,
            Field::ThumbMediaId => &mut self.thumb_media_id,
            Field::SessionFrom => &mut self.session_from,
            Field::CreateTime | Field::MsgId | Field::Other => return None,
        })
    }

    /// Puts one JSON member of a known field (not [`Field::Other`]); the first invalid value is
    /// kept in `invalid`.
    fn put(&mut self, field: Field, value: Scalar<'a>, invalid: &mut Option<ParseError>) {
        let text = match value {
            Scalar::Str(s) | Scalar::Number(s) => s,
            Scalar::Other => {
                let name = match field {
                    Field::CreateTime => "CreateTime",
                    Field::MsgId => "MsgId",
                    ref known => known.name(),
                };
                *invalid = invalid.take().or(Some(ParseError::InvalidField(name)));
                return;
            }
        };
        match field {
            Field::CreateTime => match parse_time(&text) {
                Ok(t) => self.create_time = Some(t),
                Err(e) => *invalid = invalid.take().or(Some(e)),
            },
            // Integer digits exactly as sent: never through f64.
            Field::MsgId => self.msg_id = Some(text.into_owned()),
            ref known => {
                if let Some(slot) = self.slot(known) {
                    *slot = Some(text);
                }
            }
        }
    }

    /// The fast path for a flat JSON object (`flat_json`), built into the message where the slots
    /// live (they are large to move); `None` leaves the document to serde.
    fn flat_json_message(text: &'a str) -> Option<Result<InboundMessage<'a>, ParseError>> {
        let mut slots = Slots::default();
        let mut invalid = None;
        flat_json::each_member(text, |key, value| {
            match Field::of(key) {
                Field::Other => {
                    let value = match value {
                        FlatValue::Str(s) => Value::String(s.to_owned()),
                        FlatValue::Int(d) => Value::Number(d.parse::<u64>().ok()?.into()),
                    };
                    slots.extras.insert(key.to_owned(), value);
                }
                field => {
                    let value = match value {
                        FlatValue::Str(s) => Scalar::Str(Cow::Borrowed(s)),
                        FlatValue::Int(d) => Scalar::Number(Cow::Borrowed(d)),
                    };
                    slots.put(field, value, &mut invalid);
                }
            }
            Some(())
        })?;
        Some(match invalid {
            Some(e) => Err(e),
            None => slots.build(),
        })
    }

    /// serde_json's reading of a JSON object (every document the fast path leaves).
    fn from_json(text: &'a str) -> Result<Self, ParseError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let slots = SlotsSeed
            .deserialize(&mut de)
            .map_err(|e| ParseError::Json(e.to_string()))?;
        de.end().map_err(|e| ParseError::Json(e.to_string()))?;
        slots
    }

    fn from_xml(text: &'a str) -> Result<Self, ParseError> {
        let fields = xml::parse_document(text).map_err(|e| ParseError::Xml(e.to_string()))?;
        let mut slots = Slots::default();
        for (name, node) in fields {
            let field = Field::of(&name);
            let value = match node {
                Node::Text(t) => t,
                Node::Element(children) => {
                    slots
                        .extras
                        .insert(name.into_owned(), xml_to_value(children));
                    continue;
                }
            };
            match field {
                Field::CreateTime => slots.create_time = Some(parse_time(&value)?),
                Field::MsgId => slots.msg_id = Some(value.into_owned()),
                Field::Other => {
                    slots
                        .extras
                        .insert(name.into_owned(), Value::String(value.into_owned()));
                }
                ref known => {
                    if let Some(slot) = slots.slot(known) {
                        *slot = Some(value);
                    }
                }
            }
        }
        Ok(slots)
    }

    fn build(self) -> Result<InboundMessage<'a>, ParseError> {
        let from = self
            .from
            .filter(|f| !f.trim().is_empty())
            .ok_or(ParseError::MissingField("FromUserName"))?;
        let create_time = self
            .create_time
            .ok_or(ParseError::MissingField("CreateTime"))?;
        let msg_type = self.msg_type.ok_or(ParseError::MissingField("MsgType"))?;
        let body = match msg_type.as_ref() {
            "text" => MessageBody::Text {
                content: self.content.ok_or(ParseError::MissingField("Content"))?,
            },
            "image" => MessageBody::Image {
                pic_url: self.pic_url,
                media_id: self.media_id,
            },
            "miniprogrampage" => MessageBody::MiniProgramPage {
                title: self.title.unwrap_or_default(),
                app_id: self.app_id.unwrap_or_default(),
                page_path: self.page_path.unwrap_or_default(),
                thumb_url: self.thumb_url.unwrap_or_default(),
                thumb_media_id: self.thumb_media_id.unwrap_or_default(),
            },
            "event" => {
                let event = self.event.ok_or(ParseError::MissingField("Event"))?;
                if event == "user_enter_tempsession" {
                    MessageBody::UserEnterTempSession {
                        session_from: self.session_from.unwrap_or_default(),
                    }
                } else {
                    let fields = Self::rest(
                        self.extras,
                        [
                            ("Content", self.content),
                            ("PicUrl", self.pic_url),
                            ("MediaId", self.media_id),
                            ("Title", self.title),
                            ("AppId", self.app_id),
                            ("PagePath", self.page_path),
                            ("ThumbUrl", self.thumb_url),
                            ("ThumbMediaId", self.thumb_media_id),
                            ("SessionFrom", self.session_from),
                        ],
                    );
                    MessageBody::Event { event, fields }
                }
            }
            other => {
                let fields = Self::rest(
                    self.extras,
                    [
                        ("Event", self.event),
                        ("Content", self.content),
                        ("PicUrl", self.pic_url),
                        ("MediaId", self.media_id),
                        ("Title", self.title),
                        ("AppId", self.app_id),
                        ("PagePath", self.page_path),
                        ("ThumbUrl", self.thumb_url),
                        ("ThumbMediaId", self.thumb_media_id),
                    ],
                );
                MessageBody::Unknown {
                    msg_type: Cow::Owned(other.to_owned()),
                    fields,
                }
            }
        };
        Ok(InboundMessage {
            to_user_name: self.to,
            from_user_name: from,
            create_time,
            // An empty MsgId is no id: it must not make distinct messages collide.
            msg_id: self.msg_id.filter(|id| !id.trim().is_empty()).map(MsgId),
            body,
        })
    }

    /// Puts the known slots that a type does not model back among its raw fields.
    fn rest<const N: usize>(
        mut extras: Map<String, Value>,
        known: [(&str, Option<Cow<'a, str>>); N],
    ) -> Map<String, Value> {
        for (name, value) in known {
            if let Some(v) = value {
                extras.insert(name.to_owned(), Value::String(v.into_owned()));
            }
        }
        extras
    }
}

fn xml_to_value(children: Vec<(Cow<'_, str>, Node<'_>)>) -> Value {
    let mut map = Map::new();
    for (name, node) in children {
        let value = match node {
            Node::Text(t) => Value::String(t.into_owned()),
            Node::Element(c) => xml_to_value(c),
        };
        map.insert(name.into_owned(), value);
    }
    Value::Object(map)
}

fn parse_time(s: &str) -> Result<u64, ParseError> {
    s.trim()
        .parse()
        .map_err(|_| ParseError::InvalidField("CreateTime"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_text_with_exact_big_msg_id() {
        let (format, m) = parse(r#"{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":"1482048670","MsgType":"text","Content":"a\nb","MsgId":18446744073709551000}"#).unwrap();
        assert_eq!(format, DataFormat::Json);
        assert_eq!(m.create_time, 1_482_048_670);
        assert_eq!(m.msg_id, Some(MsgId("18446744073709551000".into())));
        assert_eq!(
            m.body,
            MessageBody::Text {
                content: "a\nb".into()
            }
        );
    }

    #[test]
    fn unknown_types_keep_their_fields() {
        let (_, m) = parse("<xml><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>voice</MsgType><MediaId>m1</MediaId><Format>amr</Format><MsgId>7</MsgId></xml>").unwrap();
        match m.body {
            MessageBody::Unknown { msg_type, fields } => {
                assert_eq!(msg_type, "voice");
                assert_eq!(fields.get("MediaId"), Some(&Value::String("m1".into())));
                assert_eq!(fields.get("Format"), Some(&Value::String("amr".into())));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(m.msg_id, Some(MsgId("7".into())));
    }

    #[test]
    fn other_events_keep_their_fields() {
        let (_, m) = parse(r#"{"FromUserName":"o","CreateTime":1,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}"#).unwrap();
        let MessageBody::Event { event, fields } = m.body else {
            panic!("not an event")
        };
        assert_eq!(event, "debug_demo");
        assert_eq!(
            fields.get("debug_str"),
            Some(&Value::String("hello world".into()))
        );
    }

    #[test]
    fn rejects_what_is_not_a_message() {
        assert_eq!(parse("z\"a\":1}").unwrap_err(), ParseError::UnknownFormat);
        assert!(matches!(parse("{\"a\":").unwrap_err(), ParseError::Json(_)));
        assert_eq!(
            parse(r#"{"CreateTime":1,"MsgType":"text","Content":""}"#).unwrap_err(),
            ParseError::MissingField("FromUserName")
        );
        assert_eq!(
            parse(r#"{"FromUserName":"o","CreateTime":1.5,"MsgType":"text","Content":""}"#)
                .unwrap_err(),
            ParseError::InvalidField("CreateTime")
        );
        assert_eq!(
            parse(
                r#"{"FromUserName":"o","CreateTime":1,"MsgType":"text","Content":"","MsgId":1e3}"#
            )
            .unwrap_err(),
            ParseError::InvalidField("MsgId")
        );
        assert!(matches!(
            parse("<xml><A>1</A>").unwrap_err(),
            ParseError::Xml(_)
        ));
    }

    proptest::proptest! {
        /// The flat-JSON fast path builds exactly what serde's reading builds, errors included.
        #[test]
        fn the_fast_path_agrees_with_serde(
            members in proptest::collection::vec(
                (
                    "ToUserName|FromUserName|CreateTime|MsgType|MsgId|Content|Event|PicUrl|SessionFrom|Extra|MsgId",
                    "\"[ -!#-\\[\\]-~中]{0,6}\"|[1-9][0-9]{0,18}|0|\"(text|event|image|miniprogrampage|x)\"|\"user_enter_tempsession\"|\" 12\"",
                ),
                0..9,
            ),
        ) {
            let body: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let doc = format!("{{{}}}", body.join(","));
            let fast = Slots::flat_json_message(&doc).expect("flat shape");
            let slow = Slots::from_json(&doc).and_then(Slots::build);
            proptest::prop_assert_eq!(fast, slow, "{}", doc);
        }
    }
}
