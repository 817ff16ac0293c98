//! `DynamoDbStore` against a DynamoDB emulator (moto), what only DynamoDB has: the exact item
//! attributes (messages, media ids), the request count of the fast and slow paths, concurrent
//! delivery through moto, and corrupt items. The behaviour it shares with the in-memory fakes is in
//! `store_contract.rs`, `ledger_contract.rs` and `media_contract.rs`.
//!
//! Each test skips itself (prints `skipped: AWS_ENDPOINT_URL not set`) without an emulator, so plain
//! `cargo test` stays green. Run: `infra/local/with-moto.sh cargo test -p testkit --test
//! dynamodb_emulator`. Every test creates its own tables (unique prefix) from
//! `infra/local/resources.json`. Not here: the sender's quota consumption (simulated by raw updates).
//!
//! moto runs concurrent `TransactWriteItems` without isolation, and rolls a cancelled one back by
//! restoring whole-table snapshots, which erases writes other requests made meanwhile. DynamoDB
//! makes every request atomic, so the test client lets one HTTP request reach moto at a time
//! ([`OneAtATime`]); concurrent `store_inbound` calls still interleave between their requests,
//! which is where the compare-and-set races are.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextMut;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
use aws_smithy_runtime_api::client::interceptors::context::Error as ErasedError;
use aws_smithy_runtime_api::client::orchestrator::OrchestratorError;
use shared::adapters::dynamodb::{DynamoDbStore, Tables, provision};
use shared::ids::{MsgId, Platform};
use shared::message::{InboundMessage, MessageBody, QueueEnvelope};
use shared::ports::{AccessTokenCache, MediaIdCache, MessageStore, StoreError, StoreOutcome};
use shared::protocol::{DataFormat, Mode};
use shared::quota::{Grant, QuotaPolicy, Window};
use shared::records::Direction;
use testkit::emulator::OneAtATime;

mod common;

use common::{RESOURCES, fresh_prefix};

const H48: u64 = 48 * 3600;
const T0: u64 = 1_700_000_000;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Counts SDK executions (operations) and HTTP attempts, with the operation of each attempt.
#[derive(Debug, Clone, Default)]
struct RequestCounter {
    executions: Arc<AtomicUsize>,
    attempts: Arc<Mutex<Vec<String>>>,
}

impl RequestCounter {
    fn reset(&self) {
        self.executions.store(0, Ordering::SeqCst);
        self.attempts.lock().unwrap().clear();
    }

    /// (operations executed, operation name of every HTTP request sent).
    fn take(&self) -> (usize, Vec<String>) {
        let out = (
            self.executions.load(Ordering::SeqCst),
            self.attempts.lock().unwrap().clone(),
        );
        self.reset();
        out
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.executions.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // `X-Amz-Target: DynamoDB_20120810.TransactWriteItems`
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("?");
        let op = target.rsplit('.').next().unwrap_or(target).to_owned();
        self.attempts.lock().unwrap().push(op);
        Ok(())
    }
}

/// Removes the `Item` from every cancellation reason of `TransactWriteItems`, to exercise the
/// store's fallback for an endpoint that does not return `ALL_OLD` items (moto and DynamoDB do).
#[derive(Debug)]
struct StripReasonItems;

impl Intercept for StripReasonItems {
    fn name(&self) -> &'static str {
        "StripReasonItems"
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Err(err)) = context.output_or_error_mut() else {
            return Ok(());
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) = err
            .as_operation_error()
            .and_then(|e| e.downcast_ref::<TransactWriteItemsError>())
        else {
            return Ok(());
        };
        let reasons = cancel
            .cancellation_reasons()
            .iter()
            .map(|r| {
                CancellationReason::builder()
                    .set_code(r.code().map(str::to_owned))
                    .set_message(r.message().map(str::to_owned))
                    .build()
            })
            .collect();
        let stripped = TransactionCanceledException::builder()
            .set_message(cancel.message().map(str::to_owned))
            .set_cancellation_reasons(Some(reasons))
            .build();
        *err = OrchestratorError::operation(ErasedError::erase(
            TransactWriteItemsError::TransactionCanceledException(stripped),
        ));
        Ok(())
    }
}

struct Fixture {
    store: DynamoDbStore,
    tables: Tables,
    requests: RequestCounter,
}

impl Fixture {
    fn client(&self) -> &Client {
        self.store.client()
    }

    /// Simulates the sender: sets the conversation's `remaining` directly.
    async fn set_remaining(&self, env: &QueueEnvelope<'_>, remaining: u32) {
        self.client()
            .update_item()
            .table_name(&self.tables.conversations)
            .key("pk", AttributeValue::S(env.key().conversation.to_string()))
            .update_expression("SET remaining = :r")
            .expression_attribute_values(":r", AttributeValue::N(remaining.to_string()))
            .send()
            .await
            .unwrap();
    }

    async fn window(&self, env: &QueueEnvelope<'_>) -> Window {
        self.store
            .conversation(&env.key().conversation)
            .await
            .unwrap()
            .expect("conversation exists")
            .window
    }

    /// Stores `env` with the grant the default policy gives it.
    async fn store(&self, env: &QueueEnvelope<'_>) -> StoreOutcome {
        self.store
            .store_inbound(
                env,
                QuotaPolicy::default().grant_for(env.platform, &env.message),
            )
            .await
            .unwrap()
    }
}

/// A client for the emulator and fresh tables, or `None` (test skipped) without `AWS_ENDPOINT_URL`.
async fn fixture() -> Option<Fixture> {
    fixture_with(false).await
}

/// As [`fixture`]; `strip_reason_items` installs [`StripReasonItems`].
async fn fixture_with(strip_reason_items: bool) -> Option<Fixture> {
    let prefix = fresh_prefix()?;

    let sdk_config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let requests = RequestCounter::default();
    let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk_config)
        .interceptor(requests.clone())
        .http_client(OneAtATime::new());
    if strip_reason_items {
        config = config.interceptor(StripReasonItems);
    }
    let client = Client::from_conf(config.build());
    let tables = provision::create_tables(&client, RESOURCES, &prefix)
        .await
        .unwrap();
    // Idempotent: a second run finds the tables and the TTL in place.
    assert_eq!(
        provision::create_tables(&client, RESOURCES, &prefix)
            .await
            .unwrap(),
        tables
    );
    requests.reset();
    Some(Fixture {
        store: DynamoDbStore::new(client, tables.clone()),
        tables,
        requests,
    })
}

fn envelope(
    platform: Platform,
    open_id: &str,
    t: u64,
    msg_id: Option<&str>,
    body: MessageBody<'static>,
) -> QueueEnvelope<'static> {
    let message = InboundMessage {
        to_user_name: Some("gh_kefu".into()),
        from_user_name: open_id.to_owned().into(),
        create_time: t,
        msg_id: msg_id.map(|m| MsgId(m.into())),
        body,
    };
    QueueEnvelope::new(
        platform,
        "wx_app_1",
        t * 1000 + 17,
        Mode::Safe,
        DataFormat::Xml,
        message,
    )
}

fn text(open_id: &str, t: u64, msg_id: &str, content: &str) -> QueueEnvelope<'static> {
    envelope(
        Platform::Wechat,
        open_id,
        t,
        Some(msg_id),
        MessageBody::Text {
            content: content.to_owned().into(),
        },
    )
}

fn enter_session(open_id: &str, t: u64) -> QueueEnvelope<'static> {
    envelope(
        Platform::Wechat,
        open_id,
        t,
        None,
        MessageBody::UserEnterTempSession {
            session_from: "contact-button".into(),
        },
    )
}

#[tokio::test]
async fn stores_a_new_text_message_exactly_and_opens_a_five_message_window() {
    let Some(fx) = fixture().await else { return };
    // GIVEN a text with a MsgId above 2^53 and untrimmed, non-ASCII content
    let env = text(
        "oUser1",
        T0,
        "18446744073709551000",
        " 你好，\n客服 \"quoted\" ",
    );
    let key = env.key();

    // WHEN it is stored
    let outcome = fx.store(&env).await;

    // THEN the message item is exact and the conversation has a fresh 5/48h window
    assert_eq!(outcome, StoreOutcome::Inserted);
    let messages = fx.store.messages(&key.conversation, None).await.unwrap();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.position, key.position);
    assert_eq!(m.direction, Direction::In);
    assert_eq!(m.msg_type, "text");
    assert_eq!(m.create_time, T0);
    assert_eq!(m.msg_id.as_deref(), Some("18446744073709551000"));
    assert_eq!(m.content.as_deref(), Some(" 你好，\n客服 \"quoted\" "));
    assert_eq!(
        (m.media.as_ref(), m.status.as_ref(), m.errcode),
        (None, None, None)
    );
    assert_eq!(
        m.raw.as_deref(),
        Some(serde_json::to_string(&env.message).unwrap().as_str())
    );
    let raw: InboundMessage<'static> = serde_json::from_str(m.raw.as_deref().unwrap()).unwrap();
    assert_eq!(raw, env.message);

    let c = fx
        .store
        .conversation(&key.conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.key.as_ref(), Some(&key.conversation));
    assert_eq!(
        c.window,
        Window {
            remaining: 5,
            expires_at: T0 + 172_800
        }
    );
    assert_eq!((c.unread, c.inbound_count), (1, 1));
    assert_eq!(c.last_in_at, Some(T0));
    assert_eq!(
        c.last_in_preview.as_deref(),
        Some(" 你好，\n客服 \"quoted\" ")
    );
    assert_eq!(
        (c.status.as_str(), c.assignee.as_deref()),
        ("waiting", None)
    );

    // The raw item carries the documented attributes.
    let item = fx
        .client()
        .get_item()
        .table_name(&fx.tables.conversations)
        .key("pk", AttributeValue::S(key.conversation.to_string()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    for (name, value) in [
        ("platform", "wechat"),
        ("app_id", "wx_app_1"),
        ("open_id", "oUser1"),
        ("last_in_type", "text"),
        ("status", "waiting"),
        ("list", "wechat#wx_app_1#waiting"),
    ] {
        assert_eq!(item[name], AttributeValue::S(value.into()), "{name}");
    }
    for name in ["created_at", "updated_at", "list_at", "active_at"] {
        assert!(matches!(&item[name], AttributeValue::N(_)), "{name}");
    }
}

#[tokio::test]
async fn stores_an_empty_text_as_an_empty_string() {
    let Some(fx) = fixture().await else { return };
    let env = text("oEmpty", T0, "7", "");
    assert_eq!(fx.store(&env).await, StoreOutcome::Inserted);
    let messages = fx
        .store
        .messages(&env.key().conversation, None)
        .await
        .unwrap();
    assert_eq!(messages[0].content.as_deref(), Some(""));
}

#[tokio::test]
async fn a_new_message_on_the_fast_path_takes_exactly_one_request() {
    let Some(fx) = fixture().await else { return };
    // WHEN a first message, a newer one and a duplicate are stored
    let first = text("oUser3", T0, "1", "a");
    let newer = text("oUser3", T0 + 5, "2", "b");
    let mut counts = Vec::new();
    for env in [&first, &newer, &newer] {
        fx.store(env).await;
        counts.push(fx.requests.take());
    }

    // THEN each is one TransactWriteItems and nothing else
    let one = (1, vec!["TransactWriteItems".to_owned()]);
    assert_eq!(counts, [one.clone(), one.clone(), one]);
}

#[tokio::test]
async fn enter_session_inside_an_open_window_keeps_remaining_and_expiry() {
    let Some(fx) = fixture().await else { return };
    // GIVEN a 5/48h window with 3 left
    let msg = text("oUser4", T0, "10", "first");
    assert_eq!(fx.store(&msg).await, StoreOutcome::Inserted);
    fx.set_remaining(&msg, 3).await;
    fx.requests.reset();

    // WHEN the user enters the session (grant 1/60) ten seconds later
    let enter = enter_session("oUser4", T0 + 10);
    assert_eq!(
        QuotaPolicy::default().grant_for(Platform::Wechat, &enter.message),
        Some(Grant::new(1, 60))
    );
    assert_eq!(fx.store(&enter).await, StoreOutcome::Inserted);
    let (executions, attempts) = fx.requests.take();

    // THEN the window is unchanged (slow path), and the event is the newest inbound
    assert_eq!(
        fx.window(&msg).await,
        Window {
            remaining: 3,
            expires_at: T0 + H48
        }
    );
    println!("slow path: {executions} operations, requests {attempts:?}");
    assert!(
        attempts == ["TransactWriteItems", "TransactWriteItems"]
            || attempts == ["TransactWriteItems", "GetItem", "TransactWriteItems"],
        "{attempts:?}"
    );
    let c = fx
        .store
        .conversation(&msg.key().conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.last_in_at, Some(T0 + 10));
    assert_eq!(c.last_in_preview.as_deref(), Some("[entered session]"));

    // AND a following message still stores and refreshes the window
    let next = text("oUser4", T0 + 20, "11", "second");
    assert_eq!(fx.store(&next).await, StoreOutcome::Inserted);
    assert_eq!(fx.store(&enter).await, StoreOutcome::Duplicate);
    let c = fx
        .store
        .conversation(&msg.key().conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.window,
        Window {
            remaining: 5,
            expires_at: T0 + 20 + H48
        }
    );
    assert_eq!((c.unread, c.inbound_count), (3, 3));
}

#[tokio::test]
async fn without_the_old_item_in_the_cancellation_the_slow_path_reads_it_once() {
    let Some(fx) = fixture_with(true).await else {
        return;
    };
    // GIVEN an open 5/48h window with 3 left, and cancellation reasons without items
    let msg = text("oUser10", T0, "20", "first");
    assert_eq!(fx.store(&msg).await, StoreOutcome::Inserted);
    fx.set_remaining(&msg, 3).await;
    fx.requests.reset();

    // WHEN an older message arrives (not the newest: the fast-path condition fails)
    let older = text("oUser10", T0 - 100, "19", "older");
    assert_eq!(fx.store(&older).await, StoreOutcome::Inserted);

    // THEN the slow path read the conversation with one GetItem, left the window alone (the
    // older message's grant is not newer than the stored one: 3 left stay 3) and kept the newest
    // message
    let (_, attempts) = fx.requests.take();
    assert_eq!(
        attempts,
        ["TransactWriteItems", "GetItem", "TransactWriteItems"]
    );
    let c = fx
        .store
        .conversation(&msg.key().conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.window,
        Window {
            remaining: 3,
            expires_at: T0 + H48
        }
    );
    assert_eq!(c.last_in_preview.as_deref(), Some("first"));
    assert_eq!((c.unread, c.inbound_count), (2, 2));
    assert_eq!(fx.store(&older).await, StoreOutcome::Duplicate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_messages_into_one_conversation_all_store() {
    let Some(fx) = fixture().await else { return };
    let store = Arc::new(fx.store.clone());
    // GIVEN 30 distinct messages, created in an order unrelated to their arrival
    let envelopes: Vec<_> = (0..30u64)
        .map(|i| {
            let dt = (i * 7) % 30;
            text("oUser6", T0 + dt, &format!("c{dt}"), &format!("n{dt}"))
        })
        .collect();

    // WHEN they are stored concurrently
    let tasks: Vec<_> = envelopes
        .iter()
        .cloned()
        .map(|env| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let grant = QuotaPolicy::default().grant_for(env.platform, &env.message);
                store.store_inbound(&env, grant).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }

    // THEN all are inserted, counted once, and the conversation shows the newest
    let outcomes: Vec<_> = outcomes.into_iter().map(|o| o.unwrap()).collect();
    assert_eq!(outcomes, [StoreOutcome::Inserted; 30]);
    let (executions, _) = fx.requests.take();
    println!("30 concurrent messages: {executions} operations");
    let key = envelopes[0].key().conversation;
    let c = fx.store.conversation(&key).await.unwrap().unwrap();
    assert_eq!((c.inbound_count, c.unread), (30, 30));
    assert_eq!(c.last_in_at, Some(T0 + 29));
    assert_eq!(c.last_in_preview.as_deref(), Some("n29"));
    assert_eq!(
        c.window,
        Window {
            remaining: 5,
            expires_at: T0 + 29 + H48
        }
    );
    let messages = fx.store.messages(&key, None).await.unwrap();
    let times: Vec<_> = messages.iter().map(|m| m.create_time).collect();
    assert_eq!(times, (0..30).map(|dt| T0 + dt).collect::<Vec<_>>());
}

#[tokio::test]
async fn missing_conversations_are_none_and_corrupt_items_name_the_attribute() {
    let Some(fx) = fixture().await else { return };
    let env = text("oUser9", T0, "z1", "x");
    let key = env.key().conversation;
    assert_eq!(fx.store.conversation(&key).await.unwrap(), None);
    assert!(fx.store.messages(&key, None).await.unwrap().is_empty());

    // GIVEN a conversation with a newer message whose remaining is a string (the newer
    // last_in_at sends the store to the slow path without comparing remaining: moto, unlike
    // DynamoDB, fails a comparison of S with N with a TypeError instead of evaluating it false)
    fx.client()
        .put_item()
        .table_name(&fx.tables.conversations)
        .item("pk", AttributeValue::S(key.to_string()))
        .item("remaining", AttributeValue::S("five".into()))
        .item("last_in_at", AttributeValue::N((T0 + 1).to_string()))
        .send()
        .await
        .unwrap();
    // THEN reading it, or storing into it under a grant, names the attribute
    let err = fx.store.conversation(&key).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { reason, .. } if reason.contains("remaining")),
        "{err}"
    );
    let err = fx
        .store
        .store_inbound(&env, Some(Grant::new(5, H48)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { reason, .. } if reason.contains("remaining")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_media_id_is_its_own_item_beside_the_apps_token() {
    let Some(fx) = fixture().await else { return };
    let w = Platform::Wechat;
    fx.store
        .put_token(w, "wxM", "TOKEN", T0 + 7200, "owner")
        .await
        .unwrap();
    fx.requests.reset();
    fx.store
        .put_media_id(w, "wxM", "ab12", "MEDIA_1", T0 + 1000)
        .await
        .unwrap();
    // One PutItem: no lease to drop, no token expression.
    assert_eq!(fx.requests.take(), (1, vec!["PutItem".to_owned()]));
    let tokens = fx.tables.tokens.as_deref().unwrap();
    let item = fx
        .client()
        .get_item()
        .table_name(tokens)
        .key("pk", AttributeValue::S("media#wechat#wxM#ab12".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the media item under its own prefix");
    let n = |v: u64| AttributeValue::N(v.to_string());
    assert_eq!(item["media"], AttributeValue::S("MEDIA_1".into()));
    assert_eq!(
        (&item["expires_at"], &item["ttl"]),
        (&n(T0 + 1000), &n(T0 + 1000))
    );
    assert_eq!(item.len(), 4, "{item:?}");
    // The app's token is untouched, and the media id is no token.
    let token = fx.store.get_token(w, "wxM").await.unwrap().unwrap();
    assert_eq!(
        (token.token.expose(), token.expires_at),
        ("TOKEN", T0 + 7200)
    );
    assert_eq!(fx.store.get_token(w, "wxM#media#ab12").await.unwrap(), None);
    assert_eq!(
        fx.store
            .get_media_id(w, "wxM", "ab12", T0)
            .await
            .unwrap()
            .as_deref(),
        Some("MEDIA_1")
    );
}
