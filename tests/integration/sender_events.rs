//! The committed sender fixtures (`events/sender/`, for `sam local invoke SenderFunction`) are
//! what API Gateway delivers on the IAM-authorised send routes: each parses as a `lambda_http`
//! request for its route, carries the caller's IAM identity, and its body is the sender's request
//! type. Regenerate them with `make events`.

use std::path::PathBuf;

use lambda_http::RequestExt as _;
use lambda_http::request::RequestContext;

fn read(name: &str) -> lambda_http::Request {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../events/sender")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_iam_post(req: &lambda_http::Request, route: &str) {
    assert_eq!(req.method(), lambda_http::http::Method::POST);
    assert_eq!(req.uri().path(), route);
    let RequestContext::ApiGatewayV2(ctx) = req.request_context() else {
        panic!("{route}: not an HTTP API v2 request");
    };
    assert_eq!(
        ctx.route_key.as_deref(),
        Some(format!("POST {route}").as_str())
    );
    let iam = ctx
        .authorizer
        .and_then(|a| a.iam)
        .expect("IAM authorizer context");
    assert_eq!(
        iam.user_arn.as_deref(),
        Some("arn:aws:iam::123456789012:user/kefu-agent")
    );
}

#[test]
fn sender_fixtures_are_iam_authorised_requests_for_their_route() {
    let req = read("send_text.json");
    assert_iam_post(&req, "/messages");
    let body = sender::SendRequest::from_json(req.body().as_ref()).unwrap();
    assert_eq!(
        (body.app_id.as_str(), body.message.msg_type()),
        ("wxkefu0000000001", "text")
    );
    assert!(matches!(&body.message, sender::OutboundMessage::Text(c) if !c.is_empty()));
    assert!(body.client_msg_id.is_some());

    let req = read("typing.json");
    assert_iam_post(&req, "/typing");
    let body = sender::TypingRequest::from_json(req.body().as_ref()).unwrap();
    assert_eq!(body.command, "Typing");
}
