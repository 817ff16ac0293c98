//! The whole inbound pipeline against the emulator: a signed push through the real ingress
//! handler onto SQS, polled into the real processor, stored in DynamoDB — for every mode, format
//! and message type — plus retries, redeliveries, poison records, ordering, a dead queue, and the
//! one-request-per-message rule.

use std::time::{Duration, Instant};

use lambda_http::http::{self, StatusCode};
use lambda_http::{Body, Request};
use shared::adapters::sqs::SqsQueue;
use shared::clock::FixedClock;
use shared::ids::{ConversationKey, MsgId, Platform};
use shared::message::{InboundMessage, MessageBody, QueueEnvelope, render};
use shared::ports::MessageStore;
use shared::protocol::simulate::{
    AppKeys, PushSpec, SimulatedRequest, VerifyVia, push_request, verify_request,
};
use shared::protocol::{DataFormat, Mode};
use shared::quota::Window;
use shared::records::Direction;

use crate::helpers::TestEnv;
use testkit::esm::sqs_event;

const NOW: u64 = 1_763_770_123;
const WX: &str = "wxkefu0000000001";
const BD: &str = "10000001";

fn keys(platform: Platform) -> AppKeys {
    let registry = TestEnv::registry();
    let app_id = if platform == Platform::Wechat { WX } else { BD };
    let app = registry.app(platform, app_id).unwrap();
    AppKeys {
        token: app.credentials.as_ref().unwrap().token.expose().to_owned(),
        key: app.credentials.as_ref().unwrap().key.clone(),
        receive_id: if platform == Platform::Wechat {
            WX.into()
        } else {
            "20073496".into()
        },
    }
}

fn spec<'a>(platform: Platform, mode: Mode, format: DataFormat, create_time: u64) -> PushSpec<'a> {
    PushSpec {
        platform,
        mode,
        format,
        timestamp: create_time,
        nonce: "424242",
        random: *b"pipeline-random!",
        body_signature: platform == Platform::Baidu && mode == Mode::Safe,
        to_user_name: Some("gh_kefu00000001"),
    }
}

fn message(
    open_id: &str,
    create_time: u64,
    msg_id: Option<&str>,
    body: MessageBody<'static>,
) -> InboundMessage<'static> {
    InboundMessage {
        to_user_name: Some("gh_kefu00000001".into()),
        from_user_name: open_id.to_owned().into(),
        create_time,
        msg_id: msg_id.map(|m| MsgId(m.into())),
        body,
    }
}

fn text(open_id: &str, create_time: u64, msg_id: &str, content: &str) -> InboundMessage<'static> {
    message(
        open_id,
        create_time,
        Some(msg_id),
        MessageBody::Text {
            content: content.to_owned().into(),
        },
    )
}

fn request(platform: Platform, sim: &SimulatedRequest) -> Request {
    let app = if platform == Platform::Wechat { WX } else { BD };
    let uri = format!("/{platform}/{app}?{}", sim.query);
    http::Request::builder()
        .method(sim.method)
        .uri(uri)
        .body(Body::from(sim.body.clone()))
        .unwrap()
}

async fn push(
    env: &TestEnv,
    platform: Platform,
    mode: Mode,
    format: DataFormat,
    m: &InboundMessage<'_>,
) -> (StatusCode, String) {
    // Each push has its own nonce, as the platforms send them (plaintext pushes that reuse a
    // signed nonce and timestamp with another body are refused as forged replays).
    static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(424_242);
    let nonce = NONCE
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        .to_string();
    // WeChat addresses pushes to the original id, Baidu to the app id.
    let mut m = m.clone();
    m.to_user_name = Some(match platform {
        Platform::Wechat => "gh_kefu00000001".into(),
        Platform::Baidu => BD.into(),
    });
    let mut spec = spec(platform, mode, format, m.create_time);
    spec.nonce = &nonce;
    spec.to_user_name = m.to_user_name.as_deref();
    let sim = push_request(&keys(platform), &spec, &render(&m, format));
    let app = env.ingress(m.create_time);
    let resp = ingress::handle(&app, request(platform, &sim))
        .await
        .unwrap();
    (
        resp.status(),
        String::from_utf8(resp.body().as_ref().to_vec()).unwrap(),
    )
}

fn conversation(platform: Platform, open_id: &str) -> ConversationKey {
    ConversationKey {
        platform,
        app_id: (if platform == Platform::Wechat { WX } else { BD }).into(),
        open_id: open_id.into(),
    }
}

#[tokio::test]
async fn every_mode_format_and_type_is_stored_exactly_as_sent() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let mut cases = Vec::new();
    let mut n = 0u64;
    for (platform, modes) in [
        (
            Platform::Wechat,
            vec![Mode::Safe, Mode::Compatible, Mode::Plaintext],
        ),
        (Platform::Baidu, vec![Mode::Safe, Mode::Plaintext]),
    ] {
        for mode in modes {
            for format in [DataFormat::Json, DataFormat::Xml] {
                n += 1;
                let open_id = format!("oPipe{n}");
                let t = NOW + n;
                let mut messages = vec![
                    text(
                        &open_id,
                        t,
                        &format!("{}", 9_000_000_000_000_000_000u64 + n),
                        "你好 ]]> \"quoted\" 😀\n  spaced  ",
                    ),
                    message(
                        &open_id,
                        t + 1,
                        Some(&format!("{}", 100 + n)),
                        MessageBody::Image {
                            pic_url: Some("https://mmbiz.example.invalid/p.jpg?a=1&b=2".into()),
                            media_id: (platform == Platform::Wechat).then(|| "media-1".into()),
                        },
                    ),
                ];
                if platform == Platform::Wechat {
                    messages.push(message(
                        &open_id,
                        t + 2,
                        Some(&format!("{}", 200 + n)),
                        MessageBody::MiniProgramPage {
                            title: "商品".into(),
                            app_id: WX.into(),
                            page_path: "pages/a?id=1".into(),
                            thumb_url: "https://x.example.invalid/t.jpg".into(),
                            thumb_media_id: "thumb-1".into(),
                        },
                    ));
                    messages.push(message(
                        &open_id,
                        t + 3,
                        None,
                        MessageBody::UserEnterTempSession {
                            session_from: "goods".into(),
                        },
                    ));
                }
                if platform == Platform::Baidu {
                    for m in &mut messages {
                        m.to_user_name = Some(BD.into());
                    }
                }
                for m in &messages {
                    assert_eq!(
                        push(&env, platform, mode, format, m).await,
                        (StatusCode::OK, "success".into()),
                        "{platform} {mode:?} {format:?}"
                    );
                }
                cases.push((platform, open_id, messages));
            }
        }
    }
    let (handled, failed) = env.drain(&env.processor()).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(handled, cases.iter().map(|c| c.2.len()).sum::<usize>());
    for (platform, open_id, sent) in cases {
        let stored = env
            .store
            .messages(&conversation(platform, &open_id), None)
            .await
            .unwrap();
        assert_eq!(stored.len(), sent.len(), "{platform} {open_id}");
        for (s, m) in stored.iter().zip(&sent) {
            assert_eq!(s.direction, Direction::In);
            assert_eq!(s.msg_type, m.msg_type());
            assert_eq!(s.create_time, m.create_time);
            assert_eq!(s.msg_id.as_deref(), m.msg_id.as_ref().map(|i| i.0.as_str()));
            let raw: InboundMessage<'static> =
                serde_json::from_str(s.raw.as_deref().unwrap()).unwrap();
            assert_eq!(
                &raw, m,
                "{platform} {open_id}: stored message differs from the one sent"
            );
            if let MessageBody::Text { content } = &m.body {
                assert_eq!(s.content.as_deref(), Some(content.as_ref()));
            }
        }
    }
}

#[tokio::test]
async fn verification_requests_answer_with_the_echo() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let app = env.ingress(NOW);
    for (platform, via, token) in [
        (
            Platform::Wechat,
            VerifyVia::Query,
            keys(Platform::Wechat).token,
        ),
        (
            Platform::Baidu,
            VerifyVia::Query,
            keys(Platform::Baidu).token,
        ),
        (
            Platform::Baidu,
            VerifyVia::Form,
            keys(Platform::Baidu).token,
        ),
        (
            Platform::Baidu,
            VerifyVia::Json,
            keys(Platform::Baidu).token,
        ),
    ] {
        let sim = verify_request(&token, NOW, "77", "echo-4375120948345356249", platform, via);
        let resp = ingress::handle(&app, request(platform, &sim))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{platform} {via:?}");
        assert_eq!(resp.body().as_ref(), b"echo-4375120948345356249");
    }
    assert_eq!(env.depth(&env.queues.inbound).await, 0);
}

#[tokio::test]
async fn retried_pushes_and_redelivered_records_store_one_message_and_grant_once() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let m = text("oRetry", NOW, "18446744073709551000", "retry me");
    // The platform retries the same push 4 times (it did not see our answer in time).
    for _ in 0..4 {
        assert_eq!(
            push(&env, Platform::Wechat, Mode::Safe, DataFormat::Xml, &m)
                .await
                .0,
            StatusCode::OK
        );
    }
    // SQS delivers one record twice (at-least-once): run the same received batch through twice.
    let processor = env.processor();
    let batch = env.receive(&env.queues.inbound, 1).await;
    assert!(!batch.is_empty());
    for _ in 0..2 {
        let event = sqs_event(&batch, &env.queues.inbound);
        let resp = processor::handle(
            &processor,
            lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
        )
        .await
        .unwrap();
        assert!(resp.batch_item_failures.is_empty());
    }
    let (_, failed) = env.drain(&processor).await;
    assert!(failed.is_empty());
    let key = conversation(Platform::Wechat, "oRetry");
    assert_eq!(env.store.messages(&key, None).await.unwrap().len(), 1);
    let conv = env.store.conversation(&key).await.unwrap().unwrap();
    assert_eq!(
        conv.window,
        Window {
            remaining: 5,
            expires_at: NOW + 172_800
        }
    );
    assert_eq!(conv.unread, 1, "the grant and counters were applied once");
    assert_eq!(conv.inbound_count, 1);
}

#[tokio::test]
async fn bad_pushes_get_4xx_and_leave_the_queue_empty() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let m = text("oBad", NOW, "1", "x");
    let good = push_request(
        &keys(Platform::Wechat),
        &spec(Platform::Wechat, Mode::Safe, DataFormat::Json, NOW),
        &render(&m, DataFormat::Json),
    );
    let mut bad_signature = good.clone();
    bad_signature.query = bad_signature
        .query
        .replace("msg_signature=", "msg_signature=f");
    let mut tampered = good.clone();
    // Re-sign a corrupted ciphertext so only decryption can catch it.
    let k = keys(Platform::Wechat);
    let body: serde_json::Value = serde_json::from_str(&good.body).unwrap();
    let encrypt = body["Encrypt"].as_str().unwrap();
    let corrupt = format!("{}{}", &encrypt[..encrypt.len() - 8], "AAAAAA==");
    let sig = shared::protocol::Signature::message(&k.token, &NOW.to_string(), "424242", &corrupt);
    tampered.body =
        serde_json::json!({ "ToUserName": "gh_kefu00000001", "Encrypt": corrupt }).to_string();
    tampered.query =
        format!("signature=x&timestamp={NOW}&nonce=424242&encrypt_type=aes&msg_signature={sig}");
    let app = env.ingress(NOW);
    for (uri_app, sim, status) in [
        (WX, bad_signature, StatusCode::UNAUTHORIZED),
        ("wxunknown", good.clone(), StatusCode::NOT_FOUND),
        (WX, tampered, StatusCode::BAD_REQUEST),
    ] {
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("/wechat/{uri_app}?{}", sim.query))
            .body(Body::from(sim.body.clone()))
            .unwrap();
        assert_eq!(ingress::handle(&app, req).await.unwrap().status(), status);
    }
    assert_eq!(env.depth(&env.queues.inbound).await, 0);
}

#[tokio::test]
async fn an_unreachable_queue_gets_5xx_within_the_budget() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    // A closed port on loopback: connection refused, then the SDK's own retry, within the budget.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dead = format!("http://127.0.0.1:{port}");
    let sdk = env.sdk.to_builder().endpoint_url(&dead).build();
    let config = ingress::Limits {
        enqueue_budget: Duration::from_millis(800),
        ..ingress::Limits::default()
    };
    let queue = SqsQueue::new(
        SqsQueue::client_with_budget(&sdk, config.enqueue_budget),
        format!("{dead}/123456789012/kefu-inbound"),
    );
    let app = ingress::App::new(config, TestEnv::registry(), queue, FixedClock::at_secs(NOW));
    let m = text("oDown", NOW, "1", "x");
    let sim = push_request(
        &keys(Platform::Wechat),
        &spec(Platform::Wechat, Mode::Safe, DataFormat::Json, NOW),
        &render(&m, DataFormat::Json),
    );
    let started = Instant::now();
    let resp = ingress::handle(&app, request(Platform::Wechat, &sim))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_ne!(resp.body().as_ref(), b"success");
    // Behaviour, not a benchmark: without the budget the SDK would retry for many seconds.
    assert!(
        elapsed < Duration::from_millis(2000),
        "answered after {elapsed:?}"
    );
}

#[tokio::test]
async fn a_poison_record_is_reported_and_the_rest_of_the_batch_is_stored() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let good = QueueEnvelope::new(
        Platform::Wechat,
        WX,
        NOW * 1000,
        Mode::Safe,
        DataFormat::Json,
        text("oPoison", NOW, "5", "fine"),
    );
    for body in [
        good.to_json(),
        "{\"v\":1,\"garbage\":true}".to_owned(),
        "not json".to_owned(),
    ] {
        env.sqs
            .send_message()
            .queue_url(&env.queues.inbound)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let batch = env.receive(&env.queues.inbound, 1).await;
    assert_eq!(batch.len(), 3);
    let event = sqs_event(&batch, &env.queues.inbound);
    let resp = processor::handle(
        &env.processor(),
        lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(resp.batch_item_failures.len(), 2);
    let good_id = batch
        .iter()
        .find(|m| m.body.as_deref() == Some(good.to_json().as_str()))
        .unwrap()
        .message_id
        .clone()
        .unwrap();
    assert!(
        resp.batch_item_failures
            .iter()
            .all(|f| f.item_identifier != good_id)
    );
    assert_eq!(
        env.store
            .messages(&conversation(Platform::Wechat, "oPoison"), None)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn out_of_order_deliveries_read_back_in_create_time_order() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    for (t, id) in [(NOW + 30, "3"), (NOW + 10, "1"), (NOW + 20, "2")] {
        let m = text("oOrder", t, id, &format!("at {t}"));
        assert_eq!(
            push(&env, Platform::Baidu, Mode::Safe, DataFormat::Json, &m)
                .await
                .0,
            StatusCode::OK
        );
        // One record at a time, so the store really sees them out of order.
        let (_, failed) = env.drain(&env.processor()).await;
        assert!(failed.is_empty());
    }
    let key = conversation(Platform::Baidu, "oOrder");
    let stored = env.store.messages(&key, None).await.unwrap();
    let times: Vec<u64> = stored.iter().map(|m| m.create_time).collect();
    assert_eq!(times, [NOW + 10, NOW + 20, NOW + 30]);
    let conv = env.store.conversation(&key).await.unwrap().unwrap();
    assert_eq!(conv.last_in_at, Some(NOW + 30));
    assert_eq!(
        conv.last_in_preview.as_deref(),
        Some(format!("at {}", NOW + 30).as_str())
    );
    assert_eq!(conv.window.expires_at, NOW + 30 + 172_800);
}

#[tokio::test]
async fn a_new_inbound_message_costs_exactly_one_dynamodb_request() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let processor = env.processor();
    for (i, t) in [NOW, NOW + 60, NOW + 120].into_iter().enumerate() {
        let envelope = QueueEnvelope::new(
            Platform::Wechat,
            WX,
            t * 1000,
            Mode::Safe,
            DataFormat::Json,
            text("oCount", t, &format!("{i}"), "hi"),
        );
        let mut record = aws_lambda_events::event::sqs::SqsMessage::default();
        record.message_id = Some(format!("m{i}"));
        record.body = Some(envelope.to_json());
        env.ddb_requests.take();
        processor.process_one(&record).await.unwrap();
        assert_eq!(env.ddb_requests.take(), 1, "message {i}");
    }
}

#[tokio::test]
async fn a_card_in_the_same_second_as_the_enter_event_opens_the_full_window() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    // A user taps a customer-service button with a card: WeChat pushes the enter-session event
    // (1 message within 60 s) and the card (5 within 48 h) with the same CreateTime.
    let enter = message(
        "oSameSecond",
        NOW,
        None,
        MessageBody::UserEnterTempSession {
            session_from: "card".into(),
        },
    );
    let card = text("oSameSecond", NOW, "77", "[card]");
    for m in [&enter, &card] {
        let (status, _) = push(&env, Platform::Wechat, Mode::Safe, DataFormat::Json, m).await;
        assert_eq!(status, StatusCode::OK);
        let (_, failed) = env.drain(&env.processor()).await;
        assert!(failed.is_empty());
    }
    let conv = env
        .store
        .conversation(&conversation(Platform::Wechat, "oSameSecond"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (conv.window.remaining, conv.window.expires_at),
        (5, NOW + 172_800),
        "the card's grant, not the event's 1 unit for 60 s"
    );
}
