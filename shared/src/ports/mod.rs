//! The traits the functions depend on; adapters (SQS, DynamoDB; in-memory fakes in `testkit`) implement them.
//!
//! Contracts are documented here, not in the adapters. No logic lives in this file, and no data
//! model: what the ports move is in `records`. The desk's ports are [`desk`] and [`desk_notes`].

pub mod auto_reply;
pub mod desk;
pub mod desk_notes;
pub mod desk_stats;
pub mod media_store;

use async_trait::async_trait;

use crate::ids::ConversationKey;
use crate::message::QueueEnvelope;
use crate::quota::{Grant, Window};
use crate::records::{Conversation, OutboundRecord, StoredMessage};

/// Boxed error cause, so adapters keep the SDK error without this crate naming its types.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the queue did not accept a message.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue could not be reached or did not answer (network, throttling, 5xx): retryable.
    #[error("queue unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// The queue refused the message (too large, bad request): not retryable as is.
    #[error("queue rejected the message: {0}")]
    Rejected(#[source] Cause),
}

/// The inbound queue between ingress and the processor.
#[async_trait]
pub trait MessageQueue: Send + Sync {
    /// Puts one envelope body on the queue. `Ok` (with the queue's message id) means the queue
    /// has durably accepted it; any `Err` means it may not have, so the caller must not ack.
    async fn enqueue(&self, body: &str) -> Result<String, QueueError>;
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, timeouts, network: retrying later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// Concurrent writers kept changing the item; retrying later will succeed.
    #[error("store contention on {0}")]
    Contention(String),
    /// An item in the store does not have the expected shape.
    #[error("corrupt item {key}: {reason}")]
    Corrupt {
        /// The item's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// What storing an inbound message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// The message was new: stored, conversation updated (and the grant applied) atomically.
    Inserted,
    /// The message was already stored (platform retry or SQS redelivery): nothing changed.
    Duplicate,
    /// A plaintext-mode push reused the signed (nonce, timestamp) of another body: a forgery
    /// replaying a seen push URL. Nothing changed.
    ReplayRefused,
}

/// Where conversations and their messages live.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores an inbound message exactly once and updates its conversation in the same atomic
    /// write: last inbound message, counters, and — when `grant` is given — the ledger by
    /// [`crate::quota::Ledger::apply_grant`] with `t` = [`crate::quota::action_time`] (the
    /// `CreateTime` bounded by the receive time; also what `last_in_at` records). A second call
    /// with the same message returns [`StoreOutcome::Duplicate`] and changes nothing but the
    /// replay memory: a duplicate's replay tag is remembered too (that attempt was answered
    /// `success` as well). A plaintext push whose replay tag (nonce, timestamp) was already
    /// remembered with another body is [`StoreOutcome::ReplayRefused`] and changes nothing.
    async fn store_inbound(
        &self,
        envelope: &QueueEnvelope<'_>,
        grant: Option<Grant>,
    ) -> Result<StoreOutcome, StoreError>;

    /// The conversation item, if it exists.
    async fn conversation(&self, key: &ConversationKey)
    -> Result<Option<Conversation>, StoreError>;

    /// The conversation's messages in sort-key (`CreateTime`) order, at most `limit` of them
    /// (all when `None`).
    async fn messages(
        &self,
        key: &ConversationKey,
        limit: Option<usize>,
    ) -> Result<Vec<StoredMessage>, StoreError>;
}

#[async_trait]
impl<T: MessageQueue + ?Sized> MessageQueue for std::sync::Arc<T> {
    async fn enqueue(&self, body: &str) -> Result<String, QueueError> {
        (**self).enqueue(body).await
    }
}

#[async_trait]
impl<T: MessageStore + ?Sized> MessageStore for std::sync::Arc<T> {
    async fn store_inbound(
        &self,
        envelope: &QueueEnvelope<'_>,
        grant: Option<Grant>,
    ) -> Result<StoreOutcome, StoreError> {
        (**self).store_inbound(envelope, grant).await
    }

    async fn conversation(
        &self,
        key: &ConversationKey,
    ) -> Result<Option<Conversation>, StoreError> {
        (**self).conversation(key).await
    }

    async fn messages(
        &self,
        key: &ConversationKey,
        limit: Option<usize>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        (**self).messages(key, limit).await
    }
}

/// What a quota reservation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The units were taken under `generation`; the window after the reservation.
    Reserved {
        /// The window after the reservation.
        window: Window,
        /// The ledger generation the units belong to (pass it to release / exhaust / close).
        generation: u64,
    },
    /// Refused without calling the platform; the window as it stands.
    Refused(crate::quota::Refusal, Window),
    /// No conversation: the user never wrote, so nothing may be sent.
    NoConversation,
}

/// The send window of each conversation, enforced in the store.
#[async_trait]
pub trait QuotaLedger: Send + Sync {
    /// Takes `units` with ONE conditional write (`remaining >= units AND expires_at > now`), never
    /// read-then-write, so concurrent senders cannot exceed the grant.
    async fn reserve(
        &self,
        key: &ConversationKey,
        units: u32,
        now: u64,
    ) -> Result<Reservation, StoreError>;

    /// Gives `units` back after a definite platform rejection, only while no grant has been
    /// applied since they were reserved (`generation` unchanged), so `remaining` never exceeds a
    /// grant; returns whether they were given back.
    async fn release(
        &self,
        key: &ConversationKey,
        units: u32,
        generation: u64,
    ) -> Result<bool, StoreError>;

    /// The platform said the quota is used up (WeChat 45047, Baidu 90001): `remaining = 0`, only
    /// while `generation` is current (a window the user refreshed meanwhile is left alone).
    async fn exhaust(&self, key: &ConversationKey, generation: u64) -> Result<(), StoreError>;

    /// The platform said the window is closed (WeChat 45015): `expires_at = now` if later, only
    /// while `generation` is current.
    async fn close_window(
        &self,
        key: &ConversationKey,
        now: u64,
        generation: u64,
    ) -> Result<(), StoreError>;
}

/// An access token as cached for all instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedToken {
    /// The token (never logged).
    pub token: crate::secret::Secret,
    /// Unix seconds after which the platform no longer accepts it.
    pub expires_at: u64,
}

/// Access tokens per (platform, app), shared by every instance, with a lease so only one
/// instance refreshes at a time.
#[async_trait]
pub trait AccessTokenCache: Send + Sync {
    /// The cached token, if any (possibly expired: the caller checks `expires_at`).
    async fn get_token(
        &self,
        platform: crate::ids::Platform,
        app_id: &str,
    ) -> Result<Option<CachedToken>, StoreError>;

    /// Takes the refresh lease for `lease_secs` if nobody holds an unexpired one.
    async fn try_lease(
        &self,
        platform: crate::ids::Platform,
        app_id: &str,
        owner: &str,
        now: u64,
        lease_secs: u64,
    ) -> Result<bool, StoreError>;

    /// Stores a fresh token and drops the refresh lease if `owner` still holds it (a lease that
    /// expired and was taken by another instance stays with that instance).
    async fn put_token(
        &self,
        platform: crate::ids::Platform,
        app_id: &str,
        token: &str,
        expires_at: u64,
        owner: &str,
    ) -> Result<(), StoreError>;

    /// Drops the refresh lease if `owner` still holds it (after a failed refresh, so others can try).
    async fn release_lease(
        &self,
        platform: crate::ids::Platform,
        app_id: &str,
        owner: &str,
    ) -> Result<(), StoreError>;

    /// Forgets the cached token only if it still equals `failed` (another instance may already
    /// have refreshed it); returns whether it was forgotten.
    async fn invalidate_if_equals(
        &self,
        platform: crate::ids::Platform,
        app_id: &str,
        failed: &str,
    ) -> Result<bool, StoreError>;
}

/// Media ids of images uploaded to a platform (WeChat temporary media), by content digest, shared
/// by every instance so the same bytes are uploaded once per app while the id is valid. A cache:
/// losing an entry only costs one more upload.
#[async_trait]
pub trait MediaIdCache: Send + Sync {
    /// The media id cached for `digest` by (platform, app), if its reuse time is still after `now`
    /// (`expires_at > now`); another app's entry for the same bytes is never returned.
    async fn get_media_id(
        &self,
        platform: crate::ids::Platform,
        app_id: &str,
        digest: &str,
        now: u64,
    ) -> Result<Option<String>, StoreError>;

    /// Remembers `media_id` for `digest` by (platform, app) until `expires_at` (Unix seconds),
    /// replacing any earlier entry.
    async fn put_media_id(
        &self,
        platform: crate::ids::Platform,
        app_id: &str,
        digest: &str,
        media_id: &str,
        expires_at: u64,
    ) -> Result<(), StoreError>;
}

/// An idempotency claim request: the key, what it is bound to, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest<'a> {
    /// `platform#app_id#client_msg_id`.
    pub key: &'a str,
    /// Digest of (open id, request): the same key with another fingerprint is a reuse.
    pub fingerprint: &'a str,
    /// Unix seconds.
    pub now: u64,
    /// Until when this claim is held (the request's deadline plus a margin); an expired claim
    /// that never started sending may be taken over.
    pub lease_until: u64,
    /// How long the key is remembered.
    pub ttl_secs: u64,
}

/// An idempotency claim on a `client_msg_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use (or a takeover of an attempt that died before sending): go ahead; call
    /// `start_sending` before the first platform call, then `complete` (or `abandon`).
    New,
    /// Already completed: the stored response.
    Completed(String),
    /// Another request with the same id holds an unexpired lease.
    InProgress,
    /// The key was used for another request (another user or content).
    Reused,
    /// An earlier attempt started sending and then died (its lease expired uncompleted): it may
    /// have been delivered, so it is never sent again.
    Interrupted,
}

/// Outbound records and idempotency keys.
#[async_trait]
pub trait OutboundStore: Send + Sync {
    /// Records an outbound message in its conversation (and the conversation's last outbound
    /// time). Writing the same record twice leaves one record.
    async fn record_outbound(&self, record: &OutboundRecord) -> Result<(), StoreError>;

    /// Claims an idempotency key with one conditional write.
    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Claim, StoreError>;

    /// Marks a claimed key as sending: from here on, an attempt that dies is
    /// [`Claim::Interrupted`], never retried.
    async fn start_sending(&self, idempotency_key: &str) -> Result<(), StoreError>;

    /// Stores the response of a claimed key, so repeats return it.
    async fn complete(&self, idempotency_key: &str, response: &str) -> Result<(), StoreError>;

    /// Drops a claim whose request certainly never reached the platform (the caller knows:
    /// nothing was sent, or no call was made), so a retry can run.
    async fn abandon(&self, idempotency_key: &str) -> Result<(), StoreError>;
}
