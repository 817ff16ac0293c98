//! Writes the trigger fixtures under `events/`: API Gateway HTTP API v2 events for ingress, signed
//! and encrypted with the TEST-ONLY keys of `infra/local/apps.json`, SQS events for the processor,
//! API Gateway events of the IAM-authorised send routes for the sender (`POST /messages`,
//! `POST /typing`), and `events/ingress/manifest.json` with the answer each ingress event must get.
//! Tests in the integration binary (`events`, `sender_events`) replay or parse them so they cannot
//! drift.
//!
//! Run: `cargo run -p integration-tests --bin gen-events` from the workspace root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::{Value, json};
use shared::ids::{MsgId, Platform};
use shared::message::{InboundMessage, MessageBody, QueueEnvelope, render};
use shared::protocol::simulate::{
    AppKeys, PushSpec, SimulatedRequest, VerifyVia, push_request, verify_request,
};
use shared::protocol::{AesKey, DataFormat, Mode};

/// The signed timestamp of every fixture (replays need `REPLAY_WINDOW_SECS=0` or a pinned clock).
pub const FIXTURE_TIME: u64 = 1_763_770_123;
const WECHAT_APP: &str = "wxkefu0000000001";
const BAIDU_APP: &str = "10000001";

fn keys(root: &Path, platform: Platform) -> AppKeys {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("infra/local/apps.json")).unwrap())
            .unwrap();
    let app = doc["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["platform"] == platform.as_str())
        .unwrap();
    AppKeys {
        token: app["token"].as_str().unwrap().into(),
        key: AesKey::from_encoding_aes_key(app["encoding_aes_key"].as_str().unwrap()).unwrap(),
        receive_id: match platform {
            Platform::Wechat => WECHAT_APP.into(),
            Platform::Baidu => "20073496".into(),
        },
    }
}

fn message(msg_type: &str) -> InboundMessage<'static> {
    let (body, msg_id) = match msg_type {
        "text" => (
            MessageBody::Text {
                content: "您好，请问订单什么时候发货？ order #42 😀".into(),
            },
            Some("18446744073709551000"),
        ),
        "image" => (
            MessageBody::Image {
                pic_url: Some("https://mmbiz.example.invalid/pic/1.jpg".into()),
                media_id: Some("test-media-id-1".into()),
            },
            Some("1234567890123457"),
        ),
        "miniprogrampage" => (
            MessageBody::MiniProgramPage {
                title: "商品详情".into(),
                app_id: WECHAT_APP.into(),
                page_path: "pages/goods/detail?id=42".into(),
                thumb_url: "https://mmbiz.example.invalid/thumb.jpg".into(),
                thumb_media_id: "test-thumb-media-id".into(),
            },
            Some("1234567890123458"),
        ),
        _ => (
            MessageBody::UserEnterTempSession {
                session_from: "goods_detail_page".into(),
            },
            None,
        ),
    };
    InboundMessage {
        to_user_name: Some("gh_kefu00000001".into()),
        from_user_name: "oKefuTestUser000000000000001".into(),
        create_time: FIXTURE_TIME,
        msg_id: msg_id.map(|m| MsgId(m.into())),
        body,
    }
}

/// A Baidu text push: Baidu addresses pushes to the app id.
fn baidu_message() -> InboundMessage<'static> {
    InboundMessage {
        to_user_name: Some(BAIDU_APP.into()),
        ..message("text")
    }
}

fn spec(
    platform: Platform,
    mode: Mode,
    format: DataFormat,
    body_signature: bool,
) -> PushSpec<'static> {
    PushSpec {
        platform,
        mode,
        format,
        timestamp: FIXTURE_TIME,
        nonce: "1357924680",
        random: *b"kefu-test-random",
        body_signature,
        to_user_name: (platform == Platform::Wechat).then_some("gh_kefu00000001"),
    }
}

fn apigw_event(platform: Platform, app: &str, sim: &SimulatedRequest, base64: bool) -> Value {
    let path = format!("/{platform}/{app}");
    let body = if base64 {
        use base64::Engine as _;
        Value::String(base64::engine::general_purpose::STANDARD.encode(&sim.body))
    } else if sim.body.is_empty() {
        Value::Null
    } else {
        Value::String(sim.body.clone())
    };
    json!({
        "version": "2.0",
        "routeKey": format!("{} /{platform}/{{app}}", sim.method),
        "rawPath": path,
        "rawQueryString": sim.query,
        "headers": { "content-type": sim.content_type, "host": "kefu.example.invalid", "user-agent": "Mozilla/4.0" },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "kefuapi",
            "domainName": "kefu.example.invalid",
            "domainPrefix": "kefu",
            "http": { "method": sim.method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10", "userAgent": "Mozilla/4.0" },
            "requestId": "kefu-fixture",
            "routeKey": format!("{} /{platform}/{{app}}", sim.method),
            "stage": "$default",
            "time": "22/Nov/2026:01:00:00 +0000",
            "timeEpoch": FIXTURE_TIME * 1000
        },
        "pathParameters": { "app": app },
        "body": body,
        "isBase64Encoded": base64
    })
}

/// A sender request as API Gateway delivers it on an IAM-authorised route (`AWS_IAM`): the
/// caller's identity in `requestContext.authorizer.iam`, the JSON body as text.
fn sender_event(route: &str, body: &Value) -> Value {
    json!({
        "version": "2.0",
        "routeKey": format!("POST {route}"),
        "rawPath": route,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "host": "kefu.example.invalid",
            "user-agent": "kefu-agent-console/1.0",
            "x-amz-date": "20261122T010000Z"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "kefuapi",
            "authorizer": {
                "iam": {
                    "accessKey": "AKIAIOSFODNN7EXAMPLE",
                    "accountId": "123456789012",
                    "callerId": "AIDAKEFUEXAMPLEAGENT",
                    "cognitoIdentity": null,
                    "principalOrgId": null,
                    "userArn": "arn:aws:iam::123456789012:user/kefu-agent",
                    "userId": "AIDAKEFUEXAMPLEAGENT"
                }
            },
            "domainName": "kefu.example.invalid",
            "domainPrefix": "kefu",
            "http": { "method": "POST", "path": route, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.20", "userAgent": "kefu-agent-console/1.0" },
            "requestId": "kefu-fixture-sender",
            "routeKey": format!("POST {route}"),
            "stage": "$default",
            "time": "22/Nov/2026:01:00:00 +0000",
            "timeEpoch": FIXTURE_TIME * 1000
        },
        "body": body.to_string(),
        "isBase64Encoded": false
    })
}

fn sqs_event(records: &[(&str, String)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("fixture-receipt-{id}"),
                "body": body,
                "attributes": { "ApproximateReceiveCount": "1", "SentTimestamp": (FIXTURE_TIME * 1000).to_string(),
                                "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": (FIXTURE_TIME * 1000).to_string() },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:kefu-inbound",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

fn write(root: &Path, rel: &str, value: &Value) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap() + "\n").unwrap();
    println!("wrote {rel}");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let wx = keys(root, Platform::Wechat);
    let bd = keys(root, Platform::Baidu);
    let mut manifest = serde_json::Map::new();
    let mut ingress = |name: &str, event: Value, status: u16, body: &str| {
        write(root, &format!("events/ingress/{name}.json"), &event);
        manifest.insert(name.into(), json!({ "status": status, "body": body }));
    };
    let w = Platform::Wechat;
    let b = Platform::Baidu;
    ingress(
        "wechat_verify_get",
        apigw_event(
            w,
            WECHAT_APP,
            &verify_request(
                &wx.token,
                FIXTURE_TIME,
                "1514711492",
                "4375120948345356249",
                w,
                VerifyVia::Query,
            ),
            false,
        ),
        200,
        "4375120948345356249",
    );
    for (name, mode, format, msg_type) in [
        (
            "wechat_text_safe_json",
            Mode::Safe,
            DataFormat::Json,
            "text",
        ),
        ("wechat_text_safe_xml", Mode::Safe, DataFormat::Xml, "text"),
        (
            "wechat_text_compat_xml",
            Mode::Compatible,
            DataFormat::Xml,
            "text",
        ),
        (
            "wechat_text_plain_json",
            Mode::Plaintext,
            DataFormat::Json,
            "text",
        ),
        (
            "wechat_image_safe_xml",
            Mode::Safe,
            DataFormat::Xml,
            "image",
        ),
        (
            "wechat_miniprogrampage_safe_json",
            Mode::Safe,
            DataFormat::Json,
            "miniprogrampage",
        ),
        (
            "wechat_enter_session_safe_xml",
            Mode::Safe,
            DataFormat::Xml,
            "event",
        ),
    ] {
        let sim = push_request(
            &wx,
            &spec(w, mode, format, false),
            &render(&message(msg_type), format),
        );
        ingress(
            name,
            apigw_event(w, WECHAT_APP, &sim, false),
            200,
            "success",
        );
    }
    let good = push_request(
        &wx,
        &spec(w, Mode::Safe, DataFormat::Json, false),
        &render(&message("text"), DataFormat::Json),
    );
    ingress(
        "wechat_text_base64_body",
        apigw_event(w, WECHAT_APP, &good, true),
        200,
        "success",
    );
    let mut bad = good.clone();
    bad.query = bad.query.replace("msg_signature=", "msg_signature=0");
    ingress(
        "wechat_bad_signature",
        apigw_event(w, WECHAT_APP, &bad, false),
        401,
        "signature_mismatch",
    );
    ingress(
        "wechat_unknown_app",
        apigw_event(w, "wxnotregistered", &good, false),
        404,
        "unknown_app",
    );

    for (name, via) in [
        ("baidu_verify_get", VerifyVia::Query),
        ("baidu_verify_post_form", VerifyVia::Form),
        ("baidu_verify_post_json", VerifyVia::Json),
    ] {
        let sim = verify_request(
            &bd.token,
            FIXTURE_TIME,
            "998877",
            "baidu-echo-7281926354",
            b,
            via,
        );
        ingress(
            name,
            apigw_event(b, BAIDU_APP, &sim, false),
            200,
            "baidu-echo-7281926354",
        );
    }
    let sim = push_request(
        &bd,
        &spec(b, Mode::Safe, DataFormat::Json, true),
        &render(&baidu_message(), DataFormat::Json),
    );
    ingress(
        "baidu_text_safe_json_body_signed",
        apigw_event(b, BAIDU_APP, &sim, false),
        200,
        "success",
    );
    let sim = push_request(
        &bd,
        &spec(b, Mode::Plaintext, DataFormat::Json, false),
        &render(&baidu_message(), DataFormat::Json),
    );
    ingress(
        "baidu_text_plain_json",
        apigw_event(b, BAIDU_APP, &sim, false),
        200,
        "success",
    );
    write(
        root,
        "events/ingress/manifest.json",
        &Value::Object(manifest),
    );

    let env = |m: InboundMessage| {
        QueueEnvelope::new(
            w,
            WECHAT_APP,
            FIXTURE_TIME * 1000,
            Mode::Safe,
            DataFormat::Json,
            m,
        )
        .to_json()
    };
    let mut second = message("text");
    second.msg_id = Some(MsgId("1234567890123459".into()));
    second.create_time += 5;
    second.body = MessageBody::Text {
        content: "second message".into(),
    };
    write(
        root,
        "events/processor/sqs_two_messages.json",
        &sqs_event(&[
            ("fixture-1", env(message("text"))),
            ("fixture-2", env(second)),
        ]),
    );
    write(
        root,
        "events/processor/sqs_duplicate_message.json",
        &sqs_event(&[
            ("fixture-1", env(message("text"))),
            ("fixture-1-again", env(message("text"))),
        ]),
    );
    write(
        root,
        "events/processor/sqs_poison_message.json",
        &sqs_event(&[
            ("fixture-1", env(message("text"))),
            ("fixture-poison", "{\"not\":\"an envelope\"}".into()),
        ]),
    );

    let user = message("text").from_user_name;
    write(
        root,
        "events/sender/send_text.json",
        &sender_event(
            "/messages",
            &json!({
                "app_id": WECHAT_APP,
                "platform": "wechat",
                "open_id": user,
                "msg_type": "text",
                "content": "您好，您的订单 #42 已发货 😀",
                "client_msg_id": "fixture-send-text-1"
            }),
        ),
    );
    write(
        root,
        "events/sender/typing.json",
        &sender_event(
            "/typing",
            &json!({ "app_id": WECHAT_APP, "open_id": user, "command": "Typing" }),
        ),
    );
}
