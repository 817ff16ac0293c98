//! The local loop end to end against the emulator: an in-process `kefu serve` (ingress and sender
//! routes, queue poller into the processor) and the fake platform, driven the way a developer
//! does with `kefu simulate` and `kefu conversation show`.

use std::time::{Duration, Instant};

use kefu::conversation::{ConversationView, show};
use kefu::serve::{self, Running, Settings};
use kefu::simulate::{Content, Push, Pushed};
use serde_json::json;
use shared::ids::{ConversationKey, Platform};
use shared::protocol::{DataFormat, Mode};
use shared::records::Direction;
use testkit::fake_platform::FakePlatform;

use crate::helpers::TestEnv;

const WX: &str = "wxkefu0000000001";
const OPEN_ID: &str = "oE2eLocalLoopUser";
const TOKEN: &str = "e2e-local-token";

async fn start(env: &TestEnv, fake: &FakePlatform) -> Running {
    serve::start(Settings {
        port: 0,
        sdk: env.sdk.clone(),
        ingress: env.ingress_config(),
        processor: env.processor_config(),
        sender: env.sender_config(&fake.base_url()),
        desk: None,
        local_token: TOKEN.into(),
        poll_wait_secs: 1,
    })
    .await
    .unwrap()
}

fn push(url: &str, app_id: &str, format: DataFormat, content: Content, repeat: u32) -> Push {
    Push {
        platform: Platform::Wechat,
        app_id: app_id.into(),
        url: url.into(),
        mode: Mode::Safe,
        format,
        content,
        from: OPEN_ID.into(),
        repeat,
    }
}

async fn simulate(url: &str, content: Content, repeat: u32) -> Pushed {
    let push = push(url, WX, DataFormat::Json, content, repeat);
    let pushed = kefu::simulate::push(&TestEnv::registry(), &push)
        .await
        .unwrap();
    assert_eq!(pushed.deliveries.len(), repeat as usize);
    for d in &pushed.deliveries {
        assert_eq!((d.status, d.body.as_str()), (200, "success"));
    }
    pushed
}

fn key() -> ConversationKey {
    key_of(WX)
}

fn key_of(app_id: &str) -> ConversationKey {
    ConversationKey {
        platform: Platform::Wechat,
        app_id: app_id.into(),
        open_id: OPEN_ID.into(),
    }
}

/// Every inbound message read is counted by the conversation item: the processor's write is
/// visible whole. DynamoDB applies a transaction atomically; moto applies it item by item and
/// attribute by attribute, so a read may land between the message and its conversation update.
fn settled(v: &ConversationView) -> bool {
    let inbound = v.messages.iter().filter(|m| m.direction == Direction::In);
    v.inbound_count == inbound.count() as u64
}

/// `conversation show` once `done` holds and the view is [`settled`], polling for up to 15 s.
async fn show_when(env: &TestEnv, done: impl Fn(&ConversationView) -> bool) -> ConversationView {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let view = show(&*env.store, &key(), kefu::unix_now()).await.unwrap();
        if let Some(v) = view {
            if done(&v) && settled(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out; last view: {v:?}");
        }
        assert!(Instant::now() < deadline, "timed out; no conversation");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The queue is empty and nothing is in flight.
async fn drained(env: &TestEnv) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while env.depth(&env.queues.inbound).await > 0 {
        assert!(Instant::now() < deadline, "inbound queue not drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn simulate_store_reply_enter_session_and_replay() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let fake = FakePlatform::start().await.unwrap();
    let server = start(&env, &fake).await;
    let url = server.url();

    // A user message is stored once, with the 5 / 48 h grant from its CreateTime.
    let first = simulate(&url, Content::Text("你好 kefu 😀 e2e".into()), 1).await;
    let t = first.message.create_time;
    let msg_id = first.message.msg_id.clone().unwrap().0;
    let view = show_when(&env, |v| !v.messages.is_empty()).await;
    assert_eq!(view.messages.len(), 1, "{view:?}");
    let m = &view.messages[0];
    assert_eq!(m.direction, Direction::In);
    assert_eq!(m.msg_type, "text");
    assert_eq!(m.content.as_deref(), Some("你好 kefu 😀 e2e"));
    assert_eq!(m.msg_id.as_deref(), Some(msg_id.as_str()));
    assert_eq!(m.create_time, t);
    assert_eq!(
        (view.quota.remaining, view.quota.expires_at),
        (5, t + 172_800)
    );
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["quota"]["remaining"], 5);
    assert_eq!(json["messages"][0]["direction"], "in");
    assert_eq!(json["messages"][0]["msg_id"], msg_id.as_str());

    // Two replies through POST /messages with the bearer token; none without it.
    let http = shared::api::http_client(Duration::from_secs(2), Duration::from_secs(10)).unwrap();
    let reply = |content: &str| {
        json!({ "app_id": WX, "open_id": OPEN_ID, "msg_type": "text", "content": content })
            .to_string()
    };
    let denied = http
        .post(format!("{url}/messages"))
        .body(reply("no token"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 401);
    for content in ["reply one", "reply two"] {
        let resp = http
            .post(format!("{url}/messages"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body(reply(content))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert_eq!(status, 200, "{}", resp.text().await.unwrap());
    }
    let sent = fake.sent_messages(OPEN_ID);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0]["text"]["content"], "reply one");
    assert_eq!(sent[1]["text"]["content"], "reply two");
    let view = show_when(&env, |_| true).await;
    assert_eq!(
        (view.quota.remaining, view.quota.expires_at),
        (3, t + 172_800)
    );
    let out: Vec<_> = view
        .messages
        .iter()
        .filter(|m| m.direction == Direction::Out)
        .map(|m| m.content.as_deref())
        .collect();
    assert_eq!(out, [Some("reply one"), Some("reply two")]);

    // An enter-session event inside the 48 h window: stored, and the grant rule keeps the larger
    // window (remaining stays 3, expiry unchanged).
    simulate(&url, Content::EnterSession("e2e-button".into()), 1).await;
    let view = show_when(&env, |v| v.messages.iter().any(|m| m.msg_type == "event")).await;
    assert_eq!(
        (view.quota.remaining, view.quota.expires_at),
        (3, t + 172_800)
    );

    // A push replayed 4 times is stored once.
    let replayed = simulate(&url, Content::Text("replayed".into()), 4).await;
    let replay_id = replayed.message.msg_id.clone().unwrap().0;
    show_when(&env, |v| {
        v.messages
            .iter()
            .any(|m| m.msg_id.as_deref() == Some(replay_id.as_str()))
    })
    .await;
    drained(&env).await;
    let view = show_when(&env, |_| true).await;
    let copies = view
        .messages
        .iter()
        .filter(|m| m.msg_id.as_deref() == Some(replay_id.as_str()))
        .count();
    assert_eq!(copies, 1, "{view:?}");
    assert_eq!(view.inbound_count, 3, "{view:?}");
    assert_eq!(env.depth(&env.queues.dead_letter).await, 0);

    server.stop().await;
}

/// The app of `infra/local/apps.json` that hands user messages to WeChat's tool.
const HANDOFF_APP: &str = "wxkefu0000000002";

#[tokio::test]
async fn handoff_answers_a_transfer_the_platform_can_open_and_stores_the_message_once() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let fake = FakePlatform::start().await.unwrap();
    let server = start(&env, &fake).await;
    let url = server.url();
    let registry = TestEnv::registry();
    let mut ids = Vec::new();
    for format in [DataFormat::Json, DataFormat::Xml] {
        // Delivered twice, as a platform retry would: both answers are transfers, one copy stored.
        let p = push(
            &url,
            HANDOFF_APP,
            format,
            Content::Text(format!("转人工 {format:?}")),
            2,
        );
        let pushed = kefu::simulate::push(&registry, &p).await.unwrap();
        for d in &pushed.deliveries {
            assert_eq!(d.status, 200, "{}", d.body);
            assert!(d.acknowledged(), "{d:?}");
            assert!(
                !d.body.contains("transfer_customer_service"),
                "sealed in safe mode"
            );
            let plaintext = d.reply.clone().unwrap().unwrap();
            // CreateTime is the time of the answer; every other byte is fixed.
            let t: u64 = match format {
                DataFormat::Json => serde_json::from_str::<serde_json::Value>(&plaintext).unwrap()
                    ["CreateTime"]
                    .as_u64()
                    .unwrap(),
                DataFormat::Xml => plaintext
                    .split_once("<CreateTime>")
                    .and_then(|(_, rest)| rest.split_once("</CreateTime>"))
                    .unwrap()
                    .0
                    .parse()
                    .unwrap(),
            };
            assert!(t.abs_diff(kefu::unix_now()) < 60, "{plaintext}");
            let expected = shared::protocol::reply::transfer_customer_service(
                format,
                OPEN_ID,
                "gh_kefu00000002",
                t,
            );
            assert_eq!(Some(plaintext), expected);
        }
        ids.push(pushed.message.msg_id.clone().unwrap().0);
    }
    // An event is never transferred.
    let p = push(
        &url,
        HANDOFF_APP,
        DataFormat::Json,
        Content::EnterSession("b".into()),
        1,
    );
    let pushed = kefu::simulate::push(&registry, &p).await.unwrap();
    assert_eq!(pushed.deliveries[0].body, "success");
    assert!(pushed.deliveries[0].reply.is_none());

    drained(&env).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let view = loop {
        let v = show(&*env.store, &key_of(HANDOFF_APP), kefu::unix_now())
            .await
            .unwrap();
        if let Some(v) = v.filter(|v| v.messages.len() >= 3 && settled(v)) {
            break v;
        }
        assert!(Instant::now() < deadline, "not stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for id in &ids {
        let copies = view
            .messages
            .iter()
            .filter(|m| m.msg_id.as_deref() == Some(id.as_str()))
            .count();
        assert_eq!(copies, 1, "{view:?}");
    }
    assert_eq!(view.inbound_count, 3, "two texts and the event: {view:?}");
    assert_eq!(view.quota.remaining, 5, "kefu's window is granted as usual");
    server.stop().await;
}
