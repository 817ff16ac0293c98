//! The route table: `/desk/api/…` paths to their handlers, the request body reader, and each
//! route's name for the log line (never a path with ids in it).

mod agents;
mod conversation;
mod conversations;
mod notes;
mod session;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::de::DeserializeOwned;
use shared::clock::Clock;
use shared::ids::{ConversationKey, Platform};

use crate::{App, DeskError, Store};
use conversations::AppList;

/// The API's path prefix.
pub const PREFIX: &str = "/desk/api/";

fn segments(path: &str) -> Option<Vec<&str>> {
    let rest = path.split_once(PREFIX).map(|(_, rest)| rest)?;
    Some(rest.trim_end_matches('/').split('/').collect())
}

/// The words of the API's paths; every other segment is an id.
const WORDS: &[&str] = &[
    "session",
    "password",
    "refresh",
    "me",
    "status",
    "conversations",
    "apps",
    "waiting",
    "closed",
    "agents",
    "accept",
    "release",
    "close",
    "inbox",
    "messages",
    "tags",
    "quick-replies",
    "settings",
    "stats",
];

/// The route's name for logs: the path with every segment that is not a word of the API shown as
/// `{id}` (ids — app ids, open ids, agent ids — are never logged from paths).
pub fn route_name(method: &Method, path: &str) -> String {
    let Some(segs) = segments(path) else {
        return format!("{method} unknown");
    };
    let named: Vec<&str> = segs
        .iter()
        .map(|s| if WORDS.contains(s) { *s } else { "{id}" })
        .collect();
    format!("{method} {PREFIX}{}", named.join("/"))
}

/// `platform#app_id` from the two path segments, or 404.
fn app_of(platform: &str, app_id: &str) -> Result<(Platform, String), DeskError> {
    let platform: Platform = platform.parse().map_err(|_| DeskError::NotFound)?;
    if app_id.is_empty() || app_id.contains('#') {
        return Err(DeskError::NotFound);
    }
    Ok((platform, app_id.to_owned()))
}

/// The membership key of an app.
fn app_key(platform: Platform, app_id: &str) -> String {
    format!("{platform}#{app_id}")
}

fn conversation_of(
    platform: &str,
    app_id: &str,
    open_id: &str,
) -> Result<ConversationKey, DeskError> {
    let (platform, app_id) = app_of(platform, app_id)?;
    if open_id.is_empty() || open_id.contains('#') {
        return Err(DeskError::NotFound);
    }
    Ok(ConversationKey {
        platform,
        app_id,
        open_id: open_id.to_owned(),
    })
}

/// The query parameter `name`, as given (the page sends only URL-safe values: cursors, numbers).
fn query(req: &Request, name: &str) -> Option<String> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The JSON body as `T`, or 400 `body_invalid`.
fn body<T: DeserializeOwned>(req: &Request) -> Result<T, DeskError> {
    serde_json::from_slice(req.body().as_ref()).map_err(|_| DeskError::BadRequest("body_invalid"))
}

/// Routes one request.
pub async fn dispatch<S: Store, C: Clock>(
    app: &App<S, C>,
    method: &Method,
    path: &str,
    req: Request,
) -> Result<Response<Body>, DeskError> {
    let segs = segments(path).ok_or(DeskError::UnknownRoute)?;
    match (method.clone(), segs.as_slice()) {
        (Method::POST, ["session"]) => session::password(app, &req).await,
        (Method::POST, ["session", "password"]) => session::new_password(app, &req).await,
        (Method::POST, ["session", "refresh"]) => session::refresh(app, &req).await,
        (Method::GET, ["me"]) => agents::me(app, &req).await,
        (Method::POST, ["me", "status"]) => agents::status(app, &req).await,
        (Method::GET, ["me", "conversations"]) => conversations::mine(app, &req).await,
        (Method::GET, ["inbox"]) => conversations::inbox(app, &req).await,
        (Method::GET, ["apps", p, a, "waiting"]) => {
            conversations::app_list(app, &req, app_of(p, a)?, AppList::Waiting).await
        }
        (Method::GET, ["apps", p, a, "closed"]) => {
            conversations::app_list(app, &req, app_of(p, a)?, AppList::Closed).await
        }
        (Method::GET, ["apps", p, a, "tags", tag]) => {
            conversations::app_list(app, &req, app_of(p, a)?, AppList::Tagged(tag)).await
        }
        (Method::GET, ["apps", p, a, "agents"]) => agents::members(app, &req, app_of(p, a)?).await,
        (Method::PUT, ["apps", p, a, "agents", id]) => {
            agents::put_member(app, &req, app_of(p, a)?, id).await
        }
        (Method::GET, ["apps", p, a, "quick-replies"]) => {
            notes::quick_replies(app, &req, app_of(p, a)?).await
        }
        (Method::PUT, ["apps", p, a, "quick-replies", id]) => {
            notes::put_quick_reply(app, &req, app_of(p, a)?, id).await
        }
        (Method::DELETE, ["apps", p, a, "quick-replies", id]) => {
            notes::delete_quick_reply(app, &req, app_of(p, a)?, id).await
        }
        (Method::GET, ["apps", p, a, "settings"]) => {
            notes::settings(app, &req, app_of(p, a)?).await
        }
        (Method::GET, ["apps", p, a, "stats"]) => notes::stats(app, &req, app_of(p, a)?).await,
        (Method::PUT, ["apps", p, a, "settings"]) => {
            notes::put_settings(app, &req, app_of(p, a)?).await
        }
        (Method::GET, ["conversations", p, a, o]) => {
            conversation::view(app, &req, conversation_of(p, a, o)?).await
        }
        (Method::PUT, ["conversations", p, a, o, "tags"]) => {
            conversation::tags(app, &req, conversation_of(p, a, o)?).await
        }
        (Method::POST, ["conversations", p, a, o, "messages"]) => {
            conversation::reply(app, &req, conversation_of(p, a, o)?).await
        }
        (
            Method::POST,
            [
                "conversations",
                p,
                a,
                o,
                action @ ("accept" | "release" | "close"),
            ],
        ) => conversation::act(app, &req, conversation_of(p, a, o)?, action).await,
        _ => Err(DeskError::UnknownRoute),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names_carry_no_ids() {
        assert_eq!(
            route_name(
                &Method::POST,
                "/desk/api/conversations/wechat/wx1/oUser/accept"
            ),
            "POST /desk/api/conversations/{id}/{id}/{id}/accept"
        );
        assert_eq!(
            route_name(&Method::PUT, "/desk/api/apps/wechat/wx1/agents/sub-1"),
            "PUT /desk/api/apps/{id}/{id}/agents/{id}"
        );
        assert_eq!(route_name(&Method::GET, "/desk/api/me"), "GET /desk/api/me");
        assert_eq!(route_name(&Method::GET, "/other"), "GET unknown");
        assert_eq!(
            route_name(&Method::GET, "/desk/api/oSomeOpenId/agent-7"),
            "GET /desk/api/{id}/{id}",
            "an unknown path may hold ids"
        );
    }

    #[test]
    fn ids_with_separators_are_not_found() {
        assert!(conversation_of("wechat", "wx#1", "o").is_err());
        assert!(conversation_of("qq", "wx1", "o").is_err());
        assert!(conversation_of("wechat", "wx1", "").is_err());
        assert_eq!(app_key(Platform::Baidu, "1"), "baidu#1");
    }
}
