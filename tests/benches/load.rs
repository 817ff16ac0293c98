//! Ingress and pipeline load figures (a benchmark, not a test):
//! 1. ingress in-process cost per push with an in-memory queue (no I/O);
//! 2. against the emulator: 500 signed pushes (`LOAD_PUSHES`) from 20 concurrent callers (`LOAD_CALLERS`) through the real
//!    ingress handler onto SQS (ack latency p50/p99), 100 of them retried like a platform
//!    would; then the queue is drained through the processor into DynamoDB and the stored
//!    count is compared with the distinct messages sent (duplicates must be 0).
//!
//! Run: `make load` (starts a private moto). Without `AWS_ENDPOINT_URL` only part 1 runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../integration/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use helpers::TestEnv;
use lambda_http::http;
use lambda_http::{Body, Request};
use shared::clock::FixedClock;
use shared::ids::{ConversationKey, MsgId, Platform};
use shared::message::{InboundMessage, MessageBody, render};
use shared::ports::MessageStore;
use shared::protocol::simulate::{AppKeys, PushSpec, push_request};
use shared::protocol::{DataFormat, Mode};
use testkit::memory::InMemoryQueue;

const NOW: u64 = 1_763_770_123;
const WX: &str = "wxkefu0000000001";
const USERS: usize = 200;

fn keys() -> AppKeys {
    let registry = TestEnv::registry();
    let app = registry.app(Platform::Wechat, WX).unwrap();
    AppKeys {
        token: app.credentials.as_ref().unwrap().token.expose().into(),
        key: app.credentials.as_ref().unwrap().key.clone(),
        receive_id: WX.into(),
    }
}

fn request_for(i: usize, keys: &AppKeys) -> Request {
    let m = InboundMessage {
        to_user_name: Some("gh_kefu00000001".into()),
        from_user_name: format!("oLoadUser{:04}", i % USERS).into(),
        create_time: NOW + (i / USERS) as u64,
        msg_id: Some(MsgId(format!(
            "{}",
            7_000_000_000_000_000_000u64 + i as u64
        ))),
        body: MessageBody::Text {
            content: format!("load message {i}: 您好，请问订单什么时候发货？").into(),
        },
    };
    let spec = PushSpec {
        platform: Platform::Wechat,
        mode: Mode::Safe,
        format: if i.is_multiple_of(2) {
            DataFormat::Json
        } else {
            DataFormat::Xml
        },
        timestamp: NOW,
        nonce: "1357924680",
        random: *b"load-test-random",
        body_signature: false,
        to_user_name: Some("gh_kefu00000001"),
    };
    let sim = push_request(keys, &spec, &render(&m, spec.format));
    http::Request::builder()
        .method("POST")
        .uri(format!("/wechat/{WX}?{}", sim.query))
        .body(Body::from(sim.body))
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let keys = keys();
    let pushes = env_usize("LOAD_PUSHES", 500);
    let callers = env_usize("LOAD_CALLERS", 20);
    let retries = pushes / 20;

    // 1. In-process cost with an in-memory queue.
    let app = ingress::App::new(
        ingress::Limits::default(),
        TestEnv::registry(),
        InMemoryQueue::new(),
        FixedClock::at_secs(NOW),
    );
    let requests: Vec<Request> = (0..20_000).map(|i| request_for(i, &keys)).collect();
    let started = Instant::now();
    for req in requests {
        let resp = ingress::handle(&app, req).await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let per_push = started.elapsed() / 20_000;
    println!(
        "ingress in-process (in-memory queue, JSON/XML safe mode alternating): {:.1} us/push",
        per_push.as_secs_f64() * 1e6
    );

    // 2. Against the emulator.
    let Some(env) = TestEnv::new().await else {
        println!("emulator part skipped: AWS_ENDPOINT_URL not set (run `make load`)");
        return;
    };
    let env = Arc::new(env);
    let app = Arc::new(env.ingress(NOW));
    let keys = Arc::new(keys);
    // Indices to push: every message once, plus `retries` of them again (platform retries).
    let mut order: Vec<usize> = (0..pushes).collect();
    order.extend((0..retries).map(|k| k * (pushes / retries)));
    let order = Arc::new(order);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // The processor consumes while ingress pushes, as Lambda's event source mapping does (moto's
    // SendMessage also slows down linearly with queue depth, so a drained queue keeps it honest).
    let pushing_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let (env, done) = (env.clone(), pushing_done.clone());
            tokio::spawn(async move {
                let processor = env.processor();
                let (mut handled, mut failed) = (0usize, 0usize);
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                    let (h, f) = env.drain(&processor).await;
                    handled += h;
                    failed += f.len();
                    if h == 0 && finished {
                        break;
                    }
                }
                (handled, failed)
            })
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (app, keys, order, next) = (app.clone(), keys.clone(), order.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut not_acked, mut acked) = (Vec::new(), 0usize, Vec::new());
            loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(&i) = order.get(k) else { break };
                // Like the platform: a push not answered `success` is delivered again, 4 deliveries
                // at most; after that the platform gives up (and the user sees an error).
                for _ in 0..4 {
                    let t = Instant::now();
                    let resp = ingress::handle(&app, request_for(i, &keys)).await.unwrap();
                    latencies.push(t.elapsed());
                    if resp.status() == 200 {
                        acked.push(i);
                        break;
                    }
                    let reason = String::from_utf8_lossy(resp.body().as_ref()).into_owned();
                    assert_eq!(resp.status(), 503, "push {i}: unexpected status ({reason})");
                    not_acked += 1;
                }
            }
            (latencies, not_acked, acked)
        }));
    }
    let (mut latencies, mut not_acked, mut acked) =
        (Vec::new(), 0usize, std::collections::BTreeSet::new());
    for t in tasks {
        let (l, n, a) = t.await.unwrap();
        latencies.extend(l);
        not_acked += n;
        acked.extend(a);
    }
    let wall = started.elapsed();
    pushing_done.store(true, std::sync::atomic::Ordering::SeqCst);
    latencies.sort();
    println!(
        "ingress -> SQS (moto), {} deliveries ({pushes} messages, {retries} platform retries, {not_acked} answered 503 and redelivered) from {callers} callers: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {:.0} pushes/s",
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        latencies.len() as f64 / wall.as_secs_f64()
    );

    let (mut handled, mut failed) = (0, 0);
    for c in consumers {
        let (h, f) = c.await.unwrap();
        handled += h;
        failed += f;
    }
    assert_eq!(failed, 0, "failed records");
    let drain = started.elapsed();
    let mut stored = std::collections::BTreeSet::new();
    let mut items = 0usize;
    for u in 0..USERS {
        let key = ConversationKey {
            platform: Platform::Wechat,
            app_id: WX.into(),
            open_id: format!("oLoadUser{u:04}"),
        };
        for m in env.store.messages(&key, None).await.unwrap() {
            items += 1;
            let id: u64 = m.msg_id.unwrap().parse().unwrap();
            stored.insert((id - 7_000_000_000_000_000_000) as usize);
        }
    }
    let lost: Vec<_> = acked.difference(&stored).collect();
    println!(
        "processor (moto DynamoDB, consuming concurrently): {handled} records done {:.1} s after the first push ({:.0} records/s); \
         acknowledged {} distinct messages, stored {} ({} items), acknowledged but not stored {}, duplicates {}",
        drain.as_secs_f64(),
        handled as f64 / drain.as_secs_f64(),
        acked.len(),
        stored.len(),
        items,
        lost.len(),
        items - stored.len()
    );
    assert!(lost.is_empty(), "acknowledged but never stored: {lost:?}");
    assert_eq!(items, stored.len(), "a message was stored twice");
    assert!(stored.len() <= pushes);
}
