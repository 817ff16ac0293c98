//! The send use case: compose the bodies, reserve their units from the window with one
//! conditional write, call the platform part by part while the deadline allows, settle the
//! ledger by what the platform said (under the generation the units were reserved in), and
//! record the outcome. Returns a typed [`Delivery`] once anything may have reached the platform;
//! an error only when nothing did.
//!
//! Not here: idempotency (`idempotency`), HTTP (`response`), tokens (`token`).

use std::future::Future;
use std::time::Duration;

use shared::api::{OutboundBody, PlatformError};
use shared::clock::Clock;
use shared::desk::stats::Counter;
use shared::ids::{ConversationKey, Platform};
use shared::ports::{
    AccessTokenCache, MediaIdCache, OutboundStore, QuotaLedger, Reservation, StoreError,
};
use shared::quota::{Refusal, Window};
use shared::records::{OutboundRecord, OutboundStatus};
use shared::registry::AppConfig;
use tracing::{error, info, warn};

use crate::App;
use crate::compose::{Composed, compose, describe};
use crate::deadline::Deadline;
use crate::error::{SendError, invalid};
use crate::request::SendRequest;
use crate::token::CallError;

/// Pauses between the attempts of a best-effort store write after a delivery.
const RECORD_RETRY: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_millis(600),
];

/// Why the parts after `parts_sent` were not sent.
#[derive(Debug)]
pub enum Stop {
    /// The platform refused or did not answer.
    Platform(PlatformError),
    /// No access token could be had.
    Token(String),
    /// Too little time was left to start the next call.
    NoTimeLeft,
}

/// What a send that reached the platform (or may have) did.
#[derive(Debug)]
pub struct Delivery {
    /// kefu's id of the send (the outbound record's).
    pub id: String,
    /// Sent, partial, or unknown (never failed: that is an error).
    pub status: OutboundStatus,
    /// Parts the message became.
    pub parts: u32,
    /// Parts the platform accepted.
    pub parts_sent: u32,
    /// The window after the send, as this request knows it.
    pub window: Window,
    /// Why the rest was not sent, if it was not.
    pub stop: Option<Stop>,
    /// Whether the outbound record was written (a store outage after delivery is answered,
    /// not retried).
    pub recorded: bool,
}

/// Retries a store write a few times (throttling, transaction conflicts), then gives up.
pub(crate) async fn best_effort<F, Fut>(what: &'static str, op: F) -> Result<(), StoreError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let mut last = None;
    for pause in std::iter::once(Duration::ZERO).chain(RECORD_RETRY) {
        tokio::time::sleep(pause).await;
        match op().await {
            Ok(()) => return Ok(()),
            Err(e) => {
                warn!(step = what, error.message = %e, "store write failed; retrying");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| StoreError::Contention(what.to_owned())))
}

impl<S, T, M, C> App<S, T, M, C>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    M: MediaIdCache,
    C: Clock,
{
    /// Sends `req` to `key`'s user; `on_first_call` runs once, right before the first platform
    /// call (the idempotency record is marked sending there).
    pub(crate) async fn deliver<F, Fut>(
        &self,
        app: &AppConfig,
        key: &ConversationKey,
        req: &SendRequest,
        deadline: &Deadline,
        on_first_call: F,
    ) -> Result<Delivery, SendError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), StoreError>>,
    {
        let bodies = match compose(app.platform, &req.message, self.config.max_text_bytes)? {
            Composed::Ready(bodies) => bodies,
            Composed::Upload(upload) => vec![OutboundBody::Image {
                media_id: self.media_id(app, upload, deadline).await?,
            }],
        };
        let units = u32::try_from(bodies.len()).map_err(|_| invalid("content", "too long"))?;
        let now = self.clock.now_secs();
        let (window, generation) = match self.store.reserve(key, units, now).await? {
            Reservation::Reserved { window, generation } => (window, generation),
            Reservation::Refused(refusal, w) => {
                let reason = match refusal {
                    Refusal::WindowExpired => "window_expired",
                    Refusal::QuotaExhausted => "quota_exhausted",
                };
                shared::metrics::emit(
                    &shared::metrics::QUOTA_REFUSALS,
                    1.0,
                    &[(shared::metrics::REASON, reason)],
                );
                let window = Window {
                    remaining: w.remaining_at(now),
                    ..w
                };
                if refusal == Refusal::QuotaExhausted {
                    self.count(key, None, Counter::RefusedQuota).await;
                }
                return Err(SendError::Refused(refusal, window));
            }
            Reservation::NoConversation => return Err(SendError::UnknownConversation),
        };
        if let Err(e) = on_first_call().await {
            self.store.release(key, units, generation).await?;
            return Err(e.into());
        }
        let user_type = req.user_type.or(app.default_user_type).unwrap_or(2);
        let mut sent = 0u32;
        let mut stop = None;
        for body in &bodies {
            if !deadline.allows(self.config.platform_timeout) {
                stop = Some(Stop::NoTimeLeft);
                break;
            }
            let call = self.with_token(app, |token| async move {
                match app.platform {
                    Platform::Wechat => self.clients.wechat.send(&token, &key.open_id, body).await,
                    Platform::Baidu => {
                        let component = app.component_app_id.is_some();
                        let baidu = &self.clients.baidu;
                        baidu
                            .send(&token, &key.open_id, user_type, body, component)
                            .await
                    }
                }
            });
            // Retries inside a part are cut off at the deadline: the part's outcome is then unknown.
            match tokio::time::timeout(deadline.budget(), call).await {
                Ok(Ok(())) => sent += 1,
                Ok(Err(CallError::Token(SendError::Token(m)))) => {
                    stop = Some(Stop::Token(m));
                    break;
                }
                Ok(Err(CallError::Token(other))) => {
                    stop = Some(Stop::Token(other.to_string()));
                    break;
                }
                Ok(Err(CallError::Platform(e))) => {
                    stop = Some(Stop::Platform(e));
                    break;
                }
                Err(_) => {
                    stop = Some(Stop::Platform(PlatformError::Timeout));
                    break;
                }
            }
        }
        let (status, after) = self
            .settle(key, units, sent, window, generation, &stop, now)
            .await;
        let delivery = Delivery {
            id: self.next_id(self.clock.now_ms()),
            status,
            parts: units,
            parts_sent: sent,
            window: after,
            stop,
            recorded: false,
        };
        self.finish(app, key, req, &bodies, now, delivery).await
    }

    /// Adjusts the ledger to what the platform said; returns the status and the window after.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        key: &ConversationKey,
        units: u32,
        sent: u32,
        window: Window,
        generation: u64,
        stop: &Option<Stop>,
        now: u64,
    ) -> (OutboundStatus, Window) {
        let unsent = units - sent;
        let partial_or_failed = if sent > 0 {
            OutboundStatus::Partial
        } else {
            OutboundStatus::Failed
        };
        let mut after = window;
        let status = match stop {
            None => OutboundStatus::Sent,
            Some(Stop::Platform(PlatformError::QuotaExhausted { .. })) => {
                let r = best_effort("exhaust", || self.store.exhaust(key, generation)).await;
                log_ledger("exhaust", r);
                after.remaining = 0;
                partial_or_failed
            }
            Some(Stop::Platform(PlatformError::WindowExpired { .. })) => {
                let r = best_effort("close_window", || {
                    self.store.close_window(key, now, generation)
                })
                .await;
                log_ledger("close_window", r);
                after = Window {
                    remaining: 0,
                    expires_at: now.min(window.expires_at),
                };
                partial_or_failed
            }
            Some(Stop::Platform(e)) if !e.is_definite_rejection() => OutboundStatus::Unknown,
            Some(_) => {
                // A definite refusal, no token or no time: the unsent parts never left.
                match self.store.release(key, unsent, generation).await {
                    Ok(true) => after.remaining += unsent,
                    Ok(false) => {}
                    Err(e) => log_ledger("release", Err(e)),
                }
                partial_or_failed
            }
        };
        (status, after)
    }

    /// Records the outcome; a delivery is answered even if recording fails.
    async fn finish(
        &self,
        app: &AppConfig,
        key: &ConversationKey,
        req: &SendRequest,
        bodies: &[OutboundBody],
        now: u64,
        mut delivery: Delivery,
    ) -> Result<Delivery, SendError> {
        let (content, media) = describe(bodies);
        let record = OutboundRecord {
            key: key.clone(),
            id: delivery.id.clone(),
            sent_at: now,
            msg_type: req.message.msg_type().to_owned(),
            content,
            media,
            status: delivery.status,
            errcode: match &delivery.stop {
                Some(Stop::Platform(e)) => e.errcode(),
                _ => None,
            },
            parts: delivery.parts,
            parts_sent: delivery.parts_sent,
            agent: req.agent.clone(),
        };
        let recorded = best_effort("record_outbound", || self.store.record_outbound(&record)).await;
        delivery.recorded = recorded.is_ok();
        if delivery.parts_sent > 0 {
            self.count(key, req.agent.as_deref(), Counter::MessagesOut)
                .await;
        }
        if matches!(
            delivery.stop,
            Some(Stop::Platform(PlatformError::QuotaExhausted { .. }))
        ) {
            self.count(key, None, Counter::RefusedQuota).await;
        }
        let outcome = match (&delivery.status, &delivery.stop) {
            (OutboundStatus::Sent, _) => "sent",
            (OutboundStatus::Unknown, _) => "unknown",
            (_, Some(Stop::Platform(PlatformError::QuotaExhausted { .. }))) => "quota_exhausted",
            (_, Some(Stop::Platform(PlatformError::WindowExpired { .. }))) => "window_expired",
            (_, Some(Stop::Token(_))) => "token_unavailable",
            _ => "rejected",
        };
        shared::metrics::emit(
            &shared::metrics::SEND_OUTCOME,
            1.0,
            &[(shared::metrics::OUTCOME, outcome)],
        );
        let hash = shared::telemetry::open_id_hash(&key.open_id);
        if let Err(e) = &recorded {
            error!(platform = %app.platform, app_id = %app.app_id, open_id_hash = %hash, outcome, error.message = %e, "delivered but not recorded");
        }
        match (delivery.status, delivery.stop.take()) {
            (OutboundStatus::Sent, _) => {
                info!(platform = %app.platform, app_id = %app.app_id, open_id_hash = %hash, outcome, parts = delivery.parts, remaining = delivery.window.remaining, "sent");
                Ok(delivery)
            }
            (OutboundStatus::Failed, Some(stop)) => {
                warn!(platform = %app.platform, app_id = %app.app_id, open_id_hash = %hash, outcome, "nothing sent");
                Err(match stop {
                    Stop::Platform(e) => SendError::Platform(e, delivery.window),
                    Stop::Token(m) => SendError::Token(m),
                    Stop::NoTimeLeft => SendError::NoTimeLeft,
                })
            }
            (OutboundStatus::Unknown, Some(Stop::Platform(e))) if delivery.parts_sent == 0 => {
                warn!(platform = %app.platform, app_id = %app.app_id, open_id_hash = %hash, outcome, "platform did not answer; units stay spent");
                Err(SendError::Timeout(e, delivery.window))
            }
            (status, stop) => {
                warn!(platform = %app.platform, app_id = %app.app_id, open_id_hash = %hash, outcome, parts_sent = delivery.parts_sent, parts = delivery.parts, "sent in part");
                delivery.status = status;
                delivery.stop = stop;
                Ok(delivery)
            }
        }
    }
}

fn log_ledger(step: &'static str, result: Result<(), StoreError>) {
    if let Err(e) = result {
        error!(step, error.message = %e, "ledger not adjusted after the platform's answer");
    }
}
