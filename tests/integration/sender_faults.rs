//! The sender under faults after delivery, through its HTTP handler against the fake platform:
//! a message that reached the platform is answered, recorded as well as the store allows, and
//! never sent again — whatever fails after it (recording, the idempotency record, a token, the
//! platform's quota) — and an idempotency key is bound to its request. Also the image-URL fetch
//! policy and the invocation deadline as deployed (strict policy, Lambda context).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use lambda_http::RequestExt;
use lambda_http::http::StatusCode;
use serde_json::json;
use shared::ids::{ConversationKey, Platform};
use shared::ports::{
    AccessTokenCache, CachedToken, Claim, ClaimRequest, MessageStore, OutboundStore, QuotaLedger,
    Reservation, StoreError,
};
use shared::records::OutboundRecord;
use testkit::fake_platform::FakePlatform;
use testkit::memory::{InMemoryMediaIds, InMemoryStore, InMemoryTokens};

use crate::sender::{NOW, WX, app, image_server, key, post, send, text, user_writes};

/// Counts down: `true` while failures are left.
#[derive(Debug, Default)]
struct Failures(AtomicU32);

impl Failures {
    fn set(&self, n: u32) {
        self.0.store(n, Ordering::SeqCst);
    }

    fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

fn throttled() -> StoreError {
    StoreError::Unavailable("injected: ProvisionedThroughputExceeded".into())
}

/// The in-memory store with injectable failures of the writes that follow a delivery.
#[derive(Debug, Default)]
struct FaultyStore {
    inner: InMemoryStore,
    record: Failures,
    complete: Failures,
}

#[async_trait]
impl QuotaLedger for FaultyStore {
    async fn reserve(
        &self,
        key: &ConversationKey,
        units: u32,
        now: u64,
    ) -> Result<Reservation, StoreError> {
        self.inner.reserve(key, units, now).await
    }
    async fn release(&self, key: &ConversationKey, units: u32, g: u64) -> Result<bool, StoreError> {
        self.inner.release(key, units, g).await
    }
    async fn exhaust(&self, key: &ConversationKey, g: u64) -> Result<(), StoreError> {
        self.inner.exhaust(key, g).await
    }
    async fn close_window(
        &self,
        key: &ConversationKey,
        now: u64,
        g: u64,
    ) -> Result<(), StoreError> {
        self.inner.close_window(key, now, g).await
    }
}

#[async_trait]
impl OutboundStore for FaultyStore {
    async fn record_outbound(&self, record: &OutboundRecord) -> Result<(), StoreError> {
        if self.record.take() {
            return Err(throttled());
        }
        self.inner.record_outbound(record).await
    }
    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Claim, StoreError> {
        self.inner.claim(request).await
    }
    async fn start_sending(&self, key: &str) -> Result<(), StoreError> {
        self.inner.start_sending(key).await
    }
    async fn complete(&self, key: &str, response: &str) -> Result<(), StoreError> {
        if self.complete.take() {
            return Err(throttled());
        }
        self.inner.complete(key, response).await
    }
    async fn abandon(&self, key: &str) -> Result<(), StoreError> {
        self.inner.abandon(key).await
    }
}

/// A token cache whose reads fail after the first `ok` of them.
#[derive(Debug, Default)]
struct FlakyTokens {
    inner: InMemoryTokens,
    ok: AtomicU32,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl AccessTokenCache for FlakyTokens {
    async fn get_token(&self, p: Platform, app: &str) -> Result<Option<CachedToken>, StoreError> {
        if self.armed.load(Ordering::SeqCst)
            && self
                .ok
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_err()
        {
            return Err(throttled());
        }
        self.inner.get_token(p, app).await
    }
    async fn try_lease(
        &self,
        p: Platform,
        a: &str,
        o: &str,
        now: u64,
        l: u64,
    ) -> Result<bool, StoreError> {
        self.inner.try_lease(p, a, o, now, l).await
    }
    async fn put_token(
        &self,
        p: Platform,
        a: &str,
        t: &str,
        e: u64,
        o: &str,
    ) -> Result<(), StoreError> {
        self.inner.put_token(p, a, t, e, o).await
    }
    async fn release_lease(&self, p: Platform, a: &str, o: &str) -> Result<(), StoreError> {
        self.inner.release_lease(p, a, o).await
    }
    async fn invalidate_if_equals(
        &self,
        p: Platform,
        a: &str,
        f: &str,
    ) -> Result<bool, StoreError> {
        self.inner.invalidate_if_equals(p, a, f).await
    }
}

/// Units left in the WeChat user's window.
async fn remaining<S: MessageStore>(store: &S, open_id: &str) -> u32 {
    let conv = store
        .conversation(&key(Platform::Wechat, open_id))
        .await
        .unwrap();
    conv.unwrap().window.remaining
}

fn with_key(open_id: &str, content: &str, key: &str) -> serde_json::Value {
    let mut body = text(open_id, content);
    body["client_msg_id"] = json!(key);
    body
}

#[tokio::test]
async fn a_delivery_whose_record_fails_is_answered_and_never_sent_again() {
    let fake = FakePlatform::start().await.unwrap();
    let app = app(
        &fake,
        FaultyStore::default(),
        InMemoryTokens::new(),
        InMemoryMediaIds::new(),
        Duration::from_secs(5),
    );
    user_writes(&app.store.inner, Platform::Wechat, "oRec").await;

    // One throttled write is retried: recorded.
    app.store.record.set(1);
    let (status, body) = send(&app, with_key("oRec", "one", "k-1")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("sent")),
        "{body}"
    );
    assert_eq!(body.get("recorded"), None);

    // The store stays down past the retries: still answered (not 503), marked unrecorded.
    app.store.record.set(100);
    let (status, body) = send(&app, with_key("oRec", "two", "k-2")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("sent")),
        "{body}"
    );
    assert_eq!(body["recorded"], false);
    app.store.record.set(0);
    // The client's retry replays the answer; the platform saw each message once.
    let (status, again) = send(&app, with_key("oRec", "two", "k-2")).await;
    assert_eq!(
        (status, again["replayed"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let sent: Vec<_> = fake
        .sent_messages("oRec")
        .iter()
        .map(|m| m["text"]["content"].clone())
        .collect();
    assert_eq!(sent, [json!("one"), json!("two")]);
}

#[tokio::test]
async fn a_failed_idempotency_completion_never_lets_a_retry_send_again() {
    let fake = FakePlatform::start().await.unwrap();
    let app = app(
        &fake,
        FaultyStore::default(),
        InMemoryTokens::new(),
        InMemoryMediaIds::new(),
        Duration::from_secs(5),
    );
    user_writes(&app.store.inner, Platform::Wechat, "oDone").await;
    app.store.complete.set(100);
    let (status, _) = send(&app, with_key("oDone", "hello", "k-done")).await;
    assert_eq!(status, StatusCode::OK);
    app.store.complete.set(0);
    // While the lease runs: in progress, not a second send.
    let (status, body) = send(&app, with_key("oDone", "hello", "k-done")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("in_progress"))
    );
    // After it: the outcome is unknown to kefu, so it is answered so, never re-sent — and the
    // key is not blocked for its 7 days either.
    app.clock.set_secs(NOW + 3600);
    let (status, body) = send(&app, with_key("oDone", "hello", "k-done")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::GATEWAY_TIMEOUT, Some("outcome_unknown")),
        "{body}"
    );
    assert_eq!(fake.sent_messages("oDone").len(), 1);
}

#[tokio::test]
async fn parts_that_went_out_are_answered_when_the_rest_cannot_go() {
    let fake = FakePlatform::start().await.unwrap();
    let tokens = FlakyTokens::default();
    let app = app(
        &fake,
        InMemoryStore::new(),
        tokens,
        InMemoryMediaIds::new(),
        Duration::from_secs(5),
    );
    user_writes(&app.store, Platform::Wechat, "oPart").await;
    let long = "好".repeat(1000); // 3000 bytes: two parts

    // The platform's quota runs out after the first part (another agent sent meanwhile).
    fake.grant(WX, "oPart", 1);
    let (status, body) = send(&app, with_key("oPart", &long, "k-quota")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("partial")),
        "{body}"
    );
    assert_eq!(
        (body["parts"].as_u64(), body["parts_sent"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(body["error"]["errcode"], 45047);
    let (_, again) = send(&app, with_key("oPart", &long, "k-quota")).await;
    assert_eq!(again["replayed"], true);
    assert_eq!(fake.sent_messages("oPart").len(), 1);

    // No token for the second part (the token store fails after the first read).
    let fresh = "oPart2";
    user_writes(&app.store, Platform::Wechat, fresh).await;
    app.tokens.cache().ok.store(1, Ordering::SeqCst);
    app.tokens.cache().armed.store(true, Ordering::SeqCst);
    let (status, body) = send(&app, with_key(fresh, &long, "k-token")).await;
    app.tokens.cache().armed.store(false, Ordering::SeqCst);
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("partial")),
        "{body}"
    );
    assert_eq!(body["error"]["error"], "token_unavailable");
    let (_, again) = send(&app, with_key(fresh, &long, "k-token")).await;
    assert_eq!(again["replayed"], true);
    assert_eq!(fake.sent_messages(fresh).len(), 1);
    // The unsent part's unit was given back: 5 - 2 + 1.
    assert_eq!(remaining(&app.store, fresh).await, 4);
}

#[tokio::test]
async fn an_idempotency_key_is_bound_to_its_user_and_content() {
    let fake = FakePlatform::start().await.unwrap();
    let app = app(
        &fake,
        InMemoryStore::new(),
        InMemoryTokens::new(),
        InMemoryMediaIds::new(),
        Duration::from_secs(5),
    );
    for user in ["oA", "oB"] {
        user_writes(&app.store, Platform::Wechat, user).await;
    }
    let (status, _) = send(&app, with_key("oA", "for A", "shared-key")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(&app, with_key("oB", "for B", "shared-key")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );
    let (status, _) = send(&app, with_key("oA", "other text", "shared-key")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fake.sent_messages("oB").len(), 0);
    assert_eq!(fake.sent_messages("oA").len(), 1);
}

#[tokio::test]
async fn image_urls_are_fetched_only_over_https_from_public_hosts() {
    let fake = FakePlatform::start().await.unwrap();
    let mut app = app(
        &fake,
        InMemoryStore::new(),
        InMemoryTokens::new(),
        InMemoryMediaIds::new(),
        Duration::from_secs(5),
    );
    let strict = sender::fetch::FetchPolicy::default();
    app.config.image_fetch = strict;
    app.clients.images = sender::fetch::image_client(&strict, Duration::from_secs(2)).unwrap();
    user_writes(&app.store, Platform::Wechat, "oImg").await;
    // A live server on loopback (what the Lambda Runtime API on 127.0.0.1:9001 is), by http and
    // by a name that resolves to it: both refused before any request is made.
    let live = image_server().await;
    let by_name = live.replace("http://127.0.0.1", "https://localhost");
    for url in [
        live.as_str(),
        by_name.as_str(),
        "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost:9001/x.png",
        "file:///etc/passwd",
    ] {
        let body = json!({ "app_id": WX, "open_id": "oImg", "msg_type": "image", "image": { "url": url } });
        let (status, resp) = send(&app, body).await;
        assert_eq!(
            (status, resp["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("image.url")),
            "{url}: {resp}"
        );
        assert!(
            !resp.to_string().contains("169.254"),
            "the answer never quotes the URL: {resp}"
        );
    }
    assert!(fake.calls().is_empty(), "nothing reached the platform");
}

#[tokio::test]
async fn no_platform_call_starts_that_cannot_finish_before_the_deadline() {
    let fake = FakePlatform::start().await.unwrap();
    let app = app(
        &fake,
        InMemoryStore::new(),
        InMemoryTokens::new(),
        InMemoryMediaIds::new(),
        Duration::from_secs(5),
    );
    user_writes(&app.store, Platform::Wechat, "oLate").await;
    // The invocation has 6 s left: below a 5 s call plus the 3 s kept for recording.
    let mut ctx = lambda_http::Context::default();
    ctx.deadline = shared::clock::Clock::now_ms(&app.clock) + 6_000;
    let req = post("/messages", &text("oLate", "too late")).with_lambda_context(ctx);
    let resp = sender::handle(&app, req).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
    assert_eq!(
        (resp.status(), body["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("no_time_left"))
    );
    assert!(fake.sent_messages("oLate").is_empty());
    assert_eq!(
        remaining(&app.store, "oLate").await,
        5,
        "the reserved unit was given back"
    );
}
