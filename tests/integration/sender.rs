//! The sender against the local fake of both platforms' HTTP APIs (which enforces the platform
//! quota itself): the quota under concurrency on the emulated DynamoDB, the token refresh rules,
//! retries, timeouts, splitting, images, idempotency and every refusal.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::{self, StatusCode};
use lambda_http::{Body, Request};
use serde_json::{Value, json};
use shared::api::baidu::BaiduClient;
use shared::api::wechat::WechatClient;
use shared::api::{RetryPolicy, http_client};
use shared::clock::FixedClock;
use shared::ids::{ConversationKey, MsgId, Platform};
use shared::message::{InboundMessage, MessageBody, QueueEnvelope};
use shared::ports::{AccessTokenCache, MediaIdCache, MessageStore, OutboundStore, QuotaLedger};
use shared::protocol::{DataFormat, Mode};
use shared::quota::{QuotaPolicy, Window};
use testkit::fake_platform::FakePlatform;
use testkit::memory::{InMemoryMediaIds, InMemoryStore, InMemoryTokens};

use crate::helpers::TestEnv;

pub(crate) const NOW: u64 = 1_763_770_123;
pub(crate) const WX: &str = "wxkefu0000000001";
const BD: &str = "10000001";
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00";

pub(crate) type Sender<S, T, M> = sender::App<S, T, M, FixedClock>;

pub(crate) fn app<S, T, M>(
    fake: &FakePlatform,
    store: S,
    tokens: T,
    media: M,
    timeout: Duration,
) -> Sender<S, T, M>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    M: MediaIdCache,
{
    let http = http_client(Duration::from_millis(500), timeout).unwrap();
    let fast = RetryPolicy {
        backoff: vec![Duration::from_millis(1), Duration::from_millis(1)],
    };
    // The image server of these tests is plain http on 127.0.0.1: the local-run fetch policy.
    let policy = sender::fetch::FetchPolicy::local();
    sender::App::new(
        sender::Settings {
            image_fetch: policy,
            platform_timeout: timeout,
            ..sender::Settings::default()
        },
        TestEnv::registry(),
        store,
        tokens,
        media,
        sender::Clients {
            wechat: WechatClient::new(http.clone(), fake.base_url()).with_retry(fast.clone()),
            baidu: BaiduClient::new(http, fake.base_url()).with_retry(fast),
            images: sender::fetch::image_client(&policy, timeout).unwrap(),
        },
        FixedClock::at_secs(NOW),
    )
}

pub(crate) fn key(platform: Platform, open_id: &str) -> ConversationKey {
    ConversationKey {
        platform,
        app_id: (if platform == Platform::Wechat { WX } else { BD }).into(),
        open_id: open_id.into(),
    }
}

/// The user writes first: the processor's grant opens the window (5 / 48 h).
pub(crate) async fn user_writes<S: MessageStore>(store: &S, platform: Platform, open_id: &str) {
    let m = InboundMessage {
        to_user_name: None,
        from_user_name: open_id.into(),
        create_time: NOW - 10,
        msg_id: Some(MsgId(format!("{}", NOW))),
        body: MessageBody::Text {
            content: "hi".into(),
        },
    };
    let app_id = if platform == Platform::Wechat { WX } else { BD };
    let env = QueueEnvelope::new(
        platform,
        app_id,
        NOW * 1000,
        Mode::Safe,
        DataFormat::Json,
        m,
    );
    let grant = QuotaPolicy::default().grant_for(platform, &env.message);
    store.store_inbound(&env, grant).await.unwrap();
}

pub(crate) fn post(path: &str, body: &Value) -> Request {
    http::Request::builder()
        .method("POST")
        .uri(path)
        .body(Body::from(body.to_string()))
        .unwrap()
}

pub(crate) async fn send<S, T, M>(app: &Sender<S, T, M>, body: Value) -> (StatusCode, Value)
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    M: MediaIdCache,
{
    let resp = sender::handle(app, post("/messages", &body)).await.unwrap();
    (
        resp.status(),
        serde_json::from_slice(resp.body().as_ref()).unwrap(),
    )
}

pub(crate) fn text(open_id: &str, content: &str) -> Value {
    json!({ "app_id": WX, "open_id": open_id, "msg_type": "text", "content": content })
}

async fn memory_app(
    fake: &FakePlatform,
) -> Sender<InMemoryStore, InMemoryTokens, InMemoryMediaIds> {
    app(
        fake,
        InMemoryStore::new(),
        InMemoryTokens::new(),
        InMemoryMediaIds::new(),
        Duration::from_secs(5),
    )
}

#[tokio::test]
async fn sends_text_and_reports_the_window_after() {
    let fake = FakePlatform::start().await.unwrap();
    let app = memory_app(&fake).await;
    user_writes(&app.store, Platform::Wechat, "oA").await;
    let (status, body) = send(&app, text("oA", "您好 😀")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["remaining"], 4);
    assert_eq!(body["expires_at"], NOW - 10 + 172_800);
    let sent = fake.sent_messages("oA");
    assert_eq!(
        sent,
        [json!({ "touser": "oA", "msgtype": "text", "text": { "content": "您好 😀" } })]
    );
    let stored = app
        .store
        .messages(&key(Platform::Wechat, "oA"), None)
        .await
        .unwrap();
    let out = stored
        .iter()
        .find(|m| m.direction == shared::records::Direction::Out)
        .unwrap();
    assert_eq!(
        (out.content.as_deref(), out.status.map(|s| s.as_str())),
        (Some("您好 😀"), Some("sent"))
    );
}

#[tokio::test]
async fn fifty_concurrent_sends_against_a_grant_of_five_send_exactly_five() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let fake = FakePlatform::start().await.unwrap();
    fake.set_default_grant(100); // the platform would allow more: kefu's ledger must stop at 5
    let store = (*env.store).clone();
    user_writes(&store, Platform::Wechat, "oRace").await;
    let app = Arc::new(app(
        &fake,
        store.clone(),
        store.clone(),
        store.clone(),
        Duration::from_secs(5),
    ));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move { send(&app, text("oRace", &format!("reply {i}"))).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .count();
    let refused: Vec<_> = statuses
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(ok, 5);
    assert_eq!(refused.len(), 45);
    assert!(
        refused
            .iter()
            .all(|(_, b)| b["error"] == "quota_exhausted" && b["remaining"] == 0)
    );
    assert_eq!(fake.sent_messages("oRace").len(), 5);
    let conv = store
        .conversation(&key(Platform::Wechat, "oRace"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv.window.remaining, 0);
}

#[tokio::test]
async fn twenty_cold_instances_fetch_the_token_at_most_once() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let fake = FakePlatform::start().await.unwrap();
    let store = (*env.store).clone();
    for i in 0..20 {
        user_writes(&store, Platform::Baidu, &format!("oCold{i}")).await;
    }
    // Twenty separate instances (own lease identity each) sharing one token table.
    let apps: Vec<_> = (0..20)
        .map(|_| {
            Arc::new(app(
                &fake,
                store.clone(),
                store.clone(),
                store.clone(),
                Duration::from_secs(5),
            ))
        })
        .collect();
    let tasks: Vec<_> = apps
        .into_iter()
        .enumerate()
        .map(|(i, app)| {
            tokio::spawn(async move {
                send(&app, json!({ "app_id": BD, "open_id": format!("oCold{i}"), "msg_type": "text", "content": "hi" })).await
            })
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(fake.token_requests("test-only-baidu-app-key"), 1);
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_once_and_the_send_retried_once() {
    let fake = FakePlatform::start().await.unwrap();
    let app = memory_app(&fake).await;
    user_writes(&app.store, Platform::Wechat, "oTok").await;
    assert_eq!(send(&app, text("oTok", "first")).await.0, StatusCode::OK);
    assert_eq!(fake.token_requests(WX), 1);
    fake.fail_next("message/custom/send", 40001, 1);
    let (status, body) = send(&app, text("oTok", "second")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(fake.token_requests(WX), 2, "exactly one refresh");
    assert_eq!(fake.sent_messages("oTok").len(), 2);
    // A second consecutive token error is not retried again: it is a platform rejection.
    fake.fail_next("message/custom/send", 40001, 2);
    let (status, body) = send(&app, text("oTok", "third")).await;
    assert_eq!(
        (status, body["errcode"].clone()),
        (StatusCode::BAD_GATEWAY, json!(40001))
    );
    assert_eq!(
        body["remaining"], 3,
        "units of a definite rejection are given back"
    );
}

#[tokio::test]
async fn busy_is_retried_and_a_timeout_keeps_the_units_spent() {
    let fake = FakePlatform::start().await.unwrap();
    let app = app(
        &fake,
        InMemoryStore::new(),
        InMemoryTokens::new(),
        InMemoryMediaIds::new(),
        Duration::from_millis(400),
    );
    user_writes(&app.store, Platform::Wechat, "oBusy").await;
    fake.fail_next("message/custom/send", -1, 1);
    let (status, body) = send(&app, text("oBusy", "x")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["remaining"], 4);
    fake.delay_next("message/custom/send", Duration::from_secs(2));
    let (status, body) = send(&app, text("oBusy", "y")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["error"], "platform_timeout");
    let conv = app
        .store
        .conversation(&key(Platform::Wechat, "oBusy"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        conv.window.remaining, 3,
        "a timed-out send may have gone out: its unit stays spent"
    );
}

#[tokio::test]
async fn the_platforms_quota_answer_wins() {
    let fake = FakePlatform::start().await.unwrap();
    let app = memory_app(&fake).await;
    user_writes(&app.store, Platform::Wechat, "oQ").await;
    user_writes(&app.store, Platform::Baidu, "oQ").await;
    fake.grant(WX, "oQ", 0);
    let (status, body) = send(&app, text("oQ", "x")).await;
    assert_eq!(
        (status, body["errcode"].clone(), body["remaining"].clone()),
        (StatusCode::BAD_GATEWAY, json!(45047), json!(0))
    );
    let conv = app
        .store
        .conversation(&key(Platform::Wechat, "oQ"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv.window.remaining, 0);
    fake.grant("test-only-baidu-app-key", "oQ", 0); // Baidu tokens belong to the App Key
    let (status, body) = send(
        &app,
        json!({ "app_id": BD, "open_id": "oQ", "msg_type": "text", "content": "x" }),
    )
    .await;
    assert_eq!(
        (status, body["errcode"].clone()),
        (StatusCode::BAD_GATEWAY, json!(90001))
    );
    assert_eq!(
        app.store
            .conversation(&key(Platform::Baidu, "oQ"))
            .await
            .unwrap()
            .unwrap()
            .window
            .remaining,
        0
    );
}

#[tokio::test]
async fn long_text_is_split_on_character_boundaries_one_unit_per_part() {
    let fake = FakePlatform::start().await.unwrap();
    let app = memory_app(&fake).await;
    user_writes(&app.store, Platform::Wechat, "oLong").await;
    let long: String = "客服".repeat(750); // 4,500 bytes: parts of at most 2,000 bytes → 3
    let (status, body) = send(&app, text("oLong", &long)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["parts"].clone(), body["remaining"].clone()),
        (json!(3), json!(2))
    );
    let sent = fake.sent_messages("oLong");
    let parts: Vec<String> = sent
        .iter()
        .map(|m| m["text"]["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| p.len() <= 2000));
    assert_eq!(parts.concat(), long);
    // Six parts do not fit in the two units left: refused before calling the platform.
    let (status, body) = send(&app, text("oLong", &"客".repeat(4000))).await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!("quota_exhausted"))
    );
    assert_eq!(fake.sent_messages("oLong").len(), 3);
}

/// Serves `PNG` on a loopback port for exactly the connections the test makes.
pub(crate) async fn image_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = [0u8; 2048];
            let _ = conn.read(&mut buf).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                PNG.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(PNG).await;
        }
    });
    format!("http://{addr}/pic.png")
}

#[tokio::test]
async fn images_go_by_upload_on_wechat_and_by_url_on_baidu() {
    use base64::Engine as _;
    let fake = FakePlatform::start().await.unwrap();
    let app = memory_app(&fake).await;
    user_writes(&app.store, Platform::Wechat, "oImg").await;
    user_writes(&app.store, Platform::Baidu, "oImg").await;
    let url = image_server().await;
    let by_url =
        json!({ "app_id": WX, "open_id": "oImg", "msg_type": "image", "image": { "url": url } });
    assert_eq!(send(&app, by_url.clone()).await.0, StatusCode::OK);
    let data = base64::engine::general_purpose::STANDARD.encode(PNG);
    let by_bytes =
        json!({ "app_id": WX, "open_id": "oImg", "msg_type": "image", "image": { "data": data } });
    assert_eq!(send(&app, by_bytes).await.0, StatusCode::OK);
    let uploads: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|c| c.path.ends_with("media/upload"))
        .collect();
    assert_eq!(uploads.len(), 1, "the same bytes reuse the cached media id");
    assert_eq!(uploads[0].body["field"], "media");
    let sent = fake.sent_messages("oImg");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["image"]["media_id"], uploads[0].body["media_id"]);
    assert_eq!(sent[0], sent[1]);
    let baidu = json!({ "app_id": BD, "open_id": "oImg", "msg_type": "image", "image": { "url": "https://img.example.invalid/a.png" } });
    assert_eq!(send(&app, baidu).await.0, StatusCode::OK);
    let baidu_sent = fake.sent_messages("oImg");
    assert_eq!(
        baidu_sent[2]["pic_url"],
        "https://img.example.invalid/a.png"
    );
    assert_eq!(baidu_sent[2]["msg_type"], "image");
}

#[tokio::test]
async fn instances_sharing_the_emulated_tables_upload_the_same_image_once_per_app() {
    use base64::Engine as _;
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let fake = FakePlatform::start().await.unwrap();
    let store = (*env.store).clone();
    user_writes(&store, Platform::Wechat, "oImgA").await;
    user_writes(&store, Platform::Wechat, "oImgB").await;
    // Two cold instances: their own lease identities, one DynamoDB media-id cache.
    let instances: Vec<_> = (0..2)
        .map(|_| {
            app(
                &fake,
                store.clone(),
                store.clone(),
                store.clone(),
                Duration::from_secs(5),
            )
        })
        .collect();
    let data = base64::engine::general_purpose::STANDARD.encode(PNG);
    for (instance, open_id) in instances.iter().zip(["oImgA", "oImgB"]) {
        let body = json!({ "app_id": WX, "open_id": open_id, "msg_type": "image", "image": { "data": data } });
        let (status, body) = send(instance, body).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let uploads: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|c| c.path.ends_with("media/upload"))
        .collect();
    assert_eq!(
        uploads.len(),
        1,
        "the second instance reuses the first one's media id"
    );
    let (a, b) = (fake.sent_messages("oImgA"), fake.sent_messages("oImgB"));
    assert_eq!(a[0]["image"]["media_id"], uploads[0].body["media_id"]);
    assert_eq!(a[0]["image"], b[0]["image"]);
}

#[tokio::test]
async fn a_repeated_client_msg_id_returns_the_first_result_and_sends_nothing() {
    let fake = FakePlatform::start().await.unwrap();
    let app = memory_app(&fake).await;
    user_writes(&app.store, Platform::Wechat, "oIdem").await;
    let mut body = text("oIdem", "once");
    body["client_msg_id"] = json!("c-1");
    let first = send(&app, body.clone()).await;
    let mut second = send(&app, body.clone()).await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(second.1["replayed"], true);
    second.1.as_object_mut().unwrap().remove("replayed");
    assert_eq!(first, second);
    assert_eq!(fake.sent_messages("oIdem").len(), 1);
    // A final refusal is remembered too.
    fake.grant(WX, "oIdem", 0);
    body["client_msg_id"] = json!("c-2");
    let refused = send(&app, body.clone()).await;
    assert_eq!(refused.0, StatusCode::BAD_GATEWAY);
    fake.grant(WX, "oIdem", 5);
    let mut again = send(&app, body).await;
    assert_eq!(
        again.1.as_object_mut().unwrap().remove("replayed"),
        Some(json!(true))
    );
    assert_eq!(again, refused);
}

#[tokio::test]
async fn refusals_say_why() {
    let fake = FakePlatform::start().await.unwrap();
    let app = memory_app(&fake).await;
    user_writes(&app.store, Platform::Wechat, "oR").await;
    let cases = [
        (
            json!({ "app_id": WX, "open_id": "oR", "msg_type": "text" }),
            StatusCode::BAD_REQUEST,
            "content",
        ),
        (
            json!({ "app_id": WX, "open_id": "oR", "msg_type": "voice", "content": "x" }),
            StatusCode::BAD_REQUEST,
            "msg_type",
        ),
        (
            json!({ "app_id": BD, "open_id": "oR", "msg_type": "link", "link": {"title":"t","description":"d","url":"u","thumb_url":"t"} }),
            StatusCode::BAD_REQUEST,
            "msg_type",
        ),
        (
            json!({ "app_id": BD, "open_id": "oR", "msg_type": "image", "image": { "data": "AAAA" } }),
            StatusCode::BAD_REQUEST,
            "image.url",
        ),
        (
            json!({ "app_id": WX, "open_id": "oR", "msg_type": "image", "image": { "data": "AAAA" } }),
            StatusCode::BAD_REQUEST,
            "image",
        ),
        (
            json!({ "app_id": WX, "msg_type": "text", "content": "x" }),
            StatusCode::BAD_REQUEST,
            "open_id",
        ),
    ];
    for (body, status, field) in cases {
        let (got, resp) = send(&app, body.clone()).await;
        assert_eq!(
            (got, resp["field"].as_str()),
            (status, Some(field)),
            "{body} → {resp}"
        );
    }
    assert_eq!(
        send(
            &app,
            json!({ "app_id": "wxnope", "open_id": "oR", "msg_type": "text", "content": "x" })
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = send(&app, text("oNever", "x")).await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::NOT_FOUND, json!("unknown_conversation"))
    );
    app.store.set_window(
        &key(Platform::Wechat, "oR"),
        Window {
            remaining: 3,
            expires_at: NOW - 1,
        },
    );
    let (status, body) = send(&app, text("oR", "late")).await;
    assert_eq!(
        (status, body["error"].clone(), body["remaining"].clone()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!("window_expired"),
            json!(0)
        )
    );
    assert!(
        fake.sent_messages("oR").is_empty(),
        "no refusal called the platform"
    );
}

#[tokio::test]
async fn typing_commands_reach_wechat() {
    let fake = FakePlatform::start().await.unwrap();
    let app = memory_app(&fake).await;
    for command in ["Typing", "CancelTyping"] {
        let resp = sender::handle(
            &app,
            post(
                "/typing",
                &json!({ "app_id": WX, "open_id": "oT", "command": command }),
            ),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let typing: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|c| c.path.ends_with("typing"))
        .map(|c| c.body["command"].clone())
        .collect();
    assert_eq!(typing, [json!("Typing"), json!("CancelTyping")]);
    let resp = sender::handle(
        &app,
        post(
            "/typing",
            &json!({ "app_id": WX, "open_id": "oT", "command": "Dance" }),
        ),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn no_token_means_nothing_sent_and_the_units_given_back() {
    let fake = FakePlatform::start().await.unwrap();
    let app = memory_app(&fake).await;
    user_writes(&app.store, Platform::Baidu, "oNoTok").await;
    fake.fail_next("oauth/2.0/token", 100, 1);
    let (status, body) = send(
        &app,
        json!({ "app_id": BD, "open_id": "oNoTok", "msg_type": "text", "content": "x" }),
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("token_unavailable")),
        "{body}"
    );
    let conv = app
        .store
        .conversation(&key(Platform::Baidu, "oNoTok"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv.window.remaining, 5, "the reserved unit was given back");
    assert!(fake.sent_messages("oNoTok").is_empty());
    // The next send fetches a token and goes out.
    assert_eq!(
        send(
            &app,
            json!({ "app_id": BD, "open_id": "oNoTok", "msg_type": "text", "content": "x" })
        )
        .await
        .0,
        StatusCode::OK
    );
}
