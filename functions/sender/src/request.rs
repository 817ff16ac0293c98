//! The sender's request bodies, read into types that cannot hold an invalid request:
//! `POST /messages` as one variant per `msg_type`, `POST /typing`; and the fingerprint an
//! idempotency key is bound to. Errors name the field and never quote a value.
//!
//! Not here: platform rules that need the app (which platform takes which type: `compose`).

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use shared::ids::Platform;

use crate::error::{SendError, invalid};

/// `POST /messages`.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    /// The mini program.
    pub app_id: String,
    /// `wechat` or `baidu`; optional when the app id is registered on one platform only.
    pub platform: Option<Platform>,
    /// The user.
    pub open_id: String,
    /// What to send.
    pub message: OutboundMessage,
    /// Idempotency key: a repeat returns the first result and sends nothing.
    pub client_msg_id: Option<String>,
    /// Baidu `user_type` (1 guest, 2 Baidu account); defaults to the app's `default_user_type`, else 2.
    pub user_type: Option<u8>,
    /// The desk agent sending it, recorded on the outbound message. Never read from a
    /// `POST /messages` body: only the desk sets it, for the agent its token names.
    pub agent: Option<String>,
    /// Digest of everything above but the key: what `client_msg_id` is bound to.
    pub fingerprint: String,
}

/// One outbound message, by `msg_type`.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboundMessage {
    /// `text`: non-empty `content` (split into parts over the platform's limit).
    Text(String),
    /// `image`: exactly one source.
    Image(ImageSource),
    /// `link` (WeChat): a link card.
    Link(LinkInput),
    /// `miniprogrampage` (WeChat): a mini program card.
    MiniProgramPage(MiniProgramInput),
}

impl OutboundMessage {
    /// The `msg_type` name.
    pub fn msg_type(&self) -> &'static str {
        match self {
            OutboundMessage::Text(_) => "text",
            OutboundMessage::Image(_) => "image",
            OutboundMessage::Link(_) => "link",
            OutboundMessage::MiniProgramPage(_) => "miniprogrampage",
        }
    }
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// A WeChat media id already uploaded (`image.media_id`).
    MediaId(String),
    /// A public https URL (`image.url`): Baidu sends it as is, WeChat fetches and uploads it.
    Url(String),
    /// Image bytes (`image.data`, base64): WeChat uploads them.
    Data(Vec<u8>),
}

/// A link card (docs/protocol.md §9.1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LinkInput {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Target URL.
    pub url: String,
    /// Thumbnail URL.
    pub thumb_url: String,
}

/// A mini program card (docs/protocol.md §9.1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MiniProgramInput {
    /// Title.
    pub title: String,
    /// Page path, may carry a query.
    pub pagepath: String,
    /// Thumbnail media id.
    pub thumb_media_id: String,
}

/// `POST /typing` body (WeChat).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TypingRequest {
    /// The mini program.
    pub app_id: String,
    /// The user.
    pub open_id: String,
    /// `Typing` or `CancelTyping`.
    pub command: String,
}

impl TypingRequest {
    /// Reads a `POST /typing` body.
    pub fn from_json(body: &[u8]) -> Result<Self, SendError> {
        serde_json::from_slice(body).map_err(|e| json_error(&e))
    }
}

/// A JSON error by category and position only (serde's text can quote the body).
fn json_error(e: &serde_json::Error) -> SendError {
    invalid(
        "body",
        format!(
            "not a valid request ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ),
    )
}

fn string(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, SendError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

fn required(obj: &Map<String, Value>, field: &'static str) -> Result<String, SendError> {
    string(obj, field)?.ok_or_else(|| invalid(field, "required"))
}

fn object<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a Map<String, Value>, SendError> {
    match obj.get(field) {
        Some(Value::Object(inner)) => Ok(inner),
        None | Some(Value::Null) => Err(invalid(field, "required")),
        Some(_) => Err(invalid(field, "must be an object")),
    }
}

fn card<T: for<'de> Deserialize<'de>>(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<T, SendError> {
    let inner = object(obj, field)?;
    serde_json::from_value(Value::Object(inner.clone()))
        .map_err(|_| invalid(field, "needs every field of the card, as strings"))
}

impl SendRequest {
    /// Reads a `POST /messages` body.
    pub fn from_json(body: &[u8]) -> Result<Self, SendError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
        let Value::Object(obj) = value else {
            return Err(invalid("body", "must be a JSON object"));
        };
        let platform = match string(&obj, "platform")? {
            None => None,
            Some(p) => Some(
                p.parse()
                    .map_err(|_| invalid("platform", "must be wechat or baidu"))?,
            ),
        };
        let open_id = required(&obj, "open_id")?;
        if open_id.trim().is_empty() {
            return Err(invalid("open_id", "required"));
        }
        let message = match required(&obj, "msg_type")?.as_str() {
            "text" => {
                let content = string(&obj, "content")?
                    .ok_or_else(|| invalid("content", "required for text"))?;
                if content.is_empty() {
                    return Err(invalid("content", "must not be empty"));
                }
                OutboundMessage::Text(content)
            }
            "image" => OutboundMessage::Image(image(object(&obj, "image")?)?),
            "link" => OutboundMessage::Link(card(&obj, "link")?),
            "miniprogrampage" => OutboundMessage::MiniProgramPage(card(&obj, "miniprogrampage")?),
            _ => {
                return Err(invalid(
                    "msg_type",
                    "must be text, image, link or miniprogrampage",
                ));
            }
        };
        let user_type = match obj.get("user_type") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .filter(|n| matches!(n, 1 | 2))
                    .ok_or_else(|| invalid("user_type", "must be 1 or 2"))?,
            ),
        };
        let client_msg_id = string(&obj, "client_msg_id")?;
        Ok(Self {
            app_id: required(&obj, "app_id")?,
            platform,
            open_id,
            message,
            client_msg_id,
            user_type,
            agent: None,
            fingerprint: fingerprint(obj),
        })
    }
}

fn image(obj: &Map<String, Value>) -> Result<ImageSource, SendError> {
    let sources = (
        string(obj, "media_id")?,
        string(obj, "url")?,
        string(obj, "data")?,
    );
    match sources {
        (Some(id), None, None) => Ok(ImageSource::MediaId(id)),
        (None, Some(url), None) => Ok(ImageSource::Url(url)),
        (None, None, Some(data)) => base64::engine::general_purpose::STANDARD
            .decode(data)
            .map(ImageSource::Data)
            .map_err(|_| invalid("image.data", "not base64")),
        _ => Err(invalid("image", "give exactly one of media_id, url, data")),
    }
}

/// Hex SHA-256 of the request without its `client_msg_id`, keys sorted (serde_json's map), so
/// the same request in another key order or spacing has the same fingerprint.
fn fingerprint(mut obj: Map<String, Value>) -> String {
    obj.remove("client_msg_id");
    let canonical = Value::Object(obj).to_string();
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<SendRequest, SendError> {
        SendRequest::from_json(body.as_bytes())
    }

    fn field(e: SendError) -> &'static str {
        match e {
            SendError::Invalid { field, .. } => field,
            other => panic!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn each_msg_type_becomes_its_variant() {
        let r = parse(r#"{"app_id":"wx1","open_id":"o1","msg_type":"text","content":"hi","client_msg_id":"c1"}"#)
            .unwrap();
        assert_eq!(r.message, OutboundMessage::Text("hi".into()));
        assert_eq!(r.client_msg_id.as_deref(), Some("c1"));
        let r =
            parse(r#"{"app_id":"wx1","open_id":"o1","msg_type":"image","image":{"data":"aGk="}}"#)
                .unwrap();
        assert_eq!(
            r.message,
            OutboundMessage::Image(ImageSource::Data(b"hi".to_vec()))
        );
        let r = parse(
            r#"{"app_id":"wx1","open_id":"o1","msg_type":"link","link":{"title":"t","description":"d","url":"https://e","thumb_url":"https://t"}}"#,
        )
        .unwrap();
        assert_eq!(r.message.msg_type(), "link");
    }

    #[test]
    fn errors_name_the_field_and_never_quote_the_body() {
        assert_eq!(
            field(parse(r#"{"app_id":"wx1","open_id":"o1","msg_type":"text"}"#).unwrap_err()),
            "content"
        );
        assert_eq!(
            field(
                parse(r#"{"app_id":"wx1","open_id":" ","msg_type":"text","content":"x"}"#)
                    .unwrap_err()
            ),
            "open_id"
        );
        assert_eq!(
            field(parse(r#"{"app_id":"wx1","open_id":"o","msg_type":"video"}"#).unwrap_err()),
            "msg_type"
        );
        assert_eq!(
            field(parse(r#"{"app_id":"wx1","open_id":"o","msg_type":"image","image":{"url":"u","data":"d"}}"#).unwrap_err()),
            "image"
        );
        let e = parse(r#"{"app_id":"wx1","secret-looking-value"#).unwrap_err();
        assert!(!e.to_string().contains("secret-looking"), "{e}");
    }

    #[test]
    fn the_fingerprint_binds_user_and_content_but_not_key_order() {
        let a = parse(r#"{"app_id":"wx1","open_id":"o1","msg_type":"text","content":"hi","client_msg_id":"c"}"#).unwrap();
        let b = parse(r#"{ "content":"hi", "msg_type":"text", "open_id":"o1", "app_id":"wx1" }"#)
            .unwrap();
        let other_user =
            parse(r#"{"app_id":"wx1","open_id":"o2","msg_type":"text","content":"hi"}"#).unwrap();
        let other_text =
            parse(r#"{"app_id":"wx1","open_id":"o1","msg_type":"text","content":"ho"}"#).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, other_user.fingerprint);
        assert_ne!(a.fingerprint, other_text.fingerprint);
        assert_eq!(a.fingerprint.len(), 64);
    }
}
