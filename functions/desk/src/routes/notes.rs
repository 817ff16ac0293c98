//! An app's quick replies (`GET /desk/api/apps/{platform}/{app}/quick-replies`, `PUT` and
//! `DELETE …/quick-replies/{id}` for its admins), its auto replies (`GET` and, for admins,
//! `PUT …/settings`) and, for its admins, its statistics (`GET …/stats?days=N`).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use shared::clock::Clock;
use shared::desk::notes::{AutoReplies, MAX_QUICK_REPLIES, QuickReply};
use shared::ids::Platform;

use super::{app_key, body};
use crate::error::json as respond;
use crate::{App, DeskError, Store};

pub(super) async fn quick_replies<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    (platform, app_id): (Platform, String),
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let key = app_key(platform, &app_id);
    caller.member(&key)?;
    let replies = app.store.quick_replies(&key).await?;
    Ok(respond(
        StatusCode::OK,
        &json!({ "quick_replies": replies }),
    ))
}

#[derive(Deserialize)]
struct QuickReplyBody {
    shortcut: String,
    text: String,
}

pub(super) async fn put_quick_reply<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    (platform, app_id): (Platform, String),
    id: &str,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let key = app_key(platform, &app_id);
    caller.admin(&key)?;
    let b: QuickReplyBody = body(req)?;
    let reply = QuickReply {
        id: id.to_owned(),
        shortcut: b.shortcut.trim().to_owned(),
        text: b.text,
    };
    reply.check().map_err(|e| DeskError::BadRequest(e.0))?;
    let existing = app.store.quick_replies(&key).await?;
    if existing
        .iter()
        .any(|q| q.shortcut == reply.shortcut && q.id != reply.id)
    {
        return Err(DeskError::Conflict("shortcut_taken"));
    }
    if !existing.iter().any(|q| q.id == reply.id) && existing.len() >= MAX_QUICK_REPLIES {
        return Err(DeskError::Conflict("too_many_quick_replies"));
    }
    app.store.put_quick_reply(&key, &reply).await?;
    Ok(respond(StatusCode::OK, &json!(reply)))
}

pub(super) async fn delete_quick_reply<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    (platform, app_id): (Platform, String),
    id: &str,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let key = app_key(platform, &app_id);
    caller.admin(&key)?;
    if !app.store.delete_quick_reply(&key, id).await? {
        return Err(DeskError::NotFound);
    }
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

pub(super) async fn settings<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    (platform, app_id): (Platform, String),
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let key = app_key(platform, &app_id);
    caller.member(&key)?;
    let replies = app.store.auto_replies(&key).await?;
    Ok(respond(StatusCode::OK, &json!(replies)))
}

pub(super) async fn put_settings<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    (platform, app_id): (Platform, String),
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let key = app_key(platform, &app_id);
    caller.admin(&key)?;
    let replies: AutoReplies = body(req)?;
    replies.check().map_err(|e| DeskError::BadRequest(e.0))?;
    app.store.put_auto_replies(&key, &replies).await?;
    Ok(respond(StatusCode::OK, &json!(replies)))
}

pub(super) async fn stats<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    (platform, app_id): (Platform, String),
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    caller.admin(&app_key(platform, &app_id))?;
    let days = match super::query(req, "days") {
        None => 7,
        Some(d) => d
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=crate::stats::MAX_DAYS).contains(d))
            .ok_or(DeskError::BadRequest("days_invalid"))?,
    };
    let days =
        crate::stats::read(&app.store, platform, &app_id, days, app.clock.now_secs()).await?;
    Ok(respond(StatusCode::OK, &json!({ "days": days })))
}
