//! The sender function: `POST /messages` and `POST /typing`, for WeChat and Baidu.
//!
//! A send first reserves its units from the conversation's window with one conditional write
//! (text over the platform limit becomes several parts, one unit each), then calls the platform,
//! then settles: a definite rejection gives the unsent units back (same window only), WeChat
//! 45047 / Baidu 90001 set `remaining = 0`, 45015 closes the window, a timeout keeps the units
//! spent. Every outcome is recorded in the conversation. Access tokens live in the shared token
//! cache with a refresh lease, so instances never stampede the platform's token endpoint.

pub mod config;
pub mod error;
pub mod token;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::clock::Clock;
use shared::message::ConversationKey;
use shared::platform::baidu::BaiduClient;
use shared::platform::wechat::WechatClient;
use shared::platform::{OutboundBody, PlatformError, split_text};
use shared::ports::{
    AccessTokenCache, Claim, OutboundRecord, OutboundStore, QuotaLedger, Reservation,
};
use shared::protocol::Platform;
use shared::quota::Window;
use shared::registry::{AppConfig, AppRegistry, Lookup};
use shared::registry_source::LiveRegistry;
use shared::telemetry::open_id_hash;
use tracing::{error, info, warn};

pub use config::{BuildError, Config};
pub use error::SendError;
use token::Tokens;

/// Request-path settings of the sender, with their defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// WeChat token endpoint: `stable_token` (default) or the classic `token`.
    pub wechat_stable_token: bool,
    /// Largest text part in UTF-8 bytes (default 2000, docs/protocol.md §11.1).
    pub max_text_bytes: usize,
    /// Largest image accepted for upload (default 2 MiB, WeChat's temp-media rule).
    pub max_image_bytes: usize,
    /// How long a `client_msg_id` is remembered (default 7 days).
    pub idempotency_ttl_secs: u64,
    /// Refresh a token this long before it expires (default 300 s).
    pub token_margin_secs: u64,
    /// How long one instance may hold the refresh lease (default 10 s).
    pub token_lease_secs: u64,
    /// How long a request waits for another instance's refresh (default 3 s).
    pub token_wait: Duration,
    /// Media ids are reused until this long before their 3-day expiry (default 1 h).
    pub media_margin_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            wechat_stable_token: true,
            max_text_bytes: shared::platform::MAX_TEXT_BYTES,
            max_image_bytes: 2 * 1024 * 1024,
            idempotency_ttl_secs: 7 * 86_400,
            token_margin_secs: 300,
            token_lease_secs: 10,
            token_wait: Duration::from_secs(3),
            media_margin_secs: 3600,
        }
    }
}

/// Everything a request needs, built once per cold start.
pub struct App<S, T, C> {
    /// Settings.
    pub config: Settings,
    /// The app registry's send part (app secrets, 服务商 links), re-read on its TTL.
    pub registry: LiveRegistry,
    /// Conversations: quota ledger and outbound records.
    pub store: S,
    /// Token cache (tokens, leases, media ids).
    pub tokens: Tokens<T>,
    /// Platform API clients.
    pub clients: Clients,
    /// The clock.
    pub clock: C,
    sequence: AtomicU64,
}

/// The HTTP clients a sender uses.
pub struct Clients {
    /// WeChat API client.
    pub wechat: WechatClient,
    /// Baidu API client.
    pub baidu: BaiduClient,
    /// Plain HTTP client for fetching images by URL (WeChat uploads them).
    pub http: reqwest::Client,
}

/// `POST /messages` body.
#[derive(Debug, Deserialize)]
pub struct SendRequest {
    /// The mini program.
    pub app_id: String,
    /// `wechat` or `baidu`; optional when the app id is registered on one platform only.
    pub platform: Option<Platform>,
    /// The user.
    pub open_id: String,
    /// `text`, `image`, `link`, `miniprogrampage` (WeChat); `text`, `image` (Baidu).
    pub msg_type: String,
    /// Text content.
    pub content: Option<String>,
    /// Image: exactly one of `media_id`, `url`, `data` (base64).
    pub image: Option<ImageInput>,
    /// Link card (WeChat).
    pub link: Option<LinkInput>,
    /// Mini program card (WeChat).
    pub miniprogrampage: Option<MiniProgramInput>,
    /// Idempotency key: a repeat returns the first result and sends nothing.
    pub client_msg_id: Option<String>,
    /// Baidu `user_type` (1 guest, 2 Baidu account); defaults to the app's `default_user_type`, else 2.
    pub user_type: Option<u8>,
}

/// An image to send.
#[derive(Debug, Deserialize)]
pub struct ImageInput {
    /// A WeChat media id already uploaded.
    pub media_id: Option<String>,
    /// A public image URL (Baidu sends it as is; WeChat fetches and uploads it).
    pub url: Option<String>,
    /// Image bytes, base64 (WeChat uploads them).
    pub data: Option<String>,
}

/// A link card (docs/protocol.md §9.1).
#[derive(Debug, Deserialize)]
pub struct LinkInput {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Target URL.
    pub url: String,
    /// Thumbnail URL.
    pub thumb_url: String,
}

/// A mini program card (docs/protocol.md §9.1).
#[derive(Debug, Deserialize)]
pub struct MiniProgramInput {
    /// Title.
    pub title: String,
    /// Page path, may carry a query.
    pub pagepath: String,
    /// Thumbnail media id.
    pub thumb_media_id: String,
}

/// `POST /typing` body (WeChat).
#[derive(Debug, Deserialize)]
pub struct TypingRequest {
    /// The mini program.
    pub app_id: String,
    /// The user.
    pub open_id: String,
    /// `Typing` or `CancelTyping`.
    pub command: String,
}

/// The registered app a request names: by AppID, on the given platform or the only one it is on.
fn pick_app<'r>(
    registry: &'r AppRegistry,
    app_id: &str,
    platform: Option<Platform>,
) -> Result<&'r AppConfig, SendError> {
    let mut found = Vec::new();
    let mut disabled = None;
    for p in [Platform::Wechat, Platform::Baidu] {
        if platform.is_some_and(|want| want != p) {
            continue;
        }
        match registry.lookup(p, app_id) {
            Lookup::Found(app) => found.push(app),
            Lookup::Disabled(e) => disabled = Some(e.field().to_owned()),
            Lookup::Unknown => {}
        }
    }
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(disabled.map_or(SendError::UnknownApp, SendError::Misconfigured)),
        _ => Err(invalid(
            "platform",
            "the app id exists on both platforms: say which",
        )),
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> SendError {
    SendError::Invalid {
        field,
        message: message.into(),
    }
}

impl<S, T, C> App<S, T, C>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    C: Clock,
{
    /// Assembles the app around a fixed registry (tests with in-memory ports; deployed and local
    /// runs use [`App::build`]).
    pub fn new(
        config: Settings,
        registry: AppRegistry,
        store: S,
        tokens: T,
        clients: Clients,
        clock: C,
    ) -> Self {
        Self::with_registry(
            config,
            LiveRegistry::fixed(registry),
            store,
            tokens,
            clients,
            clock,
        )
    }

    /// Assembles the app around a live registry.
    pub fn with_registry(
        config: Settings,
        registry: LiveRegistry,
        store: S,
        tokens: T,
        clients: Clients,
        clock: C,
    ) -> Self {
        let tokens = Tokens::new(tokens, &config);
        Self {
            config,
            registry,
            store,
            tokens,
            clients,
            clock,
            sequence: AtomicU64::new(0),
        }
    }

    fn next_id(&self, now_ms: u64) -> String {
        let n = self.sequence.fetch_add(1, Ordering::SeqCst);
        format!("{now_ms}-{}-{n}", self.tokens.owner())
    }

    /// Builds the platform bodies a request becomes (validation included; may upload images).
    async fn bodies(
        &self,
        app: &AppConfig,
        req: &SendRequest,
    ) -> Result<Vec<OutboundBody>, SendError> {
        let platform = app.platform;
        match (platform, req.msg_type.as_str()) {
            (_, "text") => {
                let content = req
                    .content
                    .as_deref()
                    .ok_or_else(|| invalid("content", "required for text"))?;
                if content.is_empty() {
                    return Err(invalid("content", "must not be empty"));
                }
                Ok(split_text(content, self.config.max_text_bytes)
                    .into_iter()
                    .map(|content| OutboundBody::Text { content })
                    .collect())
            }
            (Platform::Wechat, "image") => {
                let image = req
                    .image
                    .as_ref()
                    .ok_or_else(|| invalid("image", "required for image"))?;
                let media_id = match (&image.media_id, &image.url, &image.data) {
                    (Some(id), None, None) => id.clone(),
                    (None, Some(url), None) => {
                        let bytes = self.fetch_image(url).await?;
                        self.upload(app, bytes).await?
                    }
                    (None, None, Some(data)) => {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(data)
                            .map_err(|e| invalid("image.data", format!("not base64: {e}")))?;
                        if bytes.len() > self.config.max_image_bytes {
                            return Err(invalid(
                                "image.data",
                                format!("over {} bytes", self.config.max_image_bytes),
                            ));
                        }
                        self.upload(app, bytes).await?
                    }
                    _ => return Err(invalid("image", "give exactly one of media_id, url, data")),
                };
                Ok(vec![OutboundBody::Image { media_id }])
            }
            (Platform::Baidu, "image") => {
                let image = req
                    .image
                    .as_ref()
                    .ok_or_else(|| invalid("image", "required for image"))?;
                match (&image.url, &image.media_id, &image.data) {
                    (Some(url), None, None) if url.starts_with("http") => {
                        Ok(vec![OutboundBody::ImageUrl {
                            pic_url: url.clone(),
                        }])
                    }
                    _ => Err(invalid(
                        "image.url",
                        "Baidu sends images by public URL only",
                    )),
                }
            }
            (Platform::Wechat, "link") => {
                let l = req
                    .link
                    .as_ref()
                    .ok_or_else(|| invalid("link", "required for link"))?;
                Ok(vec![OutboundBody::Link {
                    title: l.title.clone(),
                    description: l.description.clone(),
                    url: l.url.clone(),
                    thumb_url: l.thumb_url.clone(),
                }])
            }
            (Platform::Wechat, "miniprogrampage") => {
                let m = req
                    .miniprogrampage
                    .as_ref()
                    .ok_or_else(|| invalid("miniprogrampage", "required for miniprogrampage"))?;
                Ok(vec![OutboundBody::MiniProgramPage {
                    title: m.title.clone(),
                    pagepath: m.pagepath.clone(),
                    thumb_media_id: m.thumb_media_id.clone(),
                }])
            }
            (p, other) => Err(invalid(
                "msg_type",
                format!("{other:?} is not a {p} customer-service message type"),
            )),
        }
    }

    async fn fetch_image(&self, url: &str) -> Result<Vec<u8>, SendError> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(invalid("image.url", "must be an http(s) URL"));
        }
        let resp = self
            .clients
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| invalid("image.url", format!("cannot fetch: {}", e.without_url())))?;
        if !resp.status().is_success() {
            return Err(invalid(
                "image.url",
                format!("fetch answered {}", resp.status()),
            ));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| invalid("image.url", format!("cannot fetch: {}", e.without_url())))?;
        if bytes.len() > self.config.max_image_bytes {
            return Err(invalid(
                "image.url",
                format!("image over {} bytes", self.config.max_image_bytes),
            ));
        }
        Ok(bytes.to_vec())
    }

    /// Uploads image bytes (WeChat), reusing a cached media id for the same bytes.
    async fn upload(&self, app: &AppConfig, bytes: Vec<u8>) -> Result<String, SendError> {
        let now = self.clock.now_secs();
        let digest = token::digest(&bytes);
        if let Some(id) = self.tokens.cached_media(app, &digest, now).await? {
            return Ok(id);
        }
        let content_type =
            sniff_image(&bytes).ok_or_else(|| invalid("image", "not a PNG, JPEG or GIF image"))?;
        let filename = format!("image.{}", content_type.trim_start_matches("image/"));
        let media_id = self
            .with_token(app, |token| {
                let bytes = bytes.clone();
                let filename = filename.clone();
                async move {
                    self.clients
                        .wechat
                        .upload_image(&token, bytes, &filename, content_type)
                        .await
                }
            })
            .await
            .map_err(|e| match e {
                CallError::Platform(e) => SendError::Platform(e, Window::default()),
                CallError::Token(e) => e,
            })?;
        self.tokens
            .remember_media(
                app,
                &digest,
                &media_id,
                now + 3 * 86_400 - self.config.media_margin_secs,
            )
            .await?;
        Ok(media_id)
    }

    /// Runs a platform call with the app's token; on a token error, refreshes once and retries once.
    async fn with_token<F, Fut, R>(&self, app: &AppConfig, call: F) -> Result<R, CallError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<R, PlatformError>>,
    {
        let token = self.token(app, None).await.map_err(CallError::Token)?;
        match call(token.clone()).await {
            Err(PlatformError::TokenInvalid { errcode }) => {
                warn!(platform = %app.platform, app_id = %app.app_id, errcode, "access token rejected; refreshing once");
                let fresh = self
                    .token(app, Some(&token))
                    .await
                    .map_err(CallError::Token)?;
                call(fresh).await.map_err(CallError::Platform)
            }
            other => other.map_err(CallError::Platform),
        }
    }

    /// Sends one message: the use case behind `POST /messages`.
    pub async fn send(&self, req: &SendRequest) -> Result<Value, SendError> {
        if req.open_id.trim().is_empty() {
            return Err(invalid("open_id", "required"));
        }
        let registry = self.registry.current().await;
        let app = pick_app(&registry, &req.app_id, req.platform)?;
        let key = ConversationKey {
            platform: app.platform,
            app_id: app.app_id.clone(),
            open_id: req.open_id.clone(),
        };
        let idem = req
            .client_msg_id
            .as_ref()
            .map(|id| format!("{}#{}#{id}", app.platform, app.app_id));
        if let Some(k) = &idem {
            match self
                .store
                .claim(k, self.clock.now_secs(), self.config.idempotency_ttl_secs)
                .await?
            {
                Claim::New => {}
                Claim::Completed(stored) => return replay(&stored),
                Claim::InProgress => return Err(SendError::InProgress),
            }
        }
        let result = self.send_claimed(app, &key, req).await;
        if let Some(k) = &idem {
            match &result {
                Ok(body) => {
                    self.store
                        .complete(k, &json!({ "status": 200, "body": body }).to_string())
                        .await?
                }
                Err(e) if e.is_final() => {
                    self.store
                        .complete(
                            k,
                            &json!({ "status": e.status().as_u16(), "body": e.body() }).to_string(),
                        )
                        .await?
                }
                Err(_) => self.store.abandon(k).await?,
            }
        }
        result
    }

    async fn send_claimed(
        &self,
        app: &AppConfig,
        key: &ConversationKey,
        req: &SendRequest,
    ) -> Result<Value, SendError> {
        let bodies = self.bodies(app, req).await?;
        let units = u32::try_from(bodies.len()).map_err(|_| invalid("content", "too long"))?;
        let now = self.clock.now_secs();
        let window = match self.store.reserve(key, units, now).await? {
            Reservation::Reserved(w) => w,
            Reservation::Refused(refusal, w) => {
                shared::metrics::emit(
                    &shared::metrics::QUOTA_REFUSALS,
                    1.0,
                    &[(
                        "reason",
                        if refusal == shared::quota::Refusal::WindowExpired {
                            "window_expired"
                        } else {
                            "quota_exhausted"
                        },
                    )],
                );
                return Err(SendError::Refused(
                    refusal,
                    Window {
                        remaining: w.remaining_at(now),
                        ..w
                    },
                ));
            }
            Reservation::NoConversation => return Err(SendError::UnknownConversation),
        };
        let user_type = req.user_type.or(app.default_user_type).unwrap_or(2);
        let mut sent = 0u32;
        let mut failure = None;
        for body in &bodies {
            let result = self
                .with_token(app, |token| async move {
                    match app.platform {
                        Platform::Wechat => {
                            self.clients.wechat.send(&token, &key.open_id, body).await
                        }
                        Platform::Baidu => {
                            self.clients
                                .baidu
                                .send(
                                    &token,
                                    &key.open_id,
                                    user_type,
                                    body,
                                    app.component_app_id.is_some(),
                                )
                                .await
                        }
                    }
                })
                .await;
            match result {
                Ok(()) => sent += 1,
                Err(CallError::Token(e)) => {
                    // No token, so this part never left: give the unsent units back.
                    let unsent = units - sent;
                    self.store.release(key, unsent, window.expires_at).await?;
                    if sent > 0 {
                        let (content, media) = describe(&bodies);
                        let record = OutboundRecord {
                            key: key.clone(),
                            id: self.next_id(self.clock.now_ms()),
                            sent_at: now,
                            msg_type: req.msg_type.clone(),
                            content,
                            media,
                            status: "partial".into(),
                            errcode: None,
                            parts: sent,
                        };
                        self.store.record_outbound(&record).await?;
                    }
                    shared::metrics::emit(
                        &shared::metrics::SEND_OUTCOME,
                        1.0,
                        &[("outcome", "token_unavailable")],
                    );
                    warn!(platform = %app.platform, app_id = %app.app_id, outcome = "token_unavailable", parts_sent = sent, "no access token; unsent units given back");
                    return Err(e);
                }
                Err(CallError::Platform(e)) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let id = self.next_id(self.clock.now_ms());
        let (content, media) = describe(&bodies);
        let mut record = OutboundRecord {
            key: key.clone(),
            id: id.clone(),
            sent_at: now,
            msg_type: req.msg_type.clone(),
            content,
            media,
            status: "sent".into(),
            errcode: None,
            parts: units,
        };
        let Some(err) = failure else {
            self.store.record_outbound(&record).await?;
            shared::metrics::emit(&shared::metrics::SEND_OUTCOME, 1.0, &[("outcome", "sent")]);
            info!(platform = %app.platform, app_id = %app.app_id, open_id_hash = %open_id_hash(&key.open_id), outcome = "sent", parts = units, remaining = window.remaining, "sent");
            return Ok(
                json!({ "id": id, "parts": units, "remaining": window.remaining, "expires_at": window.expires_at }),
            );
        };
        record.errcode = err.errcode();
        let mut after = window;
        let outcome = match &err {
            PlatformError::QuotaExhausted { .. } => {
                self.store.exhaust(key).await?;
                after.remaining = 0;
                "quota_exhausted"
            }
            PlatformError::WindowExpired { .. } => {
                self.store.close_window(key, now).await?;
                after = Window {
                    remaining: 0,
                    expires_at: now.min(window.expires_at),
                };
                "window_expired"
            }
            e if e.is_definite_rejection() => {
                let unsent = units - sent;
                if self.store.release(key, unsent, window.expires_at).await? {
                    after.remaining += unsent;
                }
                "rejected"
            }
            _ => "unknown",
        };
        shared::metrics::emit(&shared::metrics::SEND_OUTCOME, 1.0, &[("outcome", outcome)]);
        record.status = if outcome == "unknown" {
            "unknown".into()
        } else if sent > 0 {
            "partial".into()
        } else {
            "failed".into()
        };
        self.store.record_outbound(&record).await?;
        if outcome == "unknown" {
            warn!(platform = %app.platform, app_id = %app.app_id, outcome, parts_sent = sent, error.message = %err, "platform did not answer; units stay spent");
            return Err(SendError::Timeout(err, after));
        }
        error!(platform = %app.platform, app_id = %app.app_id, outcome, errcode = err.errcode(), parts_sent = sent, "platform rejected the send");
        Err(SendError::Platform(err, after))
    }

    /// Typing status (WeChat): the use case behind `POST /typing`.
    pub async fn typing(&self, req: &TypingRequest) -> Result<Value, SendError> {
        let registry = self.registry.current().await;
        let app = pick_app(&registry, &req.app_id, Some(Platform::Wechat))?;
        let typing = match req.command.as_str() {
            "Typing" => true,
            "CancelTyping" => false,
            _ => return Err(invalid("command", "must be Typing or CancelTyping")),
        };
        if req.open_id.trim().is_empty() {
            return Err(invalid("open_id", "required"));
        }
        self.with_token(app, |token| async move {
            self.clients
                .wechat
                .typing(&token, &req.open_id, typing)
                .await
        })
        .await
        .map_err(|e| match e {
            CallError::Platform(e) if e.is_definite_rejection() => {
                SendError::Platform(e, Window::default())
            }
            CallError::Platform(e) => SendError::Timeout(e, Window::default()),
            CallError::Token(e) => e,
        })?;
        Ok(json!({ "command": req.command }))
    }
}

/// Why a platform call through [`App::with_token`] failed.
enum CallError {
    /// The platform answered with an error, or did not answer.
    Platform(PlatformError),
    /// No access token could be had: nothing was sent.
    Token(SendError),
}

fn replay(stored: &str) -> Result<Value, SendError> {
    let v: Value = serde_json::from_str(stored)
        .map_err(|e| invalid("client_msg_id", format!("stored result unreadable: {e}")))?;
    Ok(json!({ "replayed": true, "status": v["status"], "body": v["body"] }))
}

fn describe(bodies: &[OutboundBody]) -> (Option<String>, Option<String>) {
    match bodies.first() {
        Some(OutboundBody::Text { .. }) => (
            Some(
                bodies
                    .iter()
                    .filter_map(|b| {
                        if let OutboundBody::Text { content } = b {
                            Some(content.as_str())
                        } else {
                            None
                        }
                    })
                    .collect(),
            ),
            None,
        ),
        Some(OutboundBody::Image { media_id }) => (None, Some(media_id.clone())),
        Some(OutboundBody::ImageUrl { pic_url }) => (None, Some(pic_url.clone())),
        Some(OutboundBody::Link { url, .. }) => (None, Some(url.clone())),
        Some(OutboundBody::MiniProgramPage { pagepath, .. }) => (None, Some(pagepath.clone())),
        None => (None, None),
    }
}

fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

fn parse_body<R: for<'de> Deserialize<'de>>(req: &Request) -> Result<R, SendError> {
    serde_json::from_slice(req.body().as_ref()).map_err(|e| invalid("body", e.to_string()))
}

/// The Lambda handler: `POST /messages` and `POST /typing` (matched on the path's last segment so
/// stage prefixes and function URLs work).
pub async fn handle<S, T, C>(
    app: &App<S, T, C>,
    req: Request,
) -> Result<Response<Body>, lambda_http::Error>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    C: Clock,
{
    let route = req
        .uri()
        .path()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let result = match (req.method(), route.as_str()) {
        (&Method::POST, "messages") => match parse_body::<SendRequest>(&req) {
            Ok(r) => app.send(&r).await.map(|body| match body.get("replayed") {
                Some(_) => {
                    let status = body["status"]
                        .as_u64()
                        .and_then(|s| u16::try_from(s).ok())
                        .unwrap_or(200);
                    (
                        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                        body["body"].clone(),
                    )
                }
                None => (StatusCode::OK, body),
            }),
            Err(e) => Err(e),
        },
        (&Method::POST, "typing") => match parse_body::<TypingRequest>(&req) {
            Ok(r) => app.typing(&r).await.map(|b| (StatusCode::OK, b)),
            Err(e) => Err(e),
        },
        _ => Err(SendError::UnknownRoute),
    };
    Ok(match result {
        Ok((status, body)) => json_response(status, &body),
        Err(e) => {
            if e.status().is_client_error() {
                // Only the label and the field: an invalid body's parse error can quote its content.
                let body = e.body();
                warn!(
                    outcome = e.status().as_u16(),
                    reason = body["error"].as_str().unwrap_or_default(),
                    field = body["field"].as_str().unwrap_or_default(),
                    "refused"
                );
            }
            json_response(e.status(), &e.body())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    #[test]
    fn an_app_valid_on_one_platform_is_found_though_disabled_on_the_other() {
        let registry = AppRegistry::parse_for(
            &format!(
                r#"{{"apps":[
                    {{"platform":"wechat","app_id":"same","token":"t","encoding_aes_key":"{KEY}","app_secret":"s"}},
                    {{"platform":"baidu","app_id":"same","app_secret":"s"}}]}}"#
            ),
            shared::registry::Purpose::Send,
        )
        .unwrap();
        let app = pick_app(&registry, "same", None).unwrap();
        assert_eq!(app.platform, Platform::Wechat);
        assert!(matches!(
            pick_app(&registry, "same", Some(Platform::Baidu)),
            Err(SendError::Misconfigured(f)) if f == "apps[1].app_key"
        ));
        assert!(matches!(
            pick_app(&registry, "other", None),
            Err(SendError::UnknownApp)
        ));
    }
}
