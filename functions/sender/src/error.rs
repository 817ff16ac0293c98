//! Sender outcomes that are not a plain success, and the only place they become HTTP statuses.
//!
//! 400 the request is wrong (says which field); 404 unknown app or conversation; 409 the same
//! `client_msg_id` is still running; 422 the `client_msg_id` was used for another request; 429
//! refused by the send window without calling the platform; 502 the platform rejected the send
//! (with its errcode); 503 nothing was sent and a retry may work (kefu's store, no access token,
//! no time left); 504 the outcome is unknown — the message may have gone out, so it is never
//! repeated. A send of which some part reached the platform is not an error (see `response`).

use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use shared::api::PlatformError;
use shared::ports::StoreError;
use shared::quota::{Refusal, Window};

/// Why a send did not simply succeed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A field is missing or invalid.
    #[error("invalid request: {field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No such route.
    #[error("no such route")]
    UnknownRoute,
    /// The app is not in the registry.
    #[error("unknown app")]
    UnknownApp,
    /// The user never wrote: no conversation, nothing may be sent.
    #[error("unknown conversation")]
    UnknownConversation,
    /// The send window refused it (no platform call was made).
    #[error("{0}")]
    Refused(Refusal, Window),
    /// The platform rejected it.
    #[error("platform rejected the send: {0}")]
    Platform(PlatformError, Window),
    /// The platform did not answer in time; the message may have gone out.
    #[error("platform timed out: {0}")]
    Timeout(PlatformError, Window),
    /// A request with the same `client_msg_id` is still running.
    #[error("a request with this client_msg_id is in progress")]
    InProgress,
    /// The `client_msg_id` was first used for another request (another user or content).
    #[error("client_msg_id was used for another request")]
    KeyReused,
    /// An earlier attempt with this `client_msg_id` started sending and died: it may have been
    /// delivered, so it is not sent again.
    #[error("an earlier attempt with this client_msg_id was interrupted while sending")]
    Interrupted,
    /// Too little time was left in the invocation to start a platform call; nothing was sent.
    #[error("no time left to call the platform")]
    NoTimeLeft,
    /// No usable access token (refresh failed, or a 服务商 app has none in the store).
    #[error("no access token: {0}")]
    Token(String),
    /// kefu's own store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The app is listed but its registry entry is invalid (the field is named).
    #[error("app registry entry is invalid: {0}")]
    Misconfigured(String),
}

/// A [`SendError::Invalid`] for `field`.
pub fn invalid(field: &'static str, message: impl Into<String>) -> SendError {
    SendError::Invalid {
        field,
        message: message.into(),
    }
}

impl SendError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            SendError::Invalid { .. } => StatusCode::BAD_REQUEST,
            SendError::UnknownRoute | SendError::UnknownApp | SendError::UnknownConversation => {
                StatusCode::NOT_FOUND
            }
            SendError::Refused(..) => StatusCode::TOO_MANY_REQUESTS,
            SendError::Platform(..) => StatusCode::BAD_GATEWAY,
            SendError::InProgress => StatusCode::CONFLICT,
            SendError::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            SendError::Timeout(..) | SendError::Interrupted => StatusCode::GATEWAY_TIMEOUT,
            SendError::Token(_)
            | SendError::Store(_)
            | SendError::Misconfigured(_)
            | SendError::NoTimeLeft => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Whether the result is final for its `client_msg_id` (a repeat must return it, not retry).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            SendError::Refused(..)
                | SendError::Platform(..)
                | SendError::Timeout(..)
                | SendError::Interrupted
                | SendError::UnknownConversation
        )
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        match self {
            SendError::Invalid { field, message } => {
                json!({ "error": "invalid_request", "field": field, "message": message })
            }
            SendError::UnknownRoute => json!({ "error": "unknown_route" }),
            SendError::UnknownApp => json!({ "error": "unknown_app" }),
            SendError::UnknownConversation => {
                json!({ "error": "unknown_conversation", "message": "the user has not written to this app; nothing may be sent" })
            }
            SendError::Refused(refusal, w) => {
                json!({ "error": refusal.to_string(), "remaining": w.remaining, "expires_at": w.expires_at })
            }
            SendError::Platform(e, w) => json!({
                "error": "platform_rejected",
                "errcode": e.errcode(),
                "message": e.to_string(),
                "remaining": w.remaining,
                "expires_at": w.expires_at,
            }),
            SendError::Timeout(e, w) => json!({
                "error": "platform_timeout",
                "outcome": "unknown: the message may have been delivered; its units stay spent",
                "message": e.to_string(),
                "remaining": w.remaining,
                "expires_at": w.expires_at,
            }),
            SendError::InProgress => json!({ "error": "in_progress" }),
            SendError::KeyReused => json!({
                "error": "idempotency_key_reused",
                "field": "client_msg_id",
                "message": "this client_msg_id was first used for another user or content; nothing was sent",
            }),
            SendError::Interrupted => json!({
                "error": "outcome_unknown",
                "outcome": "unknown: an earlier attempt was interrupted while sending and may have been delivered; not sent again",
            }),
            SendError::NoTimeLeft => json!({
                "error": "no_time_left",
                "message": "too little time was left to call the platform; nothing was sent, retry",
            }),
            SendError::Token(m) => json!({ "error": "token_unavailable", "message": m }),
            SendError::Store(_) => json!({ "error": "store_unavailable" }),
            SendError::Misconfigured(field) => json!({
                "error": "app_misconfigured",
                "field": field,
                "message": "the app's registry entry is invalid; fix it and push the registry",
            }),
        }
    }
}
