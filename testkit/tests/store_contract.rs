//! The `MessageStore` contract — exactly-once storage, the window rule for messages, events and
//! expired windows, read-back order, concurrent writers — run against both `InMemoryStore` and
//! `DynamoDbStore` on moto, so handler tests on the fake see what DynamoDB does.
//!
//! `memory::*` runs each scenario on the fake, `on_dynamodb::*` on moto (skipped without
//! `AWS_ENDPOINT_URL`). Run with the emulator:
//! `infra/local/with-moto.sh cargo test -p testkit --test store_contract`.
//! DynamoDB-only properties (request counts, the slow path) stay in `dynamodb_emulator.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Map;
use shared::ids::Platform;
use shared::message::{MessageBody, QueueEnvelope};
use shared::ports::{MessageStore, QuotaLedger, Reservation, StoreOutcome};
use shared::quota::Window;
use testkit::memory::InMemoryStore;

mod common;

use common::{H48, T0, enter_session, envelope, push, store, window};

/// Spends `units` of `env`'s window at `now`.
async fn spend<S: QuotaLedger>(s: &S, env: &QueueEnvelope<'_>, units: u32, now: u64) {
    let r = s
        .reserve(&env.key().conversation, units, now)
        .await
        .unwrap();
    assert!(matches!(r, Reservation::Reserved { .. }), "{r:?}");
}

/// A Baidu `debug_demo` event (no grant) at `t`.
fn debug_demo(open_id: &str, t: u64) -> QueueEnvelope<'static> {
    let body = MessageBody::Event {
        event: "debug_demo".into(),
        fields: Map::new(),
    };
    envelope(Platform::Baidu, open_id, t, t, None, body)
}

async fn counts<S: MessageStore>(s: &S, env: &QueueEnvelope<'_>) -> (u64, u64) {
    let c = s
        .conversation(&env.key().conversation)
        .await
        .unwrap()
        .unwrap();
    (c.unread, c.inbound_count)
}

/// The same envelope four times (platform retry, SQS redelivery): stored once, granted once.
async fn the_same_envelope_is_stored_once_and_granted_once<S: MessageStore + QuotaLedger>(s: &S) {
    let env = push("oDup", T0, T0, "42");
    assert_eq!(store(s, &env).await, StoreOutcome::Inserted);
    spend(s, &env, 1, T0 + 1).await;
    for _ in 0..3 {
        assert_eq!(store(s, &env).await, StoreOutcome::Duplicate);
    }
    let messages = s.messages(&env.key().conversation, None).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].content.as_deref(), Some("m42"));
    assert_eq!(
        window(s, &env).await,
        Window {
            remaining: 4,
            expires_at: T0 + H48
        }
    );
    assert_eq!(counts(s, &env).await, (1, 1));
}

/// Entering the session inside an open 5/48h window changes neither its units nor its expiry; the
/// next message refreshes it.
async fn enter_session_inside_an_open_window_keeps_it<S: MessageStore + QuotaLedger>(s: &S) {
    let first = push("oEnter", T0, T0, "10");
    assert_eq!(store(s, &first).await, StoreOutcome::Inserted);
    spend(s, &first, 2, T0 + 1).await;
    let enter = enter_session("oEnter", T0 + 10);
    assert_eq!(store(s, &enter).await, StoreOutcome::Inserted);
    assert_eq!(
        window(s, &first).await,
        Window {
            remaining: 3,
            expires_at: T0 + H48
        }
    );
    let key = first.key().conversation;
    let c = s.conversation(&key).await.unwrap().unwrap();
    assert_eq!(c.last_in_at, Some(T0 + 10));
    assert_eq!(c.last_in_preview.as_deref(), Some("[entered session]"));

    // Past the send horizon of the units spent at T0 + 1, a message's grant is whole.
    let next = push("oEnter", T0 + 100, T0 + 100, "11");
    assert_eq!(store(s, &next).await, StoreOutcome::Inserted);
    assert_eq!(store(s, &enter).await, StoreOutcome::Duplicate);
    assert_eq!(
        window(s, &first).await,
        Window {
            remaining: 5,
            expires_at: T0 + 100 + H48
        }
    );
    assert_eq!(counts(s, &first).await, (3, 3));
}

/// An event without a grant stores, newer or older, and leaves the window alone; alone it opens
/// a conversation with a closed window.
async fn an_event_without_grant_leaves_the_window<S: MessageStore + QuotaLedger>(s: &S) {
    let body = MessageBody::Text {
        content: "hi".into(),
    };
    let msg = envelope(Platform::Baidu, "oEvent", T0, T0, Some("b1"), body);
    assert_eq!(store(s, &msg).await, StoreOutcome::Inserted);
    spend(s, &msg, 3, T0 + 1).await;
    assert_eq!(
        store(s, &debug_demo("oEvent", T0 + 5)).await,
        StoreOutcome::Inserted
    );
    assert_eq!(
        store(s, &debug_demo("oEvent", T0 - 5)).await,
        StoreOutcome::Inserted
    );
    let c = s
        .conversation(&msg.key().conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.window,
        Window {
            remaining: 2,
            expires_at: T0 + H48
        }
    );
    assert_eq!(c.last_in_at, Some(T0 + 5));
    assert_eq!(c.last_in_preview.as_deref(), Some("[event debug_demo]"));
    assert_eq!((c.unread, c.inbound_count), (3, 3));

    let lone = debug_demo("oEventLone", T0);
    assert_eq!(store(s, &lone).await, StoreOutcome::Inserted);
    assert_eq!(window(s, &lone).await, Window::default());
    let messages = s.messages(&lone.key().conversation, None).await.unwrap();
    assert_eq!(
        (messages[0].msg_type.as_str(), messages[0].msg_id.as_ref()),
        ("event", None)
    );
}

/// After a window expires its units are gone: exactly the new grant applies.
async fn an_expired_window_gets_exactly_the_new_grant<S: MessageStore + QuotaLedger>(s: &S) {
    let old = push("oExpired", T0, T0, "e1");
    assert_eq!(store(s, &old).await, StoreOutcome::Inserted);
    spend(s, &old, 1, T0 + 1).await;
    let t1 = T0 + H48 + 10;
    assert_eq!(
        store(s, &enter_session("oExpired", t1)).await,
        StoreOutcome::Inserted
    );
    assert_eq!(
        window(s, &old).await,
        Window {
            remaining: 1,
            expires_at: t1 + 60
        }
    );
    let t2 = t1 + 3600;
    assert_eq!(
        store(s, &push("oExpired", t2, t2, "e2")).await,
        StoreOutcome::Inserted
    );
    assert_eq!(
        window(s, &old).await,
        Window {
            remaining: 5,
            expires_at: t2 + H48
        }
    );
}

/// Messages arriving out of order read back by `CreateTime`; the conversation shows the newest.
async fn out_of_order_delivery_reads_back_in_order<S: MessageStore>(s: &S) {
    for dt in [300, 100, 200] {
        let env = push("oOrder", T0 + dt, T0 + 300, &format!("{dt}"));
        assert_eq!(store(s, &env).await, StoreOutcome::Inserted);
    }
    let key = push("oOrder", T0, T0, "x").key().conversation;
    let messages = s.messages(&key, None).await.unwrap();
    let contents: Vec<_> = messages.iter().filter_map(|m| m.content.clone()).collect();
    assert_eq!(contents, ["m100", "m200", "m300"]);
    assert_eq!(s.messages(&key, Some(2)).await.unwrap(), messages[..2]);
    assert!(s.messages(&key, Some(0)).await.unwrap().is_empty());
    let c = s.conversation(&key).await.unwrap().unwrap();
    assert_eq!(c.last_in_at, Some(T0 + 300));
    assert_eq!(c.last_in_preview.as_deref(), Some("m300"));
    assert_eq!(c.window.expires_at, T0 + 300 + H48);
}

/// Twelve messages into one conversation at once, each twice: every one stored exactly once, the
/// window granted from the newest.
async fn concurrent_writers_store_each_message_once<S: MessageStore>(s: &S) {
    let envs: Vec<_> = (0..12)
        .map(|i| push("oConcurrent", T0 + i, T0 + 20, &format!("c{i}")))
        .collect();
    let writes = envs.iter().chain(envs.iter()).map(|e| store(s, e));
    let outcomes = futures_util::future::join_all(writes).await;
    let inserted = outcomes
        .iter()
        .filter(|o| **o == StoreOutcome::Inserted)
        .count();
    assert_eq!(inserted, 12, "{outcomes:?}");
    let key = envs[0].key().conversation;
    assert_eq!(s.messages(&key, None).await.unwrap().len(), 12);
    let c = s.conversation(&key).await.unwrap().unwrap();
    assert_eq!((c.inbound_count, c.last_in_at), (12, Some(T0 + 11)));
    assert_eq!(
        c.window,
        Window {
            remaining: 5,
            expires_at: T0 + 11 + H48
        }
    );
}

contract! {
    stored_once: the_same_envelope_is_stored_once_and_granted_once(InMemoryStore::new()),
    enter_session: enter_session_inside_an_open_window_keeps_it(InMemoryStore::new()),
    event_without_grant: an_event_without_grant_leaves_the_window(InMemoryStore::new()),
    expired_window: an_expired_window_gets_exactly_the_new_grant(InMemoryStore::new()),
    read_back_order: out_of_order_delivery_reads_back_in_order(InMemoryStore::new()),
    concurrent_writers: concurrent_writers_store_each_message_once(InMemoryStore::new()),
}
