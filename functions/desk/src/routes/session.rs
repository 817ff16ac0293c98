//! `POST /desk/api/session` (user name and password), `…/session/password` (a first sign-in's
//! new password) and `…/session/refresh`: the user pool's answers passed through as JSON.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use shared::clock::Clock;

use super::body;
use crate::error::json;
use crate::signin::SignedIn;
use crate::{App, DeskError, Store};

#[derive(Deserialize)]
struct Password {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct NewPassword {
    username: String,
    session: String,
    new_password: String,
}

#[derive(Deserialize)]
struct Refresh {
    refresh_token: String,
}

fn answer(signed: Result<SignedIn, String>) -> Result<Response<Body>, DeskError> {
    match signed.map_err(DeskError::Unavailable)? {
        SignedIn::Refused => Err(DeskError::SignInRefused),
        other => Ok(json(
            StatusCode::OK,
            &serde_json::to_value(other).map_err(|e| DeskError::Unavailable(e.to_string()))?,
        )),
    }
}

pub(super) async fn password<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
) -> Result<Response<Body>, DeskError> {
    let p: Password = body(req)?;
    if p.username.is_empty() || p.password.is_empty() {
        return Err(DeskError::BadRequest("username_and_password_required"));
    }
    answer(app.signin.password(&p.username, &p.password).await)
}

pub(super) async fn new_password<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
) -> Result<Response<Body>, DeskError> {
    let p: NewPassword = body(req)?;
    answer(
        app.signin
            .new_password(&p.username, &p.session, &p.new_password)
            .await,
    )
}

pub(super) async fn refresh<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
) -> Result<Response<Body>, DeskError> {
    let r: Refresh = body(req)?;
    answer(app.signin.refresh(&r.refresh_token).await)
}
