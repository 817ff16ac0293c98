//! The desk's API through `kefu serve`, signed in against moto's Cognito (users it creates, tokens
//! it issues, its JWKS): sign-in with the first-time password change, who may see and do what
//! (401 without a valid token, 404 for another app's conversations, 403 for a non-admin managing
//! agents or a user who is no agent), and a simulated user message waiting, accepted by one agent
//! and refused to the next, with the send readiness in every view.

use std::time::{Duration, Instant};

use aws_sdk_cognitoidentityprovider::types::{AttributeType, ExplicitAuthFlowsType};
use kefu::serve::{self, Running, Settings};
use kefu::simulate::{Content, Push};
use serde_json::{Value, json};
use shared::desk::{Agent, AgentStatus, Role};
use shared::ids::Platform;
use shared::ports::desk::DeskStore;
use shared::protocol::{DataFormat, Mode};
use testkit::fake_platform::FakePlatform;

use crate::helpers::TestEnv;

pub(crate) const APP1: &str = "wxkefu0000000001";
pub(crate) const APP2: &str = "wxkefu0000000002";
const TEMP: &str = "Temp-pass-123";

pub(crate) struct Pool {
    pub(crate) id: String,
    client_id: String,
    cognito: aws_sdk_cognitoidentityprovider::Client,
}

impl Pool {
    pub(crate) async fn new(env: &TestEnv) -> Pool {
        let cognito = aws_sdk_cognitoidentityprovider::Client::new(&env.sdk);
        let id = cognito
            .create_user_pool()
            .pool_name(format!("desk-{}", kefu::random_hex(4).unwrap()))
            .send()
            .await
            .unwrap()
            .user_pool()
            .and_then(|p| p.id())
            .unwrap()
            .to_owned();
        let client_id = cognito
            .create_user_pool_client()
            .user_pool_id(&id)
            .client_name("desk-page")
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
            .send()
            .await
            .unwrap()
            .user_pool_client()
            .and_then(|c| c.client_id())
            .unwrap()
            .to_owned();
        Pool {
            id,
            client_id,
            cognito,
        }
    }

    /// Creates the user with a temporary password; returns its `sub`.
    pub(crate) async fn user(&self, name: &str) -> String {
        self.cognito
            .admin_create_user()
            .user_pool_id(&self.id)
            .username(name)
            .temporary_password(TEMP)
            .user_attributes(
                AttributeType::builder()
                    .name("email")
                    .value(format!("{name}@example.test"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let user = self
            .cognito
            .admin_get_user()
            .user_pool_id(&self.id)
            .username(name)
            .send()
            .await
            .unwrap();
        user.user_attributes()
            .iter()
            .find(|a| a.name() == "sub")
            .and_then(|a| a.value())
            .unwrap()
            .to_owned()
    }
}

pub(crate) async fn start(env: &TestEnv, pool: &Pool, fake: &FakePlatform) -> Running {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let desk = desk::Config {
        send: env.sender_config(&fake.base_url()),
        tables: env.store.tables().clone(),
        user_pool_id: pool.id.clone(),
        audience: desk::auth::jwt::Audience {
            issuer: format!("https://cognito-idp.us-east-1.amazonaws.com/{}", pool.id),
            client_id: pool.client_id.clone(),
        },
        jwks_url: format!(
            "{}/{}/.well-known/jwks.json",
            endpoint.trim_end_matches('/'),
            pool.id
        ),
    };
    serve::start(Settings {
        port: 0,
        sdk: env.sdk.clone(),
        ingress: env.ingress_config(),
        processor: env.processor_config(),
        sender: env.sender_config(&fake.base_url()),
        desk: Some(desk),
        local_token: "desk-test-token".into(),
        poll_wait_secs: 1,
    })
    .await
    .unwrap()
}

/// A desk on `kefu serve` for `env`: the user pool, the fake platform, the server, its API.
pub(crate) async fn desk_server(env: &TestEnv) -> (Pool, FakePlatform, Running, Api) {
    let pool = Pool::new(env).await;
    let fake = FakePlatform::start().await.unwrap();
    let server = start(env, &pool, &fake).await;
    let api = Api {
        http: reqwest::Client::new(),
        url: server.url(),
    };
    (pool, fake, server, api)
}

pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
}

impl Api {
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}/desk/api/{path}", self.url);
        let mut req = match method {
            "GET" => self.http.get(url),
            "PUT" => self.http.put(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url),
        };
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("GET", path, Some(token), None).await
    }

    pub(crate) async fn post(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("POST", path, Some(token), None).await
    }

    /// `PUT apps/wechat/{app}/agents/{id}` with `body`, as `token`.
    pub(crate) async fn put_member(
        &self,
        app: &str,
        id: &str,
        token: &str,
        body: Value,
    ) -> (u16, Value) {
        self.call(
            "PUT",
            &format!("apps/wechat/{app}/agents/{id}"),
            Some(token),
            Some(body),
        )
        .await
    }

    /// Signs in with the temporary password, sets a new one, returns the access token.
    pub(crate) async fn sign_in(&self, user: &str) -> String {
        let (status, first) = self
            .call(
                "POST",
                "session",
                None,
                Some(json!({"username": user, "password": TEMP})),
            )
            .await;
        assert_eq!(
            (status, first["outcome"].as_str()),
            (200, Some("new_password_required")),
            "{first}"
        );
        let (status, signed) = self
            .call(
                "POST",
                "session/password",
                None,
                Some(json!({"username": user, "session": first["session"], "new_password": "New-pass-456"})),
            )
            .await;
        assert_eq!(status, 200, "{signed}");
        assert_eq!(signed["outcome"], "tokens");
        let (status, again) = self
            .call(
                "POST",
                "session",
                None,
                Some(json!({"username": user, "password": "New-pass-456"})),
            )
            .await;
        assert_eq!(
            (status, again["outcome"].as_str()),
            (200, Some("tokens")),
            "{again}"
        );
        again["access_token"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn agents_sign_in_see_only_their_apps_and_one_of_them_wins_an_accept() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let (pool, _fake, server, api) = desk_server(&env).await;
    let (ann, bob, cat, _dan) = (
        pool.user("ann").await,
        pool.user("bob").await,
        pool.user("cat").await,
        pool.user("dan").await,
    );
    // The first admin is put in place the way an operator does (no one could add them).
    env.store
        .put_agent(&Agent {
            id: ann.clone(),
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
    let ann_t = api.sign_in("ann").await;
    let bob_t = api.sign_in("bob").await;
    let dan_t = api.sign_in("dan").await;

    // Wrong password, no token, a forged token.
    let (status, v) = api
        .call(
            "POST",
            "session",
            None,
            Some(json!({"username": "ann", "password": "nope"})),
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("sign_in_refused"))
    );
    assert_eq!(api.call("GET", "me", None, None).await.0, 401);
    let mut forged = ann_t.clone();
    forged.insert(forged.len() - 2, 'x');
    let (status, v) = api.get("me", &forged).await;
    assert_eq!(status, 401, "{v}");
    // Signed in but no agent: 403.
    let (status, v) = api.get("me", &dan_t).await;
    assert_eq!((status, v["error"].as_str()), (403, Some("not_an_agent")));

    // Ann (admin of app 1) adds Bob to app 1 and Cat to app 1 as well, then Bob tries to manage.
    let (status, v) = api
        .put_member(
            APP1,
            &bob,
            &ann_t,
            json!({"name": "Bob", "role": "agent", "capacity": 1}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = api
        .put_member(APP1, &cat, &bob_t, json!({"name": "Cat", "role": "agent"}))
        .await;
    assert_eq!((status, v["error"].as_str()), (403, Some("admin_only")));
    // An admin of app 1 is nobody in app 2: 404, as if app 2 did not exist.
    let (status, _) = api
        .put_member(APP2, &cat, &ann_t, json!({"name": "Cat", "role": "agent"}))
        .await;
    assert_eq!(status, 404);
    let (status, v) = api.get(&format!("apps/wechat/{APP1}/agents"), &ann_t).await;
    assert_eq!(status, 200);
    assert_eq!(v["agents"].as_array().unwrap().len(), 2, "{v}");

    // Cat already serves app 2 (put there by an operator). Ann may add her to app 1, but not
    // change what Cat is everywhere, nor learn about app 2.
    env.store
        .put_agent(&Agent {
            id: cat.clone(),
            name: "Cat".into(),
            apps: [(format!("wechat#{APP2}"), Role::Agent)].into(),
            capacity: 4,
            active: 0,
            auto_accept: false,
            status: AgentStatus::Offline,
            heartbeat_at: 0,
        })
        .await
        .unwrap();
    let (status, v) = api
        .put_member(
            APP1,
            &cat,
            &ann_t,
            json!({"name": "Cat", "role": "agent", "capacity": 1}),
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (403, Some("shared_agent")),
        "{v}"
    );
    let (status, v) = api
        .put_member(APP1, &cat, &ann_t, json!({"name": "Cat", "role": "agent"}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["apps"],
        json!([{"app": format!("wechat#{APP1}"), "role": "agent"}]),
        "app 2 not shown"
    );
    assert_eq!(v["capacity"], 4);

    // A user writes; the conversation appears on app 1's waiting list.
    let push = Push {
        platform: Platform::Wechat,
        app_id: APP1.into(),
        url: server.url(),
        mode: Mode::Safe,
        format: DataFormat::Json,
        content: Content::Text("我要退款".into()),
        from: "oDeskUser1".into(),
        repeat: 1,
    };
    kefu::simulate::push(&TestEnv::registry(), &push)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let waiting = loop {
        let (status, v) = api
            .get(&format!("apps/wechat/{APP1}/waiting"), &bob_t)
            .await;
        assert_eq!(status, 200, "{v}");
        if v["count"] == 1 {
            break v;
        }
        assert!(Instant::now() < deadline, "never waiting: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let c = &waiting["conversations"][0];
    assert_eq!(c["last_in_preview"], "我要退款");
    assert_eq!(
        (c["remaining"].as_u64(), c["refusal"].clone()),
        (Some(5), Value::Null)
    );
    assert_eq!(c["status"], "waiting");
    let conv = format!("conversations/wechat/{APP1}/oDeskUser1");
    // Another app's agent cannot read it, nor learn it exists.
    let (status, _) = api
        .get(&format!("conversations/wechat/{APP2}/oDeskUser1"), &bob_t)
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .get(&format!("apps/wechat/{APP2}/waiting"), &bob_t)
        .await;
    assert_eq!(status, 404);

    // Bob accepts; Ann's accept is refused with 409 taken; Bob is at capacity for the next one.
    let (status, v) = api.post(&format!("{conv}/accept"), &bob_t).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["assignee"].as_str()),
        (Some("active"), Some(bob.as_str()))
    );
    let (status, v) = api.post(&format!("{conv}/accept"), &ann_t).await;
    assert_eq!((status, v["error"].as_str()), (409, Some("taken")));
    let (status, v) = api.get("me/conversations", &bob_t).await;
    assert_eq!((status, v["count"].as_u64()), (200, Some(1)), "{v}");
    let (status, v) = api
        .get(&format!("apps/wechat/{APP1}/waiting"), &ann_t)
        .await;
    assert_eq!(
        (status, v["count"].as_u64()),
        (200, Some(0)),
        "gone from the waiting list: {v}"
    );

    // The opened conversation: the message, the acceptance, the readiness.
    let (status, v) = api.get(&conv, &bob_t).await;
    assert_eq!(status, 200, "{v}");
    let kinds: Vec<&str> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["direction"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["in", "desk"], "{v}");
    assert_eq!(v["messages"][1]["agent"], bob.as_str());
    assert_eq!(v["remaining"], 5);

    // Ann (admin) may close a conversation Bob holds; Bob's slot is free again.
    let (status, v) = api.post(&format!("{conv}/close"), &ann_t).await;
    assert_eq!((status, v["status"].as_str()), (200, Some("closed")), "{v}");
    let (_, me) = api.get("me", &bob_t).await;
    assert_eq!(me["active"], 0, "{me}");
    let (status, v) = api.post(&format!("{conv}/close"), &bob_t).await;
    assert_eq!((status, v["error"].as_str()), (409, Some("already_closed")));

    // Going online with auto-accept takes the next waiting conversation by itself.
    let (status, _) = api
        .put_member(
            APP1,
            &bob,
            &ann_t,
            json!({"name": "Bob", "role": "agent", "capacity": 1, "auto_accept": true}),
        )
        .await;
    assert_eq!(status, 200);
    let mut second = push.clone();
    second.from = "oDeskUser2".into();
    kefu::simulate::push(&TestEnv::registry(), &second)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, v) = api
            .call(
                "POST",
                "me/status",
                Some(&bob_t),
                Some(json!({"status": "online"})),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        if v["accepted"].as_array().is_some_and(|a| a.len() == 1) {
            assert_eq!(v["presence"], "online");
            assert_eq!(v["active"], 1);
            break;
        }
        assert!(Instant::now() < deadline, "auto-accept took nothing: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Signing out hands it back.
    let (status, v) = api
        .call(
            "POST",
            "me/status",
            Some(&bob_t),
            Some(json!({"status": "offline"})),
        )
        .await;
    assert_eq!((status, v["active"].as_u64()), (200, Some(0)), "{v}");
    let (_, v) = api
        .get(&format!("apps/wechat/{APP1}/waiting"), &ann_t)
        .await;
    assert_eq!(v["count"], 1, "{v}");
    server.stop().await;
}
