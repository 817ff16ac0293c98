//! What the desk answers when it does not do what was asked: one status and one reason label per
//! case, as JSON `{"error": "<label>"}`. Never internals, tokens or message content.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

use crate::auth::jwt::TokenError;

/// Why a desk request was not done.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// No valid token (401).
    #[error("{0}")]
    Unauthenticated(TokenError),
    /// Signed in, but not an agent of this desk (403 `not_an_agent`).
    #[error("not_an_agent")]
    NotAnAgent,
    /// The app or conversation is not one the agent serves, or does not exist (404, without
    /// saying which).
    #[error("not_found")]
    NotFound,
    /// Only an admin of the app may do this (403 `admin_only`).
    #[error("admin_only")]
    AdminOnly,
    /// Allowed to others only (403 with the label), e.g. `shared_agent`: changing an agent who
    /// also serves apps the caller does not administer.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The request is malformed; the label names what (400).
    #[error("{0}")]
    BadRequest(&'static str),
    /// The conversation is not in a state that allows it (409), e.g. `taken`, `at_capacity`,
    /// `not_yours`.
    #[error("{0}")]
    Conflict(&'static str),
    /// Wrong user name or password (401 `sign_in_refused`).
    #[error("sign_in_refused")]
    SignInRefused,
    /// No such route (404 `unknown_route`) or method (405).
    #[error("unknown_route")]
    UnknownRoute,
    /// A dependency failed (503 `unavailable`); logged with its cause.
    #[error("unavailable")]
    Unavailable(String),
}

impl DeskError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            DeskError::Unauthenticated(_) | DeskError::SignInRefused => StatusCode::UNAUTHORIZED,
            DeskError::NotAnAgent | DeskError::AdminOnly | DeskError::Forbidden(_) => {
                StatusCode::FORBIDDEN
            }
            DeskError::NotFound | DeskError::UnknownRoute => StatusCode::NOT_FOUND,
            DeskError::BadRequest(_) => StatusCode::BAD_REQUEST,
            DeskError::Conflict(_) => StatusCode::CONFLICT,
            DeskError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The reason label.
    pub fn reason(&self) -> &str {
        match self {
            DeskError::Unauthenticated(e) => e.reason(),
            DeskError::NotAnAgent => "not_an_agent",
            DeskError::NotFound => "not_found",
            DeskError::AdminOnly => "admin_only",
            DeskError::BadRequest(r) | DeskError::Conflict(r) | DeskError::Forbidden(r) => r,
            DeskError::SignInRefused => "sign_in_refused",
            DeskError::UnknownRoute => "unknown_route",
            DeskError::Unavailable(_) => "unavailable",
        }
    }

    /// The response.
    pub fn into_response(self) -> Response<Body> {
        json(
            self.status(),
            &serde_json::json!({ "error": self.reason() }),
        )
    }
}

impl From<shared::ports::StoreError> for DeskError {
    fn from(e: shared::ports::StoreError) -> Self {
        DeskError::Unavailable(e.to_string())
    }
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response.headers_mut().insert(
        lambda_http::http::header::CACHE_CONTROL,
        lambda_http::http::HeaderValue::from_static("no-store"),
    );
    response
}
