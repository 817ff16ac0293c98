//! Auto replies end to end through `kefu serve`: an admin turns them on, a user writes, the
//! processor queues a notice, the sender's consumer sends the greeting — and the away message
//! while no agent is online — through the send path, recorded with the reserved agent ids; a
//! second message in the same window sends nothing more; with an agent online only the greeting
//! goes out.

use std::time::{Duration, Instant};

use kefu::simulate::{Content, Push};
use serde_json::{Value, json};
use shared::ids::{ConversationKey, Platform};
use shared::ports::MessageStore;
use shared::protocol::{DataFormat, Mode};
use testkit::fake_platform::FakePlatform;

use crate::desk::{APP1, desk_server};
use crate::desk_work::admin;
use crate::helpers::TestEnv;

fn push(url: &str, from: &str) -> Push {
    Push {
        platform: Platform::Wechat,
        app_id: APP1.into(),
        url: url.into(),
        mode: Mode::Safe,
        format: DataFormat::Json,
        content: Content::Text("有人吗".into()),
        from: from.into(),
        repeat: 1,
    }
}

fn texts(fake: &FakePlatform, open_id: &str) -> Vec<String> {
    fake.sent_messages(open_id)
        .iter()
        .filter_map(|b| b["text"]["content"].as_str().map(str::to_owned))
        .collect()
}

/// Waits until the fake has `n` sends to `open_id` (10 s at most), then a little longer for any
/// that should not come.
async fn sends(fake: &FakePlatform, open_id: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while texts(fake, open_id).len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    texts(fake, open_id)
}

#[tokio::test]
async fn greeting_and_away_go_out_once_per_window_through_the_sender() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (pool, fake, server, api) = desk_server(&env).await;
    let ann = pool.user("ann").await;
    admin(&env, &ann).await;
    let ann_t = api.sign_in("ann").await;
    let settings = json!({
        "greeting": {"enabled": true, "text": "您好，这里是客服"},
        "away": {"enabled": true, "text": "客服暂时不在，稍后回复您"},
    });
    let (status, v) = api
        .call(
            "PUT",
            &format!("apps/wechat/{APP1}/settings"),
            Some(&ann_t),
            Some(settings),
        )
        .await;
    assert_eq!(status, 200, "{v}");

    // Nobody online: both, once.
    kefu::simulate::push(&TestEnv::registry(), &push(&server.url(), "oAuto1"))
        .await
        .unwrap();
    let got = sends(&fake, "oAuto1", 2).await;
    assert_eq!(got, ["您好，这里是客服", "客服暂时不在，稍后回复您"]);
    let key = ConversationKey {
        platform: Platform::Wechat,
        app_id: APP1.into(),
        open_id: "oAuto1".into(),
    };
    let messages = env.store.messages(&key, None).await.unwrap();
    let agents: Vec<Option<&str>> = messages
        .iter()
        .filter(|m| m.direction == shared::records::Direction::Out)
        .map(|m| m.agent.as_deref())
        .collect();
    assert_eq!(agents, [Some("auto-greeting"), Some("auto-away")]);
    let c = env.store.conversation(&key).await.unwrap().unwrap();
    assert_eq!(c.window.remaining, 3, "each spent a unit");

    // The same window: nothing more.
    kefu::simulate::push(&TestEnv::registry(), &push(&server.url(), "oAuto1"))
        .await
        .unwrap();
    assert_eq!(sends(&fake, "oAuto1", 3).await.len(), 2);

    // An agent online: another user gets the greeting only.
    let (status, _) = api
        .call(
            "POST",
            "me/status",
            Some(&ann_t),
            Some(json!({"status": "online"})),
        )
        .await;
    assert_eq!(status, 200);
    kefu::simulate::push(&TestEnv::registry(), &push(&server.url(), "oAuto2"))
        .await
        .unwrap();
    assert_eq!(sends(&fake, "oAuto2", 1).await, ["您好，这里是客服"]);
    let (_, view) = api
        .get(&format!("conversations/wechat/{APP1}/oAuto2"), &ann_t)
        .await;
    let out: Vec<&Value> = view["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out")
        .collect();
    assert_eq!(out.len(), 1, "{view}");
    assert_eq!(out[0]["agent"], "auto-greeting");
    server.stop().await;
}

#[tokio::test]
async fn an_inbound_image_is_kept_in_the_bucket_and_shown_by_a_signed_url() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (pool, fake, server, api) = desk_server(&env).await;
    let ann = pool.user("ann").await;
    admin(&env, &ann).await;
    let ann_t = api.sign_in("ann").await;
    let mut image = push(&server.url(), "oPicture1");
    image.content = Content::Image("http://mmbiz.qpic.cn/simulated.jpg".into());
    kefu::simulate::push(&TestEnv::registry(), &image)
        .await
        .unwrap();
    let conv = format!("conversations/wechat/{APP1}/oPicture1");
    let deadline = Instant::now() + Duration::from_secs(10);
    let shown = loop {
        let (status, v) = api.get(&conv, &ann_t).await;
        if status == 200
            && let Some(m) = v["messages"]
                .as_array()
                .and_then(|m| m.iter().find(|m| m["media_url"].is_string()))
        {
            break m.clone();
        }
        assert!(Instant::now() < deadline, "never kept: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(shown["msg_type"], "image");
    assert!(
        shown.get("stored_media").is_none(),
        "the bucket's key stays inside"
    );
    let url = shown["media_url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let got = reqwest::get(url).await.unwrap();
    assert_eq!(got.status(), 200);
    let media_id = fake
        .calls()
        .iter()
        .find_map(|c| c.body["media_id"].as_str().map(str::to_owned))
        .expect("media/get was called");
    assert!(media_id.starts_with("simulated-media-"));
    assert_eq!(
        got.bytes().await.unwrap().to_vec(),
        testkit::fake_platform::media::image_bytes(&media_id),
        "the platform's bytes, kept"
    );
    server.stop().await;
}
