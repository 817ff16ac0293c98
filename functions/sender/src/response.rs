//! What the sender answers: a [`Delivery`] or a [`SendError`] as an HTTP status and JSON body,
//! and the stored form replayed for a repeated `client_msg_id`.
//!
//! A 2xx means "do not send this again": 200 `sent`, or 200 `partial` when some parts reached the
//! platform and the rest could not (the body says how many and why).

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use shared::records::OutboundStatus;

use crate::error::{SendError, invalid};
use crate::send::{Delivery, Stop};

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: Value,
}

impl Answer {
    /// The answer for a send that reached the platform.
    pub fn from_delivery(d: &Delivery) -> Self {
        let mut body = json!({
            "id": d.id,
            "status": d.status.as_str(),
            "parts": d.parts,
            "parts_sent": d.parts_sent,
            "remaining": d.window.remaining,
            "expires_at": d.window.expires_at,
        });
        if !d.recorded {
            body["recorded"] = json!(false);
        }
        if d.status != OutboundStatus::Sent {
            body["error"] = match &d.stop {
                Some(Stop::Platform(e)) => json!({
                    "error": if e.is_definite_rejection() { "platform_rejected" } else { "platform_timeout" },
                    "errcode": e.errcode(),
                    "message": e.to_string(),
                }),
                Some(Stop::Token(m)) => json!({ "error": "token_unavailable", "message": m }),
                Some(Stop::NoTimeLeft) => json!({ "error": "no_time_left" }),
                None => Value::Null,
            };
            if d.status == OutboundStatus::Unknown {
                body["outcome"] =
                    json!("unknown: the last part may have been delivered; its units stay spent");
            }
        }
        Self {
            status: StatusCode::OK,
            body,
        }
    }

    /// The answer for an error.
    pub fn from_error(e: &SendError) -> Self {
        Self {
            status: e.status(),
            body: e.body(),
        }
    }

    /// A stored answer replayed for a repeated `client_msg_id`.
    pub fn replay(stored: &str) -> Result<Self, SendError> {
        let v: Value = serde_json::from_str(stored)
            .map_err(|_| invalid("client_msg_id", "stored result unreadable"))?;
        let status = v["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::OK);
        let mut body = v["body"].clone();
        if let Value::Object(map) = &mut body {
            map.insert("replayed".into(), json!(true));
        }
        Ok(Self { status, body })
    }

    /// The form kept in the idempotency record.
    pub fn stored(&self) -> String {
        crate::idempotency::stored(self.status.as_u16(), &self.body)
    }

    /// As a Lambda HTTP response.
    pub fn into_response(self) -> Response<Body> {
        let mut response = Response::new(Body::from(self.body.to_string()));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::api::PlatformError;
    use shared::quota::Window;

    fn delivery(status: OutboundStatus, sent: u32, stop: Option<Stop>) -> Delivery {
        Delivery {
            id: "id-1".into(),
            status,
            parts: 2,
            parts_sent: sent,
            window: Window {
                remaining: 3,
                expires_at: 100,
            },
            stop,
            recorded: true,
        }
    }

    #[test]
    fn a_partial_send_is_a_2xx_that_says_what_went_out_and_why_not_the_rest() {
        let stop = Stop::Platform(PlatformError::QuotaExhausted { errcode: 45047 });
        let a = Answer::from_delivery(&delivery(OutboundStatus::Partial, 1, Some(stop)));
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body["status"], "partial");
        assert_eq!(
            (a.body["parts"].as_u64(), a.body["parts_sent"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(a.body["error"]["errcode"], 45047);
        assert!(a.body.get("recorded").is_none());
        let sent = Answer::from_delivery(&Delivery {
            recorded: false,
            ..delivery(OutboundStatus::Sent, 2, None)
        });
        assert_eq!(
            (
                sent.body["status"].as_str(),
                sent.body["recorded"].as_bool()
            ),
            (Some("sent"), Some(false))
        );
        assert!(sent.body.get("error").is_none());
    }

    #[test]
    fn a_stored_answer_replays_with_its_status_and_a_replayed_flag() {
        let first = Answer::from_error(&SendError::KeyReused);
        let again = Answer::replay(&first.stored()).unwrap();
        assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(again.body["error"], "idempotency_key_reused");
        assert_eq!(again.body["replayed"], true);
        assert!(matches!(
            Answer::replay("not json"),
            Err(SendError::Invalid {
                field: "client_msg_id",
                ..
            })
        ));
    }
}
