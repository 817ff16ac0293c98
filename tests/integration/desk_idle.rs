//! The idle sweep through `kefu serve` and the store: a conversation nobody touched for 30 minutes
//! goes back to waiting (recorded as the system's), one the agent keeps answering does not, and a
//! poll after a burst of more than a page still holds the newest message and reports the hole.

use serde_json::{Value, json};
use shared::ids::{ConversationKey, Platform};

use crate::desk::{APP1, desk_server};
use crate::desk_work::{admin, push, send, until};
use crate::helpers::TestEnv;

#[tokio::test]
async fn the_idle_sweep_hands_back_what_nobody_touched_for_thirty_minutes() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (pool, _fake, server, api) = desk_server(&env).await;
    let ann = pool.user("ann").await;
    admin(&env, &ann).await;
    let ann_t = api.sign_in("ann").await;
    kefu::simulate::push(
        &TestEnv::registry(),
        &push(&server.url(), "oIdle1", "hello"),
    )
    .await
    .unwrap();
    until(&api, &format!("apps/wechat/{APP1}/waiting"), &ann_t, |v| {
        v["count"] == 1
    })
    .await;
    let conv = format!("conversations/wechat/{APP1}/oIdle1");
    let (status, _) = api.post(&format!("{conv}/accept"), &ann_t).await;
    assert_eq!(status, 200);
    let now = shared::clock::Clock::now_secs(&shared::clock::SystemClock);

    // 29 minutes on: nothing is idle yet.
    let early = shared::clock::FixedClock::at_secs(now + 29 * 60);
    let swept = desk::sweep::sweep(env.store.as_ref(), &early)
        .await
        .unwrap();
    assert_eq!((swept.agents, swept.released), (1, 0), "{swept:?}");
    // 31 minutes on: it goes back to waiting, recorded as the system's idle release.
    let late = shared::clock::FixedClock::at_secs(now + 31 * 60);
    let swept = desk::sweep::sweep(env.store.as_ref(), &late).await.unwrap();
    assert_eq!(swept.released, 1, "{swept:?}");
    let (_, v) = api.get(&conv, &ann_t).await;
    assert_eq!(
        (v["status"].as_str(), v["assignee"].clone()),
        (Some("waiting"), Value::Null),
        "{v}"
    );
    let last = v["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["msg_type"].as_str(), last["agent"].as_str()),
        (Some("idle_released"), Some("system"))
    );
    let (_, me) = api.get("me", &ann_t).await;
    assert_eq!(me["active"], 0, "the slot is free again: {me}");
    let swept = desk::sweep::sweep(env.store.as_ref(), &late).await.unwrap();
    assert_eq!(
        (swept.agents, swept.released),
        (0, 0),
        "nothing left to sweep"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_conversation_the_agent_keeps_answering_is_not_idle() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (pool, _fake, server, api) = desk_server(&env).await;
    let ann = pool.user("ann").await;
    admin(&env, &ann).await;
    let ann_t = api.sign_in("ann").await;
    kefu::simulate::push(
        &TestEnv::registry(),
        &push(&server.url(), "oBusy1", "hello"),
    )
    .await
    .unwrap();
    until(&api, &format!("apps/wechat/{APP1}/waiting"), &ann_t, |v| {
        v["count"] == 1
    })
    .await;
    let conv = format!("conversations/wechat/{APP1}/oBusy1");
    assert_eq!(api.post(&format!("{conv}/accept"), &ann_t).await.0, 200);
    let now = shared::clock::Clock::now_secs(&shared::clock::SystemClock);
    // The user wrote 25 minutes ago and has only read since; the agent answers now.
    env.store
        .client()
        .update_item()
        .table_name(&env.store.tables().conversations)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("wechat#{APP1}#oBusy1")),
        )
        .update_expression("SET active_at = :t")
        .expression_attribute_values(
            ":t",
            aws_sdk_dynamodb::types::AttributeValue::N((now - 25 * 60).to_string()),
        )
        .send()
        .await
        .unwrap();
    let (status, v) = send(
        &api,
        &conv,
        &ann_t,
        json!({"msg_type": "text", "content": "still here", "client_msg_id": "b1"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    // Ten minutes on, the user's last message is 35 minutes old but the reply only 10.
    let later = shared::clock::FixedClock::at_secs(now + 10 * 60);
    let swept = desk::sweep::sweep(env.store.as_ref(), &later)
        .await
        .unwrap();
    assert_eq!(swept.released, 0, "{swept:?}");
    let (_, v) = api.get(&conv, &ann_t).await;
    assert_eq!(v["status"], "active", "{v}");
    server.stop().await;
}

#[tokio::test]
async fn a_poll_after_a_burst_still_holds_the_newest_message() {
    use shared::ports::OutboundStore;
    use shared::ports::desk_notes::{DeskNotes, Page};
    use shared::records::{OutboundRecord, OutboundStatus};
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let key = ConversationKey {
        platform: Platform::Wechat,
        app_id: APP1.into(),
        open_id: "oBurst".into(),
    };
    let t0 = 1_800_000_000;
    for i in 0..130u64 {
        env.store
            .record_outbound(&OutboundRecord {
                key: key.clone(),
                id: format!("{:04}", i),
                sent_at: t0 + i,
                msg_type: "text".into(),
                content: Some(format!("m{i}")),
                media: None,
                status: OutboundStatus::Sent,
                errcode: None,
                parts: 1,
                parts_sent: 1,
                agent: None,
            })
            .await
            .unwrap();
    }
    // The page last saw m9; 120 more came within ten minutes.
    let (seen, _) = env.store.page(&key, Page::Latest(130)).await.unwrap();
    let cursor = seen[9].position.clone();
    let (page, more) = env
        .store
        .page(&key, Page::Recent(&cursor, 100))
        .await
        .unwrap();
    assert_eq!(page.len(), 100);
    assert_eq!(
        page.last().unwrap().content.as_deref(),
        Some("m129"),
        "the newest is there"
    );
    assert!(
        more && page[0].position > cursor,
        "and the hole is reported"
    );
}
