//! The JSON the desk answers: an agent as others see them, and a conversation in a list with its
//! send readiness.

use serde_json::{Value, json};
use shared::desk::{Agent, Readiness};
use shared::ids::ConversationKey;
use shared::records::Conversation;

/// An agent: id, name, apps and roles, capacity, held conversations, auto-accept, chosen status
/// and presence at `now`.
pub fn agent(a: &Agent, now: u64) -> Value {
    agent_seen_by(a, now, |_| true)
}

/// [`agent`] with only the apps `visible` keeps: what another app's admin sees of a shared agent.
pub fn agent_seen_by(a: &Agent, now: u64, visible: impl Fn(&str) -> bool) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "apps": a
            .apps
            .iter()
            .filter(|(app, _)| visible(app))
            .map(|(app, role)| json!({ "app": app, "role": role.as_str() }))
            .collect::<Vec<_>>(),
        "capacity": a.capacity,
        "active": a.active,
        "auto_accept": a.auto_accept,
        "status": a.status.as_str(),
        "presence": a.presence(now).as_str(),
    })
}

fn key(k: &ConversationKey) -> Value {
    json!({ "platform": k.platform.as_str(), "app_id": k.app_id, "open_id": k.open_id })
}

/// A conversation in a list, with its readiness at `now` (`authorized`: its app may send).
pub fn summary(c: &Conversation, now: u64, authorized: bool) -> Value {
    let readiness = Readiness::at(c.window, now, authorized);
    json!({
        "key": c.key.as_ref().map(key),
        "status": c.status,
        "assignee": c.assignee,
        "list_at": c.list_at,
        "active_at": c.active_at,
        "last_in_at": c.last_in_at,
        "last_in_preview": c.last_in_preview,
        "unread": c.unread,
        "tags": c.tags,
        "remaining": readiness.remaining,
        "expires_at": readiness.expires_at,
        "refusal": readiness.refusal.map(|r| r.as_str()),
    })
}
