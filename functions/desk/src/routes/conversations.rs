//! The lists (`GET /desk/api/me/conversations`, `GET …/apps/{platform}/{app}/waiting|closed`), a
//! conversation opened with its messages (`GET /desk/api/conversations/{platform}/{app}/{open_id}`)
//! and the moves (`POST …/accept|release|close`). Each answers with the send readiness of the
//! conversations it returns.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use shared::clock::Clock;
use shared::desk::{DeskEvent, DeskList, DeskState, Role};
use shared::ids::{ConversationKey, Platform};
use shared::ports::MessageStore;
use shared::ports::desk::{AcceptOutcome, Actor, DeskStore};

use super::app_key;
use crate::error::json as respond;
use crate::{App, Caller, DeskError, views};

/// The most messages a conversation view carries (the newest).
pub const VIEW_MESSAGES: usize = 200;

/// The most conversations a list answers.
pub const LIST_LIMIT: u32 = 200;

async fn authorized<S, C>(app: &App<S, C>, platform: Platform, app_id: &str) -> bool {
    app.registry.current().await.app(platform, app_id).is_some()
}

async fn answer_list<S: DeskStore + MessageStore, C: Clock>(
    app: &App<S, C>,
    caller: Option<&Caller>,
    list: &str,
) -> Result<Response<Body>, DeskError> {
    let now = app.clock.now_secs();
    let registry = app.registry.current().await;
    let conversations: Vec<_> = app
        .store
        .list(list, LIST_LIMIT)
        .await?
        .iter()
        // An agent's own list spans apps: keep those the agent still serves.
        .filter(|c| {
            caller.is_none_or(|caller| {
                c.key
                    .as_ref()
                    .is_some_and(|k| caller.member(&app_key(k.platform, &k.app_id)).is_ok())
            })
        })
        .map(|c| {
            let ok = c
                .key
                .as_ref()
                .is_some_and(|k| registry.app(k.platform, &k.app_id).is_some());
            views::summary(c, now, ok)
        })
        .collect();
    Ok(respond(
        StatusCode::OK,
        &json!({ "count": conversations.len(), "conversations": conversations }),
    ))
}

pub(super) async fn mine<S: DeskStore + MessageStore, C: Clock>(
    app: &App<S, C>,
    req: &Request,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    answer_list(
        app,
        Some(&caller),
        &DeskList::Agent(&caller.agent.id).value(),
    )
    .await
}

pub(super) async fn app_list<S: DeskStore + MessageStore, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    (platform, app_id): (Platform, String),
    which: &str,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    caller.member(&app_key(platform, &app_id))?;
    let list = match which {
        "waiting" => shared::desk::waiting_list_of(platform, &app_id),
        _ => shared::desk::closed_list_of(platform, &app_id),
    };
    answer_list(app, None, &list).await
}

/// The conversation, if it exists and the caller serves its app.
async fn conversation_for<S: DeskStore + MessageStore, C: Clock>(
    app: &App<S, C>,
    caller: &Caller,
    key: &ConversationKey,
) -> Result<(Role, shared::records::Conversation), DeskError> {
    let role = caller.member(&app_key(key.platform, &key.app_id))?;
    let c = app
        .store
        .conversation(key)
        .await?
        .ok_or(DeskError::NotFound)?;
    Ok((role, c))
}

pub(super) async fn view<S: DeskStore + MessageStore, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    key: ConversationKey,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let (_, c) = conversation_for(app, &caller, &key).await?;
    let messages = app.store.messages(&key, None).await?;
    let more = messages.len() > VIEW_MESSAGES;
    let latest = &messages[messages.len().saturating_sub(VIEW_MESSAGES)..];
    let ok = authorized(app, key.platform, &key.app_id).await;
    Ok(respond(
        StatusCode::OK,
        &views::opened(&c, latest, more, app.clock.now_secs(), ok),
    ))
}

pub(super) async fn act<S: DeskStore + MessageStore, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    key: ConversationKey,
    action: &str,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let (role, c) = conversation_for(app, &caller, &key).await?;
    let me = caller.agent.id.as_str();
    let by = Actor {
        agent: me,
        now_ms: app.clock.now_ms(),
    };
    let state = shared::desk::DeskState::from_status(&c.status);
    // An admin may release or close a conversation another agent holds.
    let holder = c.assignee.as_deref();
    let may_move_held = |holder: &str| holder == me || role == Role::Admin;
    match action {
        "accept" => match app.store.accept(&key, by).await? {
            AcceptOutcome::Accepted => {}
            AcceptOutcome::Taken { .. } => return Err(DeskError::Conflict("taken")),
            AcceptOutcome::AtCapacity => return Err(DeskError::Conflict("at_capacity")),
            AcceptOutcome::NotFound => return Err(DeskError::NotFound),
        },
        "release" => {
            let holder = holder
                .filter(|h| may_move_held(h))
                .ok_or(DeskError::Conflict("not_yours"))?;
            if !app
                .store
                .release(&key, holder, DeskEvent::Released, by)
                .await?
            {
                return Err(DeskError::Conflict("not_yours"));
            }
        }
        _ => {
            let assignee = match (state, holder) {
                (Some(DeskState::Active), Some(h)) if may_move_held(h) => Some(h),
                (Some(DeskState::Active), _) => return Err(DeskError::Conflict("not_yours")),
                (Some(DeskState::Waiting), _) => None,
                _ => return Err(DeskError::Conflict("already_closed")),
            };
            if !app.store.close(&key, assignee, by).await? {
                return Err(DeskError::Conflict("changed"));
            }
        }
    }
    let c = app
        .store
        .conversation(&key)
        .await?
        .ok_or(DeskError::NotFound)?;
    let ok = authorized(app, key.platform, &key.app_id).await;
    Ok(respond(
        StatusCode::OK,
        &views::summary(&c, app.clock.now_secs(), ok),
    ))
}
