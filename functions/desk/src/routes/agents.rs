//! `GET /desk/api/me`, `POST /desk/api/me/status` (the heartbeat: status, and auto-accept for an
//! online agent with room), and an app's agents for its admins (`GET …/agents`, `PUT
//! …/agents/{id}`).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use shared::clock::Clock;
use shared::desk::agent::{DEFAULT_CAPACITY, valid_capacity};
use shared::desk::{Agent, AgentStatus, DeskEvent, DeskList, Role};
use shared::ids::Platform;
use shared::ports::desk::{AcceptOutcome, Actor};

use super::{app_key, body};
use crate::error::json as respond;
use crate::{App, DeskError, Store, views};

pub(super) async fn me<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    Ok(respond(
        StatusCode::OK,
        &views::agent(&caller.agent, app.clock.now_secs()),
    ))
}

#[derive(Deserialize)]
struct Status {
    status: String,
    /// The agent's own auto-accept choice, when changed.
    #[serde(default)]
    auto_accept: Option<bool>,
}

pub(super) async fn status<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let s: Status = body(req)?;
    let status = AgentStatus::parse(&s.status).ok_or(DeskError::BadRequest("status_invalid"))?;
    let now_ms = app.clock.now_ms();
    let now = now_ms / 1000;
    let id = caller.agent.id.as_str();
    app.store.heartbeat(id, status, now).await?;
    let mut caller = caller.clone();
    if let Some(on) = s.auto_accept.filter(|on| *on != caller.agent.auto_accept) {
        app.store.set_auto_accept(id, on).await?;
        caller.agent.auto_accept = on;
    }
    let by = Actor { agent: id, now_ms };
    let mut accepted = Vec::new();
    match status {
        // Signing out hands the agent's conversations back, as WeChat's desk does.
        AgentStatus::Offline => {
            for c in app.store.list(&DeskList::Agent(id).value(), 1000).await? {
                if let Some(key) = &c.key {
                    app.store.release(key, id, DeskEvent::Released, by).await?;
                }
            }
        }
        AgentStatus::Online => {
            let agent = Agent {
                status,
                heartbeat_at: now,
                ..caller.agent.clone()
            };
            let room = agent.auto_accept_room(now);
            if room > 0 {
                accepted = auto_accept(app, &agent, room, by).await?;
            }
        }
        AgentStatus::Away => {}
    }
    let agent = app.store.agent(id).await?.ok_or(DeskError::NotAnAgent)?;
    let mut v = views::agent(&agent, now);
    v["accepted"] = json!(accepted);
    Ok(respond(StatusCode::OK, &v))
}

/// Takes up to `room` of the longest-waiting conversations of the agent's apps; returns the keys
/// (`platform#app_id#open_id`) it won. Another agent winning one is simply skipped.
pub(super) async fn auto_accept<S: Store, C: Clock>(
    app: &App<S, C>,
    agent: &Agent,
    room: u32,
    by: Actor<'_>,
) -> Result<Vec<String>, DeskError> {
    let mut waiting = Vec::new();
    for app_id in agent.apps.keys() {
        let Some((platform, id)) = app_id.split_once('#') else {
            continue;
        };
        let Ok(platform) = platform.parse::<Platform>() else {
            continue;
        };
        let list = shared::desk::waiting_list_of(platform, id);
        waiting.extend(app.store.list(&list, room).await?);
    }
    waiting.sort_by_key(|c| c.list_at);
    let mut won = Vec::new();
    for c in waiting {
        if won.len() as u32 >= room {
            break;
        }
        let Some(key) = &c.key else { continue };
        match app.store.accept(key, by).await? {
            AcceptOutcome::Accepted => {
                crate::stats::accepted(app, key, by.agent).await;
                won.push(key.to_string());
            }
            AcceptOutcome::AtCapacity => break,
            AcceptOutcome::Taken { .. } | AcceptOutcome::NotFound => {}
        }
    }
    Ok(won)
}

pub(super) async fn members<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    (platform, app_id): (Platform, String),
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let key = app_key(platform, &app_id);
    caller.admin(&key)?;
    let now = app.clock.now_secs();
    let agents: Vec<_> = app
        .store
        .members(&key)
        .await?
        .iter()
        .map(|a| views::agent_seen_by(a, now, |app| caller.member(app).is_ok()))
        .collect();
    Ok(respond(StatusCode::OK, &json!({ "agents": agents })))
}

#[derive(Deserialize)]
struct Member {
    name: String,
    role: String,
    #[serde(default)]
    capacity: Option<u32>,
    #[serde(default)]
    auto_accept: Option<bool>,
}

pub(super) async fn put_member<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    (platform, app_id): (Platform, String),
    id: &str,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let key = app_key(platform, &app_id);
    caller.admin(&key)?;
    let m: Member = body(req)?;
    let role = Role::parse(&m.role).ok_or(DeskError::BadRequest("role_invalid"))?;
    let name = m.name.trim();
    // `system` and `auto-*` name the desk's own doings (the idle sweep, auto replies).
    if name.is_empty()
        || name.chars().count() > 40
        || id.is_empty()
        || id.contains('#')
        || shared::desk::auto_reply::reserved_agent_id(id)
    {
        return Err(DeskError::BadRequest("name_or_id_invalid"));
    }
    let existing = app.store.agent(id).await?;
    // What belongs to the agent as a whole (name, capacity, auto-accept) is changed only by an
    // admin of every app the agent serves; another app's admin may only add the agent here.
    if let Some(a) = &existing {
        let shared = a.apps.keys().any(|other| caller.admin(other).is_err());
        let changes = a.name != name
            || m.capacity.is_some_and(|c| c != a.capacity)
            || m.auto_accept.is_some_and(|v| v != a.auto_accept);
        if shared && changes {
            return Err(DeskError::Forbidden("shared_agent"));
        }
    }
    if existing.is_none() || !existing.as_ref().is_some_and(|a| a.apps.contains_key(&key)) {
        let members = app.store.members(&key).await?;
        if members.len() >= shared::desk::MAX_AGENTS_PER_APP {
            return Err(DeskError::Conflict("app_has_max_agents"));
        }
    }
    let mut agent = existing.unwrap_or_else(|| Agent {
        id: id.to_owned(),
        name: String::new(),
        apps: Default::default(),
        capacity: DEFAULT_CAPACITY,
        active: 0,
        auto_accept: false,
        status: AgentStatus::Offline,
        heartbeat_at: 0,
    });
    agent.name = name.to_owned();
    agent.apps.insert(key, role);
    if let Some(c) = m.capacity {
        agent.capacity = valid_capacity(c).ok_or(DeskError::BadRequest("capacity_invalid"))?;
    }
    if let Some(a) = m.auto_accept {
        agent.auto_accept = a;
    }
    app.store.put_agent(&agent).await.map_err(|e| match e {
        shared::ports::StoreError::Contention(_) => DeskError::Conflict("changed"),
        other => other.into(),
    })?;
    Ok(respond(
        StatusCode::OK,
        &views::agent_seen_by(&agent, app.clock.now_secs(), |app| {
            caller.member(app).is_ok()
        }),
    ))
}
