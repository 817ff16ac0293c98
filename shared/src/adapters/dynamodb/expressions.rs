//! DynamoDB expressions of the store: the dedupe condition, the conversation update of the fast
//! path and of the compare-and-set slow path, and the messages query — each documented once, here.
//!
//! Not here: the rule itself. The ledger a grant produces is [`Ledger::apply_grant`]; the fast-path
//! condition only admits the states in which "SET to the new values" equals that rule.
//!
//! Convention: every attribute is referenced through the placeholder `#name` (some names, like
//! `status`, are DynamoDB reserved words), and [`Expression`] sends exactly the names and values its
//! strings use (DynamoDB rejects unused ones).

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use super::items::{self, ConversationState, n, s};
use crate::message::ConversationKey;
use crate::quota::{Grant, Ledger, Window};

/// Condition of the message Put: the message item does not exist yet. This is the dedupe.
pub const MESSAGE_IS_NEW: &str = "attribute_not_exists(#pk)";

/// Condition of the replay item's Put: this (nonce, timestamp) is new, or was seen with the same
/// body (a platform retry). Another body under a seen nonce and timestamp is a forged replay.
pub const REPLAY_IS_NEW_OR_SAME: &str = "attribute_not_exists(#pk) OR #digest = :digest";

/// Key condition of the messages query: one conversation (`:pk`), in `sk` order.
pub const MESSAGES_OF_CONVERSATION: &str = "#pk = :pk";

/// Always-written conversation attributes; `status` and `created_at` only when first created.
pub const SET_COMMON: &str = "#platform = :platform, #app_id = :app_id, #open_id = :open_id, \
     #status = if_not_exists(#status, :open), #created_at = if_not_exists(#created_at, :now), \
     #updated_at = :now";

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
     (#remaining = :n AND #expires_at <= :exp)))";

/// Fast-path condition without a grant: the item is new, or this message is the newest.
pub const FAST_CONDITION_NO_GRANT: &str =
    "attribute_not_exists(#pk) OR attribute_not_exists(#last_in_at) OR #last_in_at <= :t";

/// Slow-path condition when the conversation was absent when read.
pub const CAS_ABSENT: &str = "attribute_not_exists(#pk)";

/// One complete expression set for an `Update`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    /// `UpdateExpression`.
    pub update: String,
    /// `ConditionExpression`.
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
            format!("SET {SET_COMMON}, {SET_LAST_IN}, {window} {ADD_COUNTERS}{generation}"),
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
        let mut set = vec![SET_COMMON];
        if newest {
            set.push(SET_LAST_IN);
        }
        set.push(if target.is_some() {
            SET_WINDOW
        } else {
            KEEP_WINDOW
        });

        let mut condition = vec!["attribute_exists(#pk)"];
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
            .map(|(name, value)| match value {
                Some(_) => format!("#{name} = :old_{name}"),
                None => format!("attribute_not_exists(#{name})"),
            })
            .collect();
        condition.extend(clauses.iter().map(String::as_str));
        let generation = if target.is_some() { ADD_GENERATION } else { "" };
        self.finish(
            format!("SET {} {ADD_COUNTERS}{generation}", set.join(", ")),
            condition.join(" AND "),
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
            (":open", Some(s(items::STATUS_OPEN))),
            (":now", Some(n(self.now))),
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

/// The `ExpressionAttributeNames` for an expression that only uses `#pk`.
pub fn pk_names() -> HashMap<String, String> {
    HashMap::from([("#pk".to_owned(), items::PK.to_owned())])
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Platform;

    const H48: u64 = 48 * 3600;

    fn key() -> ConversationKey {
        ConversationKey {
            platform: Platform::Wechat,
            app_id: "wx1".into(),
            open_id: "oUser".into(),
        }
    }

    fn update(key: &ConversationKey, grant: Option<Grant>) -> InboundUpdate<'_> {
        InboundUpdate {
            key,
            t: 1000,
            preview: "hi",
            msg_type: "text",
            now: 5000,
            grant,
        }
    }

    /// Every placeholder used has a value or name, and nothing unused is sent.
    fn assert_complete(e: &Expression) {
        let used: BTreeSet<&str> = placeholders(&e.update)
            .into_iter()
            .chain(placeholders(&e.condition))
            .collect();
        let sent: BTreeSet<&str> = e
            .names
            .keys()
            .chain(e.values.keys())
            .map(String::as_str)
            .collect();
        assert_eq!(used, sent, "{e:#?}");
        for (p, name) in &e.names {
            assert_eq!(&p[1..], name);
        }
    }

    #[test]
    fn fast_path_sets_the_granted_window_under_the_documented_condition() {
        let k = key();
        let e = update(&k, Some(Grant::new(5, H48))).fast();
        assert_complete(&e);
        assert_eq!(e.condition, FAST_CONDITION_GRANT);
        assert_eq!(
            e.update,
            "SET #platform = :platform, #app_id = :app_id, #open_id = :open_id, \
             #status = if_not_exists(#status, :open), #created_at = if_not_exists(#created_at, :now), \
             #updated_at = :now, #last_in_at = :t, #last_in_preview = :preview, #last_in_type = :type, \
             #remaining = :n, #expires_at = :exp, #grant_at = :t, #spent = :spent \
             ADD #unread :one, #inbound_count :one, #grant_gen :one"
        );
        assert_eq!(e.values[":spent"], n(0));
        assert_eq!(e.values[":n"], n(5));
        assert_eq!(e.values[":exp"], n(1000 + H48));
        assert_eq!(e.names["#status"], "status");
    }

    #[test]
    fn fast_path_without_grant_keeps_the_window() {
        let k = key();
        let e = update(&k, None).fast();
        assert_complete(&e);
        assert_eq!(e.condition, FAST_CONDITION_NO_GRANT);
        assert!(e.update.contains(KEEP_WINDOW));
        assert!(!e.values.contains_key(":n") && !e.values.contains_key(":exp"));
    }

    #[test]
    fn compare_and_set_targets_apply_grant_and_compares_what_it_read() {
        // GIVEN an open 5/48h window with 3 left, and a newer enter-session (1/60)
        let k = key();
        let old = ConversationState {
            remaining: Some(3),
            expires_at: Some(900 + H48),
            last_in_at: Some(900),
            grant_at: Some(900),
            generation: Some(4),
            spent: Some(2),
            spent_at: Some(950),
        };
        let e = update(&k, Some(Grant::new(1, 60))).compare_and_set(Some(&old));
        assert_complete(&e);
        // THEN the window is the rule's (the 2 units spent at 950 predate the action at 1000, so
        // the count restarts), and the condition compares every attribute the rule read
        assert_eq!(e.values[":n"], n(3));
        assert_eq!(e.values[":exp"], n(900 + H48));
        assert_eq!(e.values[":spent"], n(0));
        assert_eq!(
            e.condition,
            "attribute_exists(#pk) AND #remaining = :old_remaining AND \
             #expires_at = :old_expires_at AND #grant_at = :old_grant_at AND \
             #grant_gen = :old_grant_gen AND #spent = :old_spent AND #spent_at = :old_spent_at AND \
             #last_in_at = :old_last_in_at"
        );
        assert!(e.update.contains(SET_LAST_IN));
        assert!(e.update.ends_with(ADD_GENERATION), "{}", e.update);
        assert_eq!(e.values[":old_last_in_at"], n(900));
    }

    #[test]
    fn compare_and_set_keeps_newer_last_in_and_checks_absent_attributes() {
        let k = key();
        let old = ConversationState {
            remaining: None,
            expires_at: None,
            last_in_at: Some(2000),
            grant_at: None,
            generation: None,
            spent: None,
            spent_at: None,
        };
        let e = update(&k, Some(Grant::new(5, H48))).compare_and_set(Some(&old));
        assert_complete(&e);
        assert!(!e.update.contains("#last_in_preview"), "{}", e.update);
        assert_eq!(
            e.condition,
            "attribute_exists(#pk) AND attribute_not_exists(#remaining) AND \
             attribute_not_exists(#expires_at) AND attribute_not_exists(#grant_at) AND \
             attribute_not_exists(#grant_gen) AND attribute_not_exists(#spent) AND \
             attribute_not_exists(#spent_at) AND #last_in_at = :old_last_in_at"
        );
        assert_eq!(e.values[":n"], n(5));

        // Without a grant the window is neither written nor compared.
        let e = update(&k, None).compare_and_set(Some(&old));
        assert_complete(&e);
        assert_eq!(
            e.condition,
            "attribute_exists(#pk) AND #last_in_at = :old_last_in_at"
        );
        assert!(e.update.contains(KEEP_WINDOW));

        // An absent item is created as on the fast path.
        let e = update(&k, Some(Grant::new(5, H48))).compare_and_set(None);
        assert_complete(&e);
        assert_eq!(e.condition, CAS_ABSENT);
    }

    #[test]
    fn a_grant_not_newer_than_the_stored_one_leaves_the_window_alone() {
        // GIVEN a window set by a grant at 2000 and spent, and a late message from 1000
        let k = key();
        let old = ConversationState {
            remaining: Some(0),
            expires_at: Some(2000 + H48),
            last_in_at: Some(2000),
            grant_at: Some(2000),
            generation: Some(1),
            spent: Some(5),
            spent_at: Some(2001),
        };
        let e = update(&k, Some(Grant::new(5, H48))).compare_and_set(Some(&old));
        assert_complete(&e);
        // THEN the window is neither written nor compared, and no generation is added
        assert!(e.update.contains(KEEP_WINDOW), "{}", e.update);
        assert!(!e.update.contains("#grant_gen"), "{}", e.update);
        assert_eq!(
            e.condition,
            "attribute_exists(#pk) AND #last_in_at = :old_last_in_at"
        );
    }

    #[test]
    fn finds_placeholders() {
        let p = placeholders("#a = :t, #b = if_not_exists(#b, :type) ADD #c :one");
        assert_eq!(
            p.into_iter().collect::<Vec<_>>(),
            ["#a", "#b", "#c", ":one", ":t", ":type"]
        );
    }
}
