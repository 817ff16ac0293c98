//! The desk's statistics through `kefu serve`: a user's messages, an accept, an agent's reply and
//! a refusal for quota are counted per app and agent for the day (China time), with the response
//! time; only an app's admins may read them.

use std::time::{Duration, Instant};

use kefu::simulate::{Content, Push};
use serde_json::json;
use shared::ids::Platform;
use shared::protocol::{DataFormat, Mode};

use crate::desk::{APP1, desk_server};
use crate::desk_work::admin;
use crate::helpers::TestEnv;

#[tokio::test]
async fn a_day_of_work_is_counted_per_app_and_agent() {
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
    let push = Push {
        platform: Platform::Wechat,
        app_id: APP1.into(),
        url: server.url(),
        mode: Mode::Safe,
        format: DataFormat::Json,
        content: Content::Text("我的订单".into()),
        from: "oStats1".into(),
        repeat: 1,
    };
    kefu::simulate::push(&TestEnv::registry(), &push)
        .await
        .unwrap();
    let conv = format!("conversations/wechat/{APP1}/oStats1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.get(&conv, &bob_t).await.0 != 200 {
        assert!(Instant::now() < deadline, "never stored");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(api.post(&format!("{conv}/accept"), &bob_t).await.0, 200);
    let reply =
        |id: &str| json!({"msg_type": "text", "content": "马上为您查询", "client_msg_id": id});
    let mut sent = 0;
    loop {
        let (status, v) = api
            .call(
                "POST",
                &format!("{conv}/messages"),
                Some(&bob_t),
                Some(reply(&format!("s{sent}"))),
            )
            .await;
        if status == 429 {
            assert_eq!(v["error"], "quota_exhausted", "{v}");
            break;
        }
        assert_eq!(status, 200, "{v}");
        sent += 1;
    }
    assert_eq!(sent, 5);

    let (status, v) = api
        .get(&format!("apps/wechat/{APP1}/stats?days=2"), &bob_t)
        .await;
    assert_eq!((status, v["error"].as_str()), (403, Some("admin_only")));
    let (status, v) = api
        .get(&format!("apps/wechat/{APP1}/stats?days=40"), &ann_t)
        .await;
    assert_eq!((status, v["error"].as_str()), (400, Some("days_invalid")));
    let (status, v) = api
        .get(&format!("apps/wechat/{APP1}/stats?days=2"), &ann_t)
        .await;
    assert_eq!(status, 200, "{v}");
    let days = v["days"].as_array().unwrap();
    assert_eq!(days.len(), 2);
    let today = &days[1];
    assert_eq!(
        today["date"],
        shared::desk::stats::day_of(shared::clock::Clock::now_secs(&shared::clock::SystemClock))
    );
    assert_eq!(
        (
            today["messages_in"].as_u64(),
            today["conversations"].as_u64(),
            today["messages_out"].as_u64(),
            today["refused_quota"].as_u64(),
        ),
        (Some(1), Some(1), Some(5), Some(1)),
        "{today}"
    );
    assert_eq!(
        today["first_response_p50_secs"], 10,
        "answered within 10 s: {today}"
    );
    let agents = today["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 1, "{today}");
    assert_eq!(agents[0]["agent"], bob.as_str());
    assert_eq!(
        (
            agents[0]["conversations"].as_u64(),
            agents[0]["messages_out"].as_u64()
        ),
        (Some(1), Some(5))
    );
    assert_eq!(days[0]["messages_in"], 0);

    // `kefu stats` reads the same, and prints it.
    let now = shared::clock::Clock::now_secs(&shared::clock::SystemClock);
    let read = desk::stats::read(env.store.as_ref(), Platform::Wechat, APP1, 2, now)
        .await
        .unwrap();
    assert_eq!(serde_json::to_value(&read).unwrap(), v["days"]);
    let mut text = Vec::new();
    kefu::commands::stats::render(&read, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("≤10s") && text.contains(&format!("agent {bob}: 1 conversations, 5 out")),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn kefu_desk_add_agent_puts_the_first_admin_in_place() {
    use kefu::commands::desk::{AddAgentArgs, add_agent};
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (pool, _fake, server, api) = desk_server(&env).await;
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&env.sdk);
    let args = AddAgentArgs {
        app: format!("wechat:{APP1}"),
        username: "first-admin".into(),
        email: Some("first@example.test".into()),
        name: Some("First Admin".into()),
        role: "admin".into(),
        capacity: Some(4),
        json: true,
    };
    let added = add_agent(&cognito, &pool.id, &env.store, &args)
        .await
        .unwrap();
    let password = added.temporary_password.clone().expect("a new user");
    // The first sign-in sets a new password, then the admin manages the app.
    let (status, first) = api
        .call(
            "POST",
            "session",
            None,
            Some(json!({"username": "first-admin", "password": password})),
        )
        .await;
    assert_eq!(
        (status, first["outcome"].as_str()),
        (200, Some("new_password_required")),
        "{first}"
    );
    let (_, signed) = api
        .call(
            "POST",
            "session/password",
            None,
            Some(json!({"username": "first-admin", "session": first["session"], "new_password": "Chosen-pass-789"})),
        )
        .await;
    let token = signed["access_token"].as_str().unwrap().to_owned();
    let (status, me) = api.get("me", &token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        me["apps"],
        json!([{"app": format!("wechat#{APP1}"), "role": "admin"}])
    );
    assert_eq!(
        (me["name"].as_str(), me["capacity"].as_u64()),
        (Some("First Admin"), Some(4))
    );
    let (status, _) = api.get(&format!("apps/wechat/{APP1}/agents"), &token).await;
    assert_eq!(status, 200);
    // Again, for another app role: the user is kept, the app added, no new password.
    let again = add_agent(
        &cognito,
        &pool.id,
        &env.store,
        &AddAgentArgs {
            app: "baidu:kefu-baidu-0001".into(),
            role: "agent".into(),
            ..args.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (again.id.as_str(), again.temporary_password.as_deref()),
        (added.id.as_str(), None)
    );
    assert_eq!(again.agent.apps.len(), 2);
    let bad = add_agent(
        &cognito,
        &pool.id,
        &env.store,
        &AddAgentArgs {
            app: "qq:x".into(),
            ..args
        },
    )
    .await
    .unwrap_err();
    assert!(bad.to_string().contains("platform:app_id"), "{bad}");
    server.stop().await;
}

#[tokio::test]
async fn a_greeting_is_not_the_agents_response() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (pool, fake, server, api) = desk_server(&env).await;
    let ann = pool.user("ann").await;
    admin(&env, &ann).await;
    let ann_t = api.sign_in("ann").await;
    let settings = json!({"greeting": {"enabled": true, "text": "您好"}, "away": {"enabled": false, "text": ""}});
    let (status, _) = api
        .call(
            "PUT",
            &format!("apps/wechat/{APP1}/settings"),
            Some(&ann_t),
            Some(settings),
        )
        .await;
    assert_eq!(status, 200);
    let push = Push {
        platform: Platform::Wechat,
        app_id: APP1.into(),
        url: server.url(),
        mode: Mode::Safe,
        format: DataFormat::Json,
        content: Content::Text("在吗".into()),
        from: "oGreeted1".into(),
        repeat: 1,
    };
    kefu::simulate::push(&TestEnv::registry(), &push)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.sent_messages("oGreeted1").is_empty() {
        assert!(Instant::now() < deadline, "no greeting");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let conv = format!("conversations/wechat/{APP1}/oGreeted1");
    assert_eq!(api.post(&format!("{conv}/accept"), &ann_t).await.0, 200);
    let (status, v) = api
        .call(
            "POST",
            &format!("{conv}/messages"),
            Some(&ann_t),
            Some(json!({"msg_type": "text", "content": "我来了", "client_msg_id": "g1"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (_, v) = api
        .get(&format!("apps/wechat/{APP1}/stats?days=1"), &ann_t)
        .await;
    let today = &v["days"][0];
    assert_eq!(
        today["first_response_p50_secs"], 10,
        "the agent's reply counts, not the greeting: {today}"
    );
    assert_eq!(today["messages_out"], 2, "{today}");
    server.stop().await;
}
