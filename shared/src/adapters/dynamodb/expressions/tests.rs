//! Tests of the expressions: each sends exactly the names and values it uses, and each reads the
//! documented attributes.

use super::*;
use crate::ids::Platform;

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
         #created_at = if_not_exists(#created_at, :now), #updated_at = :now, #active_at = :now, \
         #status = if_not_exists(#status, :waiting), #list = if_not_exists(#list, :waiting_list), \
         #list_at = if_not_exists(#list_at, :now_ms), #last_in_at = :t, #last_in_preview = :preview, #last_in_type = :type, \
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
        closed: false,
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
        "attribute_exists(#pk) AND (attribute_not_exists(#list) OR #list <> :closed_list) AND #remaining = :old_remaining AND \
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
        closed: false,
    };
    let e = update(&k, Some(Grant::new(5, H48))).compare_and_set(Some(&old));
    assert_complete(&e);
    assert!(!e.update.contains("#last_in_preview"), "{}", e.update);
    assert_eq!(
        e.condition,
        "attribute_exists(#pk) AND (attribute_not_exists(#list) OR #list <> :closed_list) AND attribute_not_exists(#remaining) AND \
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
        "attribute_exists(#pk) AND (attribute_not_exists(#list) OR #list <> :closed_list) AND #last_in_at = :old_last_in_at"
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
        closed: false,
    };
    let e = update(&k, Some(Grant::new(5, H48))).compare_and_set(Some(&old));
    assert_complete(&e);
    // THEN the window is neither written nor compared, and no generation is added
    assert!(e.update.contains(KEEP_WINDOW), "{}", e.update);
    assert!(!e.update.contains("#grant_gen"), "{}", e.update);
    assert_eq!(
        e.condition,
        "attribute_exists(#pk) AND (attribute_not_exists(#list) OR #list <> :closed_list) AND #last_in_at = :old_last_in_at"
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

/// Every constant expression of the adapter.
const ALL: &[&str] = &[
    MESSAGE_IS_NEW,
    REPLAY_IS_NEW_OR_SAME,
    MESSAGES_OF_CONVERSATION,
    SET_COMMON,
    SET_LAST_IN,
    SET_WINDOW,
    ADD_GENERATION,
    KEEP_WINDOW,
    ADD_COUNTERS,
    FAST_CONDITION_GRANT,
    FAST_CONDITION_NO_GRANT,
    CAS_ABSENT,
    CONVERSATION_EXISTS,
    RESERVE_CONDITION,
    RESERVE_UPDATE,
    SAME_GENERATION,
    NO_GENERATION_YET,
    RELEASE_UPDATE,
    EXHAUST_UPDATE,
    CLOSE_CONDITION,
    CLOSE_UPDATE,
    SET_LAST_OUT,
    IDEM_CLAIMABLE,
    START_SENDING,
    COMPLETE,
    LEASE_FREE,
    TAKE_LEASE,
    PUT_TOKEN,
    LEASE_HELD_BY,
    DROP_LEASE,
    TOKEN_IS,
    FORGET_TOKEN,
];

#[test]
fn every_name_placeholder_is_an_attribute_of_the_schema() {
    use super::items::*;
    let attributes = [
        PK,
        SK,
        TTL,
        DIRECTION,
        MSG_TYPE,
        CREATE_TIME,
        RECEIVED_AT_MS,
        MODE,
        MSG_ID,
        CONTENT,
        MEDIA,
        RAW,
        TRUNCATED,
        DIGEST,
        STATUS,
        ERRCODE,
        PARTS,
        PARTS_SENT,
        PLATFORM,
        APP_ID,
        OPEN_ID,
        REMAINING,
        EXPIRES_AT,
        GRANT_AT,
        SPENT,
        SPENT_AT,
        GENERATION,
        LAST_IN_AT,
        LAST_IN_PREVIEW,
        LAST_IN_TYPE,
        ASSIGNEE,
        ASSIGNED_AT,
        LIST,
        LIST_AT,
        ACTIVE_AT,
        TAGS,
        CREATED_AT,
        UPDATED_AT,
        UNREAD,
        INBOUND_COUNT,
        LAST_OUT_AT,
        TOKEN,
        LEASE_OWNER,
        LEASE_UNTIL,
        STATE,
        FINGERPRINT,
        RESPONSE,
    ];
    for expression in ALL {
        for p in placeholders(expression) {
            if let Some(name) = p.strip_prefix('#') {
                assert!(attributes.contains(&name), "{p} in {expression:?}");
            }
        }
        // Attributes are never named bare: every name goes through its placeholder.
        for word in expression
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '#' || c == ':'))
        {
            assert!(
                !attributes.contains(&word),
                "bare attribute {word} in {expression:?}"
            );
        }
    }
}

#[test]
fn the_ports_expressions_send_exactly_what_they_use() {
    let all = [
        message_is_new(),
        replay_is_new_or_same("d"),
        messages_of("wechat#wx1#o"),
        reserve(1, 10, 20),
        release(1, 0),
        release(1, 3),
        exhaust(0),
        exhaust(3),
        close_window(10, 0),
        close_window(10, 3),
        last_out(10, false),
        last_out(10, true),
        claimable("fp", 10),
        start_sending(),
        complete("{}"),
        take_lease("a", 10, 20),
        put_token("t", 10, 20),
        release_lease("a"),
        invalidate("t"),
    ];
    for e in &all {
        assert_complete(e);
        assert!(!(e.update.is_empty() && e.condition.is_empty()), "{e:?}");
    }
}

#[test]
fn ledger_writes_are_conditioned_on_their_generation() {
    let e = release(2, 0);
    assert_eq!(
        e.condition,
        "attribute_exists(#pk) AND attribute_not_exists(#grant_gen)"
    );
    assert!(!e.values.contains_key(":gen"));
    let e = close_window(10, 4);
    assert_eq!(e.update, CLOSE_UPDATE);
    assert_eq!(e.condition, "#expires_at > :now AND #grant_gen = :gen");
    assert_eq!(e.values[":gen"], n(4));
    assert_eq!(reserve(1, 10, 20).condition, RESERVE_CONDITION);
}
