//! One conversation: opened with a page of its messages (`GET
//! /desk/api/conversations/{platform}/{app}/{open_id}`: the newest; `?before=<cursor>` older ones;
//! `?after=<cursor>` a poll — the messages from ten minutes before the cursor on, for the page to
//! merge by position), marking it read for the agent holding it, the moves (`POST …/accept|release|close`), its tags (`PUT …/tags`)
//! and a reply (`POST …/messages`) through the sender's code, by the agent holding it only.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::clock::Clock;
use shared::desk::{DeskEvent, DeskState, Role};
use shared::ids::ConversationKey;
use shared::ports::desk::{AcceptOutcome, Actor};
use shared::ports::desk_notes::Page;
use shared::records::Conversation;

use super::{app_key, body, query};
use crate::error::json as respond;
use crate::{App, Caller, DeskError, Store};

/// The most messages one page carries.
pub const PAGE_MESSAGES: usize = 100;

/// The page's cursor for a message position (opaque to the page: URL-safe base64).
pub fn cursor_of(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

fn position_of(cursor: &str) -> Result<String, DeskError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(DeskError::BadRequest("cursor_invalid"))
}

/// The conversation, if it exists and the caller serves its app.
async fn conversation_for<S: Store, C: Clock>(
    app: &App<S, C>,
    caller: &Caller,
    key: &ConversationKey,
) -> Result<(Role, Conversation), DeskError> {
    let role = caller.member(&app_key(key.platform, &key.app_id))?;
    let c = app
        .store
        .conversation(key)
        .await?
        .ok_or(DeskError::NotFound)?;
    Ok((role, c))
}

/// Whether the caller holds `c` now.
fn holds(caller: &Caller, c: &Conversation) -> bool {
    DeskState::from_status(&c.status) == Some(DeskState::Active)
        && c.assignee.as_deref() == Some(caller.agent.id.as_str())
}

async fn summary<S: Store, C: Clock>(app: &App<S, C>, c: &Conversation) -> Value {
    super::conversations::summaries(app, std::slice::from_ref(c))
        .await
        .pop()
        .unwrap_or(Value::Null)
}

pub(super) async fn view<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    key: ConversationKey,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let (_, mut c) = conversation_for(app, &caller, &key).await?;
    let after = query(req, "after").map(|c| position_of(&c)).transpose()?;
    let before = query(req, "before").map(|c| position_of(&c)).transpose()?;
    let page = match (&after, &before) {
        (Some(a), _) => Page::Recent(a, PAGE_MESSAGES),
        (None, Some(b)) => Page::Before(b, PAGE_MESSAGES),
        (None, None) => Page::Latest(PAGE_MESSAGES),
    };
    let (messages, more) = app.store.page(&key, page).await?;
    if holds(&caller, &c) && c.unread > 0 {
        app.store.mark_read(&key).await?;
        c.unread = 0;
    }
    // The newest position seen: a poll's overlap may hold nothing newer than its cursor.
    let newest = messages
        .last()
        .map(|m| m.position.as_str())
        .into_iter()
        .chain(after.as_deref())
        .max();
    let cursor = newest.map(cursor_of);
    let mut v = summary(app, &c).await;
    v["messages"] = Value::Array(with_image_urls(app, &messages).await);
    v["cursor"] = json!(cursor);
    v["before"] = json!(messages.first().map(|m| cursor_of(&m.position)));
    v["more"] = Value::Bool(more);
    // A poll that left out messages newer than its cursor (a burst of more than a page): the
    // page reloads the newest instead of merging.
    v["gap"] = Value::Bool(
        more && after
            .as_deref()
            .zip(messages.first())
            .is_some_and(|(a, first)| first.position.as_str() > a),
    );
    Ok(respond(StatusCode::OK, &v))
}

/// How long a kept image's signed URL reads it.
pub const IMAGE_URL_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The messages as JSON, each kept image with a signed `media_url` (an image whose URL cannot be
/// signed now is shown without one).
async fn with_image_urls<S: Store, C: Clock>(
    app: &App<S, C>,
    messages: &[shared::records::StoredMessage],
) -> Vec<Value> {
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
        if let (Some(object), Some(images)) = (&m.stored_media, &app.images) {
            match images.image_url(object, IMAGE_URL_TTL).await {
                Ok(url) => v["media_url"] = Value::String(url),
                Err(e) => tracing::warn!(error.message = %e, "kept image not signed"),
            }
        }
        if let Value::Object(map) = &mut v {
            map.remove("stored_media");
        }
        out.push(v);
    }
    out
}

/// Accept, release or close.
pub(super) async fn act<S: Store, C: Clock>(
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
    let state = DeskState::from_status(&c.status);
    // An admin may release or close a conversation another agent holds.
    let holder = c.assignee.as_deref();
    let may_move_held = |holder: &str| holder == me || role == Role::Admin;
    match action {
        "accept" => match app.store.accept(&key, by).await? {
            AcceptOutcome::Accepted => crate::stats::accepted(app, &key, me).await,
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
    Ok(respond(StatusCode::OK, &summary(app, &c).await))
}

#[derive(Deserialize)]
struct Tags {
    tags: Vec<String>,
}

pub(super) async fn tags<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    key: ConversationKey,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let (_, c) = conversation_for(app, &caller, &key).await?;
    let t: Tags = body(req)?;
    let new = shared::desk::notes::tags(&t.tags).map_err(|e| DeskError::BadRequest(e.0))?;
    if !app.store.set_tags(&key, &c.tags, &new).await? {
        return Err(DeskError::Conflict("changed"));
    }
    let c = app
        .store
        .conversation(&key)
        .await?
        .ok_or(DeskError::NotFound)?;
    Ok(respond(StatusCode::OK, &summary(app, &c).await))
}

/// A reply as the page sends it.
#[derive(Deserialize)]
#[serde(tag = "msg_type", rename_all = "lowercase")]
enum Reply {
    Text {
        content: String,
        client_msg_id: String,
    },
    Image {
        /// The image's bytes, base64.
        data: String,
        client_msg_id: String,
    },
    Miniprogrampage {
        title: String,
        pagepath: String,
        thumb_media_id: String,
        client_msg_id: String,
    },
}

/// The `POST /messages` body of a reply by `agent`: the key is the page's, scoped to the agent,
/// and the agent is part of what it is bound to.
fn send_body(key: &ConversationKey, agent: &str, reply: Reply) -> Value {
    let mut v = json!({
        "app_id": key.app_id,
        "platform": key.platform.as_str(),
        "open_id": key.open_id,
        "desk_agent": agent,
    });
    let id = match reply {
        Reply::Text {
            content,
            client_msg_id,
        } => {
            v["msg_type"] = json!("text");
            v["content"] = json!(content);
            client_msg_id
        }
        Reply::Image {
            data,
            client_msg_id,
        } => {
            v["msg_type"] = json!("image");
            v["image"] = json!({ "data": data });
            client_msg_id
        }
        Reply::Miniprogrampage {
            title,
            pagepath,
            thumb_media_id,
            client_msg_id,
        } => {
            v["msg_type"] = json!("miniprogrampage");
            v["miniprogrampage"] =
                json!({ "title": title, "pagepath": pagepath, "thumb_media_id": thumb_media_id });
            client_msg_id
        }
    };
    v["client_msg_id"] = json!(format!("desk-{agent}-{id}"));
    v
}

pub(super) async fn reply<S: Store, C: Clock>(
    app: &App<S, C>,
    req: &Request,
    key: ConversationKey,
) -> Result<Response<Body>, DeskError> {
    let caller = app.caller(req).await?;
    let (_, c) = conversation_for(app, &caller, &key).await?;
    if !holds(&caller, &c) {
        return Err(DeskError::Conflict("not_yours"));
    }
    let reply: Reply = body(req)?;
    let id_ok = match &reply {
        Reply::Text { client_msg_id, .. }
        | Reply::Image { client_msg_id, .. }
        | Reply::Miniprogrampage { client_msg_id, .. } => {
            shared::desk::notes::valid_id(client_msg_id)
        }
    };
    if !id_ok {
        return Err(DeskError::BadRequest("client_msg_id_invalid"));
    }
    let agent = caller.agent.id.as_str();
    let body = send_body(&key, agent, reply).to_string();
    let mut send = match sender::SendRequest::from_json(body.as_bytes()) {
        Ok(r) => r,
        Err(e) => return Ok(sender::Answer::from_error(&e).into_response()),
    };
    send.agent = Some(agent.to_owned());
    let deadline = req.lambda_context_ref().map(|c| c.deadline);
    let answer = match app.sender.send(&send, deadline).await {
        Ok(a) => a,
        Err(e) => sender::Answer::from_error(&e),
    };
    if answer.status.is_success() && answer.body["replayed"] != true {
        crate::stats::answered(app, &c, agent).await;
    }
    Ok(answer.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let p = "0001700000#i#123~x";
        assert_eq!(position_of(&cursor_of(p)).unwrap(), p);
        assert!(!cursor_of(p).contains(['#', '+', '/', '=']));
        assert!(position_of("%%%").is_err());
    }

    #[test]
    fn a_reply_is_a_send_by_its_agent_with_a_scoped_key() {
        let key = ConversationKey {
            platform: shared::ids::Platform::Wechat,
            app_id: "wx1".into(),
            open_id: "o1".into(),
        };
        let v = send_body(
            &key,
            "sub-1",
            Reply::Text {
                content: "hi".into(),
                client_msg_id: "c1".into(),
            },
        );
        let r = sender::SendRequest::from_json(v.to_string().as_bytes()).unwrap();
        assert_eq!(r.client_msg_id.as_deref(), Some("desk-sub-1-c1"));
        assert_eq!(r.agent, None, "the agent is never read from a body");
        let other = send_body(
            &key,
            "sub-2",
            Reply::Text {
                content: "hi".into(),
                client_msg_id: "c1".into(),
            },
        );
        let r2 = sender::SendRequest::from_json(other.to_string().as_bytes()).unwrap();
        assert_ne!(r.fingerprint, r2.fingerprint);
    }
}
