//! The lists: one poll for everything the page shows beside the open conversation (`GET
//! /desk/api/inbox`: the apps served, each app's waiting list, the agent's own; an online agent
//! with auto-accept on takes what fits first), my conversations
//! (`GET /desk/api/me/conversations`), an app's waiting, closed and tagged lists (`GET
//! …/apps/{platform}/{app}/waiting|closed|tags/{tag}`). Every conversation answered carries its
//! send readiness.

use std::collections::HashMap;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shared::clock::Clock;
use shared::desk::DeskList;
use shared::ids::{ConversationKey, Platform};
use shared::records::Conversation;

use super::app_key;
use crate::error::json as respond;
use crate::{App, Caller, DeskError, Store, views};

/// The most conversations a list answers.
pub const LIST_LIMIT: u32 = 200;

/// The most apps one inbox poll reads the waiting lists of.
pub const INBOX_APPS: usize = 20;

/// Summaries of `conversations` at `now`, asking the sender once per app whether it may send.
pub(super) async fn summaries<S: Store, C: Clock>(
    app: &App<S, C>,
    conversations: &[Conversation],
) -> Vec<Value> {
    let now = app.clock.now_secs();
    let mut authorized: HashMap<(Platform, String), bool> = HashMap::new();
    let mut out = Vec::with_capacity(conversations.len());
    for c in conversations {
        let ok = match &c.key {
            Some(k) => match authorized.get(&(k.platform, k.app_id.clone())) {
                Some(ok) => *ok,
                None => {
                    let ok = app.sender.authorized(k.platform, &k.app_id).await;
                    authorized.insert((k.platform, k.app_id.clone()), ok);
                    ok
                }
            },
            None => false,
        };
        out.push(views::summary(c, now, ok));
    }
    out
}

/// The conversations of the agent's own list that belong to apps they still serve.
async fn held<S: Store, C: Clock>(
    app: &App<S, C>,
    caller: &Caller,
) -> Result<Vec<Conversation>, DeskError> {
    let mine = app
        .store
        .list(&DeskList::Agent(&caller.agent.id).value(), LIST_LIMIT)
        .await?;
    Ok(mine
        .into_iter()
        .filter(|c| {
            c.key
                .as_ref()
                .is_some_and(|k| caller.member(&app_key(k.platform, &k.app_id)).is_ok())
        })
        .collect())
}

fn listed(conversations: Vec<Value>) -> Value {
    json!({ "count": conversations.len(), "conversations": conversations })
}

pub(super) async fn mine<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let mine = held(app, &caller).await?;
    Ok(respond(
        StatusCode::OK,
        &listed(summaries(app, &mine).await),
    ))
}

pub(super) async fn inbox<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    // Auto-accept also runs on the poll, so a new conversation reaches an online agent with room
    // within one poll, not one heartbeat.
    let now_ms = app.clock.now_ms();
    let room = caller.agent.auto_accept_room(now_ms / 1000);
    if room > 0 {
        let by = shared::ports::desk::Actor {
            agent: &caller.agent.id,
            now_ms,
        };
        super::agents::auto_accept(app, &caller.agent, room, by).await?;
    }
    let all: Vec<(Platform, &str, &str)> = caller
        .agent
        .apps
        .iter()
        .filter_map(|(key, role)| {
            let (platform, app_id) = key.split_once('#')?;
            Some((platform.parse().ok()?, app_id, role.as_str()))
        })
        .collect();
    let truncated = all.len() > INBOX_APPS;
    let served = &all[..all.len().min(INBOX_APPS)];
    let lists = futures_util::future::try_join_all(served.iter().map(|(p, a, _)| {
        let list = shared::desk::waiting_list_of(*p, a);
        async move { app.store.list(&list, LIST_LIMIT).await }
    }))
    .await?;
    let apps: Vec<Value> = served
        .iter()
        .zip(&lists)
        .map(|((p, a, role), waiting)| {
            json!({ "platform": p.as_str(), "app_id": a, "role": role,
                    "waiting_count": waiting.len() })
        })
        .collect();
    let mut waiting: Vec<Conversation> = lists.into_iter().flatten().collect();
    waiting.sort_by_key(|c| c.list_at);
    let mine = held(app, &caller).await?;
    Ok(respond(
        StatusCode::OK,
        &json!({
            "now": app.clock.now_secs(),
            "apps": apps,
            // More apps than one poll reads: the rest through `…/apps/{p}/{a}/waiting`.
            "apps_truncated": truncated,
            "waiting": summaries(app, &waiting).await,
            "mine": summaries(app, &mine).await,
        }),
    ))
}

/// Which of an app's lists.
pub(super) enum AppList<'a> {
    /// Waiting for an agent.
    Waiting,
    /// Recently closed.
    Closed,
    /// Carrying a tag.
    Tagged(&'a str),
}

pub(super) async fn app_list<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    (platform, app_id): (Platform, String),
    which: AppList<'_>,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let key = app_key(platform, &app_id);
    caller.member(&key)?;
    let conversations = match which {
        AppList::Waiting => {
            let list = shared::desk::waiting_list_of(platform, &app_id);
            app.store.list(&list, LIST_LIMIT).await?
        }
        AppList::Closed => {
            let list = shared::desk::closed_list_of(platform, &app_id);
            app.store.list(&list, LIST_LIMIT).await?
        }
        AppList::Tagged(tag) => {
            let open_ids = app.store.tagged(&key, tag, LIST_LIMIT).await?;
            let found = futures_util::future::try_join_all(open_ids.into_iter().map(|open_id| {
                let k = ConversationKey {
                    platform,
                    app_id: app_id.clone(),
                    open_id,
                };
                async move { app.store.conversation(&k).await }
            }))
            .await?;
            let mut found: Vec<Conversation> = found.into_iter().flatten().collect();
            found.sort_by_key(|c| std::cmp::Reverse(c.last_in_at));
            found
        }
    };
    Ok(respond(
        StatusCode::OK,
        &listed(summaries(app, &conversations).await),
    ))
}
