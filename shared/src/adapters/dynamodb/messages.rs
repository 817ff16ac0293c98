//! [`MessageStore`] on DynamoDB: inbound messages on the messages table and their conversations on
//! the conversations table (docs/design.md §5), and the reads of both.
//!
//! `store_inbound` is one `TransactWriteItems` in the common case: a Put of the message item under
//! [`expressions::MESSAGE_IS_NEW`] (the dedupe) and an optimistic Update of the conversation under
//! [`expressions::FAST_CONDITION_GRANT`]. When only that Update's condition fails (an out-of-order
//! message, or a window the grant does not simply replace) the slow path reads the conversation (from
//! the cancellation reason's `ALL_OLD` item, else one consistent `GetItem`), computes the exact target
//! in Rust and retries with a compare-and-set, at most [`MAX_SLOW_ATTEMPTS`] times. A plaintext push's
//! replay item is the transaction's third write.
//!
//! Not here: the expressions ([`expressions`]), the items ([`items`]), or the sender's writes to the
//! same tables (`ledger`, `outbound`).

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use tracing::debug;

use super::conditional;
use super::expressions::{self, Expression, InboundUpdate};
use super::items::{self, ConversationState, Item, s};
use super::{DynamoDbStore, WithExpression, unavailable};
use crate::ids::ConversationKey;
use crate::message::QueueEnvelope;
use crate::ports::{MessageStore, StoreError, StoreOutcome};
use crate::quota::Grant;
use crate::records::{Conversation, StoredMessage};

/// Compare-and-set attempts of the slow path before [`StoreError::Contention`].
pub const MAX_SLOW_ATTEMPTS: u32 = 8;

/// DynamoDB's cancellation-reason code for a failed condition.
const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailed";
/// DynamoDB's cancellation-reason code of an item that did not cause the cancellation.
const NO_REASON: &str = "None";
/// DynamoDB's cancellation-reason code of an item another transaction was writing.
const TRANSACTION_CONFLICT: &str = "TransactionConflict";

/// What one transaction did.
#[derive(Debug)]
enum Written {
    /// Both writes happened.
    Committed,
    /// The message item already existed: nothing happened.
    Duplicate,
    /// Only the conversation condition failed; the item as it was, if DynamoDB returned it.
    ConversationChanged(Option<Item>),
    /// Another transaction on the same items was in flight (DynamoDB `TransactionConflict`).
    Conflict,
    /// The replay item's condition failed: a plaintext push reused a seen nonce and timestamp.
    ReplayRefused,
}

/// How a cancelled transaction is read from its reasons (index 0: the Put, 1: the Update, 2: the
/// replay item's Put of a plaintext push).
#[derive(Debug, PartialEq)]
enum Cancelled {
    /// The Put's condition failed: the message is a duplicate.
    Duplicate,
    /// Only the Update's condition failed, with the `ALL_OLD` item if returned.
    ConversationChanged(Option<Item>),
    /// A concurrent transaction touched the same items: retry shortly.
    Conflict,
    /// The replay item's condition failed (and the message is not a duplicate).
    ReplayRefused,
    /// Anything else (throttling, validation): not an outcome.
    Other,
}

fn classify(reasons: &[CancellationReason]) -> Cancelled {
    let code = |i: usize| reasons.get(i).and_then(CancellationReason::code);
    let no_reason = |c: Option<&str>| c.is_none_or(|c| c == NO_REASON);
    if code(0) == Some(CONDITIONAL_CHECK_FAILED) {
        Cancelled::Duplicate
    } else if no_reason(code(0)) && code(2) == Some(CONDITIONAL_CHECK_FAILED) {
        Cancelled::ReplayRefused
    } else if no_reason(code(0)) && code(1) == Some(CONDITIONAL_CHECK_FAILED) {
        Cancelled::ConversationChanged(reasons.get(1).and_then(|r| r.item().cloned()))
    } else if reasons
        .iter()
        .any(|r| r.code() == Some(TRANSACTION_CONFLICT))
    {
        Cancelled::Conflict
    } else {
        Cancelled::Other
    }
}

/// Waits a little (growing, jittered) before retrying after a `TransactionConflict`, so records
/// of one conversation that race in a batch settle instead of failing back to SQS.
async fn conflict_pause(attempt: u32) {
    let jitter = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 10_000_000);
    let base = 10_000_000u64.saturating_mul(u64::from(attempt) + 1);
    tokio::time::sleep(std::time::Duration::from_nanos(base + u64::from(jitter))).await;
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl DynamoDbStore {
    /// One `TransactWriteItems`: `put`, the conversation update `expression` on `pk`, and the
    /// replay item's Put when the push is plaintext.
    async fn write(
        &self,
        put: &Put,
        pk: &str,
        expression: Expression,
        replay: Option<&Put>,
    ) -> Result<Written, StoreError> {
        let update = Update::builder()
            .table_name(&self.tables.conversations)
            .key(items::PK, s(pk))
            .expression(expression)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(unavailable)?;
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put.clone()).build())
            .transact_items(TransactWriteItem::builder().update(update).build());
        if let Some(replay) = replay {
            request =
                request.transact_items(TransactWriteItem::builder().put(replay.clone()).build());
        }
        let result = request.send().await;
        let err = match result {
            Ok(_) => return Ok(Written::Committed),
            Err(err) => err,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
            err.as_service_error()
        {
            match classify(cancel.cancellation_reasons()) {
                Cancelled::Duplicate => return Ok(Written::Duplicate),
                Cancelled::ConversationChanged(old) => {
                    return Ok(Written::ConversationChanged(old));
                }
                Cancelled::Conflict => return Ok(Written::Conflict),
                Cancelled::ReplayRefused => return Ok(Written::ReplayRefused),
                Cancelled::Other => {}
            }
        }
        Err(unavailable(err))
    }

    /// A duplicate's answer. A plaintext push's replay tag is remembered even then (that attempt
    /// was answered `success` too, so a capture of it replayed with another body must be refused);
    /// when the tag is already held under another digest, it stays as it is.
    async fn duplicate(&self, envelope: &QueueEnvelope<'_>) -> Result<StoreOutcome, StoreError> {
        let Some(tag) = &envelope.replay else {
            return Ok(StoreOutcome::Duplicate);
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.messages)
            .set_item(Some(items::replay_item(envelope, tag)))
            .expression(expressions::replay_is_new_or_same(&tag.digest))
            .send()
            .await;
        match result {
            Ok(_) => Ok(StoreOutcome::Duplicate),
            Err(err) if conditional::is_put_condition_failed(&err) => Ok(StoreOutcome::Duplicate),
            Err(err) => Err(unavailable(err)),
        }
    }

    /// The conversation item, read consistently.
    async fn conversation_item(&self, pk: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.conversations)
            .key(items::PK, s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item)
    }
}

#[async_trait]
impl MessageStore for DynamoDbStore {
    #[tracing::instrument(skip_all, fields(
        platform = %envelope.platform,
        app_id = %envelope.app_id,
        msg_id = envelope.message.msg_id.as_ref().map(|id| id.0.as_str()),
    ))]
    async fn store_inbound(
        &self,
        envelope: &QueueEnvelope<'_>,
        grant: Option<Grant>,
    ) -> Result<StoreOutcome, StoreError> {
        let key = envelope.key();
        let pk = key.conversation.to_string();
        let put = Put::builder()
            .table_name(&self.tables.messages)
            .set_item(Some(items::inbound_message_item(
                envelope,
                &key,
                self.retention_secs,
            )?))
            .expression(expressions::message_is_new())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(unavailable)?;
        let replay = match &envelope.replay {
            Some(tag) => Some(
                Put::builder()
                    .table_name(&self.tables.messages)
                    .set_item(Some(items::replay_item(envelope, tag)))
                    .expression(expressions::replay_is_new_or_same(&tag.digest))
                    .build()
                    .map_err(unavailable)?,
            ),
            None => None,
        };
        let replay = replay.as_ref();
        let preview = envelope.message.preview(items::PREVIEW_CHARS);
        let update = InboundUpdate {
            key: &key.conversation,
            t: crate::quota::action_time(
                envelope.message.create_time,
                envelope.received_at_ms / 1000,
            ),
            preview: &preview,
            msg_type: envelope.message.msg_type(),
            now: now_secs(),
            grant,
        };

        // Fast path: one request.
        let mut old = match self.write(&put, &pk, update.fast(), replay).await? {
            Written::Committed => return Ok(StoreOutcome::Inserted),
            Written::Duplicate => return self.duplicate(envelope).await,
            Written::ReplayRefused => return Ok(StoreOutcome::ReplayRefused),
            Written::ConversationChanged(old) => old,
            Written::Conflict => {
                conflict_pause(0).await;
                None
            }
        };
        // Slow path: compare-and-set from the state as read.
        for attempt in 1..=MAX_SLOW_ATTEMPTS {
            let item = match old.take() {
                Some(item) => Some(item),
                None => self.conversation_item(&pk).await?,
            };
            let state = item
                .as_ref()
                .map(|item| ConversationState::from_item(item, &pk))
                .transpose()?;
            match self
                .write(&put, &pk, update.compare_and_set(state.as_ref()), replay)
                .await?
            {
                Written::Committed => return Ok(StoreOutcome::Inserted),
                Written::Duplicate => return self.duplicate(envelope).await,
                Written::ReplayRefused => return Ok(StoreOutcome::ReplayRefused),
                Written::Conflict => {
                    conflict_pause(attempt).await;
                    old = None;
                }
                Written::ConversationChanged(next) => {
                    debug!(
                        attempt,
                        "conversation changed since read, compare-and-set again"
                    );
                    old = next;
                }
            }
        }
        Err(StoreError::Contention(crate::secret::redact_key(
            &key.to_string(),
        )))
    }

    #[tracing::instrument(skip_all, fields(platform = %key.platform, app_id = %key.app_id))]
    async fn conversation(
        &self,
        key: &ConversationKey,
    ) -> Result<Option<Conversation>, StoreError> {
        let Some(item) = self.conversation_item(&key.to_string()).await? else {
            return Ok(None);
        };
        let mut conversation = items::conversation_from_item(&item)?;
        conversation.key = Some(key.clone());
        Ok(Some(conversation))
    }

    #[tracing::instrument(skip_all, fields(platform = %key.platform, app_id = %key.app_id))]
    async fn messages(
        &self,
        key: &ConversationKey,
        limit: Option<usize>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let wanted = limit.map(|l| l.saturating_sub(out.len()));
            if wanted == Some(0) {
                break;
            }
            let page = wanted.map(|w| i32::try_from(w).unwrap_or(i32::MAX));
            let output = self
                .client
                .query()
                .table_name(&self.tables.messages)
                .expression(expressions::messages_of(&key.to_string()))
                .scan_index_forward(true)
                .consistent_read(true)
                .set_limit(page)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in output.items.unwrap_or_default() {
                out.push(items::stored_message_from_item(&item)?);
            }
            match output.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        if let Some(limit) = limit {
            out.truncate(limit);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str, item: Option<Item>) -> CancellationReason {
        CancellationReason::builder()
            .code(code)
            .set_item(item)
            .build()
    }

    #[test]
    fn a_failed_put_condition_is_a_duplicate_whatever_the_update_did() {
        for second in ["None", CONDITIONAL_CHECK_FAILED, "TransactionConflict"] {
            let reasons = [reason(CONDITIONAL_CHECK_FAILED, None), reason(second, None)];
            assert_eq!(classify(&reasons), Cancelled::Duplicate, "{second}");
        }
    }

    #[test]
    fn only_the_update_failing_goes_to_the_slow_path_with_the_old_item() {
        let old: Item = [(items::PK.to_owned(), s("wechat#wx1#o"))]
            .into_iter()
            .collect();
        let reasons = [
            reason(NO_REASON, None),
            reason(CONDITIONAL_CHECK_FAILED, Some(old.clone())),
        ];
        assert_eq!(
            classify(&reasons),
            Cancelled::ConversationChanged(Some(old))
        );
        let reasons = [
            CancellationReason::builder().build(),
            reason(CONDITIONAL_CHECK_FAILED, None),
        ];
        assert_eq!(classify(&reasons), Cancelled::ConversationChanged(None));
    }

    #[test]
    fn a_failed_replay_condition_refuses_a_new_message() {
        let reasons = [
            reason(NO_REASON, None),
            reason(NO_REASON, None),
            reason(CONDITIONAL_CHECK_FAILED, None),
        ];
        assert_eq!(classify(&reasons), Cancelled::ReplayRefused);
        // A duplicate stays a duplicate (the platform retried the same push).
        let reasons = [
            reason(CONDITIONAL_CHECK_FAILED, None),
            reason(NO_REASON, None),
            reason(CONDITIONAL_CHECK_FAILED, None),
        ];
        assert_eq!(classify(&reasons), Cancelled::Duplicate);
    }

    #[test]
    fn conflicts_are_retried_and_throttling_is_not_an_outcome() {
        for reasons in [
            vec![reason("TransactionConflict", None), reason(NO_REASON, None)],
            vec![reason(NO_REASON, None), reason("TransactionConflict", None)],
        ] {
            assert_eq!(classify(&reasons), Cancelled::Conflict, "{reasons:?}");
        }
        for reasons in [
            vec![
                reason("ThrottlingError", None),
                reason(CONDITIONAL_CHECK_FAILED, None),
            ],
            vec![],
        ] {
            assert_eq!(classify(&reasons), Cancelled::Other, "{reasons:?}");
        }
    }
}
