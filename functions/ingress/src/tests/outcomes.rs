//! What each outcome answers: verification echoes, queued pushes, refusals with their statuses, and
//! that nothing is queued unless the answer is `success`.

use std::time::Duration;

use lambda_http::Body;
use lambda_http::http::{self, StatusCode};
use shared::ids::Platform;
use shared::message::render;
use shared::protocol::simulate::{
    AppKeys, SimulatedRequest, VerifyVia, push_request, verify_request,
};
use shared::protocol::{DataFormat, Mode};

use super::*;

#[tokio::test]
async fn answers_wechat_verification_with_the_echo_verbatim() {
    let app = app();
    let sim = verify_request(
        "tok",
        NOW,
        "42",
        "4375120948345356249",
        Platform::Wechat,
        VerifyVia::Query,
    );
    let resp = handle(&app, request("/wechat/wxtest", &sim)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(resp.body().as_ref(), b"4375120948345356249");
    assert!(app.queue.bodies().is_empty());
}

#[tokio::test]
async fn answers_baidu_verification_from_query_form_and_json() {
    let app = app();
    for via in [VerifyVia::Query, VerifyVia::Form, VerifyVia::Json] {
        let sim = verify_request("btok", NOW, "42", "echo+me/=", Platform::Baidu, via);
        assert_eq!(
            call(&app, request("/baidu/bdtest", &sim)).await,
            (StatusCode::OK, "echo+me/=".into()),
            "{via:?}"
        );
    }
}

#[tokio::test]
async fn queues_every_mode_and_format_then_answers_success() {
    for platform in [Platform::Wechat, Platform::Baidu] {
        for mode in [Mode::Plaintext, Mode::Compatible, Mode::Safe] {
            for format in [DataFormat::Json, DataFormat::Xml] {
                let app = app();
                let message = text_for(platform, "你好, ]]> 😀\n");
                let sim = push_request(
                    &keys(platform),
                    &spec(platform, mode, format),
                    &render(&message, format),
                );
                assert_eq!(
                    call(&app, request(path(platform), &sim)).await,
                    (StatusCode::OK, "success".into())
                );
                let q = queued(&app);
                assert_eq!(q.len(), 1);
                assert_eq!(q[0].message, message, "{platform} {mode:?} {format:?}");
                assert_eq!(q[0].mode, mode);
                assert_eq!(q[0].received_at_ms, NOW * 1000);
            }
        }
    }
}

#[tokio::test]
async fn accepts_baidu_signatures_carried_in_the_body() {
    let app = app();
    let mut s = spec(Platform::Baidu, Mode::Safe, DataFormat::Json);
    s.body_signature = true;
    let sim = push_request(
        &keys(Platform::Baidu),
        &s,
        &render(&text_for(Platform::Baidu, "hi"), DataFormat::Json),
    );
    assert!(sim.query.is_empty());
    assert_eq!(
        call(&app, request("/baidu/bdtest", &sim)).await.0,
        StatusCode::OK
    );
    assert_eq!(queued(&app).len(), 1);
}

#[tokio::test]
async fn rejects_bad_input_and_queues_nothing() {
    let good = push_request(
        &keys(Platform::Wechat),
        &spec(Platform::Wechat, Mode::Safe, DataFormat::Xml),
        &render(&text("hi"), DataFormat::Xml),
    );
    let mut bad_sig = good.clone();
    bad_sig.query = bad_sig.query.replace("msg_signature=", "msg_signature=0");
    let mut tampered = good.clone();
    tampered.body = tampered
        .body
        .replacen("<Encrypt><![CDATA[", "<Encrypt><![CDATA[AAAA", 1);
    let mut wrong_receiver = keys(Platform::Wechat);
    wrong_receiver.receive_id = "wxother".into();
    let other_app = push_request(
        &wrong_receiver,
        &spec(Platform::Wechat, Mode::Safe, DataFormat::Xml),
        "<xml/>",
    );
    let cases = [
        (
            "/wechat/wxtest",
            bad_sig,
            StatusCode::UNAUTHORIZED,
            "signature_mismatch",
        ),
        (
            "/wechat/nosuchapp",
            good.clone(),
            StatusCode::NOT_FOUND,
            "unknown_app",
        ),
        (
            "/qq/wxtest",
            good.clone(),
            StatusCode::NOT_FOUND,
            "unknown_route",
        ),
        (
            "/wechat/wxtest",
            other_app,
            StatusCode::UNAUTHORIZED,
            "appid_mismatch",
        ),
        (
            "/wechat/wxtest",
            SimulatedRequest {
                body: "not an envelope".into(),
                ..good.clone()
            },
            StatusCode::BAD_REQUEST,
            "envelope_invalid",
        ),
    ];
    for (path, sim, status, reason) in cases {
        let app = app();
        assert_eq!(
            call(&app, request(path, &sim)).await,
            (status, reason.into()),
            "{path} {reason}"
        );
        assert!(
            app.queue.bodies().is_empty(),
            "{reason}: something was queued"
        );
    }
    // Tampered ciphertext: the signature is over the original, so it fails authentication too;
    // a re-signed corrupt ciphertext fails decryption (covered by the corpus vectors).
    let app = app();
    assert_eq!(
        call(&app, request("/wechat/wxtest", &tampered)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(app.queue.bodies().is_empty());
}

#[tokio::test]
async fn rejects_bodies_over_the_cap() {
    let mut app = app();
    app.limits.max_body_bytes = 100;
    let sim = push_request(
        &keys(Platform::Wechat),
        &spec(Platform::Wechat, Mode::Safe, DataFormat::Json),
        &render(&text(&"x".repeat(200)), DataFormat::Json),
    );
    assert_eq!(
        call(&app, request("/wechat/wxtest", &sim)).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large".into())
    );
    assert!(app.queue.bodies().is_empty());
}

#[tokio::test]
async fn rejects_replayed_timestamps_unless_the_guard_is_off() {
    let sim = push_request(
        &keys(Platform::Wechat),
        &spec(Platform::Wechat, Mode::Safe, DataFormat::Json),
        &render(&text("hi"), DataFormat::Json),
    );
    let app = app();
    app.clock.set_secs(NOW + 601);
    assert_eq!(
        call(&app, request("/wechat/wxtest", &sim)).await,
        (StatusCode::UNAUTHORIZED, "stale_timestamp".into())
    );
    app.clock.set_secs(NOW + 600);
    assert_eq!(
        call(&app, request("/wechat/wxtest", &sim)).await.0,
        StatusCode::OK
    );
    // An unparseable timestamp cannot be checked: stale while the guard is on.
    let encrypt = serde_json::from_str::<serde_json::Value>(&sim.body).unwrap()["Encrypt"]
        .as_str()
        .unwrap()
        .to_owned();
    let sig = shared::protocol::Signature::message("tok", "soon", "1357924680", &encrypt);
    let odd = SimulatedRequest {
        query: format!("timestamp=soon&nonce=1357924680&encrypt_type=aes&msg_signature={sig}"),
        ..sim.clone()
    };
    assert_eq!(
        call(&app, request("/wechat/wxtest", &odd)).await,
        (StatusCode::UNAUTHORIZED, "stale_timestamp".into())
    );
    let mut app = self::app();
    app.limits.replay_window = None;
    app.clock.set_secs(NOW + 86_400);
    assert_eq!(
        call(&app, request("/wechat/wxtest", &sim)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn answers_5xx_within_the_budget_when_the_queue_stalls_or_fails() {
    let sim = push_request(
        &keys(Platform::Wechat),
        &spec(Platform::Wechat, Mode::Safe, DataFormat::Json),
        &render(&text("hi"), DataFormat::Json),
    );
    // Real time (no paused clock: tokio's test-util would be unified into the functions' builds), so
    // a short budget against a queue that would take 30 s.
    let mut app = app();
    app.limits.enqueue_budget = Duration::from_millis(50);
    app.queue.set_stall(Duration::from_secs(30));
    let started = std::time::Instant::now();
    assert_eq!(
        call(&app, request("/wechat/wxtest", &sim)).await,
        (StatusCode::SERVICE_UNAVAILABLE, "queue_timeout".into())
    );
    // The answer came at the budget, not after the queue's 30 s.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= app.limits.enqueue_budget && elapsed < Duration::from_secs(10),
        "answered after {elapsed:?}"
    );

    let app = self::app();
    app.queue.set_failing(true);
    assert_eq!(
        call(&app, request("/wechat/wxtest", &sim)).await,
        (StatusCode::SERVICE_UNAVAILABLE, "queue_unavailable".into())
    );
    assert!(app.queue.bodies().is_empty());
}

#[tokio::test]
async fn routes_from_stage_prefixed_and_function_url_paths() {
    let app = app();
    let sim = verify_request("tok", NOW, "1", "e", Platform::Wechat, VerifyVia::Query);
    for path in [
        "/prod/wechat/wxtest",
        "/lambda-url/ingress/wechat/wxtest",
        "/wechat/wxtest/",
    ] {
        assert_eq!(
            call(&app, request(path, &sim)).await,
            (StatusCode::OK, "e".into()),
            "{path}"
        );
    }
    let put = http::Request::builder()
        .method("PUT")
        .uri("/wechat/wxtest")
        .body(Body::Empty)
        .unwrap();
    assert_eq!(call(&app, put).await.0, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn an_invalid_registry_entry_answers_5xx_for_its_app_only() {
    let app = app_with(&format!(
        r#"{{"apps":[
            {{"platform":"wechat","app_id":"wxtest","original_id":"gh_test","token":"tok","encoding_aes_key":"{KEY}"}},
            {{"platform":"wechat","app_id":"wxbroken","token":"tok","encoding_aes_key":"short"}}]}}"#
    ));
    let mut k = keys(Platform::Wechat);
    let sim = push_request(
        &k,
        &spec(Platform::Wechat, Mode::Safe, DataFormat::Json),
        &render(&text("hi"), DataFormat::Json),
    );
    assert_eq!(
        call(&app, request("/wechat/wxtest", &sim)).await,
        (StatusCode::OK, "success".into()),
        "the valid app keeps working"
    );
    k.receive_id = "wxbroken".into();
    let sim = push_request(
        &k,
        &spec(Platform::Wechat, Mode::Safe, DataFormat::Json),
        &render(&text("hi"), DataFormat::Json),
    );
    assert_eq!(
        call(&app, request("/wechat/wxbroken", &sim)).await,
        (StatusCode::SERVICE_UNAVAILABLE, "app_misconfigured".into()),
        "a misconfigured app is retried by the platform, not refused as unknown"
    );
    assert_eq!(queued(&app).len(), 1);
}

#[tokio::test]
async fn accepts_the_previous_token_during_a_rotation() {
    let rotating = format!(
        r#"{{"apps":[{{"platform":"wechat","app_id":"wxtest","original_id":"gh_test","mode":"plaintext","token":"new-token","previous_token":"tok","encoding_aes_key":"{KEY}"}}]}}"#
    );
    let app = app_with(&rotating);
    let old = keys(Platform::Wechat);
    let new = AppKeys {
        token: "new-token".into(),
        ..keys(Platform::Wechat)
    };
    for (k, mode) in [
        (&old, Mode::Safe),
        (&new, Mode::Safe),
        (&old, Mode::Plaintext),
        (&new, Mode::Plaintext),
    ] {
        let sim = push_request(
            k,
            &spec(Platform::Wechat, mode, DataFormat::Xml),
            &render(&text("rotating"), DataFormat::Xml),
        );
        assert_eq!(
            call(&app, request("/wechat/wxtest", &sim)).await,
            (StatusCode::OK, "success".into()),
            "{} {mode:?}",
            k.token
        );
    }
    let done = app_with(&rotating.replace(r#""previous_token":"tok","#, ""));
    let sim = push_request(
        &old,
        &spec(Platform::Wechat, Mode::Safe, DataFormat::Xml),
        &render(&text("after"), DataFormat::Xml),
    );
    assert_eq!(
        call(&done, request("/wechat/wxtest", &sim)).await,
        (StatusCode::UNAUTHORIZED, "signature_mismatch".into()),
        "once the previous token is removed it is refused"
    );
}

#[test]
fn only_4xx_for_a_configured_app_count_as_lost_pushes() {
    use crate::IngressError;
    use shared::protocol::admission::Refused;
    for refused in [
        Refused::PlaintextNotAllowed,
        Refused::RecipientMissing,
        Refused::RecipientMismatch,
        Refused::StaleTimestamp,
    ] {
        let e = IngressError::from(refused);
        assert!(e.is_lost_push(), "{e}");
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
    }
    let too_long = IngressError::from(shared::message::KeyTooLong { field: "open_id" });
    assert!(too_long.is_lost_push());
    assert_eq!(too_long.field(), Some("open_id"));
    assert!(IngressError::TooLarge(1).is_lost_push());
    assert!(!IngressError::UnknownApp.is_lost_push());
    assert!(!IngressError::UnknownRoute.is_lost_push());
    assert!(
        !IngressError::Misconfigured("apps[0].token".into()).is_lost_push(),
        "5xx is retried"
    );
}
