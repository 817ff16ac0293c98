//! What is queued for pushes that are hard to store: authenticated plaintexts that do not parse
//! (kept raw), bodies whose envelope would pass SQS's size limit (cut, with the marker), fields too
//! long for a storage key (refused), and the replay tag of plaintext pushes.

use serde_json::Value;
use shared::message::render;
use shared::protocol::simulate::push_request;

use super::*;

/// SQS's limit on a message body, in bytes.
const SQS_LIMIT: usize = 262_144;

/// The fixture apps plus a WeChat app with no original id configured.
fn with_unnamed_app() -> App<InMemoryQueue, FixedClock> {
    app_with(&format!(
        r#"{{"apps":[
            {{"platform":"wechat","app_id":"wxtest","original_id":"gh_test","mode":"plaintext","token":"tok","encoding_aes_key":"{KEY}"}},
            {{"platform":"wechat","app_id":"wxnoid","token":"tok","encoding_aes_key":"{KEY}"}}]}}"#
    ))
}

fn safe_push(app_id: &str, plaintext: &str) -> Request {
    let keys = AppKeys {
        receive_id: app_id.into(),
        ..keys(Platform::Wechat)
    };
    let sim = push_request(
        &keys,
        &spec(Platform::Wechat, Mode::Safe, DataFormat::Xml),
        plaintext,
    );
    request(&format!("/wechat/{app_id}"), &sim)
}

fn plaintext_push(plaintext: &str) -> Request {
    let sim = push_request(
        &keys(Platform::Wechat),
        &spec(Platform::Wechat, Mode::Plaintext, DataFormat::Xml),
        plaintext,
    );
    request("/wechat/wxtest", &sim)
}

fn ok() -> (StatusCode, String) {
    (StatusCode::OK, "success".into())
}

#[tokio::test]
async fn an_authenticated_plaintext_that_does_not_parse_is_queued_raw() {
    // (app, plaintext, from_user_name, create_time, msg_type) as ingress can read them; the clock
    // runs 5 s after the signed timestamp, which stands in for an unreadable CreateTime.
    let cases = [
        ("wxnoid", "hello, not a document", "", NOW, "unknown"),
        (
            "wxtest",
            r#"{"ToUserName":"gh_test","FromUserName":"oU","CreateTime":5,"MsgType":"text"}"#,
            "oU",
            5,
            "text",
        ),
        (
            "wxtest",
            "<xml><ToUserName>gh_test</ToUserName><CreateTime>7</CreateTime><MsgType>image</MsgType></xml>",
            "",
            7,
            "image",
        ),
        (
            "wxtest",
            r#"{"ToUserName":"gh_test","FromUserName":"oU","CreateTime":"later","MsgType":"text","Content":"x"}"#,
            "oU",
            NOW,
            "text",
        ),
        (
            "wxtest",
            r#"{"ToUserName":"gh_test","FromUserName":["oU"],"CreateTime":9,"MsgType":7}"#,
            "",
            9,
            "unknown",
        ),
    ];
    for (app_id, plaintext, from, create_time, msg_type) in cases {
        let app = with_unnamed_app();
        app.clock.set_secs(NOW + 5);
        assert_eq!(
            call(&app, safe_push(app_id, plaintext)).await,
            ok(),
            "{plaintext}"
        );
        let q = queued_json(&app);
        assert_eq!(q.len(), 1, "{plaintext}");
        let m = &q[0]["message"];
        assert_eq!(m["body"]["type"], "raw", "{plaintext}");
        assert_eq!(m["body"]["raw"], plaintext);
        assert_eq!(m["body"]["msg_type"], msg_type, "{plaintext}");
        assert_eq!(m["from_user_name"], from, "{plaintext}");
        assert_eq!(m["create_time"], create_time, "{plaintext}");
        assert_eq!(queued(&app).len(), 1, "the envelope reads back");
    }
}

#[tokio::test]
async fn raw_pushes_dedupe_on_their_content() {
    let app = with_unnamed_app();
    for plaintext in [
        "first, unparseable",
        "second, unparseable",
        "first, unparseable",
    ] {
        app.clock.set_secs(NOW + 1);
        assert_eq!(call(&app, safe_push("wxnoid", plaintext)).await, ok());
    }
    let keys: Vec<String> = queued_json(&app)
        .iter()
        .map(|e| e["position"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 3);
    assert_ne!(keys[0], keys[1], "different pushes never collide");
    assert_eq!(keys[0], keys[2], "a retry dedupes");
}

/// A body of `MAX_BODY_BYTES` (64 KiB) whose text is C0 control characters (6 bytes each once
/// escaped in JSON): a byte-for-byte envelope would be six times SQS's limit.
fn control_chars_filling(template: impl Fn(&str) -> String) -> (String, usize) {
    let overhead = template("").len();
    let n = Limits::default().max_body_bytes - overhead;
    let content = "\u{1}".repeat(n);
    (template(&content), n)
}

#[tokio::test]
async fn a_64_kib_control_character_text_is_cut_to_fit_the_queue() {
    let (body, n) = control_chars_filling(|c| render(&text(c), DataFormat::Xml));
    assert_eq!(body.len(), 64 * 1024);
    let app = app();
    assert_eq!(call(&app, plaintext_push(&body)).await, ok());
    let bodies = app.queue.bodies();
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].len() <= SQS_LIMIT, "{} bytes", bodies[0].len());
    let q: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(q["truncated"], n, "the original length is recorded");
    let content = q["message"]["body"]["content"].as_str().unwrap();
    assert!(
        content.len() < n && content.len() > 30_000,
        "{}",
        content.len()
    );
    assert!(content.chars().all(|c| c == '\u{1}'), "cut, not altered");
}

#[tokio::test]
async fn a_64_kib_control_character_raw_push_is_cut_to_fit_the_queue() {
    // No FromUserName: not a known shape, so it is kept raw, and the raw text is what is cut.
    let (body, n) = control_chars_filling(|c| {
        format!(
            "<xml><ToUserName>gh_test</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>{c}</Content></xml>"
        )
    });
    let app = app();
    assert_eq!(call(&app, plaintext_push(&body)).await, ok());
    let bodies = app.queue.bodies();
    assert!(bodies[0].len() <= SQS_LIMIT, "{} bytes", bodies[0].len());
    let q: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(q["message"]["body"]["type"], "raw");
    assert_eq!(q["truncated"], body.len());
    let raw = q["message"]["body"]["raw"].as_str().unwrap();
    assert!(body.starts_with(raw) && raw.len() < n, "{}", raw.len());
}

#[tokio::test]
async fn fields_too_long_for_a_storage_key_are_refused() {
    let at_limit = |mut m: InboundMessage<'static>, field: &str, len: usize| {
        let value = "a".repeat(len);
        match field {
            "open_id" => m.from_user_name = value.into(),
            "msg_id" => m.msg_id = Some(MsgId(value)),
            "event" => {
                m.msg_id = None;
                m.body = MessageBody::Event {
                    event: value.into(),
                    fields: serde_json::Map::new(),
                };
            }
            _ => {
                m.body = MessageBody::Unknown {
                    msg_type: value.into(),
                    fields: serde_json::Map::new(),
                };
            }
        }
        m
    };
    for (field, limit) in [
        ("open_id", 256),
        ("msg_id", 128),
        ("event", 64),
        ("msg_type", 64),
    ] {
        for (len, expected) in [
            (limit, ok()),
            (limit + 1, (StatusCode::BAD_REQUEST, "key_too_long".into())),
        ] {
            let app = app();
            let m = at_limit(text("hi"), field, len);
            let sim = push_request(
                &keys(Platform::Wechat),
                &spec(Platform::Wechat, Mode::Safe, DataFormat::Json),
                &render(&m, DataFormat::Json),
            );
            assert_eq!(
                call(&app, request("/wechat/wxtest", &sim)).await,
                expected,
                "{field} of {len} bytes"
            );
            assert_eq!(
                app.queue.bodies().len(),
                usize::from(expected.0 == StatusCode::OK),
                "{field} of {len} bytes"
            );
        }
    }
}

#[tokio::test]
async fn plaintext_pushes_carry_a_replay_tag_and_encrypted_ones_do_not() {
    let app = app();
    for content in ["one", "two"] {
        let body = render(&text(content), DataFormat::Xml);
        assert_eq!(call(&app, plaintext_push(&body)).await, ok());
    }
    let sim = push_request(
        &keys(Platform::Wechat),
        &spec(Platform::Wechat, Mode::Safe, DataFormat::Xml),
        &render(&text("three"), DataFormat::Xml),
    );
    assert_eq!(call(&app, request("/wechat/wxtest", &sim)).await, ok());
    let q = queued_json(&app);
    let tags: Vec<&Value> = q.iter().map(|e| &e["replay"]).collect();
    for tag in &tags[..2] {
        assert_eq!(tag["nonce"], "1357924680");
        assert_eq!(tag["timestamp"], NOW);
        let digest = tag["digest"].as_str().unwrap();
        assert_eq!(digest.len(), 64);
        assert!(
            digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
    }
    assert_ne!(
        tags[0]["digest"], tags[1]["digest"],
        "same nonce and timestamp, other body"
    );
    assert_eq!(*tags[2], Value::Null, "no tag on an encrypted push");
    assert!(!app.queue.bodies()[2].contains("\"replay\""));
}
