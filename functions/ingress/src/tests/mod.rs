//! Handler tests with the in-memory queue and a pinned clock: shared fixtures here; what each
//! outcome answers in `outcomes`, which pushes an app admits in `admission`, and what is queued for
//! the pushes that are hard to store in `storage`.

mod admission;
mod handoff;
mod outcomes;
mod storage;

use lambda_http::http::{self, StatusCode};
use lambda_http::{Body, Request};
use shared::clock::FixedClock;
use shared::ids::{MsgId, Platform};
use shared::message::{InboundMessage, MessageBody, QueueEnvelope};
use shared::protocol::simulate::{AppKeys, PushSpec, SimulatedRequest};
use shared::protocol::{AesKey, DataFormat, Mode};
use shared::registry::AppRegistry;
use testkit::memory::InMemoryQueue;

use super::{App, Limits, handle};

const KEY: &str = "kgPoYqnCDoYzBKbftfOoXTZhQ8stzhe6SVI34Zwh8Xm";
const NOW: u64 = 1_763_770_123;

fn registry() -> AppRegistry {
    AppRegistry::parse(&format!(
        r#"{{"apps":[
            {{"platform":"wechat","app_id":"wxtest","original_id":"gh_test","mode":"plaintext","token":"tok","encoding_aes_key":"{KEY}"}},
            {{"platform":"baidu","app_id":"bdtest","mode":"plaintext","token":"btok","encoding_aes_key":"{KEY}"}}]}}"#
    ))
    .unwrap()
}

fn app() -> App<InMemoryQueue, FixedClock> {
    App::new(
        Limits::default(),
        registry(),
        InMemoryQueue::new(),
        FixedClock::at_secs(NOW),
    )
}

fn keys(platform: Platform) -> AppKeys {
    let (token, receive_id) = match platform {
        Platform::Wechat => ("tok", "wxtest"),
        Platform::Baidu => ("btok", "20073496"),
    };
    AppKeys {
        token: token.into(),
        key: AesKey::from_encoding_aes_key(KEY).unwrap(),
        receive_id: receive_id.into(),
    }
}

/// The route of the fixture app on `platform`.
fn path(platform: Platform) -> &'static str {
    match platform {
        Platform::Wechat => "/wechat/wxtest",
        Platform::Baidu => "/baidu/bdtest",
    }
}

/// A text addressed to the fixture WeChat app.
fn text(content: &str) -> InboundMessage<'static> {
    text_for(Platform::Wechat, content)
}

/// A text addressed as each platform addresses the fixture app (original id, Baidu app id).
fn text_for(platform: Platform, content: &str) -> InboundMessage<'static> {
    InboundMessage {
        to_user_name: Some(match platform {
            Platform::Wechat => "gh_test".into(),
            Platform::Baidu => "bdtest".into(),
        }),
        from_user_name: "oUser1".into(),
        create_time: NOW,
        msg_id: Some(MsgId("18446744073709551000".into())),
        body: MessageBody::Text {
            content: content.to_owned().into(),
        },
    }
}

fn spec(platform: Platform, mode: Mode, format: DataFormat) -> PushSpec<'static> {
    PushSpec {
        platform,
        mode,
        format,
        timestamp: NOW,
        nonce: "1357924680",
        random: *b"0123456789abcdef",
        body_signature: false,
        to_user_name: Some("gh_test"),
    }
}

fn request(path: &str, sim: &SimulatedRequest) -> Request {
    let uri = if sim.query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", sim.query)
    };
    http::Request::builder()
        .method(sim.method)
        .uri(uri)
        .header("content-type", sim.content_type)
        .body(Body::from(sim.body.clone()))
        .unwrap()
}

async fn call(app: &App<InMemoryQueue, FixedClock>, req: Request) -> (StatusCode, String) {
    let resp = handle(app, req).await.unwrap();
    let body = String::from_utf8(resp.body().as_ref().to_vec()).unwrap();
    (resp.status(), body)
}

fn queued(app: &App<InMemoryQueue, FixedClock>) -> Vec<QueueEnvelope<'static>> {
    app.queue
        .bodies()
        .iter()
        .map(|b| QueueEnvelope::from_json(b).unwrap())
        .collect()
}

/// The queued bodies as JSON documents.
fn queued_json(app: &App<InMemoryQueue, FixedClock>) -> Vec<serde_json::Value> {
    app.queue
        .bodies()
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect()
}

fn app_with(registry_json: &str) -> App<InMemoryQueue, FixedClock> {
    App::new(
        Limits::default(),
        AppRegistry::parse_for(registry_json, shared::registry::Purpose::Verify).unwrap(),
        InMemoryQueue::new(),
        FixedClock::at_secs(NOW),
    )
}
