//! The processor function: SQS batches from the inbound queue → DynamoDB.
//!
//! Each record's envelope is stored exactly once together with its conversation update (the
//! send-window grant included) in one atomic write; duplicates are successes. Records of
//! different conversations run concurrently; records of one conversation run in order (they
//! write the same conversation item, and concurrent DynamoDB transactions on one item conflict).
//! Only the failed records are reported (`ReportBatchItemFailures`),
//! so a poison record reaches the DLQ after `maxReceiveCount` without holding back the others.
//! Never calls the platforms.

pub mod config;
pub mod error;
pub mod follow_up;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::future::join_all;
use lambda_runtime::LambdaEvent;
use shared::ids::ConversationKey;
use shared::message::QueueEnvelope;
use shared::ports::{MessageStore, StoreOutcome};
use shared::quota::QuotaPolicy;
use tracing::{debug, error, info, warn};

pub use config::Config;
pub use error::RecordError;
pub use follow_up::FollowUps;

/// Everything a batch needs, built once per cold start.
pub struct App<S> {
    /// Where messages go.
    pub store: S,
    /// The grants per user action.
    pub policy: QuotaPolicy,
    /// Auto-reply notices after a stored action (none: no desk in this deployment).
    pub follow_ups: Option<FollowUps>,
}

impl<S: MessageStore> App<S> {
    /// Assembles the app.
    pub fn new(store: S, policy: QuotaPolicy) -> Self {
        Self {
            store,
            policy,
            follow_ups: None,
        }
    }

    /// The app with auto-reply notices.
    pub fn with_follow_ups(mut self, follow_ups: FollowUps) -> Self {
        self.follow_ups = Some(follow_ups);
        self
    }

    /// Stores one record's envelope: the use case behind [`handle`].
    pub async fn process_one(&self, record: &SqsMessage) -> RecordResult {
        self.store_envelope(decode(record)?).await
    }

    async fn store_envelope(&self, envelope: QueueEnvelope<'static>) -> RecordResult {
        let grant = self.policy.grant_for(envelope.platform, &envelope.message);
        let outcome = self.store.store_inbound(&envelope, grant).await?;
        if let (Some(follow_ups), StoreOutcome::Inserted | StoreOutcome::Duplicate) =
            (&self.follow_ups, outcome)
        {
            let received = envelope.received_at_ms / 1000;
            let t = shared::quota::action_time(envelope.message.create_time, received);
            follow_ups
                .after_store(&envelope, t, grant.is_some())
                .await?;
        }
        Ok((outcome, envelope))
    }
}

fn decode(record: &SqsMessage) -> Result<QueueEnvelope<'static>, RecordError> {
    let body = record.body.as_deref().ok_or(RecordError::NoBody)?;
    Ok(QueueEnvelope::from_json(body)?)
}

/// What storing one record did.
pub type RecordResult = Result<(StoreOutcome, QueueEnvelope<'static>), RecordError>;

/// Processes a batch: conversations concurrently, each conversation's records in batch order.
async fn process_batch<S: MessageStore>(app: &App<S>, records: &[SqsMessage]) -> Vec<RecordResult> {
    let mut results: Vec<Option<RecordResult>> = records.iter().map(|_| None).collect();
    let mut groups: Vec<(ConversationKey, Vec<(usize, QueueEnvelope<'static>)>)> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        match decode(record) {
            Ok(envelope) => {
                let conversation = envelope.conversation();
                match groups.iter_mut().find(|(k, _)| *k == conversation) {
                    Some((_, members)) => members.push((i, envelope)),
                    None => groups.push((conversation, vec![(i, envelope)])),
                }
            }
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    let done = join_all(groups.into_iter().map(|(_, members)| async move {
        let mut out = Vec::with_capacity(members.len());
        for (i, envelope) in members {
            out.push((i, app.store_envelope(envelope).await));
        }
        out
    }))
    .await;
    for (i, result) in done.into_iter().flatten() {
        results[i] = Some(result);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(RecordError::NoBody)))
        .collect()
}

/// The Lambda handler: process the batch (see [`process_batch`]), report only the failures.
pub async fn handle<S: MessageStore>(
    app: &App<S>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let records = &event.payload.records;
    let results = process_batch(app, records).await;
    let mut response = SqsBatchResponse::default();
    let (mut stored, mut duplicates, mut replays) = (0usize, 0usize, 0usize);
    let mut stored_in: std::collections::HashMap<(String, String), u64> = Default::default();
    for (record, result) in records.iter().zip(results) {
        let id = record.message_id.as_deref().unwrap_or_default();
        match result {
            Ok((StoreOutcome::ReplayRefused, env)) => {
                replays += 1;
                warn!(
                    platform = %env.platform,
                    app_id = %env.app_id,
                    outcome = "replay_refused",
                    sqs_message_id = id,
                    "plaintext push reused a seen nonce and timestamp with another body; not stored"
                );
            }
            Ok((outcome, env)) => {
                let inserted = outcome == StoreOutcome::Inserted;
                if inserted {
                    stored += 1;
                    if env.message.msg_type() != "event" {
                        let app = format!("{}#{}", env.platform, env.app_id);
                        let day = shared::desk::stats::day_of(env.received_at_ms / 1000);
                        *stored_in.entry((app, day)).or_default() += 1;
                    }
                } else {
                    duplicates += 1
                }
                // Per record at debug only (ingress logs each push with its MsgId at info; the
                // batch line below counts them): log ingestion is a per-message cost.
                debug!(
                    platform = %env.platform,
                    app_id = %env.app_id,
                    msg_type = env.message.msg_type(),
                    msg_id = env.message.msg_id.as_ref().map(|i| i.0.as_str()).unwrap_or_default(),
                    outcome = if inserted { "stored" } else { "duplicate" },
                    sqs_message_id = id,
                    "record processed"
                );
            }
            Err(e) if e.is_retryable() => {
                warn!(sqs_message_id = id, outcome = "retry", error.message = %e, "record failed; SQS will redeliver");
                response.add_failure(id);
            }
            Err(e) => {
                error!(sqs_message_id = id, outcome = "poison", error.message = %e, "poison record; it will reach the DLQ");
                response.add_failure(id);
            }
        }
    }
    if let Some(follow_ups) = &app.follow_ups {
        follow_ups.count_in(stored_in).await;
    }
    info!(
        records = records.len(),
        stored,
        duplicates,
        replays_refused = replays,
        failed = response.batch_item_failures.len(),
        "batch done"
    );
    shared::metrics::emit(&shared::metrics::STORED, stored as f64, &[]);
    shared::metrics::emit(&shared::metrics::DEDUPE_HITS, duplicates as f64, &[]);
    if replays > 0 {
        shared::metrics::emit(&shared::metrics::REPLAY_REFUSED, replays as f64, &[]);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::ids::{MsgId, Platform};
    use shared::message::{InboundMessage, MessageBody};
    use shared::protocol::{DataFormat, Mode};
    use shared::quota::Window;
    use testkit::memory::InMemoryStore;

    fn envelope(msg_id: &str, create_time: u64) -> QueueEnvelope<'static> {
        let message = InboundMessage {
            to_user_name: None,
            from_user_name: "oUser".into(),
            create_time,
            msg_id: Some(MsgId(msg_id.into())),
            body: MessageBody::Text {
                content: format!("m{msg_id}").into(),
            },
        };
        // Received a second after it was written.
        QueueEnvelope::new(
            Platform::Wechat,
            "wx1",
            (create_time + 1) * 1000,
            Mode::Safe,
            DataFormat::Json,
            message,
        )
    }

    fn record(id: &str, body: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.into());
        m
    }

    fn event(records: Vec<SqsMessage>) -> LambdaEvent<SqsEvent> {
        let mut e = SqsEvent::default();
        e.records = records;
        LambdaEvent::new(e, lambda_runtime::Context::default())
    }

    #[tokio::test]
    async fn reports_only_the_poison_record_as_failed() {
        let app = App::new(InMemoryStore::new(), QuotaPolicy::default());
        let batch = vec![
            record("a", &envelope("1", 100).to_json()),
            record("poison", "{\"not\":\"an envelope\"}"),
            record("b", &envelope("2", 200).to_json()),
        ];
        let resp = handle(&app, event(batch)).await.unwrap();
        let failed: Vec<_> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["poison"]);
        let key = envelope("1", 100).key().conversation;
        assert_eq!(app.store.messages(&key, None).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn keeps_batch_order_within_a_conversation_and_reports_by_message_id() {
        let app = App::new(InMemoryStore::new(), QuotaPolicy::default());
        let batch = vec![
            record("x", &envelope("3", 300).to_json()),
            record("y", "garbage"),
            record("z", &envelope("1", 100).to_json()),
        ];
        let resp = handle(&app, event(batch)).await.unwrap();
        let failed: Vec<_> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["y"]);
        let key = envelope("1", 100).key().conversation;
        let times: Vec<u64> = app
            .store
            .messages(&key, None)
            .await
            .unwrap()
            .iter()
            .map(|m| m.create_time)
            .collect();
        assert_eq!(times, [100, 300]);
    }

    #[tokio::test]
    async fn duplicates_succeed_and_store_once() {
        let app = App::new(InMemoryStore::new(), QuotaPolicy::default());
        let body = envelope("7", 100).to_json();
        let resp = handle(&app, event(vec![record("a", &body), record("b", &body)]))
            .await
            .unwrap();
        assert!(resp.batch_item_failures.is_empty());
        let resp = handle(&app, event(vec![record("c", &body)])).await.unwrap();
        assert!(resp.batch_item_failures.is_empty());
        let key = envelope("7", 100).key().conversation;
        assert_eq!(app.store.messages(&key, None).await.unwrap().len(), 1);
        let conv = app.store.conversation(&key).await.unwrap().unwrap();
        assert_eq!(
            conv.window,
            Window {
                remaining: 5,
                expires_at: 100 + 172_800
            }
        );
        assert_eq!(conv.unread, 1);
        assert_eq!(app.store.writes(), 1);
    }

    /// A record written by a version-1 ingress (still queued, or redriven from the DLQ, after an
    /// upgrade) is stored, and its retry written as version 2 is the same message.
    #[tokio::test]
    async fn a_version_one_record_is_stored_and_dedupes_with_its_version_two_retry() {
        let app = App::new(InMemoryStore::new(), QuotaPolicy::default());
        let v2 = envelope("9", 100);
        let v1 = v2.to_json().replacen("\"v\":2", "\"v\":1", 1).replacen(
            "\"position\"",
            "\"dedupe_key\"",
            1,
        );
        assert!(v1.contains("\"dedupe_key\"") && v1.starts_with("{\"v\":1,"));
        let resp = handle(&app, event(vec![record("old", &v1)])).await.unwrap();
        assert!(resp.batch_item_failures.is_empty());
        let resp = handle(&app, event(vec![record("new", &v2.to_json())]))
            .await
            .unwrap();
        assert!(resp.batch_item_failures.is_empty());
        let key = v2.key().conversation;
        assert_eq!(app.store.messages(&key, None).await.unwrap().len(), 1);
        assert_eq!(app.store.writes(), 1, "the retry was a duplicate");
    }
}
