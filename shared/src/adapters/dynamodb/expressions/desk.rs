//! The desk's expressions: what accept, release and close write to a conversation and to its
//! agent's count, and the list query. Each conversation change is conditioned on the list the
//! conversation was in (the list is its state), each count change on the agent existing — and
//! accept on the agent being under capacity — so one transaction of both is all-or-nothing.

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Expression, build, fixed};
use crate::adapters::dynamodb::items::{self, n, s};

/// Accept: the conversation is on its app's waiting list (`:from`).
pub const IN_LIST: &str = "#list = :from";

/// Accept: into the agent's list, assigned.
pub const ACCEPT_UPDATE: &str = "SET #list = :to, #list_at = :now_ms, #status = :state, \
     #assignee = :agent, #assigned_at = :now, #active_at = :now, #updated_at = :now";

/// Release (idle): still idle — nothing in or out since `:idle_before`.
pub const STILL_IDLE: &str = "#active_at <= :idle_before";

/// Release or close: out of the agent's list, unassigned.
pub const UNASSIGN_UPDATE: &str = "SET #list = :to, #list_at = :now_ms, #status = :state, \
     #updated_at = :now REMOVE #assignee, #assigned_at";

/// Close of a waiting conversation: to the closed list (nobody held it).
pub const MOVE_UPDATE: &str =
    "SET #list = :to, #list_at = :now_ms, #status = :state, #updated_at = :now";

/// The agent exists and holds fewer conversations than their capacity.
pub const AGENT_HAS_ROOM: &str = "attribute_exists(#pk) AND #active < #capacity";

/// The agent exists.
pub const AGENT_EXISTS: &str = "attribute_exists(#pk)";

/// One more (`:one`) or one fewer (`:minus_one`) conversation held.
pub const ADD_ONE_HELD: &str = "ADD #active :one";
/// One fewer conversation held.
pub const ADD_ONE_RELEASED: &str = "ADD #active :minus_one";

/// Key condition of a list query.
pub const LIST_IS: &str = "#list = :list";

/// Profile update: what an admin sets; the counters and status only when first created.
pub const PROFILE_UPDATE: &str = "SET #name = :name, #apps = :apps, #capacity = :capacity, \
     #auto_accept = :auto_accept, #active = if_not_exists(#active, :zero), \
     #agent_status = if_not_exists(#agent_status, :offline), \
     #heartbeat_at = if_not_exists(#heartbeat_at, :zero)";

/// Heartbeat: the chosen status, now.
pub const HEARTBEAT_UPDATE: &str = "SET #agent_status = :status, #heartbeat_at = :now";

/// A conversation move from list `from` to list `to` (entering it at `now_ms`) in `state`, with
/// `update` ([`ACCEPT_UPDATE`], [`UNASSIGN_UPDATE`], [`MOVE_UPDATE`]); `agent` for accept,
/// `idle_before` for an idle release.
pub struct Move<'a> {
    /// The list it must be in.
    pub from: &'a str,
    /// The list it goes to.
    pub to: &'a str,
    /// Its new `status`.
    pub state: &'a str,
    /// Unix milliseconds.
    pub now_ms: u64,
    /// The assignee, for an accept.
    pub agent: Option<&'a str>,
    /// For an idle release: the latest `active_at` that is still idle.
    pub idle_before: Option<u64>,
}

impl Move<'_> {
    /// The conditional update.
    pub fn expression(&self, update: &str) -> Expression {
        let condition = match self.idle_before {
            Some(_) => format!("{IN_LIST} AND {STILL_IDLE}"),
            None => IN_LIST.to_owned(),
        };
        build(
            update.to_owned(),
            condition,
            vec![
                (":from", Some(s(self.from))),
                (":to", Some(s(self.to))),
                (":state", Some(s(self.state))),
                (":now_ms", Some(n(self.now_ms))),
                (":now", Some(n(self.now_ms / 1000))),
                (":agent", self.agent.map(s)),
                (":idle_before", self.idle_before.map(n)),
            ],
        )
    }
}

/// One more held conversation, under [`AGENT_HAS_ROOM`].
pub fn hold_one() -> Expression {
    fixed(ADD_ONE_HELD, AGENT_HAS_ROOM, [(":one", n(1))])
}

/// One fewer held conversation, under [`AGENT_EXISTS`].
pub fn release_one() -> Expression {
    fixed(ADD_ONE_RELEASED, AGENT_EXISTS, [(":minus_one", n(-1))])
}

/// [`LIST_IS`] for `list`.
pub fn list_is(list: &str) -> Expression {
    fixed("", LIST_IS, [(":list", s(list))])
}

/// Profile update: the memberships are as read (`:old_apps`), or the agent is new — so two
/// admins adding the same agent at once cannot drop each other's app.
pub const APPS_AS_READ: &str = "attribute_not_exists(#pk) OR #apps = :old_apps";

/// [`PROFILE_UPDATE`] with the profile's values (`apps`: the M of app → role) under
/// [`APPS_AS_READ`] (`old_apps`: the map read, empty for a new agent).
pub fn profile(
    name: &str,
    apps: AttributeValue,
    old_apps: AttributeValue,
    capacity: u32,
    auto_accept: bool,
) -> Expression {
    fixed(
        PROFILE_UPDATE,
        APPS_AS_READ,
        [
            (":old_apps", old_apps),
            (":name", s(name)),
            (":apps", apps),
            (":capacity", n(capacity)),
            (":auto_accept", AttributeValue::Bool(auto_accept)),
            (":zero", n(0)),
            (":offline", s(crate::desk::AgentStatus::Offline.as_str())),
        ],
    )
}

/// [`HEARTBEAT_UPDATE`] under [`AGENT_EXISTS`].
pub fn heartbeat(status: &str, now: u64) -> Expression {
    fixed(
        HEARTBEAT_UPDATE,
        AGENT_EXISTS,
        [(":status", s(status)), (":now", n(now))],
    )
}

/// Attribute names the desk's expressions use, for the schema check.
pub const NAMES: &[&str] = &[
    items::LIST,
    items::LIST_AT,
    items::STATUS,
    items::ASSIGNEE,
    items::ASSIGNED_AT,
    items::ACTIVE_AT,
    items::UPDATED_AT,
    items::ACTIVE,
    items::CAPACITY,
    items::NAME,
    items::APPS,
    items::AUTO_ACCEPT,
    items::AGENT_STATUS,
    items::HEARTBEAT_AT,
    items::PK,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::dynamodb::expressions::placeholders;

    #[test]
    fn every_name_is_a_desk_or_conversation_attribute_and_every_value_is_sent() {
        let moves = [
            Move {
                from: "wechat#wx1#waiting",
                to: "agent#a",
                state: "active",
                now_ms: 5_000,
                agent: Some("a"),
                idle_before: None,
            }
            .expression(ACCEPT_UPDATE),
            Move {
                from: "agent#a",
                to: "wechat#wx1#waiting",
                state: "waiting",
                now_ms: 5_000,
                agent: None,
                idle_before: Some(3),
            }
            .expression(UNASSIGN_UPDATE),
        ];
        let all = moves
            .into_iter()
            .chain([
                hold_one(),
                release_one(),
                list_is("x"),
                heartbeat("online", 1),
            ])
            .chain([profile(
                "A",
                AttributeValue::M(Default::default()),
                AttributeValue::M(Default::default()),
                3,
                true,
            )]);
        for e in all {
            for p in placeholders(&e.update)
                .into_iter()
                .chain(placeholders(&e.condition))
            {
                if let Some(name) = p.strip_prefix('#') {
                    assert!(NAMES.contains(&name), "{name} in {e:?}");
                } else {
                    assert!(e.values.contains_key(p), "{p} has no value in {e:?}");
                }
            }
        }
    }

    #[test]
    fn an_idle_release_is_conditioned_on_still_being_idle() {
        let e = Move {
            from: "agent#a",
            to: "wechat#wx1#waiting",
            state: "waiting",
            now_ms: 9_000_000,
            agent: None,
            idle_before: Some(7_200),
        }
        .expression(UNASSIGN_UPDATE);
        assert_eq!(e.condition, "#list = :from AND #active_at <= :idle_before");
        assert_eq!(e.values[":idle_before"], n(7_200));
        assert_eq!(e.values[":now"], n(9_000));
        assert!(!e.values.contains_key(":agent"));
    }
}
