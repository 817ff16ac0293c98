//! The sender function: `POST /messages` and `POST /typing`, for WeChat and Baidu.
//!
//! A send reserves its units from the conversation's window with one conditional write (text over
//! the platform limit becomes several parts, one unit each), calls the platform while its deadline
//! allows, then settles under the generation the units were reserved in: a definite rejection gives
//! the unsent units back, WeChat 45047 / Baidu 90001 set `remaining = 0`, 45015 closes the window, a
//! timeout keeps the units spent. Once anything may have reached the platform the request is never
//! sent again: the outcome is recorded and answered, and a `client_msg_id` replays it.
//!
//! It also consumes the outbound queue: auto-reply notices from the processor (`auto_reply`),
//! delivered as direct invocations, never through the HTTP API.
//!
//! Modules: `config` (environment, settings, assembly), `request` (bodies), `compose` (platform
//! bodies), `media` and `fetch` (images), `token` (access tokens), `deadline`, `send` (the use
//! case), `idempotency`, `response` (HTTP), `auto_reply`, `error`.

pub mod auto_reply;
pub mod compose;
pub mod config;
pub mod deadline;
pub mod error;
pub mod fetch;
pub mod idempotency;
pub mod keep_image;
pub mod media;
pub mod request;
pub mod response;
pub mod send;
pub mod stats;
pub mod token;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lambda_http::http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use shared::api::baidu::BaiduClient;
use shared::api::wechat::WechatClient;
use shared::clock::Clock;
use shared::ids::Platform;
use shared::ports::{AccessTokenCache, MediaIdCache, OutboundStore, QuotaLedger};
use shared::quota::Window;
use shared::registry::{AppConfig, AppRegistry, Lookup};
use shared::registry_source::LiveRegistry;
use tracing::warn;

use auto_reply::DeskPorts;
pub use config::{BuildError, Config, Settings};
pub use deadline::Deadline;
pub use error::SendError;
use error::invalid;
pub use request::{OutboundMessage, SendRequest, TypingRequest};
pub use response::Answer;
use token::{CallError, Tokens};

/// Everything a request needs, built once per cold start.
pub struct App<S, T, M, C> {
    /// Settings.
    pub config: Settings,
    /// The app registry's send part (app secrets, 服务商 links), re-read on its TTL.
    pub registry: LiveRegistry,
    /// Conversations: quota ledger, outbound records, idempotency keys.
    pub store: S,
    /// Access-token cache (tokens, refresh leases).
    pub tokens: Tokens<T>,
    /// Media ids of uploaded images, by content digest.
    pub media: M,
    /// Platform API clients.
    pub clients: Clients,
    /// The clock.
    pub clock: C,
    /// The desk's store, for auto replies (none: the outbound queue is not consumed here).
    pub desk: Option<Arc<dyn DeskPorts>>,
    /// The media bucket inbound images are kept in (none: not kept).
    pub images: Option<Arc<dyn shared::ports::media_store::MediaStore>>,
    sequence: AtomicU64,
}

/// The HTTP clients a sender uses.
pub struct Clients {
    /// WeChat API client.
    pub wechat: WechatClient,
    /// Baidu API client.
    pub baidu: BaiduClient,
    /// Client for fetching images by URL, under the fetch policy ([`fetch::image_client`]).
    pub images: reqwest::Client,
}

/// The registered app a request names: by AppID, on the given platform or the only one it is on.
pub(crate) fn pick_app<'r>(
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

impl<S, T, M, C> App<S, T, M, C>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    M: MediaIdCache,
    C: Clock,
{
    /// Assembles the app around a fixed registry (tests with in-memory ports; deployed and local
    /// runs use [`App::build`]).
    pub fn new(
        config: Settings,
        registry: AppRegistry,
        store: S,
        tokens: T,
        media: M,
        clients: Clients,
        clock: C,
    ) -> Self {
        Self::with_registry(
            config,
            LiveRegistry::fixed(registry),
            store,
            tokens,
            media,
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
        media: M,
        clients: Clients,
        clock: C,
    ) -> Self {
        let tokens = Tokens::new(tokens, &config);
        Self {
            config,
            registry,
            store,
            tokens,
            media,
            clients,
            clock,
            desk: None,
            images: None,
            sequence: AtomicU64::new(0),
        }
    }

    /// A deadline for a request without an invocation context (local runs, tests).
    pub fn local_deadline(&self) -> Deadline {
        Deadline::new(
            None,
            self.clock.now_ms(),
            self.config.max_request,
            self.config.record_reserve,
        )
    }

    fn next_id(&self, now_ms: u64) -> String {
        let n = self.sequence.fetch_add(1, Ordering::SeqCst);
        format!("{now_ms}-{}-{n}", self.tokens.owner())
    }

    /// Typing status (WeChat): the use case behind `POST /typing`.
    pub async fn typing(
        &self,
        req: &TypingRequest,
        deadline: &Deadline,
    ) -> Result<Answer, SendError> {
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
        if !deadline.allows(self.config.platform_timeout) {
            return Err(SendError::NoTimeLeft);
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
        Ok(Answer {
            status: lambda_http::http::StatusCode::OK,
            body: json!({ "command": req.command }),
        })
    }
}

/// A batch of auto-reply notices: the failed records, as the event source mapping reads them. A
/// batch this sender cannot read fails whole (an error to the runtime), so nothing is dropped.
async fn notices<S, T, M, C>(
    app: &App<S, T, M, C>,
    body: &[u8],
    deadline_ms: Option<u64>,
) -> Result<Response<Body>, lambda_http::Error>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    M: MediaIdCache,
    C: Clock,
{
    let Some(desk) = &app.desk else {
        return Err("a queue batch reached a sender without a desk table".into());
    };
    // The error by category and position only (serde's text can quote the payload).
    let event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_slice(body).map_err(|e| {
            format!(
                "a direct invocation that is not a queue batch ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        })?;
    let failed = app.consume_notices(desk, &event, deadline_ms).await;
    Ok(Response::new(Body::from(
        serde_json::to_string(&failed).unwrap_or_default(),
    )))
}

/// The Lambda handler: `POST /messages` and `POST /typing` (matched on the path's last segment so
/// stage prefixes and function URLs work). The deadline is the invocation's.
pub async fn handle<S, T, M, C>(
    app: &App<S, T, M, C>,
    req: Request,
) -> Result<Response<Body>, lambda_http::Error>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    M: MediaIdCache,
    C: Clock,
{
    let invocation_deadline = req.lambda_context_ref().map(|c| c.deadline);
    // A batch of the outbound queue (a direct invocation, never a request through the HTTP API).
    if matches!(
        req.request_context_ref(),
        Some(lambda_http::request::RequestContext::PassThrough)
    ) {
        return notices(app, req.body().as_ref(), invocation_deadline).await;
    }
    let deadline = Deadline::new(
        invocation_deadline,
        app.clock.now_ms(),
        app.config.max_request,
        app.config.record_reserve,
    );
    let route = req
        .uri()
        .path()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let body = req.body().as_ref();
    let result = match (req.method(), route.as_str()) {
        (&Method::POST, "messages") => match SendRequest::from_json(body) {
            Ok(r) => app.send(&r, &deadline).await,
            Err(e) => Err(e),
        },
        (&Method::POST, "typing") => match TypingRequest::from_json(body) {
            Ok(r) => app.typing(&r, &deadline).await,
            Err(e) => Err(e),
        },
        _ => Err(SendError::UnknownRoute),
    };
    Ok(match result {
        Ok(answer) => answer.into_response(),
        Err(e) => {
            if e.status().is_client_error() {
                // Only the label and the field: never the request's content.
                let body = e.body();
                warn!(
                    outcome = e.status().as_u16(),
                    reason = body["error"].as_str().unwrap_or_default(),
                    field = body["field"].as_str().unwrap_or_default(),
                    "refused"
                );
            }
            Answer::from_error(&e).into_response()
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
