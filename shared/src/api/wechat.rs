//! WeChat mini program rules: customer-service send (docs/protocol.md §9.1), typing (§9.2), temporary
//! image upload (§9.3), access tokens classic and stable (§10.1) and the errcode table (§9.6);
//! downloading an inbound image is `media`.
//!
//! Every WeChat answer is JSON; `errcode` absent or `0` means success. The token goes in the
//! query string (`access_token=`), so request URLs are never logged or put into errors.

use serde::Serialize;
use serde_json::{Value, json};

use super::{OutboundBody, PlatformError, RetryPolicy, body_bytes, parse_json, redact, url_with};

pub mod media;

/// Classic token path (`GET`).
pub const TOKEN_PATH: &str = "/cgi-bin/token";
/// Stable token path (`POST` JSON).
pub const STABLE_TOKEN_PATH: &str = "/cgi-bin/stable_token";
/// Customer-service send path.
pub const SEND_PATH: &str = "/cgi-bin/message/custom/send";
/// Typing path for mini programs (docs/protocol.md §9.2 prefers `business/typing`).
pub const TYPING_PATH: &str = "/cgi-bin/message/custom/business/typing";
/// Temporary media upload path.
pub const UPLOAD_PATH: &str = "/cgi-bin/media/upload";

/// Maps a non-zero WeChat errcode of a send/typing/upload call to its class (docs/protocol.md §9.6).
pub fn classify(errcode: i64, errmsg: &str) -> PlatformError {
    match errcode {
        40001 | 40014 | 42001 => PlatformError::TokenInvalid { errcode },
        -1 => PlatformError::Busy { errcode },
        45047 => PlatformError::QuotaExhausted { errcode },
        45015 => PlatformError::WindowExpired { errcode },
        _ => PlatformError::Rejected {
            errcode: Some(errcode),
            errmsg: redact(errmsg),
        },
    }
}

/// Maps a non-zero errcode of a token call: `-1` is busy; everything else (including 40001,
/// which here means a wrong AppSecret) is a definite rejection, never `TokenInvalid`.
pub fn classify_token_error(errcode: i64, errmsg: &str) -> PlatformError {
    match errcode {
        -1 => PlatformError::Busy { errcode },
        _ => PlatformError::Rejected {
            errcode: Some(errcode),
            errmsg: redact(errmsg),
        },
    }
}

/// A send body in the documented field order: `touser`, `msgtype`, then the payload object.
#[derive(Serialize)]
struct SendBody<'a> {
    touser: &'a str,
    msgtype: &'static str,
    #[serde(flatten)]
    payload: Payload<'a>,
}

/// The payload, externally tagged by its `msgtype` (`"text":{…}`).
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Payload<'a> {
    Text {
        content: &'a str,
    },
    Image {
        media_id: &'a str,
    },
    Link {
        title: &'a str,
        description: &'a str,
        url: &'a str,
        thumb_url: &'a str,
    },
    Miniprogrampage {
        title: &'a str,
        pagepath: &'a str,
        thumb_media_id: &'a str,
    },
}

/// The typing body, in the documented field order.
#[derive(Serialize)]
struct TypingBody<'a> {
    touser: &'a str,
    command: &'static str,
}

/// The JSON text of a customer-service send (docs/protocol.md §9.1), exactly as documented, e.g.
/// `{"touser":"OPENID","msgtype":"text","text":{"content":"Hello"}}`: fields in that order,
/// non-ASCII as raw UTF-8.
pub fn send_body(open_id: &str, body: &OutboundBody) -> Result<String, PlatformError> {
    let payload = match body {
        OutboundBody::Text { content } => Payload::Text { content },
        OutboundBody::Image { media_id } => Payload::Image { media_id },
        OutboundBody::Link {
            title,
            description,
            url,
            thumb_url,
        } => Payload::Link {
            title,
            description,
            url,
            thumb_url,
        },
        OutboundBody::MiniProgramPage {
            title,
            pagepath,
            thumb_media_id,
        } => Payload::Miniprogrampage {
            title,
            pagepath,
            thumb_media_id,
        },
        OutboundBody::ImageUrl { .. } => {
            return Err(PlatformError::Unsupported {
                platform: "wechat",
                msg_type: "image (by URL)",
            });
        }
    };
    to_json(&SendBody {
        touser: open_id,
        msgtype: body.msg_type(),
        payload,
    })
}

/// The JSON text of a typing call: `{"touser":"OPENID","command":"Typing"|"CancelTyping"}`.
pub fn typing_body(open_id: &str, typing: bool) -> Result<String, PlatformError> {
    let command = if typing { "Typing" } else { "CancelTyping" };
    to_json(&TypingBody {
        touser: open_id,
        command,
    })
}

fn to_json(value: &impl Serialize) -> Result<String, PlatformError> {
    serde_json::to_string(value)
        .map_err(|e| PlatformError::Protocol(format!("cannot serialize the request: {e}")))
}

/// Checks a parsed WeChat answer: `errcode` absent or `0` is success.
pub fn check(
    value: &Value,
    classify_fn: fn(i64, &str) -> PlatformError,
) -> Result<(), PlatformError> {
    match value.get("errcode") {
        None | Some(Value::Null) => Ok(()),
        Some(code) => match code.as_i64() {
            Some(0) => Ok(()),
            Some(errcode) => {
                let errmsg = value.get("errmsg").and_then(Value::as_str).unwrap_or("");
                Err(classify_fn(errcode, errmsg))
            }
            None => Err(PlatformError::Protocol(
                "errcode is not an integer".to_owned(),
            )),
        },
    }
}

/// WeChat client: one per process, cheap to clone (the reqwest client is shared).
#[derive(Debug, Clone)]
pub struct WechatClient {
    http: reqwest::Client,
    base: String,
    retry: RetryPolicy,
}

impl WechatClient {
    /// A client for the API at `base` (e.g. [`WECHAT_BASE_URL`](super::WECHAT_BASE_URL)), with
    /// the default [`RetryPolicy`].
    pub fn new(http: reqwest::Client, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into(),
            retry: RetryPolicy::default(),
        }
    }

    /// Replaces the busy-retry policy (tests use ~1 ms pauses).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Fetches an access token: `(token, expires_in seconds)`.
    ///
    /// `stable` uses `POST /cgi-bin/stable_token` (recommended; `force_refresh` invalidates the
    /// previous token and is limited to 20/day); otherwise the classic
    /// `GET /cgi-bin/token`, which ignores `force_refresh` and always issues a new token.
    #[tracing::instrument(skip_all, fields(stable = stable, force_refresh = force_refresh))]
    pub async fn fetch_token(
        &self,
        app_id: &str,
        secret: &str,
        stable: bool,
        force_refresh: bool,
    ) -> Result<(String, u64), PlatformError> {
        self.retry
            .run(|| async {
                let request = if stable {
                    let url = url_with(&self.base, STABLE_TOKEN_PATH, &[])?;
                    self.http.post(url).json(&json!({
                        "grant_type": "client_credential",
                        "appid": app_id,
                        "secret": secret,
                        "force_refresh": force_refresh,
                    }))
                } else {
                    let url = url_with(
                        &self.base,
                        TOKEN_PATH,
                        &[
                            ("grant_type", "client_credential"),
                            ("appid", app_id),
                            ("secret", secret),
                        ],
                    )?;
                    self.http.get(url)
                };
                let value = self.call(request, classify_token_error).await?;
                let token = value.get("access_token").and_then(Value::as_str);
                let expires_in = value.get("expires_in").and_then(Value::as_u64);
                match (token, expires_in) {
                    (Some(token), Some(expires_in)) if !token.is_empty() => {
                        Ok((token.to_owned(), expires_in))
                    }
                    _ => Err(PlatformError::Protocol(
                        "token answer without access_token/expires_in".to_owned(),
                    )),
                }
            })
            .await
    }

    /// Sends one customer-service message (`POST /cgi-bin/message/custom/send`).
    #[tracing::instrument(skip_all, fields(msg_type = body.msg_type()))]
    pub async fn send(
        &self,
        token: &str,
        open_id: &str,
        body: &OutboundBody,
    ) -> Result<(), PlatformError> {
        let payload = send_body(open_id, body)?;
        self.post_json(SEND_PATH, token, payload).await.map(|_| ())
    }

    /// Shows (`typing = true`) or cancels the typing indicator
    /// (`POST /cgi-bin/message/custom/business/typing`). Errors 45072/45080/45081 come back as
    /// [`PlatformError::Rejected`]; callers usually ignore them.
    #[tracing::instrument(skip_all, fields(typing = typing))]
    pub async fn typing(
        &self,
        token: &str,
        open_id: &str,
        typing: bool,
    ) -> Result<(), PlatformError> {
        let payload = typing_body(open_id, typing)?;
        self.post_json(TYPING_PATH, token, payload)
            .await
            .map(|_| ())
    }

    /// Uploads an image as temporary media (`POST /cgi-bin/media/upload?type=image`, multipart
    /// with one part named `media`) and returns its `media_id` (valid 3 days).
    #[tracing::instrument(skip_all, fields(size = bytes.len()))]
    pub async fn upload_image(
        &self,
        token: &str,
        bytes: Vec<u8>,
        filename: &str,
        content_type: &str,
    ) -> Result<String, PlatformError> {
        let url = url_with(
            &self.base,
            UPLOAD_PATH,
            &[("access_token", token), ("type", "image")],
        )?;
        self.retry
            .run(|| async {
                let part = reqwest::multipart::Part::bytes(bytes.clone())
                    .file_name(filename.to_owned())
                    .mime_str(content_type)
                    .map_err(|_| PlatformError::Rejected {
                        errcode: None,
                        errmsg: "invalid image content type".to_owned(),
                    })?;
                let form = reqwest::multipart::Form::new().part("media", part);
                let value = self
                    .call(self.http.post(url.clone()).multipart(form), classify)
                    .await?;
                match value.get("media_id").and_then(Value::as_str) {
                    Some(id) if !id.is_empty() => Ok(id.to_owned()),
                    _ => Err(PlatformError::Protocol(
                        "upload answer without media_id".to_owned(),
                    )),
                }
            })
            .await
    }

    /// POSTs the JSON text `payload` to `path?access_token=…`, with busy retries.
    async fn post_json(
        &self,
        path: &str,
        token: &str,
        payload: String,
    ) -> Result<Value, PlatformError> {
        let url = url_with(&self.base, path, &[("access_token", token)])?;
        self.retry
            .run(|| {
                let request = self
                    .http
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(payload.clone());
                self.call(request, classify)
            })
            .await
    }

    /// Sends one request and checks the WeChat answer.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        classify_fn: fn(i64, &str) -> PlatformError,
    ) -> Result<Value, PlatformError> {
        let resp = request.send().await.map_err(PlatformError::from_reqwest)?;
        let status = resp.status();
        let body = body_bytes(resp).await?;
        let value = parse_json(status, &body)?;
        check(&value, classify_fn)?;
        if !status.is_success() {
            return Err(PlatformError::Protocol(format!(
                "HTTP {} without an errcode",
                status.as_u16()
            )));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_body_is_raw_utf8_in_protocol_shape() {
        let body = OutboundBody::Text {
            content: "你好 😀".to_owned(),
        };
        let json = send_body("OPENID", &body).unwrap();
        assert_eq!(
            json,
            r#"{"touser":"OPENID","msgtype":"text","text":{"content":"你好 😀"}}"#
        );
    }

    #[test]
    fn miniprogrampage_body_shape() {
        let body = OutboundBody::MiniProgramPage {
            title: "t".into(),
            pagepath: "pages/index/index?foo=bar".into(),
            thumb_media_id: "M".into(),
        };
        assert_eq!(
            send_body("O", &body).unwrap(),
            r#"{"touser":"O","msgtype":"miniprogrampage","miniprogrampage":{"title":"t","pagepath":"pages/index/index?foo=bar","thumb_media_id":"M"}}"#
        );
        let link = OutboundBody::Link {
            title: "a".into(),
            description: "b".into(),
            url: "u".into(),
            thumb_url: "t".into(),
        };
        assert_eq!(
            send_body("O", &link).unwrap(),
            r#"{"touser":"O","msgtype":"link","link":{"title":"a","description":"b","url":"u","thumb_url":"t"}}"#
        );
        let image = OutboundBody::Image {
            media_id: "M".into(),
        };
        assert_eq!(
            send_body("O", &image).unwrap(),
            r#"{"touser":"O","msgtype":"image","image":{"media_id":"M"}}"#
        );
        assert_eq!(
            typing_body("O", false).unwrap(),
            r#"{"touser":"O","command":"CancelTyping"}"#
        );
    }

    #[test]
    fn baidu_image_is_unsupported() {
        let body = OutboundBody::ImageUrl {
            pic_url: "https://x".into(),
        };
        let err = send_body("O", &body).unwrap_err();
        assert!(matches!(err, PlatformError::Unsupported { .. }));
        assert!(err.is_definite_rejection());
    }

    #[test]
    fn errcodes_classify() {
        assert_eq!(
            classify(40001, ""),
            PlatformError::TokenInvalid { errcode: 40001 }
        );
        assert_eq!(
            classify(42001, ""),
            PlatformError::TokenInvalid { errcode: 42001 }
        );
        assert_eq!(classify(-1, ""), PlatformError::Busy { errcode: -1 });
        assert_eq!(
            classify(45047, ""),
            PlatformError::QuotaExhausted { errcode: 45047 }
        );
        assert_eq!(
            classify(45015, ""),
            PlatformError::WindowExpired { errcode: 45015 }
        );
        assert_eq!(
            classify(40003, "invalid openid"),
            PlatformError::Rejected {
                errcode: Some(40003),
                errmsg: "invalid openid".into()
            }
        );
        assert!(matches!(
            classify_token_error(40001, ""),
            PlatformError::Rejected { .. }
        ));
    }

    #[test]
    fn check_accepts_absent_or_zero_errcode() {
        assert!(check(&json!({"access_token":"x"}), classify).is_ok());
        assert!(check(&json!({"errcode":0,"errmsg":"ok"}), classify).is_ok());
        assert_eq!(
            check(&json!({"errcode":45015,"errmsg":"x"}), classify),
            Err(PlatformError::WindowExpired { errcode: 45015 })
        );
        assert!(matches!(
            check(&json!({"errcode":"bad"}), classify),
            Err(PlatformError::Protocol(_))
        ));
    }
}
