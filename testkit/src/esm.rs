//! The SQS event-source mapping as Lambda runs it, for `kefu serve` and the tests: received
//! messages become one `SqsEvent`, the handler's partial-batch answer settles each record — the
//! successes deleted, the reported failures (or every record, when the handler fails the whole
//! batch) made visible again after a retry delay, so the queue's redrive policy sees them.
//!
//! Not here: receiving (callers choose wait time and batch size) or any retry of the handler.

use std::fmt::Display;
use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::Message;
use lambda_runtime::{Context, LambdaEvent};

/// An SQS event from received messages, as Lambda builds it (system attributes copied).
pub fn sqs_event(messages: &[Message], queue_arn: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    for m in messages {
        let mut record = SqsMessage::default();
        record.message_id = m.message_id.clone();
        record.receipt_handle = m.receipt_handle.clone();
        record.body = m.body.clone();
        record.md5_of_body = m.md5_of_body.clone();
        record.event_source = Some("aws:sqs".into());
        record.event_source_arn = Some(queue_arn.to_owned());
        if let Some(attrs) = &m.attributes {
            record.attributes = attrs
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect();
        }
        event.records.push(record);
    }
    event
}

/// What one batch came to.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Message ids left on the queue for redelivery.
    pub failed: Vec<String>,
    /// The handler's error when it failed the whole batch.
    pub batch_error: Option<String>,
    /// Records the mapping could not settle, with the SQS error: they come back when their
    /// visibility runs out.
    pub unsettled: Vec<(String, String)>,
}

/// Hands `messages` to `handler` as one event and settles every record by its answer: deleted
/// when it succeeded, visible again after `retry_visibility_secs` when it failed.
pub async fn run_batch<F, Fut, E>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[Message],
    retry_visibility_secs: i32,
    handler: F,
) -> BatchOutcome
where
    F: FnOnce(LambdaEvent<SqsEvent>) -> Fut,
    Fut: Future<Output = Result<SqsBatchResponse, E>>,
    E: Display,
{
    let event = sqs_event(messages, queue_url);
    let mut outcome = BatchOutcome::default();
    let reported: Option<Vec<String>> =
        match handler(LambdaEvent::new(event, Context::default())).await {
            Ok(resp) => Some(
                resp.batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect(),
            ),
            Err(e) => {
                outcome.batch_error = Some(e.to_string());
                None
            }
        };
    for m in messages {
        let id = m.message_id.clone().unwrap_or_default();
        let Some(handle) = m.receipt_handle.as_deref() else {
            continue;
        };
        let failed = reported.as_ref().is_none_or(|f| f.contains(&id));
        let result = if failed {
            sqs.change_message_visibility()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .visibility_timeout(retry_visibility_secs)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| DisplayErrorContext(e).to_string())
        } else {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| DisplayErrorContext(e).to_string())
        };
        if let Err(e) = result {
            outcome.unsettled.push((id.clone(), e));
        }
        if failed {
            outcome.failed.push(id);
        }
    }
    outcome
}
