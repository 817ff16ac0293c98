//! The desk's working routes through `kefu serve`, signed in against moto's Cognito: the page
//! served from the API's origin, the inbox poll, a conversation paged by cursor and marked read,
//! a reply through the sender's code (recorded with its agent, the window's remaining count going
//! down, refused with the reason once spent, refused to an agent who does not hold it), quick
//! replies (admins write, agents read), tags and the tag list. The idle sweep and polls after a
//! burst are `desk_idle`.

use std::time::{Duration, Instant};

use kefu::simulate::{Content, Push};
use serde_json::{Value, json};
use shared::desk::{Agent, AgentStatus, Role};
use shared::ids::{ConversationKey, Platform};
use shared::ports::MessageStore;
use shared::ports::desk::DeskStore;
use shared::protocol::{DataFormat, Mode};
use testkit::fake_platform::FakePlatform;

use crate::desk::{APP1, Api, Pool, desk_server, start};
use crate::helpers::TestEnv;

pub(crate) async fn admin(env: &TestEnv, id: &str) {
    env.store
        .put_agent(&Agent {
            id: id.to_owned(),
            name: "Ann".into(),
            apps: [(format!("wechat#{APP1}"), Role::Admin)].into(),
            capacity: 3,
            active: 0,
            auto_accept: false,
            status: AgentStatus::Offline,
            heartbeat_at: 0,
        })
        .await
        .unwrap();
}

pub(crate) fn push(url: &str, from: &str, text: &str) -> Push {
    Push {
        platform: Platform::Wechat,
        app_id: APP1.into(),
        url: url.into(),
        mode: Mode::Safe,
        format: DataFormat::Json,
        content: Content::Text(text.into()),
        from: from.into(),
        repeat: 1,
    }
}

/// Polls `path` as `token` until `done` holds (10 s at most).
pub(crate) async fn until(
    api: &Api,
    path: &str,
    token: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, v) = api.get(path, token).await;
        assert_eq!(status, 200, "{path}: {v}");
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {v}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

pub(crate) async fn send(api: &Api, conv: &str, token: &str, body: Value) -> (u16, Value) {
    api.call("POST", &format!("{conv}/messages"), Some(token), Some(body))
        .await
}

#[tokio::test]
async fn the_page_is_served_from_the_api_origin_with_a_strict_policy() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let pool = Pool::new(&env).await;
    let fake = FakePlatform::start().await.unwrap();
    let server = start(&env, &pool, &fake).await;
    let http = reqwest::Client::new();
    for (path, kind) in [
        ("/desk/", "text/html"),
        ("/desk/desk.js", "text/javascript"),
        ("/desk/desk.css", "text/css"),
    ] {
        let r = http
            .get(format!("{}{path}", server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        assert!(!r.text().await.unwrap().is_empty());
    }
    let r = http
        .get(format!("{}/desk/api/me", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the API still needs a token");
    server.stop().await;
}

#[tokio::test]
async fn an_agent_replies_through_the_sender_until_the_window_is_spent() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (pool, fake, server, api) = desk_server(&env).await;
    let (ann, bob) = (pool.user("ann").await, pool.user("bob").await);
    admin(&env, &ann).await;
    let ann_t = api.sign_in("ann").await;
    let bob_t = api.sign_in("bob").await;
    let (status, v) = api
        .put_member(APP1, &bob, &ann_t, json!({"name": "Bob", "role": "agent"}))
        .await;
    assert_eq!(status, 200, "{v}");

    kefu::simulate::push(&TestEnv::registry(), &push(&server.url(), "oWork1", "在吗"))
        .await
        .unwrap();
    let inbox = until(&api, "inbox", &bob_t, |v| {
        v["waiting"].as_array().is_some_and(|w| w.len() == 1)
    })
    .await;
    assert_eq!(inbox["apps"][0]["waiting_count"], 1, "{inbox}");
    assert_eq!(inbox["apps"][0]["role"], "agent");
    assert_eq!(inbox["mine"], json!([]));
    let conv = format!("conversations/wechat/{APP1}/oWork1");

    // Nobody holds it yet: a reply is refused, nothing is sent.
    let text = |content: &str, id: &str| json!({"msg_type": "text", "content": content, "client_msg_id": id});
    let (status, v) = send(&api, &conv, &bob_t, text("hello", "r0")).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (409, Some("not_yours")),
        "{v}"
    );
    assert!(fake.sent_messages("oWork1").is_empty());

    let (status, _) = api.post(&format!("{conv}/accept"), &bob_t).await;
    assert_eq!(status, 200);
    let (_, opened) = api.get(&conv, &bob_t).await;
    assert_eq!(opened["unread"], 0, "opening it marks it read: {opened}");
    let cursor = opened["cursor"].as_str().unwrap().to_owned();
    let stored = env
        .store
        .conversation(&ConversationKey {
            platform: Platform::Wechat,
            app_id: APP1.into(),
            open_id: "oWork1".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.unread, 0);

    // Ann (admin, not the holder) may not reply in Bob's conversation.
    let (status, v) = send(&api, &conv, &ann_t, text("hi", "a1")).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (409, Some("not_yours")),
        "{v}"
    );

    let (status, v) = send(
        &api,
        &conv,
        &bob_t,
        text("您好，请问有什么可以帮您？", "r1"),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["remaining"].as_u64()),
        (Some("sent"), Some(4)),
        "{v}"
    );
    // The same click again is the same send: answered again, not sent again.
    let (status, again) = send(
        &api,
        &conv,
        &bob_t,
        text("您好，请问有什么可以帮您？", "r1"),
    )
    .await;
    assert_eq!(
        (status, again["id"].clone()),
        (200, v["id"].clone()),
        "{again}"
    );
    assert_eq!(fake.sent_messages("oWork1").len(), 1);

    // The poll from the cursor has the reply — recorded in the same second as the acceptance,
    // so sorted before it — with Bob as its agent.
    let (_, newer) = api.get(&format!("{conv}?after={cursor}"), &bob_t).await;
    let out: Vec<&Value> = newer["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out")
        .collect();
    assert_eq!(out.len(), 1, "{newer}");
    assert_eq!(out[0]["agent"].as_str(), Some(bob.as_str()));
    assert_eq!(out[0]["content"], "您好，请问有什么可以帮您？");
    assert_eq!(newer["remaining"], 4);

    // A new user message shows up in the next poll.
    let cursor = newer["cursor"].as_str().unwrap().to_owned();
    kefu::simulate::push(&TestEnv::registry(), &push(&server.url(), "oWork1", "退款"))
        .await
        .unwrap();
    let newer = until(&api, &format!("{conv}?after={cursor}"), &bob_t, |v| {
        v["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["content"] == "退款"))
    })
    .await;
    let (status, v) = api.get(&format!("{conv}?after=%%%"), &bob_t).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("cursor_invalid")));

    // Spend the window: every unit, then the reason.
    let mut remaining = newer["remaining"].as_u64().unwrap();
    let mut n = 0;
    while remaining > 0 {
        n += 1;
        let (status, v) = send(&api, &conv, &bob_t, text("more", &format!("m{n}"))).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["remaining"].as_u64(), Some(remaining - 1));
        remaining -= 1;
    }
    let (status, v) = send(&api, &conv, &bob_t, text("one too many", "over")).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (429, Some("quota_exhausted")),
        "{v}"
    );
    let (_, view) = api.get(&conv, &bob_t).await;
    assert_eq!(
        (view["remaining"].as_u64(), view["refusal"].as_str()),
        (Some(0), Some("quota_exhausted"))
    );
    let (status, v) = send(
        &api,
        &conv,
        &bob_t,
        json!({"msg_type": "text", "content": "x", "client_msg_id": "bad id"}),
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("client_msg_id_invalid"))
    );
    // `kefu conversation show` names the agent of each reply.
    let key = ConversationKey {
        platform: Platform::Wechat,
        app_id: APP1.into(),
        open_id: "oWork1".into(),
    };
    let shown = kefu::conversation::show(env.store.as_ref(), &key, 0)
        .await
        .unwrap()
        .unwrap();
    let json = serde_json::to_value(&shown).unwrap();
    let out: Vec<&Value> = json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out")
        .collect();
    assert!(
        !out.is_empty() && out.iter().all(|m| m["agent"] == bob.as_str()),
        "{json}"
    );
    server.stop().await;
}

#[tokio::test]
async fn admins_keep_quick_replies_and_agents_tag_conversations() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (pool, _fake, server, api) = desk_server(&env).await;
    let (ann, bob) = (pool.user("ann").await, pool.user("bob").await);
    admin(&env, &ann).await;
    let ann_t = api.sign_in("ann").await;
    let bob_t = api.sign_in("bob").await;
    api.put_member(APP1, &bob, &ann_t, json!({"name": "Bob", "role": "agent"}))
        .await;
    let quick = format!("apps/wechat/{APP1}/quick-replies");
    let put = |token: &str, id: &str, body: Value| {
        let path = format!("{quick}/{id}");
        let token = token.to_owned();
        let api = &api;
        async move { api.call("PUT", &path, Some(&token), Some(body)).await }
    };
    let (status, v) = put(&ann_t, "greet", json!({"shortcut": "hi", "text": "您好！"})).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = put(&bob_t, "bye", json!({"shortcut": "bye", "text": "再见"})).await;
    assert_eq!((status, v["error"].as_str()), (403, Some("admin_only")));
    let (status, v) = put(&ann_t, "other", json!({"shortcut": "hi", "text": "dup"})).await;
    assert_eq!((status, v["error"].as_str()), (409, Some("shortcut_taken")));
    let (status, v) = put(&ann_t, "x", json!({"shortcut": "Bad Key", "text": "t"})).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("shortcut_invalid"))
    );
    let (status, v) = api.get(&quick, &bob_t).await;
    assert_eq!(status, 200);
    assert_eq!(
        v["quick_replies"],
        json!([{"id": "greet", "shortcut": "hi", "text": "您好！"}])
    );
    let (status, _) = api
        .call("DELETE", &format!("{quick}/greet"), Some(&ann_t), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = api
        .call("DELETE", &format!("{quick}/greet"), Some(&ann_t), None)
        .await;
    assert_eq!(status, 404);

    // Auto-reply settings: off by default, admins only.
    let settings = format!("apps/wechat/{APP1}/settings");
    let (_, v) = api.get(&settings, &bob_t).await;
    assert_eq!(v["greeting"]["enabled"], false, "{v}");
    let body = json!({"greeting": {"enabled": true, "text": "您好，客服马上来"}, "away": {"enabled": false, "text": ""}});
    let (status, _) = api
        .call("PUT", &settings, Some(&bob_t), Some(body.clone()))
        .await;
    assert_eq!(status, 403);
    let (status, v) = api
        .call("PUT", &settings, Some(&ann_t), Some(body.clone()))
        .await;
    assert_eq!((status, v.clone()), (200, body.clone()));
    let (_, v) = api.get(&settings, &bob_t).await;
    assert_eq!(v, body);

    // Tags, and the list of a tag.
    kefu::simulate::push(&TestEnv::registry(), &push(&server.url(), "oTag1", "发票"))
        .await
        .unwrap();
    let conv = format!("conversations/wechat/{APP1}/oTag1");
    until(&api, &format!("apps/wechat/{APP1}/waiting"), &bob_t, |v| {
        v["count"] == 1
    })
    .await;
    let tags_path = format!("{conv}/tags");
    let tags = |t: Value| api.call("PUT", &tags_path, Some(&bob_t), Some(json!({"tags": t})));
    let (status, v) = tags(json!(["vip", " 发票 ", "vip"])).await;
    assert_eq!(
        (status, v["tags"].clone()),
        (200, json!(["vip", "发票"])),
        "{v}"
    );
    let (_, v) = api
        .get(&format!("apps/wechat/{APP1}/tags/vip"), &bob_t)
        .await;
    assert_eq!(v["count"], 1, "{v}");
    assert_eq!(v["conversations"][0]["key"]["open_id"], "oTag1");
    let (status, v) = tags(json!(["发票"])).await;
    assert_eq!(status, 200, "{v}");
    let (_, v) = api
        .get(&format!("apps/wechat/{APP1}/tags/vip"), &bob_t)
        .await;
    assert_eq!(v["count"], 0, "untagged: {v}");
    let (status, v) = tags(json!(["a#b"])).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("tag_invalid")));
    server.stop().await;
}
