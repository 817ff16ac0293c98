//! Which authenticated pushes an app admits: unencrypted bodies only for `plaintext` apps and never
//! for 服务商 apps, the recipient named by `ToUserName`, the signed time. Every refusal is a 401 with
//! nothing queued.

use shared::message::render;
use shared::protocol::simulate::push_request;

use super::*;

/// Apps of every mode, a 服务商 app, and two Baidu apps sharing one Token and key.
fn admission_registry() -> String {
    format!(
        r#"{{"apps":[
            {{"platform":"wechat","app_id":"wxsafe","original_id":"gh_safe","token":"tok","encoding_aes_key":"{KEY}"}},
            {{"platform":"wechat","app_id":"wxcompat","original_id":"gh_compat","mode":"compatible","token":"tok","encoding_aes_key":"{KEY}"}},
            {{"platform":"wechat","app_id":"wxplain","original_id":"gh_plain","mode":"plaintext","token":"tok","encoding_aes_key":"{KEY}"}},
            {{"platform":"wechat","app_id":"wxnoid","mode":"plaintext","token":"tok","encoding_aes_key":"{KEY}"}},
            {{"platform":"wechat","app_id":"wxauth","original_id":"gh_auth","component_app_id":"wxcomp"}},
            {{"platform":"baidu","app_id":"bda","mode":"plaintext","token":"btok","encoding_aes_key":"{KEY}"}},
            {{"platform":"baidu","app_id":"bdb","mode":"plaintext","token":"btok","encoding_aes_key":"{KEY}"}}],
          "components":[{{"platform":"wechat","component_app_id":"wxcomp","token":"ctok","encoding_aes_key":"{KEY}"}}]}}"#
    )
}

fn wechat_keys(token: &str, receive_id: &str) -> AppKeys {
    AppKeys {
        token: token.into(),
        key: AesKey::from_encoding_aes_key(KEY).unwrap(),
        receive_id: receive_id.into(),
    }
}

fn addressed(to: Option<&str>) -> InboundMessage<'static> {
    InboundMessage {
        to_user_name: to.map(|to| to.to_owned().into()),
        ..text("hi")
    }
}

/// Pushes `message` to `path` (XML, protected as `mode`) and returns the answer.
async fn push(
    app: &App<InMemoryQueue, FixedClock>,
    path: &str,
    keys: &AppKeys,
    platform: Platform,
    mode: Mode,
    message: &InboundMessage<'_>,
) -> (StatusCode, String) {
    let sim = push_request(
        keys,
        &spec(platform, mode, DataFormat::Xml),
        &render(message, DataFormat::Xml),
    );
    call(app, request(path, &sim)).await
}

fn refused(reason: &str) -> (StatusCode, String) {
    (StatusCode::UNAUTHORIZED, reason.into())
}

fn ok() -> (StatusCode, String) {
    (StatusCode::OK, "success".into())
}

#[tokio::test]
async fn an_unencrypted_body_is_refused_unless_the_app_is_in_plaintext_mode() {
    let gh = |app: &str| format!("gh_{}", app.trim_start_matches("wx"));
    for (app_id, expected) in [
        ("wxsafe", refused("plaintext_not_allowed")),
        ("wxcompat", refused("plaintext_not_allowed")),
        ("wxplain", ok()),
    ] {
        let app = app_with(&admission_registry());
        let to = gh(app_id);
        // Only the 3-part signature: it signs the Token, timestamp and nonce, not the body.
        let answer = push(
            &app,
            &format!("/wechat/{app_id}"),
            &wechat_keys("tok", app_id),
            Platform::Wechat,
            Mode::Plaintext,
            &addressed(Some(&to)),
        )
        .await;
        assert_eq!(answer, expected, "{app_id}");
        let queued = usize::from(expected.0 == StatusCode::OK);
        assert_eq!(app.queue.bodies().len(), queued, "{app_id}");
        // Encrypted pushes are admitted whatever the mode.
        for mode in [Mode::Compatible, Mode::Safe] {
            let answer = push(
                &app,
                &format!("/wechat/{app_id}"),
                &wechat_keys("tok", app_id),
                Platform::Wechat,
                mode,
                &addressed(Some(&to)),
            )
            .await;
            assert_eq!(answer, ok(), "{app_id} {mode:?}");
        }
    }
}

#[tokio::test]
async fn a_component_app_admits_encrypted_pushes_only() {
    let app = app_with(&admission_registry());
    let component = wechat_keys("ctok", "wxcomp");
    assert_eq!(
        push(
            &app,
            "/wechat/wxauth",
            &component,
            Platform::Wechat,
            Mode::Plaintext,
            &addressed(Some("gh_auth")),
        )
        .await,
        refused("plaintext_not_allowed")
    );
    assert!(app.queue.bodies().is_empty());
    assert_eq!(
        push(
            &app,
            "/wechat/wxauth",
            &component,
            Platform::Wechat,
            Mode::Safe,
            &addressed(Some("gh_auth")),
        )
        .await,
        ok()
    );

    // A component app configured for plaintext is a registry error: the app is disabled (retried
    // by the platform once the registry is fixed), its pushes are not accepted.
    let plaintext = admission_registry().replace(
        r#""component_app_id":"wxcomp"}"#,
        r#""component_app_id":"wxcomp","mode":"plaintext"}"#,
    );
    let app = app_with(&plaintext);
    assert_eq!(
        push(
            &app,
            "/wechat/wxauth",
            &component,
            Platform::Wechat,
            Mode::Plaintext,
            &addressed(Some("gh_auth")),
        )
        .await,
        (StatusCode::SERVICE_UNAVAILABLE, "app_misconfigured".into())
    );
    assert!(app.queue.bodies().is_empty());
}

#[tokio::test]
async fn a_wechat_push_must_name_the_configured_original_id() {
    let keys = wechat_keys("tok", "wxsafe");
    for (to, expected) in [
        (None, refused("recipient_missing")),
        (Some("gh_other"), refused("recipient_mismatch")),
        (Some("gh_safe"), ok()),
    ] {
        let app = app_with(&admission_registry());
        let answer = push(
            &app,
            "/wechat/wxsafe",
            &keys,
            Platform::Wechat,
            Mode::Safe,
            &addressed(to),
        )
        .await;
        assert_eq!(answer, expected, "{to:?}");
        assert_eq!(
            app.queue.bodies().len(),
            usize::from(expected.0 == StatusCode::OK)
        );
    }
    // Without a configured original id there is nothing to compare.
    let app = app_with(&admission_registry());
    assert_eq!(
        push(
            &app,
            "/wechat/wxnoid",
            &wechat_keys("tok", "wxnoid"),
            Platform::Wechat,
            Mode::Safe,
            &addressed(None),
        )
        .await,
        ok()
    );
}

#[tokio::test]
async fn a_baidu_push_for_another_app_sharing_the_token_is_refused() {
    let keys = AppKeys {
        token: "btok".into(),
        key: AesKey::from_encoding_aes_key(KEY).unwrap(),
        receive_id: "20073496".into(),
    };
    for (path, to, mode, expected) in [
        (
            "/baidu/bdb",
            Some("bda"),
            Mode::Safe,
            refused("recipient_mismatch"),
        ),
        (
            "/baidu/bdb",
            Some("bda"),
            Mode::Plaintext,
            refused("recipient_mismatch"),
        ),
        ("/baidu/bda", Some("bda"), Mode::Safe, ok()),
        ("/baidu/bdb", None, Mode::Safe, ok()),
    ] {
        let app = app_with(&admission_registry());
        let answer = push(&app, path, &keys, Platform::Baidu, mode, &addressed(to)).await;
        assert_eq!(answer, expected, "{path} {to:?} {mode:?}");
        assert_eq!(
            app.queue.bodies().len(),
            usize::from(expected.0 == StatusCode::OK),
            "{path} {to:?}"
        );
    }
}

#[tokio::test]
async fn a_plaintext_push_needs_a_numeric_timestamp_even_with_the_guard_off() {
    let mut app = app_with(&admission_registry());
    app.limits.replay_window = None;
    let body = render(&addressed(Some("gh_plain")), DataFormat::Xml);
    let sig = shared::protocol::Signature::plain("tok", "soon", "42");
    let sim = SimulatedRequest {
        method: "POST",
        query: format!("signature={sig}&timestamp=soon&nonce=42"),
        body,
        content_type: "text/xml",
    };
    assert_eq!(
        call(&app, request("/wechat/wxplain", &sim)).await,
        refused("stale_timestamp"),
        "the replay memory keys on the signed timestamp"
    );
    assert!(app.queue.bodies().is_empty());
}
