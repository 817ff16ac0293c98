//! The fault kinds the simulation injects, and the injector that decides (from its own seeded
//! stream) when each one happens and counts the ones that did. Not here: how a fault is applied
//! (each port does that).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::rng::Rng;

/// One kind of fault or hostile input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// SQS `SendMessage` fails; ingress must not answer `success`.
    EnqueueFailed,
    /// SQS took the message but the call timed out: ingress answers 5xx, the platform retries.
    EnqueueTimeoutAfterCommit,
    /// SQS delivers a message twice (at-least-once).
    SqsDuplicate,
    /// A batch arrives out of queue order.
    SqsReorder,
    /// A record's visibility ran out before its delete: it is delivered again.
    VisibilityExpired,
    /// A record reported failed comes back in a later batch.
    PartialBatchRedelivery,
    /// A message delayed in the queue by minutes to hours (late, after newer ones).
    LateDelivery,
    /// DynamoDB throttles a write.
    StoreThrottle,
    /// DynamoDB cancels a transaction for a conflict.
    StoreConflict,
    /// A write committed, then the call timed out.
    StoreTimeoutAfterCommit,
    /// The platform retries a push with the same nonce and timestamp.
    PushRetrySameNonce,
    /// The platform retries a push with a new nonce and timestamp.
    PushRetryNewNonce,
    /// The platform lost kefu's `success` and pushes again.
    PushRepeatAfterSuccess,
    /// The platform's `CreateTime` is off from kefu's clock (behind or ahead).
    ClockSkew,
    /// A captured plaintext push replayed with another body (same nonce, timestamp, signature).
    ForgedReplay,
    /// A push with a wrong signature.
    ForgedSignature,
    /// The platform delivered, then answered too late for the sender's timeout.
    PlatformTimeoutAfterDelivery,
    /// WeChat answers −1 (busy), once or past the client's retries.
    PlatformBusy,
    /// WeChat answers 45047 (quota) although the fake's own window had room.
    Injected45047,
    /// WeChat answers 45015 (window closed) although it was open.
    Injected45015,
    /// Baidu answers 90001 (quota) although the window had room.
    Injected90001,
    /// Every access token is revoked mid-run.
    TokenExpired,
    /// A second send to the same user runs between the first one's reservation and its call.
    ConcurrentSend,
    /// The caller repeats a request under the same `client_msg_id`.
    ClientRetry,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 24] = [
        Kind::EnqueueFailed,
        Kind::EnqueueTimeoutAfterCommit,
        Kind::SqsDuplicate,
        Kind::SqsReorder,
        Kind::VisibilityExpired,
        Kind::PartialBatchRedelivery,
        Kind::LateDelivery,
        Kind::StoreThrottle,
        Kind::StoreConflict,
        Kind::StoreTimeoutAfterCommit,
        Kind::PushRetrySameNonce,
        Kind::PushRetryNewNonce,
        Kind::PushRepeatAfterSuccess,
        Kind::ClockSkew,
        Kind::ForgedReplay,
        Kind::ForgedSignature,
        Kind::PlatformTimeoutAfterDelivery,
        Kind::PlatformBusy,
        Kind::Injected45047,
        Kind::Injected45015,
        Kind::Injected90001,
        Kind::TokenExpired,
        Kind::ConcurrentSend,
        Kind::ClientRetry,
    ];

    /// The kind's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::EnqueueFailed => "sqs enqueue failed",
            Kind::EnqueueTimeoutAfterCommit => "sqs enqueue timeout after commit",
            Kind::SqsDuplicate => "sqs duplicate delivery",
            Kind::SqsReorder => "sqs batch reordered",
            Kind::VisibilityExpired => "sqs visibility expired mid-batch",
            Kind::PartialBatchRedelivery => "sqs redelivery after partial failure",
            Kind::LateDelivery => "sqs late delivery",
            Kind::StoreThrottle => "dynamodb throttled",
            Kind::StoreConflict => "dynamodb TransactionConflict",
            Kind::StoreTimeoutAfterCommit => "dynamodb timeout after commit",
            Kind::PushRetrySameNonce => "push retry, same nonce",
            Kind::PushRetryNewNonce => "push retry, new nonce",
            Kind::PushRepeatAfterSuccess => "push repeated after success",
            Kind::ClockSkew => "clock skew (CreateTime)",
            Kind::ForgedReplay => "forged plaintext replay",
            Kind::ForgedSignature => "forged signature",
            Kind::PlatformTimeoutAfterDelivery => "platform timeout after delivery",
            Kind::PlatformBusy => "platform -1 busy",
            Kind::Injected45047 => "platform 45047",
            Kind::Injected45015 => "platform 45015",
            Kind::Injected90001 => "platform 90001",
            Kind::TokenExpired => "token expired mid-run",
            Kind::ConcurrentSend => "concurrent sender",
            Kind::ClientRetry => "client retry, same client_msg_id",
        }
    }
}

/// Decides faults from its own stream and counts the injected ones; off while the run drains.
#[derive(Debug)]
pub struct Injector {
    rng: Rng,
    enabled: bool,
    counts: BTreeMap<Kind, u64>,
}

/// The injector as the ports share it.
#[derive(Debug, Clone)]
pub struct Shared(Arc<Mutex<Injector>>);

impl Shared {
    /// An enabled injector drawing from `rng`.
    pub fn new(rng: Rng) -> Self {
        Self(Arc::new(Mutex::new(Injector {
            rng,
            enabled: true,
            counts: BTreeMap::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Injector> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `kind` happens now (probability `p`); counted when it does.
    pub fn roll(&self, kind: Kind, p: f64) -> bool {
        let mut i = self.lock();
        if !i.enabled || !i.rng.chance(p) {
            return false;
        }
        *i.counts.entry(kind).or_default() += 1;
        true
    }

    /// Counts a `kind` the simulation caused itself (not drawn here).
    pub fn count(&self, kind: Kind) {
        *self.lock().counts.entry(kind).or_default() += 1;
    }

    /// Takes back one count of `kind` (an armed fault that was never used).
    pub fn uncount(&self, kind: Kind) {
        if let Some(n) = self.lock().counts.get_mut(&kind) {
            *n = n.saturating_sub(1);
        }
    }

    /// Turns injection on or off.
    pub fn set_enabled(&self, enabled: bool) {
        self.lock().enabled = enabled;
    }

    /// A draw from the injector's stream, for choosing among faults' variants.
    pub fn below(&self, n: u64) -> u64 {
        self.lock().rng.below(n)
    }

    /// How many of each kind were injected.
    pub fn counts(&self) -> BTreeMap<Kind, u64> {
        self.lock().counts.clone()
    }
}
