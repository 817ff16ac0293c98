//! The desk's port: agents and their memberships, and the conversation changes agents make —
//! accept, release, close — each applied atomically with the agent's count of conversations, so
//! two agents never hold one conversation and nobody holds more than their capacity.
//!
//! Contracts only; the DynamoDB adapter is `adapters::dynamodb::desk`, the in-memory fake is in
//! `testkit`. The rules (states, lists, presence) are `crate::desk`.

use async_trait::async_trait;

use super::StoreError;
use crate::desk::{Agent, AgentStatus, DeskEvent};
use crate::ids::ConversationKey;
use crate::records::Conversation;

/// What an accept did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// The conversation is now the agent's.
    Accepted,
    /// It is not waiting any more: someone has it (`assignee`), or it was closed.
    Taken {
        /// Who has it, if anyone.
        assignee: Option<String>,
    },
    /// The agent already holds as many conversations as their capacity allows.
    AtCapacity,
    /// No such conversation, or no such agent.
    NotFound,
}

/// Who changes a conversation, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor<'a> {
    /// The agent's id (`sub`), or `system` for the idle sweep.
    pub agent: &'a str,
    /// Unix milliseconds.
    pub now_ms: u64,
}

impl Actor<'_> {
    /// The time in Unix seconds.
    pub fn now_secs(&self) -> u64 {
        self.now_ms / 1000
    }
}

/// The desk's store.
#[async_trait]
pub trait DeskStore: Send + Sync {
    /// The agent with this id, if any.
    async fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError>;

    /// Creates the agent or replaces its profile and memberships (name, apps, capacity,
    /// auto-accept); `active`, `status` and `heartbeat_at` are kept when it exists. Apps are only
    /// added or changed, never taken away, and only while the stored memberships are still the
    /// ones read (else [`StoreError::Contention`]: two admins adding the same agent at once).
    async fn put_agent(&self, agent: &Agent) -> Result<(), StoreError>;

    /// The agents of `app` (`platform#app_id`), at most [`crate::desk::MAX_AGENTS_PER_APP`].
    async fn members(&self, app: &str) -> Result<Vec<Agent>, StoreError>;

    /// Records the agent's chosen status and heartbeat at `now` (Unix seconds).
    async fn heartbeat(&self, id: &str, status: AgentStatus, now: u64) -> Result<(), StoreError>;

    /// Makes a waiting conversation the actor's, atomically with one more held conversation
    /// under the actor's capacity; the change is recorded in the conversation's timeline.
    async fn accept(
        &self,
        key: &ConversationKey,
        by: Actor<'_>,
    ) -> Result<AcceptOutcome, StoreError>;

    /// Puts an active conversation held by `assignee` back on the waiting list (`event` is
    /// [`DeskEvent::Released`] or [`DeskEvent::IdleReleased`]); `false` when it is not theirs any
    /// more. An idle release only applies while the conversation is still idle at `by.now_ms`.
    async fn release(
        &self,
        key: &ConversationKey,
        assignee: &str,
        event: DeskEvent,
        by: Actor<'_>,
    ) -> Result<bool, StoreError>;

    /// Closes a waiting conversation, or an active one held by `assignee` (`None`: it must be
    /// waiting); `false` when it was in neither state.
    async fn close(
        &self,
        key: &ConversationKey,
        assignee: Option<&str>,
        by: Actor<'_>,
    ) -> Result<bool, StoreError>;

    /// The conversations of one list ([`crate::desk::DeskList::value`]), oldest first, at most
    /// `limit`.
    async fn list(&self, list: &str, limit: u32) -> Result<Vec<Conversation>, StoreError>;
}

/// What the idle sweep needs beyond [`DeskStore`].
#[async_trait]
pub trait DeskSweep: Send + Sync {
    /// The ids of the agents holding at least one conversation (a scan of the agents' profiles:
    /// the desk table is small, and the sweep runs once a minute).
    async fn agents_holding(&self) -> Result<Vec<String>, StoreError>;
}
