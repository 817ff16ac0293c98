//! The desk's way out: a reply is a `POST /messages` run in process by the sender's own code
//! (quota reserved with one conditional write, idempotency by `client_msg_id`, the platform's
//! errcodes), with the agent recorded on the outbound message. Also which apps may send, from the
//! same registry the sender reads.
//!
//! Not here: who may reply to a conversation (`routes::reply`).

use async_trait::async_trait;
use sender::{Answer, Deadline, SendError, SendRequest};
use shared::clock::Clock;
use shared::ids::Platform;
use shared::ports::{AccessTokenCache, MediaIdCache, OutboundStore, QuotaLedger};

/// What the desk needs of the sender.
#[async_trait]
pub trait Replier: Send + Sync {
    /// Whether `app_id` on `platform` is in the registry's send part (else a reply would be
    /// refused `app_unauthorized`).
    async fn authorized(&self, platform: Platform, app_id: &str) -> bool;

    /// Sends `req` (its `agent` set by the desk) before `deadline_ms`, the invocation's deadline
    /// (`None` locally).
    async fn send(&self, req: &SendRequest, deadline_ms: Option<u64>) -> Result<Answer, SendError>;
}

#[async_trait]
impl<S, T, M, C> Replier for sender::App<S, T, M, C>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    M: MediaIdCache,
    C: Clock,
{
    async fn authorized(&self, platform: Platform, app_id: &str) -> bool {
        self.registry
            .current()
            .await
            .app(platform, app_id)
            .is_some()
    }

    async fn send(&self, req: &SendRequest, deadline_ms: Option<u64>) -> Result<Answer, SendError> {
        let deadline = Deadline::new(
            deadline_ms,
            self.clock.now_ms(),
            self.config.max_request,
            self.config.record_reserve,
        );
        sender::App::send(self, req, &deadline).await
    }
}
