//! Every DynamoDB expression of the adapter — update, condition, key-condition — documented once,
//! here, with the builders that pair each with exactly the names and values it uses. The per-port
//! adapters (`messages`, `ledger`, `tokens`, `media`, `outbound`) only call these.
//!
//! Not here: the rules themselves. The ledger a grant produces is [`Ledger::apply_grant`]; the
//! fast-path condition only admits the states in which "SET to the new values" equals that rule.
//! Nor the items written whole (`items`): the media-id cache, for one, is a plain `GetItem` and
//! `PutItem` and needs no expression.
//!
//! Convention: every attribute is referenced through the placeholder `#name` for the attribute
//! `name` (some names, like `status`, are DynamoDB reserved words), so [`build`] derives the
//! `ExpressionAttributeNames` from the strings, and an [`Expression`] sends exactly the names and
//! values its strings use (DynamoDB rejects unused ones). The tests check that every `#name` is an
//! attribute of [`items`].

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use super::items::{self, ConversationState, n, s};
use crate::desk::DeskList;
use crate::ids::ConversationKey;
use crate::quota::{Grant, Ledger, Window};

pub mod desk;
#[cfg(test)]
mod tests;

// ---- messages and conversations: the inbound write and the query (`MessageStore`) ----

/// Condition of the message Put: the message item does not exist yet. This is the dedupe.
pub const MESSAGE_IS_NEW: &str = "attribute_not_exists(#pk)";

/// Condition of the replay item's Put: this (nonce, timestamp) is new, or was seen with the same
/// body (a platform retry). Another body under a seen nonce and timestamp is a forged replay.
pub const REPLAY_IS_NEW_OR_SAME: &str = "attribute_not_exists(#pk) OR #digest = :digest";

/// Key condition of the messages query: one conversation (`:pk`), in `sk` order.
pub const MESSAGES_OF_CONVERSATION: &str = "#pk = :pk";

/// [`MESSAGE_IS_NEW`].
pub fn message_is_new() -> Expression {
    fixed("", MESSAGE_IS_NEW, [])
}

/// [`REPLAY_IS_NEW_OR_SAME`] for a body with `digest`.
pub fn replay_is_new_or_same(digest: &str) -> Expression {
    fixed("", REPLAY_IS_NEW_OR_SAME, [(":digest", s(digest))])
}

/// [`MESSAGES_OF_CONVERSATION`] for the conversation `pk` (the `condition` is the query's
/// `KeyConditionExpression`).
pub fn messages_of(pk: &str) -> Expression {
    fixed("", MESSAGES_OF_CONVERSATION, [(":pk", s(pk))])
}

/// Always-written conversation attributes; `created_at` only when first created; `active_at` for
/// the desk's idle rule.
pub const SET_COMMON: &str = "#platform = :platform, #app_id = :app_id, #open_id = :open_id, \
     #created_at = if_not_exists(#created_at, :now), #updated_at = :now, #active_at = :now";

/// The desk state of a conversation that is not closed: a new one goes on its app's waiting list
/// (`:waiting_list`), a waiting or active one stays where it is.
pub const SET_DESK_KEEP: &str = "#status = if_not_exists(#status, :waiting), \
     #list = if_not_exists(#list, :waiting_list), #list_at = if_not_exists(#list_at, :now_ms)";

/// The desk state of a closed conversation the user wrote to again: back on the waiting list.
pub const SET_DESK_REOPEN: &str = "#status = :waiting, #list = :waiting_list, #list_at = :now_ms";

/// The conversation is not closed (a closed one takes the compare-and-set, which reopens it).
pub const NOT_CLOSED: &str = "(attribute_not_exists(#list) OR #list <> :closed_list)";

/// The newest inbound message: written when this message is at least as new as the stored one.
pub const SET_LAST_IN: &str =
    "#last_in_at = :t, #last_in_preview = :preview, #last_in_type = :type";

/// The window after a grant (`:n`, `:exp` = the target window, `:t` = the grant's action time,
/// `:spent` = the units still counted as spent); the generation goes up by one in the same update
/// ([`ADD_GENERATION`]).
pub const SET_WINDOW: &str = "#remaining = :n, #expires_at = :exp, #grant_at = :t, #spent = :spent";

/// With a grant: one more generation.
pub const ADD_GENERATION: &str = ", #grant_gen :one";

/// No grant: the window is left alone, but a new item still gets `remaining` = `expires_at` = 0.
pub const KEEP_WINDOW: &str = "#remaining = if_not_exists(#remaining, :zero), \
     #expires_at = if_not_exists(#expires_at, :zero)";

/// Counters: one more inbound message, one more unread.
pub const ADD_COUNTERS: &str = "ADD #unread :one, #inbound_count :one";

/// Fast-path condition with a grant `(n, w)` at `t` (`:exp` = `t + w`): the item is new, or this
/// message is the newest, its grant is newer than the stored one, nothing was reserved at or after
/// `t` (else [`Ledger::apply_grant`] takes those units off), and the stored window is one where
/// [`Window::apply_grant`] yields exactly `(n, t + w)` — no window, an expired one, fewer units
/// than `n`, or `n` units expiring no later.
pub const FAST_CONDITION_GRANT: &str = "attribute_not_exists(#pk) OR \
     ((attribute_not_exists(#last_in_at) OR #last_in_at <= :t) AND \
     (attribute_not_exists(#grant_at) OR #grant_at < :t) AND \
     (attribute_not_exists(#spent_at) OR #spent_at < :t) AND \
     (attribute_not_exists(#expires_at) OR #expires_at <= :t OR #remaining < :n OR \
     (#remaining = :n AND #expires_at <= :exp)) AND \
     (attribute_not_exists(#list) OR #list <> :closed_list))";

/// Fast-path condition without a grant: the item is new, or this message is the newest and the
/// conversation is not closed.
pub const FAST_CONDITION_NO_GRANT: &str = "attribute_not_exists(#pk) OR \
     ((attribute_not_exists(#last_in_at) OR #last_in_at <= :t) AND \
     (attribute_not_exists(#list) OR #list <> :closed_list))";

/// Slow-path condition when the conversation was absent when read.
pub const CAS_ABSENT: &str = "attribute_not_exists(#pk)";

/// The conversation exists: the slow path's first clause, and the ledger's and last-out's guard
/// (a missing conversation is a failed condition, never a read).
pub const CONVERSATION_EXISTS: &str = "attribute_exists(#pk)";

/// One complete expression set for a request. An empty string is an expression the request does
/// not have (a Put has no update; an unconditional update no condition), and is not sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    /// `UpdateExpression`.
    pub update: String,
    /// `ConditionExpression` (a Query's `KeyConditionExpression`).
    pub condition: String,
    /// `ExpressionAttributeNames`: exactly the `#name` placeholders used.
    pub names: HashMap<String, String>,
    /// `ExpressionAttributeValues`: exactly the `:value` placeholders used.
    pub values: HashMap<String, AttributeValue>,
}

/// What an inbound message writes to its conversation.
#[derive(Debug, Clone, Copy)]
pub struct InboundUpdate<'a> {
    /// The conversation.
    pub key: &'a ConversationKey,
    /// The message's `CreateTime`.
    pub t: u64,
    /// Its preview ([`items::PREVIEW_CHARS`] characters at most).
    pub preview: &'a str,
    /// Its `MsgType`.
    pub msg_type: &'a str,
    /// The writer's wall clock, Unix seconds (`created_at`, `updated_at`).
    pub now: u64,
    /// The grant it earns, if any.
    pub grant: Option<Grant>,
}

impl InboundUpdate<'_> {
    /// The optimistic update: SET everything to this message's values, under
    /// [`FAST_CONDITION_GRANT`] / [`FAST_CONDITION_NO_GRANT`].
    pub fn fast(&self) -> Expression {
        let condition = match self.grant {
            Some(_) => FAST_CONDITION_GRANT,
            None => FAST_CONDITION_NO_GRANT,
        };
        self.set_all(condition)
    }

    /// SET everything to this message's values (the window to a fresh grant) under `condition`.
    fn set_all(&self, condition: &str) -> Expression {
        let target = self.grant.map(|g| Ledger {
            window: Window::apply_grant(None, g, self.t),
            ..Ledger::default()
        });
        let (window, generation) = if target.is_some() {
            (SET_WINDOW, ADD_GENERATION)
        } else {
            (KEEP_WINDOW, "")
        };
        self.finish(
            format!(
                "SET {SET_COMMON}, {SET_DESK_KEEP}, {SET_LAST_IN}, {window} {ADD_COUNTERS}{generation}"
            ),
            condition.to_owned(),
            target,
            None,
        )
    }

    /// The compare-and-set update from the state read (`None`: no item): the ledger becomes
    /// [`Ledger::apply_grant`]`(old, grant, t)` when granted and newer than the stored grant (else
    /// the window is kept); `last_in_*` is written only if this message is at least as new as the
    /// stored one (ties go to this one). The condition is that every attribute this computation
    /// read is unchanged (`= :old_…`, or `attribute_not_exists` where it was absent); the ledger is
    /// only compared when written. A grant found not newer stays not newer: `grant_at` only grows.
    pub fn compare_and_set(&self, old: Option<&ConversationState>) -> Expression {
        let Some(old) = old else {
            return self.set_all(CAS_ABSENT);
        };
        let newest = old.last_in_at.is_none_or(|at| at <= self.t);
        let target = self
            .grant
            .and_then(|g| Ledger::apply_grant(old.ledger(), g, self.t));
        let mut set = vec![
            SET_COMMON,
            if old.closed {
                SET_DESK_REOPEN
            } else {
                SET_DESK_KEEP
            },
        ];
        if newest {
            set.push(SET_LAST_IN);
        }
        set.push(if target.is_some() {
            SET_WINDOW
        } else {
            KEEP_WINDOW
        });

        let mut condition = vec![
            CONVERSATION_EXISTS,
            if old.closed {
                "#list = :closed_list"
            } else {
                NOT_CLOSED
            },
        ];
        let mut compared = Vec::new();
        if target.is_some() {
            compared.push((items::REMAINING, old.remaining.map(u64::from)));
            compared.push((items::EXPIRES_AT, old.expires_at));
            compared.push((items::GRANT_AT, old.grant_at));
            compared.push((items::GENERATION, old.generation));
            compared.push((items::SPENT, old.spent.map(u64::from)));
            compared.push((items::SPENT_AT, old.spent_at));
        }
        compared.push((items::LAST_IN_AT, old.last_in_at));
        let clauses: Vec<String> = compared
            .iter()
            .map(|(name, value)| unchanged(name, value.is_some()))
            .collect();
        condition.extend(clauses.iter().map(String::as_str));
        let generation = if target.is_some() { ADD_GENERATION } else { "" };
        self.finish(
            format!("SET {} {ADD_COUNTERS}{generation}", set.join(", ")),
            all_of(&condition),
            target,
            Some(old),
        )
    }

    fn finish(
        &self,
        update: String,
        condition: String,
        target: Option<Ledger>,
        old: Option<&ConversationState>,
    ) -> Expression {
        let target = target.unwrap_or_default();
        let spent = target.spent;
        let target = target.window;
        let old = old.copied().unwrap_or_default();
        let mut candidates: Vec<(&str, Option<AttributeValue>)> = vec![
            (":platform", Some(s(self.key.platform.as_str()))),
            (":app_id", Some(s(self.key.app_id.as_str()))),
            (":open_id", Some(s(self.key.open_id.as_str()))),
            (":waiting", Some(s(items::STATUS_WAITING))),
            (
                ":waiting_list",
                Some(s(DeskList::Waiting(self.key).value())),
            ),
            (":closed_list", Some(s(DeskList::Closed(self.key).value()))),
            (":now", Some(n(self.now))),
            (":now_ms", Some(n(self.now.saturating_mul(1000)))),
            (":t", Some(n(self.t))),
            (":preview", Some(s(self.preview))),
            (":type", Some(s(self.msg_type))),
            (":n", Some(n(target.remaining))),
            (":exp", Some(n(target.expires_at))),
            (":zero", Some(n(0))),
            (":one", Some(n(1))),
            (":spent", Some(n(spent))),
        ];
        candidates.push((":old_remaining", old.remaining.map(n)));
        candidates.push((":old_expires_at", old.expires_at.map(n)));
        candidates.push((":old_last_in_at", old.last_in_at.map(n)));
        candidates.push((":old_grant_at", old.grant_at.map(n)));
        candidates.push((":old_grant_gen", old.generation.map(n)));
        candidates.push((":old_spent", old.spent.map(n)));
        candidates.push((":old_spent_at", old.spent_at.map(n)));
        build(update, condition, candidates)
    }
}

// ---- conversations: the quota ledger (`QuotaLedger`) ----

/// Reserve: the conversation exists, has `:k` units left and its window is open at `:now`
/// (docs/design.md §6).
pub const RESERVE_CONDITION: &str =
    "attribute_exists(#pk) AND #remaining >= :k AND #expires_at > :now";
/// Reserve: take the units, and count them as spent until `:until` = now +
/// [`crate::quota::SEND_HORIZON_SECS`] ([`crate::quota::Ledger::spent`]).
pub const RESERVE_UPDATE: &str =
    "SET #remaining = #remaining - :k, #spent_at = :until ADD #spent :k";
/// Release, exhaust, close: only while no grant was applied since the reservation. A
/// conversation never granted has no `grant_gen` (generation 0).
pub const SAME_GENERATION: &str = "#grant_gen = :gen";
/// [`SAME_GENERATION`] for generation 0.
pub const NO_GENERATION_YET: &str = "attribute_not_exists(#grant_gen)";
/// Release: give the units back (`spent` keeps them: it may only over-count).
pub const RELEASE_UPDATE: &str = "SET #remaining = #remaining + :k";
/// Exhaust (WeChat 45047, Baidu 90001): no units left.
pub const EXHAUST_UPDATE: &str = "SET #remaining = :zero";
/// Close (WeChat 45015): only a window still open at `:now` is shortened.
pub const CLOSE_CONDITION: &str = "#expires_at > :now";
/// Close: the window ends now.
pub const CLOSE_UPDATE: &str = "SET #expires_at = :now";

/// [`RESERVE_UPDATE`] of `units` under [`RESERVE_CONDITION`] at `now`, spent until `until`.
pub fn reserve(units: u32, now: u64, until: u64) -> Expression {
    fixed(
        RESERVE_UPDATE,
        RESERVE_CONDITION,
        [(":k", n(units)), (":now", n(now)), (":until", n(until))],
    )
}

/// [`RELEASE_UPDATE`] of `units`, in `generation`.
pub fn release(units: u32, generation: u64) -> Expression {
    in_generation(
        RELEASE_UPDATE,
        CONVERSATION_EXISTS,
        (":k", n(units)),
        generation,
    )
}

/// [`EXHAUST_UPDATE`], in `generation`.
pub fn exhaust(generation: u64) -> Expression {
    in_generation(
        EXHAUST_UPDATE,
        CONVERSATION_EXISTS,
        (":zero", n(0)),
        generation,
    )
}

/// [`CLOSE_UPDATE`] at `now` under [`CLOSE_CONDITION`], in `generation`.
pub fn close_window(now: u64, generation: u64) -> Expression {
    in_generation(CLOSE_UPDATE, CLOSE_CONDITION, (":now", n(now)), generation)
}

/// `update` under `condition` AND the generation condition ([`SAME_GENERATION`], or
/// [`NO_GENERATION_YET`] for 0, which has no value).
fn in_generation(
    update: &str,
    condition: &str,
    value: (&str, AttributeValue),
    generation: u64,
) -> Expression {
    let (same_generation, gen_value) = if generation == 0 {
        (NO_GENERATION_YET, None)
    } else {
        (SAME_GENERATION, Some(n(generation)))
    };
    build(
        update.to_owned(),
        all_of(&[condition, same_generation]),
        vec![(value.0, Some(value.1)), (":gen", gen_value)],
    )
}

// ---- conversations and tokens: the sender's other writes (`OutboundStore`) ----

/// After a send that may have reached the user: its time (`:t`) is the conversation's last
/// outbound time, last write and last activity (the desk's 30-minute idle rule: an agent still
/// answering is not idle), under [`CONVERSATION_EXISTS`].
pub const SET_LAST_OUT: &str = "SET #last_out_at = :t, #updated_at = :t, #active_at = :t";
/// Idempotency key unused, or claimed for the same request by an attempt that died before it
/// started sending (its lease expired while `pending`).
pub const IDEM_CLAIMABLE: &str = "attribute_not_exists(#pk) OR \
     (#state = :pending AND #lease_until < :now AND #fingerprint = :fp)";
/// The claimed request is about to call the platform.
pub const START_SENDING: &str = "SET #state = :sending";
/// The claimed request is done: its answer is stored for repeats.
pub const COMPLETE: &str = "SET #state = :done, #response = :response";

/// [`SET_LAST_OUT`] and, for a reply (an agent's or the API's, not an auto reply), the last reply's
/// time: what the desk's statistics measure responses from.
pub const SET_LAST_REPLY: &str =
    "SET #last_out_at = :t, #updated_at = :t, #active_at = :t, #last_reply_at = :t";

/// [`SET_LAST_OUT`] at `t` ([`SET_LAST_REPLY`] when `reply`).
pub fn last_out(t: u64, reply: bool) -> Expression {
    let update = if reply { SET_LAST_REPLY } else { SET_LAST_OUT };
    fixed(update, CONVERSATION_EXISTS, [(":t", n(t))])
}

/// [`IDEM_CLAIMABLE`] for a request with `fingerprint` at `now`.
pub fn claimable(fingerprint: &str, now: u64) -> Expression {
    fixed(
        "",
        IDEM_CLAIMABLE,
        [
            (":pending", s(items::STATE_PENDING)),
            (":now", n(now)),
            (":fp", s(fingerprint)),
        ],
    )
}

/// [`START_SENDING`].
pub fn start_sending() -> Expression {
    fixed(START_SENDING, "", [(":sending", s(items::STATE_SENDING))])
}

/// [`COMPLETE`] with `response`.
pub fn complete(response: &str) -> Expression {
    fixed(
        COMPLETE,
        "",
        [(":done", s(items::STATE_DONE)), (":response", s(response))],
    )
}

// ---- tokens: the access-token cache (`AccessTokenCache`) ----

/// Nobody holds an unexpired refresh lease at `:now`.
pub const LEASE_FREE: &str = "attribute_not_exists(#lease_until) OR #lease_until < :now";
/// Take the refresh lease for `:owner` until `:until`.
pub const TAKE_LEASE: &str = "SET #lease_owner = :owner, #lease_until = :until";
/// Store a token, its expiry and the item's TTL.
pub const PUT_TOKEN: &str = "SET #token = :token, #expires_at = :exp, #ttl = :ttl";
/// `:owner` still holds the refresh lease.
pub const LEASE_HELD_BY: &str = "#lease_owner = :owner";
/// Drop the refresh lease.
pub const DROP_LEASE: &str = "REMOVE #lease_owner, #lease_until";
/// The cached token is still the one that failed (`:failed`).
pub const TOKEN_IS: &str = "#token = :failed";
/// Forget the cached token (the lease, if any, stays).
pub const FORGET_TOKEN: &str = "REMOVE #token, #expires_at";

/// [`TAKE_LEASE`] for `owner` until `until`, under [`LEASE_FREE`] at `now`.
pub fn take_lease(owner: &str, now: u64, until: u64) -> Expression {
    fixed(
        TAKE_LEASE,
        LEASE_FREE,
        [(":owner", s(owner)), (":now", n(now)), (":until", n(until))],
    )
}

/// [`PUT_TOKEN`] (unconditional: a fresh token always replaces the cached one).
pub fn put_token(token: &str, expires_at: u64, ttl: u64) -> Expression {
    fixed(
        PUT_TOKEN,
        "",
        [
            (":token", s(token)),
            (":exp", n(expires_at)),
            (":ttl", n(ttl)),
        ],
    )
}

/// [`DROP_LEASE`] under [`LEASE_HELD_BY`] `owner`.
pub fn release_lease(owner: &str) -> Expression {
    fixed(DROP_LEASE, LEASE_HELD_BY, [(":owner", s(owner))])
}

/// [`FORGET_TOKEN`] under [`TOKEN_IS`] `failed`.
pub fn invalidate(failed: &str) -> Expression {
    fixed(FORGET_TOKEN, TOKEN_IS, [(":failed", s(failed))])
}

// ---- composition ----

/// The clauses, all required (`a AND b AND …`).
pub fn all_of(clauses: &[&str]) -> String {
    clauses.join(" AND ")
}

/// The clause "attribute `name` is as read": `#name = :old_name` when it was present, else
/// `attribute_not_exists(#name)`.
pub fn unchanged(name: &str, present: bool) -> String {
    if present {
        format!("#{name} = :old_{name}")
    } else {
        format!("attribute_not_exists(#{name})")
    }
}

/// An expression whose every value is given (an unused one is a bug: checked in debug builds).
fn fixed<const N: usize>(
    update: &str,
    condition: &str,
    values: [(&str, AttributeValue); N],
) -> Expression {
    let e = build(
        update.to_owned(),
        condition.to_owned(),
        values.into_iter().map(|(p, v)| (p, Some(v))).collect(),
    );
    debug_assert_eq!(
        e.values.len(),
        N,
        "a value the expression does not use: {e:?}"
    );
    e
}

/// Builds an [`Expression`], keeping only the names and values that `update` and `condition` use
/// (`#name` stands for the attribute `name`).
pub fn build(
    update: String,
    condition: String,
    candidates: Vec<(&str, Option<AttributeValue>)>,
) -> Expression {
    let used = placeholders(&update)
        .into_iter()
        .chain(placeholders(&condition))
        .collect::<BTreeSet<_>>();
    let names = used
        .iter()
        .filter_map(|p| {
            p.strip_prefix('#')
                .map(|name| ((*p).to_owned(), name.to_owned()))
        })
        .collect();
    let values = candidates
        .into_iter()
        .filter(|(p, _)| used.contains(p))
        .filter_map(|(p, v)| v.map(|v| (p.to_owned(), v)))
        .collect();
    Expression {
        update,
        condition,
        names,
        values,
    }
}

/// The `#name` and `:value` placeholders in an expression (ours contain no string literals).
pub fn placeholders(expression: &str) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    let bytes = expression.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'#' || bytes[i] == b':' {
            let start = i;
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            if i > start + 1 {
                out.insert(&expression[start..i]);
            }
        } else {
            i += 1;
        }
    }
    out
}
