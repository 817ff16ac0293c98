//! The agents' desk, pure: a conversation's desk state and the list it sits in, agents with their
//! status and capacity, and whether a send would be refused (docs/design.md §12).
//!
//! No I/O and no clock: times are passed in. The store that applies these rules atomically is the
//! `DeskStore` port (`ports::desk`); the HTTP routes are the desk function's.

pub mod agent;
pub mod auto_reply;
pub mod notes;
pub mod readiness;
pub mod stats;

use serde::{Deserialize, Serialize};

use crate::ids::ConversationKey;

pub use agent::{Agent, AgentStatus, Presence, Role};
pub use readiness::{Readiness, Refusal};

/// A conversation idle this long (no message in or out, no assignment) goes back to waiting.
pub const IDLE_SECS: u64 = 30 * 60;

/// The most agents one app may have (WeChat's own desk allows 100).
pub const MAX_AGENTS_PER_APP: usize = 100;

/// Where a conversation stands on the desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeskState {
    /// The user wrote and nobody has the conversation.
    Waiting,
    /// An agent has it.
    Active,
    /// An agent closed it; the user's next message opens it again.
    Closed,
}

impl DeskState {
    /// The name stored and shown (`waiting`, `active`, `closed`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeskState::Waiting => "waiting",
            DeskState::Active => "active",
            DeskState::Closed => "closed",
        }
    }

    /// Reads a stored `status`; `open`, written before the desk existed, is waiting.
    pub fn from_status(status: &str) -> Option<DeskState> {
        match status {
            "waiting" | "open" => Some(DeskState::Waiting),
            "active" => Some(DeskState::Active),
            "closed" => Some(DeskState::Closed),
            _ => None,
        }
    }
}

/// The list a conversation is in — the partition of the conversations' list index: an app's
/// waiting list, the assignee's own list while active, an app's closed list. Exactly one at a
/// time, so "the waiting list", "my conversations" and "recently closed" are each one query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeskList<'a> {
    /// `platform#app_id#waiting`.
    Waiting(&'a ConversationKey),
    /// `agent#<agent id>`: every app's conversations the agent has.
    Agent(&'a str),
    /// `platform#app_id#closed`.
    Closed(&'a ConversationKey),
}

impl DeskList<'_> {
    /// The list's partition value.
    pub fn value(&self) -> String {
        match self {
            DeskList::Waiting(key) => app_list(key, "waiting"),
            DeskList::Agent(agent) => agent_list(agent),
            DeskList::Closed(key) => app_list(key, "closed"),
        }
    }

    /// The state a conversation in this list is in.
    pub fn state(&self) -> DeskState {
        match self {
            DeskList::Waiting(_) => DeskState::Waiting,
            DeskList::Agent(_) => DeskState::Active,
            DeskList::Closed(_) => DeskState::Closed,
        }
    }
}

fn app_list(key: &ConversationKey, state: &str) -> String {
    format!("{}#{}#{state}", key.platform, key.app_id)
}

/// The waiting list of an app (`platform`, `app_id`), as [`DeskList::Waiting`] spells it.
pub fn waiting_list_of(platform: crate::ids::Platform, app_id: &str) -> String {
    format!("{platform}#{app_id}#waiting")
}

/// The closed list of an app, as [`DeskList::Closed`] spells it.
pub fn closed_list_of(platform: crate::ids::Platform, app_id: &str) -> String {
    format!("{platform}#{app_id}#closed")
}

/// An agent's own list, as [`DeskList::Agent`] spells it.
pub fn agent_list(agent: &str) -> String {
    format!("agent#{agent}")
}

/// A change of desk state, recorded in the conversation's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeskEvent {
    /// An agent took a waiting conversation (by hand or by auto-accept).
    Accepted,
    /// The assignee gave it back to the waiting list (or went offline).
    Released,
    /// It sat idle for [`IDLE_SECS`] and went back to waiting.
    IdleReleased,
    /// An agent closed it.
    Closed,
}

impl DeskEvent {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeskEvent::Accepted => "accepted",
            DeskEvent::Released => "released",
            DeskEvent::IdleReleased => "idle_released",
            DeskEvent::Closed => "closed",
        }
    }
}

/// Whether a conversation last active at `active_at` is idle at `now`.
pub fn is_idle(active_at: u64, now: u64) -> bool {
    now.saturating_sub(active_at) >= IDLE_SECS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Platform;

    fn key() -> ConversationKey {
        ConversationKey {
            platform: Platform::Wechat,
            app_id: "wx1".into(),
            open_id: "oUser".into(),
        }
    }

    #[test]
    fn each_state_has_its_own_list() {
        let k = key();
        assert_eq!(DeskList::Waiting(&k).value(), "wechat#wx1#waiting");
        assert_eq!(DeskList::Closed(&k).value(), "wechat#wx1#closed");
        assert_eq!(DeskList::Agent("a-1").value(), "agent#a-1");
        assert_eq!(
            waiting_list_of(Platform::Wechat, "wx1"),
            DeskList::Waiting(&k).value()
        );
        assert_eq!(
            closed_list_of(Platform::Wechat, "wx1"),
            DeskList::Closed(&k).value()
        );
        assert_eq!(DeskList::Agent("a").state(), DeskState::Active);
    }

    #[test]
    fn legacy_open_reads_as_waiting() {
        assert_eq!(DeskState::from_status("open"), Some(DeskState::Waiting));
        for s in [DeskState::Waiting, DeskState::Active, DeskState::Closed] {
            assert_eq!(DeskState::from_status(s.as_str()), Some(s));
        }
        assert_eq!(DeskState::from_status("x"), None);
    }

    #[test]
    fn idle_after_thirty_minutes() {
        assert!(!is_idle(1000, 1000 + IDLE_SECS - 1));
        assert!(is_idle(1000, 1000 + IDLE_SECS));
        assert!(!is_idle(2000, 1000), "a clock behind is not idle");
    }
}
