//! What the sender answers: a [`Delivery`] or a [`SendError`] as an HTTP status and JSON body,
//! and the stored form replayed for a repeated `client_msg_id`.
//!
//! A 2xx means "do not send this again": 200 `sent`, or 200 `partial` when some parts reached the
//! platform and the rest could not (the body says how many and why).

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use shared::ports::OutboundStatus;

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
