//! The hand-off to WeChat's tool: user messages answered with a `transfer_customer_service` reply
//! the platform can open, sealed as the push was; events, raw pushes and refused pushes never.

use lambda_http::http::StatusCode;
use shared::message::{MessageBody, render};
use shared::protocol::reply::{ReplySeal, open_reply};
use shared::protocol::simulate::{AppKeys, push_request};
use shared::protocol::{AesKey, Signature};
use shared::protocol::{DataFormat, Mode};

use super::*;

const OLD_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn handoff_app(extra: &str) -> App<InMemoryQueue, FixedClock> {
    app_with(&format!(
        r#"{{"apps":[{{"platform":"wechat","app_id":"wxtest","original_id":"gh_test","mode":"plaintext","handoff":"wechat_tool","token":"tok","encoding_aes_key":"{KEY}"{extra}}}]}}"#
    ))
}

async fn respond(
    app: &App<InMemoryQueue, FixedClock>,
    sim: &SimulatedRequest,
) -> (StatusCode, String, String) {
    let resp = handle(app, request("/wechat/wxtest", sim)).await.unwrap();
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let body = String::from_utf8(resp.body().as_ref().to_vec()).unwrap();
    (resp.status(), content_type, body)
}

/// The transfer message the platform reads out of `body`.
fn opened(keys: &AppKeys, mode: Mode, body: &str) -> (DataFormat, String) {
    if mode == Mode::Plaintext {
        return (DataFormat::sniff(body.as_bytes()).unwrap(), body.to_owned());
    }
    let seal = ReplySeal {
        token: &keys.token,
        key: &keys.key,
        receive_id: &keys.receive_id,
    };
    open_reply(&seal, body.as_bytes(), "1357924680").expect("the platform can open the reply")
}

fn expected_transfer(format: DataFormat) -> String {
    shared::protocol::reply::transfer_customer_service(format, "oUser1", "gh_test", NOW).unwrap()
}

#[tokio::test]
async fn user_messages_are_queued_then_answered_with_a_transfer_in_their_own_format() {
    for mode in [Mode::Plaintext, Mode::Compatible, Mode::Safe] {
        for format in [DataFormat::Json, DataFormat::Xml] {
            let app = handoff_app("");
            let message = text("请转人工 ]]>");
            let sim = push_request(
                &keys(Platform::Wechat),
                &spec(Platform::Wechat, mode, format),
                &render(&message, format),
            );
            let (status, content_type, body) = respond(&app, &sim).await;
            assert_eq!(status, StatusCode::OK, "{mode:?} {format:?}: {body}");
            assert!(
                content_type.starts_with(match format {
                    DataFormat::Json => "application/json",
                    DataFormat::Xml => "application/xml",
                }),
                "{content_type}"
            );
            let (reply_format, plaintext) = opened(&keys(Platform::Wechat), mode, &body);
            assert_eq!(
                reply_format, format,
                "{mode:?}: the envelope matches the push"
            );
            assert_eq!(plaintext, expected_transfer(format), "{mode:?} {format:?}");
            if mode != Mode::Plaintext {
                assert!(
                    !body.contains("transfer_customer_service"),
                    "sealed: {body}"
                );
            }
            let q = queued(&app);
            assert_eq!(q.len(), 1, "stored by kefu as well");
            assert_eq!(q[0].message, message);
        }
    }
}

#[tokio::test]
async fn images_cards_and_unknown_user_messages_are_handed_off_too() {
    let bodies = [
        MessageBody::Image {
            pic_url: Some("https://mmbiz.example/p".into()),
            media_id: Some("media-1".into()),
        },
        MessageBody::MiniProgramPage {
            title: "t".into(),
            app_id: "wxtest".into(),
            page_path: "pages/a".into(),
            thumb_url: "".into(),
            thumb_media_id: "m".into(),
        },
        MessageBody::Unknown {
            msg_type: "voice".into(),
            fields: serde_json::Map::new(),
        },
    ];
    for body in bodies {
        let app = handoff_app("");
        let mut message = text("x");
        message.body = body;
        let sim = push_request(
            &keys(Platform::Wechat),
            &spec(Platform::Wechat, Mode::Safe, DataFormat::Json),
            &render(&message, DataFormat::Json),
        );
        let (status, _, reply) = respond(&app, &sim).await;
        assert_eq!(status, StatusCode::OK);
        let (_, plaintext) = opened(&keys(Platform::Wechat), Mode::Safe, &reply);
        assert_eq!(
            plaintext,
            expected_transfer(DataFormat::Json),
            "{}",
            message.msg_type()
        );
    }
}

#[tokio::test]
async fn events_and_raw_pushes_are_answered_success() {
    let mut enter = text("x");
    enter.msg_id = None;
    enter.body = MessageBody::UserEnterTempSession {
        session_from: "button".into(),
    };
    let mut event = enter.clone();
    event.body = MessageBody::Event {
        event: "debug_demo".into(),
        fields: serde_json::Map::new(),
    };
    for plaintext in [
        render(&enter, DataFormat::Json),
        render(&event, DataFormat::Xml),
        r#"{"ToUserName":"gh_test","FromUserName":"oUser1","CreateTime":"not a number"}"#.into(),
    ] {
        let app = handoff_app("");
        let sim = push_request(
            &keys(Platform::Wechat),
            &spec(Platform::Wechat, Mode::Safe, DataFormat::Json),
            &plaintext,
        );
        let (status, content_type, body) = respond(&app, &sim).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "success"),
            "{plaintext}"
        );
        assert!(content_type.starts_with("text/plain"));
        assert_eq!(queued(&app).len(), 1, "{plaintext}");
    }
}

#[tokio::test]
async fn a_push_that_is_not_queued_gets_no_transfer() {
    let app = handoff_app("");
    app.queue.set_failing(true);
    let sim = push_request(
        &keys(Platform::Wechat),
        &spec(Platform::Wechat, Mode::Safe, DataFormat::Xml),
        &render(&text("hi"), DataFormat::Xml),
    );
    let (status, _, body) = respond(&app, &sim).await;
    assert!(status.is_server_error(), "{status}");
    assert!(!body.contains("Encrypt"), "{body}");
}

#[tokio::test]
async fn during_a_rotation_the_reply_uses_the_token_and_key_the_push_came_with() {
    // The registry already has the new Token and key; the platform still signs and encrypts
    // with the old ones and will verify the reply with them.
    let app = app_with(&format!(
        r#"{{"apps":[{{"platform":"wechat","app_id":"wxtest","original_id":"gh_test","handoff":"wechat_tool","token":"new-token","previous_token":"tok","encoding_aes_key":"{OLD_KEY}","previous_encoding_aes_key":"{KEY}"}}]}}"#
    ));
    let sim = push_request(
        &keys(Platform::Wechat),
        &spec(Platform::Wechat, Mode::Safe, DataFormat::Json),
        &render(&text("hi"), DataFormat::Json),
    );
    let (status, _, body) = respond(&app, &sim).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, plaintext) = opened(&keys(Platform::Wechat), Mode::Safe, &body);
    assert_eq!(plaintext, expected_transfer(DataFormat::Json));
    let new_key = AesKey::from_encoding_aes_key(OLD_KEY).unwrap();
    let with_new = ReplySeal {
        token: "new-token",
        key: &new_key,
        receive_id: "wxtest",
    };
    assert!(open_reply(&with_new, body.as_bytes(), "1357924680").is_err());
    // The signature really is the old Token's.
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ts = v["TimeStamp"].as_u64().unwrap().to_string();
    let expected = Signature::message("tok", &ts, "1357924680", v["Encrypt"].as_str().unwrap());
    assert_eq!(v["MsgSignature"], expected.as_str());
}
