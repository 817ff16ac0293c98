//! Renders an [`InboundMessage`] the way the platforms send it (field names of docs/protocol.md §6), in
//! JSON or XML: what the simulator, the event fixtures and the tests push. Parsing the result
//! gives the same message back.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::{InboundMessage, MessageBody};
use crate::protocol::DataFormat;

/// The message as a platform JSON object or `<xml>` document; a raw message is its plaintext as it
/// came, whatever `format` says.
pub fn render(message: &InboundMessage<'_>, format: DataFormat) -> String {
    if let MessageBody::Raw { raw, .. } = &message.body {
        return raw.to_string();
    }
    let mut fields: Vec<(String, Value)> = Vec::new();
    if let Some(to) = &message.to_user_name {
        fields.push(("ToUserName".into(), Value::String(to.to_string())));
    }
    fields.push((
        "FromUserName".into(),
        Value::String(message.from_user_name.to_string()),
    ));
    fields.push(("CreateTime".into(), Value::from(message.create_time)));
    fields.push((
        "MsgType".into(),
        Value::String(message.msg_type().to_owned()),
    ));
    let s = |k: &str, v: &str| (k.to_owned(), Value::String(v.to_owned()));
    match &message.body {
        MessageBody::Text { content } => fields.push(s("Content", content)),
        MessageBody::Image { pic_url, media_id } => {
            fields.extend(pic_url.iter().map(|v| s("PicUrl", v)));
            fields.extend(media_id.iter().map(|v| s("MediaId", v)));
        }
        MessageBody::MiniProgramPage {
            title,
            app_id,
            page_path,
            thumb_url,
            thumb_media_id,
        } => {
            fields.push(s("Title", title));
            fields.push(s("AppId", app_id));
            fields.push(s("PagePath", page_path));
            fields.push(s("ThumbUrl", thumb_url));
            fields.push(s("ThumbMediaId", thumb_media_id));
        }
        MessageBody::UserEnterTempSession { session_from } => {
            fields.push(s("Event", "user_enter_tempsession"));
            fields.push(s("SessionFrom", session_from));
        }
        MessageBody::Event {
            event,
            fields: rest,
        } => {
            fields.push(s("Event", event));
            fields.extend(rest.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        MessageBody::Unknown { fields: rest, .. } => {
            fields.extend(rest.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        // Returned as it came, above.
        MessageBody::Raw { .. } => {}
    }
    if let Some(id) = &message.msg_id {
        // Numeric ids go out as JSON numbers, as the platforms send them.
        let value =
            id.0.parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(id.0.clone()));
        fields.push(("MsgId".into(), value));
    }
    match format {
        DataFormat::Json => Value::Object(fields.into_iter().collect::<Map<_, _>>()).to_string(),
        DataFormat::Xml => {
            let mut out = String::from("<xml>");
            for (name, value) in &fields {
                write_xml(&mut out, name, value);
            }
            out.push_str("</xml>");
            out
        }
    }
}

fn write_xml(out: &mut String, name: &str, value: &Value) {
    let _ = write!(out, "<{name}>");
    match value {
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => {
            // CDATA cannot contain "]]>": split it across two sections, as the platforms do.
            out.push_str("<![CDATA[");
            out.push_str(&s.replace("]]>", "]]]]><![CDATA[>"));
            out.push_str("]]>");
        }
        Value::Object(map) => {
            for (k, v) in map {
                write_xml(out, k, v);
            }
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
    let _ = write!(out, "</{name}>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MsgId;
    use crate::message::parse;

    #[test]
    fn rendered_messages_parse_back() {
        let bodies = [
            MessageBody::Text {
                content: "  a]]>b\n你好😀 ".into(),
            },
            MessageBody::Image {
                pic_url: Some("http://x/y?a=1&b=2".into()),
                media_id: Some("m".into()),
            },
            MessageBody::MiniProgramPage {
                title: "t".into(),
                app_id: "wx1".into(),
                page_path: "p?a=1".into(),
                thumb_url: "u".into(),
                thumb_media_id: "tm".into(),
            },
            MessageBody::UserEnterTempSession {
                session_from: "goods".into(),
            },
        ];
        for body in bodies {
            let msg_id = (!matches!(body, MessageBody::UserEnterTempSession { .. }))
                .then(|| MsgId("18446744073709551000".into()));
            let m = InboundMessage {
                to_user_name: Some("gh_1".into()),
                from_user_name: "oU".into(),
                create_time: 1_700_000_000,
                msg_id,
                body,
            };
            for format in [DataFormat::Json, DataFormat::Xml] {
                let text = render(&m, format);
                assert_eq!(parse(&text).unwrap(), (format, m.clone()), "{text}");
            }
        }
    }
}
