//! The registry read at run time from Secrets Manager (moto): ingress built by `App::build` from a
//! secret picks up a Token and EncodingAESKey rotation within its TTL, without a restart, and
//! accepts pushes signed and encrypted with either the old or the new values during the overlap.

use std::time::Duration;

use lambda_http::http::{self, StatusCode};
use lambda_http::{Body, Request};
use shared::ids::{MsgId, Platform};
use shared::message::{InboundMessage, MessageBody, render};
use shared::protocol::simulate::{AppKeys, PushSpec, push_request};
use shared::protocol::{AesKey, DataFormat, Mode};
use shared::registry::{Refresh, RegistryLocation, split};

use crate::helpers::TestEnv;

const WX: &str = "wxkefu0000000001";
const OLD_TOKEN: &str = "rotationOldToken";
const NEW_TOKEN: &str = "rotationNewToken";
const OLD_KEY: &str = "kefuTestOnlyKey0000000000000000000000000001";
const NEW_KEY: &str = "kefuTestOnlyKey000000000000000000000000000R";

fn registry(
    token: &str,
    previous_token: Option<&str>,
    key: &str,
    previous_key: Option<&str>,
) -> String {
    let mut app = serde_json::json!({
        "platform": "wechat", "app_id": WX, "original_id": "gh_kefu00000001",
        "token": token, "encoding_aes_key": key, "app_secret": "test-only-wechat-secret",
    });
    if let Some(t) = previous_token {
        app["previous_token"] = t.into();
    }
    if let Some(k) = previous_key {
        app["previous_encoding_aes_key"] = k.into();
    }
    serde_json::json!({ "apps": [app] }).to_string()
}

fn push(token: &str, key: &str, n: u32) -> Request {
    let now = shared::clock::Clock::now_secs(&shared::clock::SystemClock);
    let keys = AppKeys {
        token: token.into(),
        key: AesKey::from_encoding_aes_key(key).unwrap(),
        receive_id: WX.into(),
    };
    let message = InboundMessage {
        to_user_name: Some("gh_kefu00000001".into()),
        from_user_name: "oRotationUser".into(),
        create_time: now,
        msg_id: Some(MsgId(format!("77000{n}"))),
        body: MessageBody::Text {
            content: format!("rotation {n}").into(),
        },
    };
    let spec = PushSpec {
        platform: Platform::Wechat,
        mode: Mode::Safe,
        format: DataFormat::Json,
        timestamp: now,
        nonce: "24680",
        random: *b"fedcba9876543210",
        body_signature: false,
        to_user_name: Some("gh_kefu00000001"),
    };
    let sim = push_request(&keys, &spec, &render(&message, DataFormat::Json));
    http::Request::builder()
        .method(sim.method)
        .uri(format!("/wechat/{WX}?{}", sim.query))
        .header("content-type", sim.content_type)
        .body(Body::from(sim.body))
        .unwrap()
}

async fn status(
    app: &ingress::App<shared::adapters::sqs::SqsQueue, shared::clock::SystemClock>,
    req: Request,
) -> (StatusCode, String) {
    let resp = ingress::handle(app, req).await.unwrap();
    (
        resp.status(),
        String::from_utf8_lossy(resp.body().as_ref()).into_owned(),
    )
}

#[tokio::test]
async fn a_rotation_in_the_secret_takes_effect_within_the_ttl_with_an_overlap() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let secrets = aws_sdk_secretsmanager::Client::new(&env.sdk);
    let name = format!("kefu-it-{}/registry/verify", std::process::id());
    let put = |json: String| {
        let secrets = secrets.clone();
        let name = name.clone();
        async move {
            let verify = split(&json).unwrap().verify;
            assert!(
                !verify.contains("test-only-wechat-secret"),
                "the verify part has no AppSecret"
            );
            secrets
                .put_secret_value()
                .secret_id(&name)
                .secret_string(verify)
                .send()
                .await
                .unwrap();
        }
    };
    secrets
        .create_secret()
        .name(&name)
        .secret_string(
            split(&registry(OLD_TOKEN, None, OLD_KEY, None))
                .unwrap()
                .verify,
        )
        .send()
        .await
        .unwrap();
    let ttl = Duration::from_millis(700);
    let config = ingress::Config {
        registry: RegistryLocation::Secret(name.clone()),
        refresh: Refresh {
            ttl,
            retry_after: ttl,
            ..Refresh::default()
        },
        ..env.ingress_config()
    };
    let app = ingress::App::build(config, &env.sdk).await.unwrap();
    let ok = (StatusCode::OK, "success".to_owned());
    assert_eq!(status(&app, push(OLD_TOKEN, OLD_KEY, 1)).await, ok);
    assert_eq!(
        status(&app, push(NEW_TOKEN, NEW_KEY, 2)).await.0,
        StatusCode::UNAUTHORIZED,
        "the new values are unknown before the rotation"
    );

    // Rotate: new Token and key, the old ones kept in the previous slots.
    put(registry(NEW_TOKEN, Some(OLD_TOKEN), NEW_KEY, Some(OLD_KEY))).await;
    assert_eq!(
        status(&app, push(NEW_TOKEN, NEW_KEY, 3)).await.0,
        StatusCode::UNAUTHORIZED,
        "inside the TTL the old copy is still served"
    );
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert_eq!(
        status(&app, push(NEW_TOKEN, NEW_KEY, 4)).await,
        ok,
        "new values, no restart"
    );
    assert_eq!(
        status(&app, push(OLD_TOKEN, OLD_KEY, 5)).await,
        ok,
        "old values during the overlap"
    );
    assert_eq!(
        status(&app, push(NEW_TOKEN, OLD_KEY, 6)).await,
        ok,
        "Token rotated first"
    );
    assert_eq!(
        status(&app, push(OLD_TOKEN, NEW_KEY, 7)).await,
        ok,
        "key rotated first"
    );

    // Finish the rotation: the previous slots removed.
    put(registry(NEW_TOKEN, None, NEW_KEY, None)).await;
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert_eq!(status(&app, push(NEW_TOKEN, NEW_KEY, 8)).await, ok);
    assert_eq!(
        status(&app, push(OLD_TOKEN, OLD_KEY, 9)).await.0,
        StatusCode::UNAUTHORIZED,
        "the old values are refused once the rotation is finished"
    );
    assert_eq!(
        env.receive(&env.queues.inbound, 0).await.len().min(1),
        1,
        "pushes were queued"
    );
}
