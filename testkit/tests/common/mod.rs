//! What the contract tests share: a `DynamoDbStore` on fresh moto tables, the `contract!` macro
//! that runs each generic scenario on an in-memory fake and on moto, and envelope builders.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::BehaviorVersion;
use shared::adapters::dynamodb::{DynamoDbStore, provision};
use shared::ids::{MsgId, Platform};
use shared::message::{InboundMessage, MessageBody, QueueEnvelope};
use shared::ports::{MessageStore, StoreOutcome};
use shared::protocol::{DataFormat, Mode};
use shared::quota::{QuotaPolicy, Window};
use testkit::emulator::OneAtATime;

/// The tables and queues as the template defines them.
pub const RESOURCES: &str = include_str!("../../../infra/local/resources.json");
/// Forty-eight hours, the message window.
pub const H48: u64 = 48 * 3600;
/// The scenarios' base time.
pub const T0: u64 = 1_700_000_000;

/// A table-name prefix no other test uses, or `None` (printing that the test is skipped) without
/// an emulator.
pub fn fresh_prefix() -> Option<String> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        println!("skipped: AWS_ENDPOINT_URL not set");
        return None;
    }
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Some(format!("c{nanos}-{}-", NEXT.fetch_add(1, Ordering::SeqCst)))
}

/// A `DynamoDbStore` on fresh tables, or `None` (printing why) without an emulator.
pub async fn dynamodb() -> Option<DynamoDbStore> {
    let prefix = fresh_prefix()?;
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .http_client(OneAtATime::new())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let tables = provision::create_tables(&client, RESOURCES, &prefix)
        .await
        .unwrap();
    Some(DynamoDbStore::new(client, tables))
}

/// `contract! { name: scenario(fake), … }` makes `memory::name` (the scenario on `fake`) and
/// `on_dynamodb::name` (on moto, skipped without `AWS_ENDPOINT_URL`).
#[macro_export]
macro_rules! contract {
    ($($name:ident: $scenario:ident($memory:expr)),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    $scenario(&$memory).await;
                }
            )*
        }
        mod on_dynamodb {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(store) = common::dynamodb().await {
                        $scenario(&store).await;
                    }
                }
            )*
        }
    };
}

/// An envelope for app `wx_app_1`, received `received` (Unix seconds) plus 5 ms.
pub fn envelope(
    platform: Platform,
    open_id: &str,
    create_time: u64,
    received: u64,
    msg_id: Option<&str>,
    body: MessageBody<'static>,
) -> QueueEnvelope<'static> {
    let message = InboundMessage {
        to_user_name: Some("gh_kefu".into()),
        from_user_name: open_id.to_owned().into(),
        create_time,
        msg_id: msg_id.map(|m| MsgId(m.into())),
        body,
    };
    QueueEnvelope::new(
        platform,
        "wx_app_1",
        received * 1000 + 5,
        Mode::Safe,
        DataFormat::Json,
        message,
    )
}

/// A WeChat text `m{msg_id}` created at `create_time`, received at `received`.
pub fn push(
    open_id: &str,
    create_time: u64,
    received: u64,
    msg_id: &str,
) -> QueueEnvelope<'static> {
    let content = format!("m{msg_id}");
    envelope(
        Platform::Wechat,
        open_id,
        create_time,
        received,
        Some(msg_id),
        MessageBody::Text {
            content: content.into(),
        },
    )
}

/// A WeChat `user_enter_tempsession` event at `t`.
pub fn enter_session(open_id: &str, t: u64) -> QueueEnvelope<'static> {
    envelope(
        Platform::Wechat,
        open_id,
        t,
        t,
        None,
        MessageBody::UserEnterTempSession {
            session_from: "button".into(),
        },
    )
}

/// Stores `env` with the grant the default policy gives it.
pub async fn store<S: MessageStore>(s: &S, env: &QueueEnvelope<'_>) -> StoreOutcome {
    let grant = QuotaPolicy::default().grant_for(env.platform, &env.message);
    s.store_inbound(env, grant).await.unwrap()
}

/// The window of `env`'s conversation (which must exist).
pub async fn window<S: MessageStore>(s: &S, env: &QueueEnvelope<'_>) -> Window {
    let key = env.key().conversation;
    s.conversation(&key).await.unwrap().unwrap().window
}
