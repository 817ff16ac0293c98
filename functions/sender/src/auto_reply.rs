//! Auto replies: the sender consumes the outbound queue's notices (one per stored user action of
//! an app with an auto reply on, queued by the processor) and sends what is due — the greeting,
//! and the away message when none of the app's agents is online — each through the same send
//! path as `POST /messages` (quota, idempotency, errcodes), recorded with the reserved agent ids
//! `auto-greeting` / `auto-away`, at most once per conversation per window
//! (`shared::desk::auto_reply`).
//!
//! A reply that could not be sent for a passing reason (no token, the store) gives its claim back
//! and fails the record, so SQS delivers the notice again; a refusal (window closed, quota spent)
//! keeps it. A notice of an image also keeps the image (`keep_image`). Not here: the queue's
//! delivery (Lambda's event source mapping, `kefu serve`'s loop).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::json;
use shared::clock::Clock;
use shared::desk::auto_reply::{AutoReplyKind, Notice, agent_of};
use shared::desk::{Presence, notes::AutoReplies};
use shared::ports::auto_reply::AutoReplyStore;
use shared::ports::desk::DeskStore;
use shared::ports::desk_notes::DeskNotes;
use shared::ports::desk_stats::StatsStore;
use shared::ports::media_store::KeptImages;
use shared::ports::{
    AccessTokenCache, MediaIdCache, MessageStore, OutboundStore, QuotaLedger, StoreError,
};
use tracing::{info, warn};

use crate::{App, Deadline, SendError, SendRequest};

/// What auto replies (and kept images) read and write besides the send path.
pub trait DeskPorts:
    DeskStore + DeskNotes + AutoReplyStore + KeptImages + StatsStore + MessageStore
{
}

impl<T: DeskStore + DeskNotes + AutoReplyStore + KeptImages + StatsStore + MessageStore> DeskPorts
    for T
{
}

/// Why one notice failed (its record is delivered again).
#[derive(Debug, thiserror::Error)]
enum NoticeError {
    #[error("not a notice")]
    Poison,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("auto reply not sent: {0}")]
    Send(SendError),
    #[error(transparent)]
    Image(#[from] crate::keep_image::KeepError),
}

/// The replies due for `settings` when `anyone_online` tells whether an agent is online.
fn wanted(settings: &AutoReplies, anyone_online: bool) -> Vec<(AutoReplyKind, &str)> {
    let mut out = Vec::new();
    if settings.greeting.enabled {
        out.push((AutoReplyKind::Greeting, settings.greeting.text.as_str()));
    }
    if settings.away.enabled && !anyone_online {
        out.push((AutoReplyKind::Away, settings.away.text.as_str()));
    }
    out
}

impl<S, T, M, C> App<S, T, M, C>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    M: MediaIdCache,
    C: Clock,
{
    /// Handles one batch of notices; the failed records are reported for redelivery.
    pub async fn consume_notices(
        &self,
        desk: &Arc<dyn DeskPorts>,
        event: &SqsEvent,
        deadline_ms: Option<u64>,
    ) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        let (mut sent, mut failed) = (0usize, 0usize);
        for record in &event.records {
            let id = record.message_id.as_deref().unwrap_or_default();
            let deadline = Deadline::new(
                deadline_ms,
                self.clock.now_ms(),
                self.config.max_request,
                self.config.record_reserve,
            );
            match self
                .notice(desk.as_ref(), record.body.as_deref(), &deadline)
                .await
            {
                Ok(n) => sent += n,
                Err(e) => {
                    failed += 1;
                    warn!(sqs_message_id = id, error.message = %e, "auto-reply notice failed; SQS will redeliver");
                    response.add_failure(id);
                }
            }
        }
        info!(
            records = event.records.len(),
            sent, failed, "auto-reply notices done"
        );
        response
    }

    /// Sends what one notice makes due; returns how many replies went out.
    async fn notice(
        &self,
        desk: &dyn DeskPorts,
        body: Option<&str>,
        deadline: &Deadline,
    ) -> Result<usize, NoticeError> {
        let notice: Notice = body
            .and_then(|b| serde_json::from_str(b).ok())
            .ok_or(NoticeError::Poison)?;
        let key = notice.key();
        let sent = if notice.granted {
            self.auto_replies(desk, &notice, deadline).await?
        } else {
            0
        };
        if let Some(image) = &notice.image {
            match &self.images {
                Some(bucket) => self.keep_image(desk, bucket.as_ref(), &key, image).await?,
                None => warn!("image not kept: this sender has no media bucket"),
            }
        }
        Ok(sent)
    }

    /// Sends the auto replies one notice makes due; returns how many went out.
    async fn auto_replies(
        &self,
        desk: &dyn DeskPorts,
        notice: &Notice,
        deadline: &Deadline,
    ) -> Result<usize, NoticeError> {
        let app = format!("{}#{}", notice.platform, notice.app_id);
        let settings = desk.auto_replies(&app).await?;
        if !settings.greeting.enabled && !settings.away.enabled {
            return Ok(0);
        }
        let key = notice.key();
        let Some(conversation) = desk.conversation(&key).await? else {
            return Ok(0);
        };
        let until = conversation.window.expires_at;
        let now = self.clock.now_secs();
        let anyone_online = if settings.away.enabled {
            desk.members(&app)
                .await?
                .iter()
                .any(|a| a.presence(now) == Presence::Online)
        } else {
            true
        };
        let mut sent = 0;
        for (kind, text) in wanted(&settings, anyone_online) {
            if !desk.claim_auto_reply(&key, kind, notice.t, until).await? {
                continue;
            }
            let body = json!({
                "app_id": key.app_id,
                "platform": key.platform.as_str(),
                "open_id": key.open_id,
                "msg_type": "text",
                "content": text,
                "client_msg_id": format!("{}-{}-{until}", agent_of(kind), key.open_id),
            });
            let mut req =
                SendRequest::from_json(body.to_string().as_bytes()).map_err(NoticeError::Send)?;
            req.agent = Some(agent_of(kind).to_owned());
            match self.send(&req, deadline).await {
                // With its key, a send answers every final outcome (a refusal included) as an
                // answer to keep: only a 200 is a reply that went out.
                Ok(answer) if answer.status.is_success() => sent += 1,
                Ok(answer) => warn!(
                    kind = kind.as_str(),
                    status = answer.status.as_u16(),
                    reason = answer.body["error"].as_str().unwrap_or_default(),
                    "auto reply refused; not retried"
                ),
                // Nothing a retry would change (the app is not in the send registry, or the
                // reply's text changed since a failed try): dropped, said.
                Err(
                    e @ (SendError::UnknownApp
                    | SendError::Misconfigured(_)
                    | SendError::KeyReused
                    | SendError::Invalid { .. }),
                ) => {
                    let body = e.body();
                    warn!(
                        kind = kind.as_str(),
                        reason = body["error"].as_str().unwrap_or_default(),
                        "auto reply cannot be sent; dropped"
                    );
                }
                Err(e) if e.is_final() => warn!(
                    kind = kind.as_str(),
                    status = e.status().as_u16(),
                    "auto reply refused; not retried"
                ),
                Err(e) => {
                    desk.release_auto_reply(&key, kind, until).await?;
                    return Err(NoticeError::Send(e));
                }
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::desk::notes::AutoReply;

    #[test]
    fn the_away_message_waits_for_nobody_online() {
        let on = |text: &str| AutoReply {
            enabled: true,
            text: text.into(),
        };
        let both = AutoReplies {
            greeting: on("hello"),
            away: on("away"),
        };
        let kinds = |s: &AutoReplies, online| {
            wanted(s, online)
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(&both, true), [AutoReplyKind::Greeting]);
        assert_eq!(
            kinds(&both, false),
            [AutoReplyKind::Greeting, AutoReplyKind::Away]
        );
        assert!(kinds(&AutoReplies::default(), false).is_empty());
    }
}
