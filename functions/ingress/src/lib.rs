//! The ingress function: `GET|POST /wechat/{app}` and `GET|POST /baidu/{app}`.
//!
//! Verification requests get their echo string verbatim. Pushes are verified, decrypted and
//! parsed (kept raw when they do not parse) by the shared core, admitted by the app's policy
//! (mode, recipient, signed time), put on the inbound queue as a [`QueueEnvelope`] cut to fit
//! SQS, and only then answered `success`. Anything not queued gets a 4xx (bad input, nothing
//! queued) or a 5xx (queue too slow or down: the platform retries, the processor dedupes). Never
//! calls anything but SQS.

pub mod config;
pub mod error;
pub mod handoff;
#[cfg(test)]
mod tests;

use lambda_http::http::{Method as HttpMethod, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use shared::clock::Clock;
use shared::ids::Platform;
use shared::message::{self, MessageBody, QueueEnvelope, ReplayTag};
use shared::ports::MessageQueue;
use shared::protocol::admission::{self, Policy};
use shared::protocol::{self, Callback, CallbackRequest, Method, Mode, Params};
use shared::registry::{AppRegistry, Lookup};
use shared::registry_source::LiveRegistry;
use shared::telemetry::open_id_hash;
use tracing::{error, info, warn};

pub use config::{BuildError, Config, Limits};
pub use error::IngressError;
pub use handoff::HandoffReply;

/// Everything a request needs, built once per cold start.
pub struct App<Q, C> {
    /// Request-path limits.
    pub limits: Limits,
    /// The app registry's verify part, re-read on its TTL.
    pub registry: LiveRegistry,
    /// The inbound queue.
    pub queue: Q,
    /// The clock (replay guard, `received_at_ms`).
    pub clock: C,
}

impl<Q: MessageQueue, C: Clock> App<Q, C> {
    /// Assembles the app around a fixed registry (tests with in-memory ports; deployed and local
    /// runs use [`App::build`]).
    pub fn new(limits: Limits, registry: AppRegistry, queue: Q, clock: C) -> Self {
        Self::with_registry(limits, LiveRegistry::fixed(registry), queue, clock)
    }

    /// Assembles the app around a live registry.
    pub fn with_registry(limits: Limits, registry: LiveRegistry, queue: Q, clock: C) -> Self {
        Self {
            limits,
            registry,
            queue,
            clock,
        }
    }

    /// Handles one callback: the use case behind [`handle`].
    pub async fn accept(&self, route: &Route, req: &Request) -> Result<Accepted, IngressError> {
        let method = match *req.method() {
            HttpMethod::GET => Method::Get,
            HttpMethod::POST => Method::Post,
            _ => return Err(IngressError::MethodNotAllowed),
        };
        let registry = self.registry.current().await;
        let app = match registry.lookup(route.platform, &route.app_id) {
            Lookup::Found(app) => app,
            Lookup::Disabled(e) => return Err(IngressError::Misconfigured(e.field().to_owned())),
            Lookup::Unknown => return Err(IngressError::UnknownApp),
        };
        let credentials = app
            .credentials
            .as_ref()
            .ok_or_else(|| IngressError::Misconfigured(format!("{}.token", app.app_id)))?;
        let body: &[u8] = req.body().as_ref();
        if body.len() > self.limits.max_body_bytes {
            return Err(IngressError::TooLarge(body.len()));
        }
        let query = Params::parse_query(req.uri().query().unwrap_or_default());
        let callback_req = CallbackRequest {
            method,
            query: &query,
            body,
        };
        let callback = match route.platform {
            Platform::Wechat => protocol::wechat::read_callback(&callback_req, credentials)?,
            Platform::Baidu => protocol::baidu::read_callback(&callback_req, credentials)?,
        };
        let push = match callback {
            Callback::Verify { echo } => return Ok(Accepted::Verified(echo)),
            Callback::Push(push) => push,
        };
        let now_ms = self.clock.now_ms();
        let now_secs = now_ms / 1000;
        if push.key_slot == Some(protocol::KeySlot::Previous) {
            // Operators finish a key rotation once this no longer appears.
            info!(platform = %route.platform, app_id = %route.app_id, key_slot = "previous", "push opened with the previous EncodingAESKey");
        }
        if let Some(id) = &push.receive_id {
            tracing::debug!(receive_id = %id, "receive id not enforced for this app");
        }
        // Authenticated: what does not parse is kept raw, dated by the signed time when it has none.
        // The format is sniffed once per document: a plaintext-mode push is its own body.
        let fallback_time = push.timestamp.unwrap_or(now_secs);
        let (format, message) = match push.mode {
            Mode::Plaintext => {
                message::parse_or_raw_as(Some(push.format), &push.plaintext, fallback_time)
            }
            _ => message::parse_or_raw(&push.plaintext, fallback_time),
        };
        let window = self.limits.replay_window.map(|w| w.as_secs());
        admission::admit(&Policy::for_app(app, window, now_secs), &push, &message)?;
        message::check_key_limits(&message)?;
        let message_format = format.unwrap_or(push.format);
        let mut envelope = QueueEnvelope::new(
            route.platform,
            &route.app_id,
            now_ms,
            push.mode,
            message_format,
            message,
        );
        if let (Mode::Plaintext, Some(timestamp)) = (push.mode, push.timestamp) {
            // The body is not signed: the processor refuses another body under the same nonce.
            envelope = envelope.with_replay(ReplayTag::new(&push.nonce, timestamp, body));
        }
        let body = envelope.to_fitted_json();
        let budget = self.limits.enqueue_budget;
        let sqs_message_id = match tokio::time::timeout(budget, self.queue.enqueue(&body)).await {
            Ok(result) => result?,
            Err(_) => return Err(IngressError::QueueTimeout(budget.as_millis())),
        };
        // Only once the push is queued: a hand-off reply is an acknowledgement too.
        let handoff = handoff::reply(app, &push, message_format, &envelope.message, now_secs);
        Ok(Accepted::Queued(Queued::new(
            &envelope,
            sqs_message_id,
            handoff,
        )))
    }
}

/// What an accepted callback led to.
#[derive(Debug)]
pub enum Accepted {
    /// URL verification passed; answer with the echo string.
    Verified(String),
    /// The push is on the queue.
    Queued(Queued),
}

/// What the log line of a queued push says about it (never its content or open id).
#[derive(Debug)]
pub struct Queued {
    /// The message's `MsgType`.
    pub msg_type: String,
    /// Kept raw: the plaintext was not a known shape.
    pub raw: bool,
    /// A text field was cut to fit the queue.
    pub truncated: bool,
    /// `MsgId`, when the message has one.
    pub msg_id: Option<String>,
    /// The short hash of the sender's open id.
    pub open_id_hash: String,
    /// How the push was protected.
    pub mode: Mode,
    /// The queue's id for it.
    pub sqs_message_id: String,
    /// The answer instead of `success` when the app hands user messages to WeChat's tool.
    pub handoff: Option<HandoffReply>,
}

impl Queued {
    fn new(
        envelope: &QueueEnvelope<'_>,
        sqs_message_id: String,
        handoff: Option<HandoffReply>,
    ) -> Self {
        let m = &envelope.message;
        Self {
            msg_type: m.msg_type().to_owned(),
            raw: matches!(m.body, MessageBody::Raw { .. }),
            truncated: envelope.truncated.is_some(),
            msg_id: m.msg_id.as_ref().map(|id| id.0.clone()),
            open_id_hash: open_id_hash(&m.from_user_name),
            mode: envelope.mode,
            sqs_message_id,
            handoff,
        }
    }
}

/// A callback route: platform and AppID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Which platform's rules apply.
    pub platform: Platform,
    /// The `{app}` segment.
    pub app_id: String,
}

impl Route {
    /// Reads the route from the `app` path parameter when API Gateway supplies it, else from the
    /// last two path segments (`…/wechat/{app}`), which also covers stage prefixes and local
    /// runtimes that deliver function-URL events without path parameters.
    pub fn from_request(req: &Request) -> Option<Route> {
        let path = req.uri().path().trim_end_matches('/');
        let mut segments = path.rsplit('/');
        let last = segments.next()?;
        let platform: Platform = segments.next()?.parse().ok()?;
        let app_id = req
            .path_parameters_ref()
            .and_then(|p| p.first("app"))
            .unwrap_or(last)
            .to_owned();
        (!app_id.is_empty()).then_some(Route { platform, app_id })
    }
}

/// The Lambda handler: route, one call into [`App::accept`], response. Domain outcomes never
/// become `Err`; an `Err` to the runtime would mean a bug.
pub async fn handle<Q: MessageQueue, C: Clock>(
    app: &App<Q, C>,
    req: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let started = std::time::Instant::now();
    let Some(route) = Route::from_request(&req) else {
        warn!(outcome = "unknown_route", "rejected");
        return Ok(IngressError::UnknownRoute.into_response());
    };
    let outcome = app.accept(&route, &req).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(match outcome {
        Ok(Accepted::Verified(echo)) => {
            info!(platform = %route.platform, app_id = %route.app_id, outcome = "verified", elapsed_ms, "url verification");
            error::plain(StatusCode::OK, &echo)
        }
        Ok(Accepted::Queued(queued)) => {
            info!(
                platform = %route.platform,
                app_id = %route.app_id,
                outcome = "queued",
                msg_type = queued.msg_type,
                raw = queued.raw,
                truncated = queued.truncated,
                msg_id = queued.msg_id.as_deref().unwrap_or_default(),
                open_id_hash = %queued.open_id_hash,
                mode = queued.mode.as_str(),
                sqs_message_id = %queued.sqs_message_id,
                reply = if queued.handoff.is_some() { "transfer_customer_service" } else { "success" },
                elapsed_ms,
                "push queued"
            );
            shared::metrics::emit(
                &shared::metrics::ACK_LATENCY_MS,
                elapsed_ms as f64,
                &[(shared::metrics::PLATFORM, route.platform.as_str())],
            );
            match queued.handoff {
                Some(reply) => error::typed(StatusCode::OK, reply.body, reply.content_type),
                None => error::plain(StatusCode::OK, "success"),
            }
        }
        Err(e) if e.status().is_server_error() => {
            shared::metrics::emit(
                &shared::metrics::INGRESS_NOT_QUEUED,
                1.0,
                &[(shared::metrics::REASON, e.reason())],
            );
            error!(platform = %route.platform, app_id = %route.app_id, outcome = e.reason(), error.message = %e, elapsed_ms, "push not queued; the platform will retry");
            e.into_response()
        }
        Err(e) => {
            if e.is_lost_push() {
                shared::metrics::emit(
                    &shared::metrics::INGRESS_REJECTED,
                    1.0,
                    &[(shared::metrics::REASON, e.reason())],
                );
            }
            warn!(platform = %route.platform, app_id = %route.app_id, outcome = e.reason(), field = e.field(), elapsed_ms, "rejected");
            e.into_response()
        }
    })
}
