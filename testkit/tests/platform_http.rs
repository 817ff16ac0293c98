//! `shared::api` clients against `testkit::fake_platform`: token fetches, every body type's
//! exact wire form, multipart upload, errcode classification, busy retries, timeouts, and that no
//! error text ever carries an access token.
//!
//! Run: `cargo test -p testkit --test platform_http`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use shared::api::{
    BaiduClient, BaseUrls, OutboundBody, PlatformError, RetryPolicy, WechatClient, http_client,
};
use shared::ids::Platform;
use testkit::fake_platform::FakePlatform;

const WX_APP: &str = "wx-app-1";
const WX_SECRET: &str = "wx-secret";
const BD_KEY: &str = "bd-key-1";
const BD_SECRET: &str = "bd-secret";
const USER: &str = "OPENID-1";

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        backoff: vec![Duration::from_millis(1), Duration::from_millis(1)],
    }
}

fn clients(fake: &FakePlatform, total_timeout: Duration) -> (WechatClient, BaiduClient) {
    let http = http_client(Duration::from_secs(1), total_timeout).unwrap();
    let base = BaseUrls::same(fake.base_url());
    (
        WechatClient::new(http.clone(), base.wechat).with_retry(fast_retry()),
        BaiduClient::new(http, base.baidu).with_retry(fast_retry()),
    )
}

async fn setup() -> (FakePlatform, WechatClient, BaiduClient) {
    let fake = FakePlatform::start().await.unwrap();
    let (wx, bd) = clients(&fake, Duration::from_secs(5));
    (fake, wx, bd)
}

async fn wx_token(wx: &WechatClient) -> String {
    wx.fetch_token(WX_APP, WX_SECRET, true, false)
        .await
        .unwrap()
        .0
}

async fn bd_token(bd: &BaiduClient) -> String {
    bd.fetch_token(BD_KEY, BD_SECRET).await.unwrap().0
}

/// Neither the Display nor the Debug form may carry a token.
fn assert_no_token(err: &PlatformError, token: &str) {
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("access_token"), "{text}");
        assert!(!text.contains(token), "{text}");
    }
}

fn text(content: &str) -> OutboundBody {
    OutboundBody::Text {
        content: content.to_owned(),
    }
}

#[tokio::test]
async fn wechat_classic_token_issues_a_new_token_each_call() {
    let (fake, wx, _) = setup().await;
    let (t1, expires) = wx
        .fetch_token(WX_APP, WX_SECRET, false, false)
        .await
        .unwrap();
    let (t2, _) = wx
        .fetch_token(WX_APP, WX_SECRET, false, false)
        .await
        .unwrap();
    assert!(t1.starts_with("fake-token-"));
    assert_ne!(t1, t2);
    assert_eq!(expires, 7200);
    assert_eq!(fake.token_requests(WX_APP), 2);
    // The recorded call names the app, never the secret.
    let calls = fake.calls();
    assert_eq!(calls[0].path, "/cgi-bin/token");
    assert_eq!(calls[0].body, json!({"appid": WX_APP}));
    assert!(!format!("{calls:?}").contains(WX_SECRET));
}

#[tokio::test]
async fn wechat_stable_token_is_reused_until_force_refresh() {
    let (fake, wx, _) = setup().await;
    let (t1, expires) = wx
        .fetch_token(WX_APP, WX_SECRET, true, false)
        .await
        .unwrap();
    let (t2, _) = wx
        .fetch_token(WX_APP, WX_SECRET, true, false)
        .await
        .unwrap();
    assert_eq!(t1, t2);
    assert_eq!(expires, 7200);
    let (t3, _) = wx.fetch_token(WX_APP, WX_SECRET, true, true).await.unwrap();
    assert_ne!(t1, t3);
    assert_eq!(fake.token_requests(WX_APP), 3);
    // force_refresh invalidated the previous stable token.
    let err = wx.send(&t1, USER, &text("hi")).await.unwrap_err();
    assert_eq!(err, PlatformError::TokenInvalid { errcode: 40001 });
    wx.send(&t3, USER, &text("hi")).await.unwrap();
}

#[tokio::test]
async fn wechat_token_rejection_is_not_token_invalid() {
    let (_fake, wx, _) = setup().await;
    let err = wx.fetch_token(WX_APP, "", false, false).await.unwrap_err();
    assert!(matches!(
        err,
        PlatformError::Rejected {
            errcode: Some(41004),
            ..
        }
    ));
}

#[tokio::test]
async fn wechat_send_text_exact_json_raw_utf8() {
    let (fake, wx, _) = setup().await;
    let token = wx_token(&wx).await;
    wx.send(&token, USER, &text("你好 😀 \"q\"")).await.unwrap();
    let sent = fake.sent_messages(USER);
    assert_eq!(
        sent,
        vec![json!({"touser": USER, "msgtype": "text", "text": {"content": "你好 😀 \"q\""}})]
    );
    let call = fake.calls().pop().unwrap();
    assert_eq!(call.platform, Platform::Wechat);
    assert_eq!(call.path, "/cgi-bin/message/custom/send");
    assert_eq!(call.app_id.as_deref(), Some(WX_APP));
    assert_eq!(
        call.raw,
        r#"{"touser":"OPENID-1","msgtype":"text","text":{"content":"你好 😀 \"q\""}}"#
    );
    assert!(!call.raw.contains("\\u"));
}

#[tokio::test]
async fn wechat_upload_then_send_image() {
    let (fake, wx, _) = setup().await;
    let token = wx_token(&wx).await;
    let png = b"\x89PNG\r\n\x1a\n\x00\x00--not-a-boundary\r\n\r\nrest".to_vec();
    let media_id = wx
        .upload_image(&token, png.clone(), "pic.png", "image/png")
        .await
        .unwrap();
    assert!(media_id.starts_with("fake-media-"));
    let upload = fake.calls().pop().unwrap();
    assert_eq!(upload.path, "/cgi-bin/media/upload");
    assert_eq!(
        upload.body,
        json!({"field": "media", "filename": "pic.png", "content_type": "image/png",
               "size": png.len(), "media_id": media_id})
    );
    let body = OutboundBody::Image {
        media_id: media_id.clone(),
    };
    wx.send(&token, USER, &body).await.unwrap();
    assert_eq!(
        fake.sent_messages(USER),
        vec![json!({"touser": USER, "msgtype": "image", "image": {"media_id": media_id}})]
    );
    // An unknown media id is a definite rejection (40007), not retried.
    let bad = OutboundBody::Image {
        media_id: "nope".into(),
    };
    let err = wx.send(&token, USER, &bad).await.unwrap_err();
    assert_eq!(err.errcode(), Some(40007));
    assert!(err.is_definite_rejection());
}

#[tokio::test]
async fn wechat_send_link_and_miniprogrampage_exact_json() {
    let (fake, wx, _) = setup().await;
    let token = wx_token(&wx).await;
    let link = OutboundBody::Link {
        title: "标题".into(),
        description: "desc".into(),
        url: "https://example.com/a?b=c&d=e".into(),
        thumb_url: "https://example.com/t.png".into(),
    };
    let page = OutboundBody::MiniProgramPage {
        title: "Page".into(),
        pagepath: "pages/index/index?foo=bar".into(),
        thumb_media_id: "THUMB".into(),
    };
    wx.send(&token, USER, &link).await.unwrap();
    wx.send(&token, USER, &page).await.unwrap();
    assert_eq!(
        fake.sent_messages(USER),
        vec![
            json!({"touser": USER, "msgtype": "link", "link": {"title": "标题", "description": "desc",
                   "url": "https://example.com/a?b=c&d=e", "thumb_url": "https://example.com/t.png"}}),
            json!({"touser": USER, "msgtype": "miniprogrampage", "miniprogrampage": {"title": "Page",
                   "pagepath": "pages/index/index?foo=bar", "thumb_media_id": "THUMB"}}),
        ]
    );
    let raws: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| c.open_id.as_deref() == Some(USER))
        .map(|c| c.raw)
        .collect();
    assert_eq!(
        raws,
        vec![
            r#"{"touser":"OPENID-1","msgtype":"link","link":{"title":"标题","description":"desc","url":"https://example.com/a?b=c&d=e","thumb_url":"https://example.com/t.png"}}"#,
            r#"{"touser":"OPENID-1","msgtype":"miniprogrampage","miniprogrampage":{"title":"Page","pagepath":"pages/index/index?foo=bar","thumb_media_id":"THUMB"}}"#,
        ]
    );
}

#[tokio::test]
async fn wechat_typing_and_cancel() {
    let (fake, wx, _) = setup().await;
    let token = wx_token(&wx).await;
    wx.typing(&token, USER, true).await.unwrap();
    wx.typing(&token, USER, false).await.unwrap();
    let calls: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|c| c.path == "/cgi-bin/message/custom/business/typing")
        .map(|c| c.body)
        .collect();
    assert_eq!(
        calls,
        vec![
            json!({"touser": USER, "command": "Typing"}),
            json!({"touser": USER, "command": "CancelTyping"}),
        ]
    );
    // Typing does not use quota.
    assert_eq!(fake.remaining(WX_APP, USER), None);
}

#[tokio::test]
async fn wechat_unsupported_body_is_not_sent() {
    let (fake, wx, _) = setup().await;
    let token = wx_token(&wx).await;
    let body = OutboundBody::ImageUrl {
        pic_url: "https://x/y.png".into(),
    };
    let err = wx.send(&token, USER, &body).await.unwrap_err();
    assert!(matches!(err, PlatformError::Unsupported { .. }));
    assert!(fake.sent_messages(USER).is_empty());
}

#[tokio::test]
async fn baidu_token_and_form_send() {
    let (fake, _, bd) = setup().await;
    let (token, expires) = bd.fetch_token(BD_KEY, BD_SECRET).await.unwrap();
    assert!(token.starts_with("fake-token-"));
    assert_eq!(expires, 2_592_000);
    assert_eq!(fake.token_requests(BD_KEY), 1);
    bd.send(&token, USER, 2, &text("你好 a&b=c+d"), false)
        .await
        .unwrap();
    let call = fake.calls().pop().unwrap();
    assert_eq!(call.platform, Platform::Baidu);
    assert_eq!(call.path, "/rest/2.0/smartapp/message/custom/send");
    assert_eq!(call.app_id.as_deref(), Some(BD_KEY));
    assert_eq!(
        call.body,
        json!({"user_type": "2", "open_id": USER, "msg_type": "text",
               "content": "你好 a&b=c+d", "pic_url": ""})
    );
    // A form body, not JSON.
    assert!(
        call.raw
            .starts_with("user_type=2&open_id=OPENID-1&msg_type=text&content=")
    );
    assert!(call.raw.ends_with("&pic_url="));
}

#[tokio::test]
async fn baidu_sendbytp_image() {
    let (fake, _, bd) = setup().await;
    let token = bd_token(&bd).await;
    let body = OutboundBody::ImageUrl {
        pic_url: "https://img.example.com/a.png".into(),
    };
    bd.send(&token, USER, 1, &body, true).await.unwrap();
    let call = fake.calls().pop().unwrap();
    assert_eq!(call.path, "/rest/2.0/smartapp/message/custom/sendbytp");
    assert_eq!(
        call.body,
        json!({"user_type": "1", "open_id": USER, "msg_type": "image",
               "content": "", "pic_url": "https://img.example.com/a.png"})
    );
}

#[tokio::test]
async fn baidu_oauth_error_is_rejected_without_errcode() {
    let (fake, _, bd) = setup().await;
    fake.fail_next("/oauth/2.0/token", 1, 1);
    let err = bd.fetch_token(BD_KEY, BD_SECRET).await.unwrap_err();
    assert!(
        matches!(err, PlatformError::Rejected { errcode: None, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("invalid_client"));
    let err = bd.fetch_token(BD_KEY, "").await.unwrap_err();
    assert!(matches!(err, PlatformError::Rejected { errcode: None, .. }));
}

#[tokio::test]
async fn token_invalid_is_classified_not_refreshed() {
    let (fake, wx, bd) = setup().await;
    let wt = wx_token(&wx).await;
    let bt = bd_token(&bd).await;
    // Unknown token.
    let err = wx.send("bogus", USER, &text("x")).await.unwrap_err();
    assert_eq!(err, PlatformError::TokenInvalid { errcode: 40001 });
    assert_no_token(&err, "bogus");
    let err = bd
        .send("bogus", USER, 2, &text("x"), false)
        .await
        .unwrap_err();
    assert_eq!(err, PlatformError::TokenInvalid { errcode: 110 });
    // Injected once: the client does not retry TokenInvalid (the caller refreshes).
    fake.fail_next("/custom/send", 40001, 1);
    let err = wx.send(&wt, USER, &text("x")).await.unwrap_err();
    assert_eq!(err, PlatformError::TokenInvalid { errcode: 40001 });
    wx.send(&wt, USER, &text("x")).await.unwrap();
    // Invalidated tokens.
    fake.invalidate_tokens();
    let err = wx.typing(&wt, USER, true).await.unwrap_err();
    assert_eq!(err, PlatformError::TokenInvalid { errcode: 40001 });
    assert_no_token(&err, &wt);
    let err = bd.send(&bt, USER, 2, &text("x"), true).await.unwrap_err();
    assert_eq!(err, PlatformError::TokenInvalid { errcode: 110 });
    assert_no_token(&err, &bt);
    assert_eq!(fake.token_requests(WX_APP), 1);
}

#[tokio::test]
async fn busy_once_is_retried_and_succeeds() {
    let (fake, wx, bd) = setup().await;
    let wt = wx_token(&wx).await;
    let bt = bd_token(&bd).await;
    fake.fail_next("/cgi-bin/message/custom/send", -1, 1);
    wx.send(&wt, USER, &text("once")).await.unwrap();
    assert_eq!(fake.sent_messages(USER).len(), 1);
    fake.fail_next("/custom/sendbytp", 18, 2);
    bd.send(&bt, "BD-USER", 2, &text("twice"), true)
        .await
        .unwrap();
    assert_eq!(fake.sent_messages("BD-USER").len(), 1);
    fake.fail_next("/media/upload", -1, 1);
    wx.upload_image(&wt, vec![1, 2, 3], "a.jpg", "image/jpeg")
        .await
        .unwrap();
    fake.fail_next("/cgi-bin/stable_token", -1, 1);
    wx.fetch_token(WX_APP, WX_SECRET, true, false)
        .await
        .unwrap();
}

#[tokio::test]
async fn busy_beyond_the_retries_is_returned() {
    let (fake, wx, _) = setup().await;
    let wt = wx_token(&wx).await;
    // Three answers of -1: the first try and both retries are used up.
    fake.fail_next("/custom/send", -1, 3);
    let err = wx.send(&wt, USER, &text("x")).await.unwrap_err();
    assert_eq!(err, PlatformError::Busy { errcode: -1 });
    assert!(fake.sent_messages(USER).is_empty());
    // Exactly three were consumed: the next send goes through.
    wx.send(&wt, USER, &text("x")).await.unwrap();
    // With retries disabled, one -1 is enough to fail.
    let wx = wx.with_retry(RetryPolicy::none());
    fake.fail_next("/custom/send", -1, 1);
    let err = wx.send(&wt, USER, &text("x")).await.unwrap_err();
    assert_eq!(err, PlatformError::Busy { errcode: -1 });
}

#[tokio::test]
async fn quota_exhausted_on_both_platforms() {
    let (fake, wx, bd) = setup().await;
    let wt = wx_token(&wx).await;
    let bt = bd_token(&bd).await;
    fake.grant(WX_APP, USER, 1);
    wx.send(&wt, USER, &text("1")).await.unwrap();
    let err = wx.send(&wt, USER, &text("2")).await.unwrap_err();
    assert_eq!(err, PlatformError::QuotaExhausted { errcode: 45047 });
    assert!(err.is_definite_rejection());
    fake.grant(BD_KEY, USER, 1);
    bd.send(&bt, USER, 2, &text("1"), false).await.unwrap();
    let err = bd.send(&bt, USER, 2, &text("2"), false).await.unwrap_err();
    assert_eq!(err, PlatformError::QuotaExhausted { errcode: 90001 });
    // sendbytp wraps the errno in `data`.
    let err = bd.send(&bt, USER, 2, &text("3"), true).await.unwrap_err();
    assert_eq!(err, PlatformError::QuotaExhausted { errcode: 90001 });
    assert_eq!(fake.remaining(BD_KEY, USER), Some(0));
    // Unknown users get the default grant.
    fake.set_default_grant(2);
    wx.send(&wt, "NEW", &text("1")).await.unwrap();
    wx.send(&wt, "NEW", &text("2")).await.unwrap();
    let err = wx.send(&wt, "NEW", &text("3")).await.unwrap_err();
    assert_eq!(err.errcode(), Some(45047));
    // A fresh grant replaces the used-up window.
    fake.grant(WX_APP, USER, 5);
    wx.send(&wt, USER, &text("again")).await.unwrap();
    assert_eq!(fake.remaining(WX_APP, USER), Some(4));
}

#[tokio::test]
async fn window_expired() {
    let (fake, wx, _) = setup().await;
    let wt = wx_token(&wx).await;
    fake.expire_window(WX_APP, USER);
    let err = wx.send(&wt, USER, &text("late")).await.unwrap_err();
    assert_eq!(err, PlatformError::WindowExpired { errcode: 45015 });
    fake.fail_next("/custom/send", 45015, 1);
    let err = wx.send(&wt, "OTHER", &text("late")).await.unwrap_err();
    assert_eq!(err, PlatformError::WindowExpired { errcode: 45015 });
}

#[tokio::test]
async fn other_errcodes_are_rejected_with_message() {
    let (fake, wx, bd) = setup().await;
    let wt = wx_token(&wx).await;
    let bt = bd_token(&bd).await;
    fake.fail_next("/custom/send", 40003, 1);
    let err = wx.send(&wt, USER, &text("x")).await.unwrap_err();
    assert_eq!(
        err,
        PlatformError::Rejected {
            errcode: Some(40003),
            errmsg: "injected fault".into()
        }
    );
    let err = bd.send(&bt, "", 2, &text("x"), false).await.unwrap_err();
    assert_eq!(err.errcode(), Some(3001));
    let err = bd.send(&bt, USER, 3, &text("x"), false).await.unwrap_err();
    assert_eq!(err.errcode(), Some(3001));
}

#[tokio::test]
async fn delay_beyond_the_client_timeout_is_timeout() {
    let fake = FakePlatform::start().await.unwrap();
    let (wx, bd) = clients(&fake, Duration::from_millis(300));
    let wt = wx_token(&wx).await;
    let bt = bd_token(&bd).await;
    fake.delay_next("/custom/send", Duration::from_secs(2));
    let err = wx.send(&wt, USER, &text("slow")).await.unwrap_err();
    assert_eq!(err, PlatformError::Timeout);
    assert!(!err.is_definite_rejection());
    assert_no_token(&err, &wt);
    fake.delay_next("/custom/sendbytp", Duration::from_secs(2));
    let err = bd
        .send(&bt, USER, 2, &text("slow"), true)
        .await
        .unwrap_err();
    assert_eq!(err, PlatformError::Timeout);
    // Timeouts are not retried: one delayed call only, and later calls work.
    wx.send(&wt, USER, &text("fast")).await.unwrap();
}

#[tokio::test]
async fn transport_errors_hide_the_token() {
    let fake = FakePlatform::start().await.unwrap();
    let (wx, bd) = clients(&fake, Duration::from_secs(2));
    let wt = wx_token(&wx).await;
    let bt = bd_token(&bd).await;
    let addr = fake.addr();
    drop(fake);
    // Give the aborted server a moment to release the port.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let http = http_client(Duration::from_millis(500), Duration::from_secs(2)).unwrap();
    let wx = WechatClient::new(http.clone(), format!("http://{addr}"));
    let bd = BaiduClient::new(http, format!("http://{addr}"));
    let err = wx.send(&wt, USER, &text("x")).await.unwrap_err();
    assert!(
        matches!(err, PlatformError::Transport(_) | PlatformError::Timeout),
        "{err:?}"
    );
    assert!(!err.is_definite_rejection());
    assert_no_token(&err, &wt);
    let err = wx
        .upload_image(&wt, vec![1], "a.png", "image/png")
        .await
        .unwrap_err();
    assert_no_token(&err, &wt);
    let err = bd.send(&bt, USER, 2, &text("x"), false).await.unwrap_err();
    assert_no_token(&err, &bt);
    let err = bd.fetch_token(BD_KEY, BD_SECRET).await.unwrap_err();
    assert!(!err.to_string().contains(BD_SECRET));
}

#[tokio::test]
async fn unknown_path_is_a_protocol_error() {
    let fake = FakePlatform::start().await.unwrap();
    let http = http_client(Duration::from_secs(1), Duration::from_secs(2)).unwrap();
    // A base with an extra prefix makes every path unknown to the fake (404 JSON without errcode).
    let wx = WechatClient::new(http, format!("{}/nope", fake.base_url()));
    let err = wx.send("t", USER, &text("x")).await.unwrap_err();
    assert!(matches!(err, PlatformError::Protocol(_)), "{err:?}");
    assert!(!err.is_definite_rejection());
}
