//! The store every handler of the simulation shares: `testkit`'s in-memory store behind
//! fault-injecting ports (throttling, `TransactionConflict`, a timeout after the write committed),
//! with two hooks — after a reservation it runs a queued concurrent send (so a second sender acts
//! between the first one's reservation and its platform call, deterministically), and after every
//! ledger write it checks that the window never exceeds its largest grant. Not here: faults of
//! reads (the handlers' reads are not where the store's guarantees are at stake).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use shared::ids::ConversationKey;
use shared::message::QueueEnvelope;
use shared::ports::{
    Claim, ClaimRequest, MessageStore, OutboundStore, QuotaLedger, Reservation, StoreError,
    StoreOutcome,
};
use shared::quota::Grant;
use shared::records::{Conversation, OutboundRecord, StoredMessage};
use testkit::memory::InMemoryStore;

use crate::inject::{Kind, Shared};

/// A send queued to run inside another one's reservation.
pub type Concurrent = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Probability of each store fault per write.
const P_THROTTLE: f64 = 0.004;
const P_CONFLICT: f64 = 0.004;
const P_TIMEOUT_AFTER_COMMIT: f64 = 0.004;

/// The largest grant of any platform: a window never holds more.
pub const MAX_GRANT: u32 = 5;

/// The shared, fault-injecting store.
#[derive(Clone)]
pub struct SimStore {
    /// The store behind the faults (read directly by the checks).
    pub inner: Arc<InMemoryStore>,
    faults: Shared,
    concurrent: Arc<Mutex<Option<Concurrent>>>,
    window_violations: Arc<Mutex<Vec<String>>>,
    ledger_writes: Arc<Mutex<u64>>,
}

enum Injected {
    None,
    Before(StoreError),
    After(StoreError),
}

impl SimStore {
    /// An empty store injecting from `faults`.
    pub fn new(faults: Shared) -> Self {
        Self {
            inner: Arc::new(InMemoryStore::new()),
            faults,
            concurrent: Arc::new(Mutex::new(None)),
            window_violations: Arc::new(Mutex::new(Vec::new())),
            ledger_writes: Arc::new(Mutex::new(0)),
        }
    }

    /// Runs `send` right after the next successful reservation.
    pub fn run_inside_next_reservation(&self, send: Concurrent) {
        *self
            .concurrent
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(send);
    }

    /// Whether a queued concurrent send has not run yet (it is dropped by the next call).
    pub fn take_unrun(&self) -> bool {
        self.concurrent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .is_some()
    }

    /// Windows seen above [`MAX_GRANT`], and how many ledger writes were checked.
    pub fn window_report(&self) -> (Vec<String>, u64) {
        let v = self
            .window_violations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        (
            v,
            *self
                .ledger_writes
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    fn decide(&self) -> Injected {
        if self.faults.roll(Kind::StoreThrottle, P_THROTTLE) {
            Injected::Before(StoreError::Unavailable(
                "injected: ProvisionedThroughputExceededException".into(),
            ))
        } else if self.faults.roll(Kind::StoreConflict, P_CONFLICT) {
            Injected::Before(StoreError::Contention(
                "injected: TransactionConflict".into(),
            ))
        } else if self
            .faults
            .roll(Kind::StoreTimeoutAfterCommit, P_TIMEOUT_AFTER_COMMIT)
        {
            Injected::After(StoreError::Unavailable(
                "injected: timeout after commit".into(),
            ))
        } else {
            Injected::None
        }
    }

    async fn faulty<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, StoreError>>,
    {
        match self.decide() {
            Injected::None => op.await,
            Injected::Before(e) => Err(e),
            Injected::After(e) => op.await.and(Err(e)),
        }
    }

    async fn check_window(&self, key: &ConversationKey) {
        // Counted whether or not the write was applied: the window is checked either way.
        *self
            .ledger_writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += 1;
        if let Ok(Some(c)) = self.inner.conversation(key).await
            && c.window.remaining > MAX_GRANT
        {
            self.window_violations
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(format!(
                    "{}: remaining {} > {MAX_GRANT}",
                    key, c.window.remaining
                ));
        }
    }
}

#[async_trait]
impl MessageStore for SimStore {
    async fn store_inbound(
        &self,
        envelope: &QueueEnvelope<'_>,
        grant: Option<Grant>,
    ) -> Result<StoreOutcome, StoreError> {
        let out = self.faulty(self.inner.store_inbound(envelope, grant)).await;
        self.check_window(&envelope.key().conversation).await;
        out
    }

    async fn conversation(
        &self,
        key: &ConversationKey,
    ) -> Result<Option<Conversation>, StoreError> {
        self.inner.conversation(key).await
    }

    async fn messages(
        &self,
        key: &ConversationKey,
        limit: Option<usize>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.inner.messages(key, limit).await
    }
}

#[async_trait]
impl QuotaLedger for SimStore {
    async fn reserve(
        &self,
        key: &ConversationKey,
        units: u32,
        now: u64,
    ) -> Result<Reservation, StoreError> {
        let out = self.faulty(self.inner.reserve(key, units, now)).await;
        self.check_window(key).await;
        if matches!(out, Ok(Reservation::Reserved { .. })) {
            let queued = self
                .concurrent
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(send) = queued {
                send.await;
            }
        }
        out
    }

    async fn release(
        &self,
        key: &ConversationKey,
        units: u32,
        generation: u64,
    ) -> Result<bool, StoreError> {
        let out = self
            .faulty(self.inner.release(key, units, generation))
            .await;
        self.check_window(key).await;
        out
    }

    async fn exhaust(&self, key: &ConversationKey, generation: u64) -> Result<(), StoreError> {
        let out = self.faulty(self.inner.exhaust(key, generation)).await;
        self.check_window(key).await;
        out
    }

    async fn close_window(
        &self,
        key: &ConversationKey,
        now: u64,
        generation: u64,
    ) -> Result<(), StoreError> {
        let out = self
            .faulty(self.inner.close_window(key, now, generation))
            .await;
        self.check_window(key).await;
        out
    }
}

#[async_trait]
impl OutboundStore for SimStore {
    async fn record_outbound(&self, record: &OutboundRecord) -> Result<(), StoreError> {
        self.faulty(self.inner.record_outbound(record)).await
    }

    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Claim, StoreError> {
        self.faulty(self.inner.claim(request)).await
    }

    async fn start_sending(&self, key: &str) -> Result<(), StoreError> {
        self.faulty(self.inner.start_sending(key)).await
    }

    async fn complete(&self, key: &str, response: &str) -> Result<(), StoreError> {
        self.faulty(self.inner.complete(key, response)).await
    }

    async fn abandon(&self, key: &str) -> Result<(), StoreError> {
        self.faulty(self.inner.abandon(key)).await
    }
}
