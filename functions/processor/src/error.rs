//! Why one SQS record failed, and whether SQS should deliver it again.

use shared::message::EnvelopeDecodeError;
use shared::ports::StoreError;

/// A record that could not be processed; every variant is reported as a batch item failure.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The body is not a valid envelope: it fails every time and ends in the DLQ.
    #[error("poison record: {0}")]
    Poison(#[from] EnvelopeDecodeError),
    /// The record has no body at all.
    #[error("poison record: no body")]
    NoBody,
    /// The store failed; a redelivery will probably succeed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The message is stored but its auto-reply notice was not queued; a redelivery queues it.
    #[error("auto-reply notice not queued: {0}")]
    FollowUp(#[source] shared::ports::QueueError),
}

impl RecordError {
    /// Whether a redelivery can succeed (the store was down) or never will (poison).
    pub fn is_retryable(&self) -> bool {
        matches!(self, RecordError::Store(_) | RecordError::FollowUp(_))
    }
}
