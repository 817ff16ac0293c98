//! The SQS side of `kefu queues` and `kefu dlq redrive`: queue depths from `GetQueueAttributes`
//! (never a receive, which would change visibility), and moving dead letters back to the inbound
//! queue (safe: processing is idempotent).
//!
//! Not the command lines (flags, queue URLs from the environment, printing): `commands::queues`
//! and `commands::dlq`.

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;

use crate::Error;

/// One queue's depth.
#[derive(Debug, Clone, Serialize)]
pub struct QueueStats {
    /// `inbound` or `dlq`.
    pub name: String,
    /// Queue URL.
    pub url: String,
    /// `ApproximateNumberOfMessages`.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`.
    pub in_flight: u64,
    /// Age of the oldest message in seconds, when the service reports it (SQS exposes it as a
    /// CloudWatch metric, not a queue attribute; `None` then).
    pub oldest_age_secs: Option<u64>,
}

/// Reads a queue's depth.
pub async fn stats(sqs: &aws_sdk_sqs::Client, name: &str, url: &str) -> Result<QueueStats, Error> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .map_err(|e| format!("GetQueueAttributes {url}: {}", DisplayErrorContext(e)))?;
    let attrs = out.attributes.unwrap_or_default();
    let get = |k: QueueAttributeName| attrs.get(&k).and_then(|v| v.parse::<u64>().ok());
    Ok(QueueStats {
        name: name.to_owned(),
        url: url.to_owned(),
        visible: get(QueueAttributeName::ApproximateNumberOfMessages).unwrap_or(0),
        in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible).unwrap_or(0),
        oldest_age_secs: get(QueueAttributeName::from("ApproximateAgeOfOldestMessage")),
    })
}

/// The text table.
pub fn render_text(stats: &[QueueStats]) -> String {
    let mut out = format!(
        "{:<8} {:>8} {:>10} {:>12}\n",
        "queue", "visible", "in_flight", "oldest_age"
    );
    for s in stats {
        let age = s
            .oldest_age_secs
            .map(|a| format!("{a}s"))
            .unwrap_or_else(|| "n/a".into());
        out.push_str(&format!(
            "{:<8} {:>8} {:>10} {:>12}\n",
            s.name, s.visible, s.in_flight, age
        ));
    }
    out
}

/// What a redrive did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Redrive {
    /// Messages sent to the inbound queue and deleted from the DLQ.
    pub moved: u64,
    /// Messages whose send or delete failed (sends failed are left in the DLQ, visible again).
    pub failed: u64,
}

/// Moves up to `max` (all when `None`) messages from `dlq` to `inbound`: receive, send the body,
/// delete from the DLQ only after the send succeeded. Stops at the first empty receive or error.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    dlq: &str,
    inbound: &str,
    max: Option<u64>,
) -> Result<Redrive, Error> {
    let mut report = Redrive::default();
    loop {
        let left = max.map_or(10, |m| m.saturating_sub(report.moved).min(10));
        if left == 0 {
            break;
        }
        let out = sqs
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(i32::try_from(left).unwrap_or(10))
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| format!("ReceiveMessage {dlq}: {}", DisplayErrorContext(e)))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        let mut stop = false;
        for m in messages {
            let (Some(body), Some(handle)) = (m.body.as_deref(), m.receipt_handle.as_deref())
            else {
                continue;
            };
            let sent = sqs
                .send_message()
                .queue_url(inbound)
                .message_body(body)
                .set_message_attributes(m.message_attributes.clone())
                .send()
                .await;
            if let Err(e) = sent {
                eprintln!(
                    "redrive: send failed, message left in the DLQ: {}",
                    DisplayErrorContext(e)
                );
                report.failed += 1;
                stop = true;
                let _ = sqs
                    .change_message_visibility()
                    .queue_url(dlq)
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send()
                    .await;
                continue;
            }
            match sqs
                .delete_message()
                .queue_url(dlq)
                .receipt_handle(handle)
                .send()
                .await
            {
                Ok(_) => report.moved += 1,
                Err(e) => {
                    // Sent but not deleted: it will be redriven again later (harmless: idempotent).
                    eprintln!(
                        "redrive: sent but not deleted from the DLQ: {}",
                        DisplayErrorContext(e)
                    );
                    report.failed += 1;
                    stop = true;
                }
            }
        }
        if stop {
            break;
        }
    }
    Ok(report)
}
