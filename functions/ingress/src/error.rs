//! Ingress outcomes that are not `success`, and the only place they become HTTP statuses.
//!
//! 4xx: the request itself is wrong, nothing was queued and a retry will not help.
//! 5xx: the queue did not take the message in time; the platform retries, the processor dedupes.

use lambda_http::{Body, Response, http::StatusCode};
use shared::message::KeyTooLong;
use shared::ports::QueueError;
use shared::protocol::ProtocolError;
use shared::protocol::admission::Refused;

/// Why a callback was not answered with `success` or its echo.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// Not `/{wechat|baidu}/{app}`.
    #[error("no such route")]
    UnknownRoute,
    /// Not GET or POST.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The app is not in the registry.
    #[error("unknown app")]
    UnknownApp,
    /// The body is over the configured cap.
    #[error("body of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Signature, envelope or cipher failure.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Authenticated, but not admitted for this app: an unencrypted body it does not accept, a
    /// recipient that is not this app (a 服务商's pushes share one key, so the route alone does
    /// not prove it), or a stale timestamp.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// A field that enters a storage key is over its limit (the field is named, never its value).
    #[error(transparent)]
    KeyTooLong(#[from] KeyTooLong),
    /// The queue refused or failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The queue did not answer within the budget.
    #[error("queue did not answer within {0} ms")]
    QueueTimeout(u128),
    /// The app is listed but its registry entry is invalid (the field is named): answered 5xx so
    /// the platform retries once the registry is fixed, instead of giving up on a 4xx.
    #[error("app registry entry is invalid: {0}")]
    Misconfigured(String),
}

impl IngressError {
    /// The HTTP status for this outcome.
    pub fn status(&self) -> StatusCode {
        match self {
            IngressError::UnknownRoute | IngressError::UnknownApp => StatusCode::NOT_FOUND,
            IngressError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            IngressError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngressError::Protocol(e) if e.is_unauthenticated() => StatusCode::UNAUTHORIZED,
            IngressError::Refused(_) => StatusCode::UNAUTHORIZED,
            IngressError::Protocol(_) | IngressError::KeyTooLong(_) => StatusCode::BAD_REQUEST,
            IngressError::Queue(_)
            | IngressError::QueueTimeout(_)
            | IngressError::Misconfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable, content-free label for logs and the response body.
    pub fn reason(&self) -> &'static str {
        match self {
            IngressError::UnknownRoute => "unknown_route",
            IngressError::MethodNotAllowed => "method_not_allowed",
            IngressError::UnknownApp => "unknown_app",
            IngressError::TooLarge(_) => "body_too_large",
            IngressError::Protocol(e) => e.reason(),
            IngressError::Refused(r) => r.reason(),
            IngressError::KeyTooLong(_) => "key_too_long",
            IngressError::Queue(QueueError::Rejected(_)) => "queue_rejected",
            IngressError::Queue(QueueError::Unavailable(_)) => "queue_unavailable",
            IngressError::QueueTimeout(_) => "queue_timeout",
            IngressError::Misconfigured(_) => "app_misconfigured",
        }
    }

    /// The message field an outcome is about (`open_id`, … for `key_too_long`), for the log line.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            IngressError::KeyTooLong(e) => Some(e.field),
            _ => None,
        }
    }

    /// A 4xx for a configured app: the platform will not retry it, so unless it was forged the
    /// message is lost (counted as `IngressRejected`). Unknown routes, apps and methods are noise.
    pub fn is_lost_push(&self) -> bool {
        self.status().is_client_error()
            && !matches!(
                self,
                IngressError::UnknownRoute
                    | IngressError::UnknownApp
                    | IngressError::MethodNotAllowed
            )
    }

    /// The response: the status and the reason label as plain text (never internals).
    pub fn into_response(self) -> Response<Body> {
        plain(self.status(), self.reason())
    }
}

/// A `text/plain` response with exactly `body` (no quotes, no newline).
pub fn plain(status: StatusCode, body: &str) -> Response<Body> {
    typed(status, body.to_owned(), "text/plain; charset=utf-8")
}

/// A response with `body` of `content_type`.
pub fn typed(status: StatusCode, body: String, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static(content_type),
    );
    response
}
