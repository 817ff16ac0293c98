//! Agents: who they are on the desk, which apps they serve in which role, their chosen status and
//! the presence that follows from their heartbeat, and their capacity.
//!
//! Pure data and rules; stored by the `DeskStore` port. Identity comes from the sign-in token's
//! `sub` claim; membership is kefu's (not the user pool's), checked on every request.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An agent's page sends a heartbeat at least this often; a status older than this is offline.
pub const HEARTBEAT_SECS: u64 = 30;

/// The default number of conversations an agent holds at once (会话分流).
pub const DEFAULT_CAPACITY: u32 = 5;

/// The most conversations one agent may hold at once.
pub const MAX_CAPACITY: u32 = 50;

/// What an agent may do in one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Answer the app's users.
    Agent,
    /// Also manage the app's agents, quick replies and settings.
    Admin,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "agent" => Some(Role::Agent),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The status an agent chose on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    /// Taking conversations (auto-accept hands them out).
    Online,
    /// Signed in, not taking new conversations.
    Away,
    /// Signed out.
    Offline,
}

impl AgentStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Online => "online",
            AgentStatus::Away => "away",
            AgentStatus::Offline => "offline",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<AgentStatus> {
        match s {
            "online" => Some(AgentStatus::Online),
            "away" => Some(AgentStatus::Away),
            "offline" => Some(AgentStatus::Offline),
            _ => None,
        }
    }
}

/// Where an agent is as others see it: the chosen status while the heartbeat is fresh.
pub type Presence = AgentStatus;

/// One agent, as the desk stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// The sign-in identity (`sub`).
    pub id: String,
    /// The name shown to other agents.
    pub name: String,
    /// The apps served (`platform#app_id`) and the role in each.
    pub apps: BTreeMap<String, Role>,
    /// The most conversations held at once.
    pub capacity: u32,
    /// Conversations held now (kept by the same writes that assign and release them).
    pub active: u32,
    /// Whether waiting conversations are handed to the agent without a click.
    pub auto_accept: bool,
    /// The status chosen.
    pub status: AgentStatus,
    /// The last heartbeat, Unix seconds (0: never).
    pub heartbeat_at: u64,
}

impl Agent {
    /// The agent's role in `app` (`platform#app_id`), if a member.
    pub fn role_in(&self, app: &str) -> Option<Role> {
        self.apps.get(app).copied()
    }

    /// The agent's presence at `now`: offline once the heartbeat is older than [`HEARTBEAT_SECS`].
    pub fn presence(&self, now: u64) -> Presence {
        if now.saturating_sub(self.heartbeat_at) > HEARTBEAT_SECS {
            AgentStatus::Offline
        } else {
            self.status
        }
    }

    /// How many more conversations auto-accept may hand this agent at `now`.
    pub fn auto_accept_room(&self, now: u64) -> u32 {
        if self.auto_accept && self.presence(now) == AgentStatus::Online {
            self.capacity.saturating_sub(self.active)
        } else {
            0
        }
    }
}

/// A capacity as asked for: 1 to [`MAX_CAPACITY`].
pub fn valid_capacity(capacity: u32) -> Option<u32> {
    (1..=MAX_CAPACITY).contains(&capacity).then_some(capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Agent {
        Agent {
            id: "a".into(),
            name: "A".into(),
            apps: [("wechat#wx1".to_owned(), Role::Admin)].into(),
            capacity: 3,
            active: 1,
            auto_accept: true,
            status: AgentStatus::Online,
            heartbeat_at: 1000,
        }
    }

    #[test]
    fn presence_follows_the_heartbeat() {
        let a = agent();
        assert_eq!(a.presence(1000 + HEARTBEAT_SECS), AgentStatus::Online);
        assert_eq!(a.presence(1001 + HEARTBEAT_SECS), AgentStatus::Offline);
        let away = Agent {
            status: AgentStatus::Away,
            ..agent()
        };
        assert_eq!(away.presence(1000), AgentStatus::Away);
    }

    #[test]
    fn auto_accept_fills_up_to_capacity_only_when_online() {
        assert_eq!(agent().auto_accept_room(1000), 2);
        assert_eq!(agent().auto_accept_room(2000), 0, "offline");
        let manual = Agent {
            auto_accept: false,
            ..agent()
        };
        assert_eq!(manual.auto_accept_room(1000), 0);
        let full = Agent {
            active: 4,
            ..agent()
        };
        assert_eq!(full.auto_accept_room(1000), 0);
    }

    #[test]
    fn roles_and_capacity() {
        let a = agent();
        assert_eq!(a.role_in("wechat#wx1"), Some(Role::Admin));
        assert_eq!(a.role_in("wechat#wx2"), None);
        assert!(Role::Admin > Role::Agent);
        assert_eq!(valid_capacity(0), None);
        assert_eq!(valid_capacity(MAX_CAPACITY + 1), None);
        assert_eq!(valid_capacity(5), Some(5));
        for s in [AgentStatus::Online, AgentStatus::Away, AgentStatus::Offline] {
            assert_eq!(AgentStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
    }
}
