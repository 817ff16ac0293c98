//! The port for the auto replies' once-per-window markers on the conversation item (the rule is
//! `crate::desk::auto_reply`). Contracts only; the DynamoDB adapter is
//! `adapters::dynamodb::auto_reply`.

use async_trait::async_trait;

use super::StoreError;
use crate::desk::auto_reply::AutoReplyKind;
use crate::ids::ConversationKey;

/// The markers.
#[async_trait]
pub trait AutoReplyStore: Send + Sync {
    /// Claims the reply of `kind` for the window ending `until`, for an action at `t`: `true`
    /// (send it) when none was sent in the window `t` falls in; otherwise moves the marker on to
    /// `until` (the window went on) and answers `false`. Exactly one of any number of racing
    /// claims for one window wins.
    async fn claim_auto_reply(
        &self,
        key: &ConversationKey,
        kind: AutoReplyKind,
        t: u64,
        until: u64,
    ) -> Result<bool, StoreError>;

    /// Gives a claim back (the reply could not be sent and will be retried), if it is still the
    /// one made for `until`.
    async fn release_auto_reply(
        &self,
        key: &ConversationKey,
        kind: AutoReplyKind,
        until: u64,
    ) -> Result<(), StoreError>;
}
