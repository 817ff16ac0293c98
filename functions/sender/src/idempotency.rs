//! `client_msg_id`: one key per (platform, app, id), bound to the request's fingerprint (user and
//! content). A repeat of a completed request returns its stored answer and sends nothing; the same
//! key for another request is refused (422); a claim is leased until the request's deadline plus a
//! margin, so an invocation that dies before sending never blocks its key for long, and one that
//! dies while sending is answered "outcome unknown", never sent twice.

use serde_json::{Value, json};
use shared::clock::Clock;
use shared::message::ConversationKey;
use shared::ports::{AccessTokenCache, Claim, ClaimRequest, OutboundStore, QuotaLedger};
use shared::registry::AppConfig;
use tracing::error;

use crate::deadline::Deadline;
use crate::error::SendError;
use crate::request::SendRequest;
use crate::response::Answer;
use crate::send::best_effort;
use crate::{App, pick_app};

impl<S, T, C> App<S, T, C>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    C: Clock,
{
    /// Sends one message: the use case behind `POST /messages`, idempotency included.
    pub async fn send(&self, req: &SendRequest, deadline: &Deadline) -> Result<Answer, SendError> {
        let registry = self.registry.current().await;
        let app = pick_app(&registry, &req.app_id, req.platform)?;
        let key = ConversationKey {
            platform: app.platform,
            app_id: app.app_id.clone(),
            open_id: req.open_id.clone(),
        };
        let Some(client_msg_id) = &req.client_msg_id else {
            return self.send_once(app, &key, req, deadline, None).await;
        };
        let idem = format!("{}#{}#{client_msg_id}", app.platform, app.app_id);
        let now = self.clock.now_secs();
        let claim = ClaimRequest {
            key: &idem,
            fingerprint: &req.fingerprint,
            now,
            lease_until: deadline.end_unix_secs() + self.config.lease_margin_secs,
            ttl_secs: self.config.idempotency_ttl_secs,
        };
        match self.store.claim(&claim).await? {
            Claim::New => {}
            Claim::Completed(stored) => return Answer::replay(&stored),
            Claim::InProgress => return Err(SendError::InProgress),
            Claim::Reused => return Err(SendError::KeyReused),
            Claim::Interrupted => {
                let answer = Answer::from_error(&SendError::Interrupted);
                self.store.complete(&idem, &answer.stored()).await?;
                return Ok(answer);
            }
        }
        let result = self.send_once(app, &key, req, deadline, Some(&idem)).await;
        let answer = match &result {
            Ok(answer) => answer.clone(),
            Err(e) if e.is_final() => Answer::from_error(e),
            Err(_) => {
                // Nothing reached the platform: let a retry run.
                self.store.abandon(&idem).await?;
                return result;
            }
        };
        let stored = answer.stored();
        if let Err(e) = best_effort("complete", || self.store.complete(&idem, &stored)).await {
            // The key stays `sending`: a retry after its lease is answered "outcome unknown".
            error!(platform = %app.platform, app_id = %app.app_id, error.message = %e, "idempotency record not completed");
        }
        Ok(answer)
    }

    async fn send_once(
        &self,
        app: &AppConfig,
        key: &ConversationKey,
        req: &SendRequest,
        deadline: &Deadline,
        idem: Option<&str>,
    ) -> Result<Answer, SendError> {
        let mark = || async {
            match idem {
                Some(k) => self.store.start_sending(k).await,
                None => Ok(()),
            }
        };
        match self.deliver(app, key, req, deadline, mark).await {
            Ok(delivery) => Ok(Answer::from_delivery(&delivery)),
            Err(e) => Err(e),
        }
    }
}

/// The stored form of an answer: `{"status": …, "body": …}`.
pub(crate) fn stored(status: u16, body: &Value) -> String {
    json!({ "status": status, "body": body }).to_string()
}
