//! Baidu smart program rules: customer-service send, first party and via a third-party platform
//! (docs/protocol.md §9.4), the OAuth access token (§10.3) and the error codes.
//!
//! Send encoding: `access_token` in the query string, `user_type, open_id, msg_type, content,
//! pic_url` as an `application/x-www-form-urlencoded` body. Answers: gateway errors
//! `{"error_code":N,"error_msg":…}` (checked first), then `{"errno":0,"msg":"success"}`, which the
//! third-party variant may wrap as `data:{errno,msg}`.

use serde_json::Value;

use super::{OutboundBody, PlatformError, RetryPolicy, body_bytes, parse_json, redact, url_with};

/// OAuth token path.
pub const TOKEN_PATH: &str = "/oauth/2.0/token";
/// First-party customer-service send path.
pub const SEND_PATH: &str = "/rest/2.0/smartapp/message/custom/send";
/// Third-party customer-service send path (with the authorized smart program's token).
pub const SEND_BY_TP_PATH: &str = "/rest/2.0/smartapp/message/custom/sendbytp";

/// Maps a non-zero Baidu code (gateway `error_code` or business `errno`) to its class.
pub fn classify(errcode: i64, errmsg: &str) -> PlatformError {
    match errcode {
        110 | 111 => PlatformError::TokenInvalid { errcode },
        4 | 17 | 18 => PlatformError::Busy { errcode },
        90001 => PlatformError::QuotaExhausted { errcode },
        _ => PlatformError::Rejected {
            errcode: Some(errcode),
            errmsg: redact(errmsg),
        },
    }
}

/// The form fields of a send, in the official SDKs' order.
pub fn send_form(
    open_id: &str,
    user_type: u8,
    body: &OutboundBody,
) -> Result<Vec<(&'static str, String)>, PlatformError> {
    let (msg_type, content, pic_url) = match body {
        OutboundBody::Text { content } => ("text", content.clone(), String::new()),
        OutboundBody::ImageUrl { pic_url } => ("image", String::new(), pic_url.clone()),
        other => {
            return Err(PlatformError::Unsupported {
                platform: "baidu",
                msg_type: other.msg_type(),
            });
        }
    };
    Ok(vec![
        ("user_type", user_type.to_string()),
        ("open_id", open_id.to_owned()),
        ("msg_type", msg_type.to_owned()),
        ("content", content),
        ("pic_url", pic_url),
    ])
}

/// Reads an integer that Baidu may send as a number or a numeric string.
fn int_field(value: &Value, key: &str) -> Option<i64> {
    match value.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Checks the gateway layer: `{"error_code":N,"error_msg":…}` with `N != 0` is an error.
pub fn check_gateway(value: &Value) -> Result<(), PlatformError> {
    match int_field(value, "error_code") {
        Some(0) | None => Ok(()),
        Some(code) => Err(classify(code, str_field(value, "error_msg"))),
    }
}

/// Checks a send answer: gateway error first, then `errno` at the top level, then a `data`
/// wrapper's `errno`. An answer with no `errno` anywhere is a protocol error.
pub fn check_send(value: &Value) -> Result<(), PlatformError> {
    check_gateway(value)?;
    let top = int_field(value, "errno");
    if let Some(code) = top.filter(|c| *c != 0) {
        return Err(classify(code, str_field(value, "msg")));
    }
    let data = value.get("data").filter(|d| d.is_object());
    let inner = data.and_then(|d| int_field(d, "errno"));
    if let (Some(data), Some(code)) = (data, inner.filter(|c| *c != 0)) {
        return Err(classify(code, str_field(data, "msg")));
    }
    if top.is_none() && inner.is_none() {
        return Err(PlatformError::Protocol(
            "send answer without errno".to_owned(),
        ));
    }
    Ok(())
}

/// Baidu client: one per process, cheap to clone (the reqwest client is shared).
#[derive(Debug, Clone)]
pub struct BaiduClient {
    http: reqwest::Client,
    base: String,
    retry: RetryPolicy,
}

impl BaiduClient {
    /// A client for the API at `base` (e.g. [`BAIDU_BASE_URL`](super::BAIDU_BASE_URL)), with the
    /// default [`RetryPolicy`].
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

    /// Fetches a first-party access token (`GET /oauth/2.0/token`, client credentials,
    /// `scope=smartapp_snsapi_base`): `(token, expires_in seconds)`. OAuth errors
    /// (`{"error":…,"error_description":…}`) come back as [`PlatformError::Rejected`] with no
    /// errcode.
    #[tracing::instrument(skip_all)]
    pub async fn fetch_token(
        &self,
        app_key: &str,
        app_secret: &str,
    ) -> Result<(String, u64), PlatformError> {
        let url = url_with(
            &self.base,
            TOKEN_PATH,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", app_key),
                ("client_secret", app_secret),
                ("scope", "smartapp_snsapi_base"),
            ],
        )?;
        self.retry
            .run(|| async {
                let value = self.call(self.http.get(url.clone())).await?;
                check_gateway(&value)?;
                if let Some(error) = value.get("error").and_then(Value::as_str) {
                    let description = str_field(&value, "error_description");
                    return Err(PlatformError::Rejected {
                        errcode: None,
                        errmsg: redact(&format!("{error}: {description}")),
                    });
                }
                let token = value.get("access_token").and_then(Value::as_str);
                let expires_in =
                    int_field(&value, "expires_in").and_then(|v| u64::try_from(v).ok());
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

    /// Sends one customer-service message. `user_type`: `1` guest, `2` logged-in Baidu account.
    /// `via_tp` uses `custom/sendbytp` with an authorized smart program's token.
    #[tracing::instrument(skip_all, fields(msg_type = body.msg_type(), via_tp = via_tp))]
    pub async fn send(
        &self,
        token: &str,
        open_id: &str,
        user_type: u8,
        body: &OutboundBody,
        via_tp: bool,
    ) -> Result<(), PlatformError> {
        let form = send_form(open_id, user_type, body)?;
        let path = if via_tp { SEND_BY_TP_PATH } else { SEND_PATH };
        let url = url_with(&self.base, path, &[("access_token", token)])?;
        self.retry
            .run(|| async {
                let value = self.call(self.http.post(url.clone()).form(&form)).await?;
                check_send(&value)
            })
            .await
    }

    /// Sends one request and parses the JSON answer (a non-2xx status without a recognisable
    /// error body is a protocol error).
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, PlatformError> {
        let resp = request.send().await.map_err(PlatformError::from_reqwest)?;
        let status = resp.status();
        let body = body_bytes(resp).await?;
        let value = parse_json(status, &body)?;
        if !status.is_success() {
            check_gateway(&value)?;
            if value.get("error").is_none() {
                return Err(PlatformError::Protocol(format!(
                    "HTTP {} without an error code",
                    status.as_u16()
                )));
            }
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn gateway_error_checked_first() {
        let v = json!({"error_code":110,"error_msg":"Access token invalid","errno":0});
        assert_eq!(
            check_send(&v),
            Err(PlatformError::TokenInvalid { errcode: 110 })
        );
        let v = json!({"error_code":"18","error_msg":"qps"});
        assert_eq!(check_send(&v), Err(PlatformError::Busy { errcode: 18 }));
    }

    #[test]
    fn errno_top_level_and_wrapped() {
        assert_eq!(check_send(&json!({"errno":0,"msg":"success"})), Ok(()));
        assert_eq!(
            check_send(&json!({"data":{"errno":0,"msg":"success"}})),
            Ok(())
        );
        assert_eq!(
            check_send(&json!({"errno":90001,"msg":"limit"})),
            Err(PlatformError::QuotaExhausted { errcode: 90001 })
        );
        assert_eq!(
            check_send(&json!({"errno":0,"data":{"errno":30022,"msg":"bad openid"}})),
            Err(PlatformError::Rejected {
                errcode: Some(30022),
                errmsg: "bad openid".into()
            })
        );
        assert!(matches!(
            check_send(&json!({"msg":"?"})),
            Err(PlatformError::Protocol(_))
        ));
    }

    #[test]
    fn form_fields() {
        let text = OutboundBody::Text {
            content: "你好".into(),
        };
        let form = send_form("OID", 2, &text).unwrap();
        assert_eq!(
            form,
            vec![
                ("user_type", "2".to_owned()),
                ("open_id", "OID".to_owned()),
                ("msg_type", "text".to_owned()),
                ("content", "你好".to_owned()),
                ("pic_url", String::new()),
            ]
        );
        let link = OutboundBody::Image {
            media_id: "m".into(),
        };
        assert!(matches!(
            send_form("OID", 2, &link),
            Err(PlatformError::Unsupported { .. })
        ));
    }
}
