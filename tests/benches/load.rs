//! Ingress and pipeline load figures (a benchmark, not a test):
//! 1. ingress in-process cost per push with an in-memory queue (no I/O);
//! 2. against the emulator: 2,000 signed pushes from 20 concurrent callers through the real
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
use shared::adapters::memory::InMemoryQueue;
use shared::clock::FixedClock;
use shared::message::{ConversationKey, InboundMessage, MessageBody, MsgId, render};
use shared::ports::MessageStore;
use shared::protocol::simulate::{AppKeys, PushSpec, push_request};
use shared::protocol::{DataFormat, Mode, Platform};

const NOW: u64 = 1_763_770_123;
const WX: &str = "wxkefu0000000001";
const PUSHES: usize = 2000;
const CALLERS: usize = 20;
const USERS: usize = 200;
const RETRIES: usize = 100;

fn keys() -> AppKeys {
    let registry = TestEnv::registry();
    let app = registry.app(Platform::Wechat, WX).unwrap();
    AppKeys {
        token: app.credentials.token.expose().into(),
        key: app.credentials.key.clone(),
        receive_id: WX.into(),
    }
}

fn request_for(i: usize, keys: &AppKeys) -> Request {
    let m = InboundMessage {
        to_user_name: Some("gh_kefu00000001".into()),
        from_user_name: format!("oLoadUser{:04}", i % USERS),
        create_time: NOW + (i / USERS) as u64,
        msg_id: Some(MsgId(format!(
            "{}",
            7_000_000_000_000_000_000u64 + i as u64
        ))),
        body: MessageBody::Text {
            content: format!("load message {i}: 您好，请问订单什么时候发货？"),
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

#[tokio::main]
async fn main() {
    let keys = keys();

    // 1. In-process cost with an in-memory queue.
    let app = ingress::App::new(
        ingress::Config::default(),
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
    // Indices to push: every message once, plus RETRIES of them again (platform retries).
    let mut order: Vec<usize> = (0..PUSHES).collect();
    order.extend((0..RETRIES).map(|k| k * (PUSHES / RETRIES)));
    let order = Arc::new(order);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let (app, keys, order, next) = (app.clone(), keys.clone(), order.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(&i) = order.get(k) else { break };
                let req = request_for(i, &keys);
                let t = Instant::now();
                let resp = ingress::handle(&app, req).await.unwrap();
                latencies.push(t.elapsed());
                assert_eq!(resp.status(), 200, "push {i} not acknowledged");
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    latencies.sort();
    println!(
        "ingress -> SQS (moto), {} pushes ({} retries) from {CALLERS} callers: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {:.0} pushes/s",
        latencies.len(),
        RETRIES,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        latencies.len() as f64 / wall.as_secs_f64()
    );

    let started = Instant::now();
    let processor = env.processor();
    let (handled, failed) = env.drain(&processor).await;
    assert!(failed.is_empty(), "failed records: {failed:?}");
    let drain = started.elapsed();
    let mut stored = 0;
    for u in 0..USERS {
        let key = ConversationKey {
            platform: Platform::Wechat,
            app_id: WX.into(),
            open_id: format!("oLoadUser{u:04}"),
        };
        stored += env.store.messages(&key, None).await.unwrap().len();
    }
    println!(
        "processor (moto DynamoDB): {handled} records in {:.1} s ({:.0} records/s); stored {stored} of {PUSHES} distinct sent; duplicates {}",
        drain.as_secs_f64(),
        handled as f64 / drain.as_secs_f64(),
        stored as i64 - PUSHES as i64
    );
    assert_eq!(
        stored, PUSHES,
        "stored count must equal distinct messages sent"
    );
}
