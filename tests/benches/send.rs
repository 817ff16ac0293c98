//! Sender throughput and latency (a benchmark, not a test): 2,000 text sends from 20 concurrent
//! callers through the real sender handler, in-memory ledger and token cache, against the local
//! fake platform on loopback. Also times the bare platform calls (same fake, same concurrency)
//! so the kefu part can be told apart from the fake's own cost.
//!
//! Run: `make bench-send`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../integration/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use helpers::TestEnv;
use lambda_http::{Body, http};
use serde_json::json;
use shared::api::baidu::BaiduClient;
use shared::api::wechat::WechatClient;
use shared::api::{OutboundBody, http_client};
use shared::clock::FixedClock;
use shared::ids::{ConversationKey, Platform};
use shared::quota::Window;
use testkit::fake_platform::FakePlatform;
use testkit::memory::{InMemoryMediaIds, InMemoryStore, InMemoryTokens};

const NOW: u64 = 1_763_770_123;
const WX: &str = "wxkefu0000000001";
const SENDS: usize = 2000;
const CALLERS: usize = 20;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

async fn run<F, Fut>(f: F) -> (Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (f, next) = (f.clone(), next.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= SENDS {
                        break lat;
                    }
                    let t = Instant::now();
                    f(i).await;
                    lat.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    (all, started.elapsed())
}

#[tokio::main]
async fn main() {
    let fake = FakePlatform::start().await.unwrap();
    fake.set_default_grant(10);
    let http = http_client(Duration::from_secs(1), Duration::from_secs(5)).unwrap();
    let store = InMemoryStore::new();
    let users = SENDS / 5;
    for u in 0..users {
        let key = ConversationKey {
            platform: Platform::Wechat,
            app_id: WX.into(),
            open_id: format!("oSend{u}"),
        };
        store.set_window(
            &key,
            Window {
                remaining: 5,
                expires_at: NOW + 172_800,
            },
        );
    }
    let app = Arc::new(sender::App::new(
        sender::Settings::default(),
        TestEnv::registry(),
        store,
        InMemoryTokens::new(),
        InMemoryMediaIds::new(),
        sender::Clients {
            wechat: WechatClient::new(http.clone(), fake.base_url()),
            baidu: BaiduClient::new(http.clone(), fake.base_url()),
            images: sender::fetch::image_client(
                &sender::fetch::FetchPolicy::default(),
                Duration::from_secs(5),
            )
            .unwrap(),
        },
        FixedClock::at_secs(NOW),
    ));
    let token = app
        .token(
            app.registry
                .current()
                .await
                .app(Platform::Wechat, WX)
                .unwrap(),
            None,
        )
        .await
        .unwrap();

    let (lat, wall) = {
        let app = app.clone();
        run(move |i| {
            let app = app.clone();
            async move {
                let body = json!({ "app_id": WX, "open_id": format!("oSend{}", i % users), "msg_type": "text", "content": format!("reply {i}: 您好，已为您查询") });
                let req = http::Request::builder().method("POST").uri("/messages").body(Body::from(body.to_string())).unwrap();
                let resp = sender::handle(&app, req).await.unwrap();
                assert_eq!(resp.status(), 200);
            }
        })
        .await
    };
    let wechat = Arc::new(WechatClient::new(http, fake.base_url()));
    let (bare, bare_wall) = run(move |i| {
        let (wechat, token) = (wechat.clone(), token.clone());
        async move {
            let body = OutboundBody::Text {
                content: format!("reply {i}: 您好，已为您查询"),
            };
            wechat
                .send(&token, &format!("oBare{}", i % users), &body)
                .await
                .unwrap();
        }
    })
    .await;
    println!(
        "sender, {SENDS} sends from {CALLERS} callers (in-memory ledger, fake platform on loopback): {:.0} sends/s, p50 {:.2} ms, p99 {:.2} ms",
        SENDS as f64 / wall.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    println!(
        "bare platform calls to the same fake, same concurrency: {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms",
        SENDS as f64 / bare_wall.as_secs_f64(),
        pct(&bare, 0.5),
        pct(&bare, 0.99)
    );
    println!(
        "kefu part (sender minus bare call): p50 {:.2} ms, p99 {:.2} ms",
        pct(&lat, 0.5) - pct(&bare, 0.5),
        pct(&lat, 0.99) - pct(&bare, 0.99)
    );
    assert_eq!(
        fake.calls()
            .iter()
            .filter(|c| c.path.ends_with("custom/send"))
            .count(),
        2 * SENDS
    );
}
