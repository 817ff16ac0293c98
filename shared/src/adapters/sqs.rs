//! SQS adapter (feature `sqs`): [`SqsQueue`] implements [`MessageQueue`], and
//! [`create_queues`] provisions the queues of `infra/local/resources.json` in an emulator.
//!
//! The client is built once per cold start with its own time budget (operation timeout and at
//! most two attempts), so a slow queue turns into a fast `Err`, never a late `success`.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::ports::{MessageQueue, QueueError};

/// The inbound queue on SQS.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    /// Wraps a client and a queue URL.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Builds a client whose calls, retries included, finish within `budget`.
    pub fn client_with_budget(sdk: &aws_config::SdkConfig, budget: Duration) -> Client {
        let attempt = budget / 2;
        let config = aws_sdk_sqs::config::Builder::from(sdk)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(attempt.min(Duration::from_millis(500)))
                    .operation_attempt_timeout(attempt)
                    .operation_timeout(budget)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .build();
        Client::from_conf(config)
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The queue URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

#[async_trait]
impl MessageQueue for SqsQueue {
    async fn enqueue(&self, body: &str) -> Result<String, QueueError> {
        match self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
        {
            Ok(out) => Ok(out.message_id().unwrap_or_default().to_owned()),
            Err(SdkError::ServiceError(e)) if is_rejection(e.err().code()) => {
                Err(QueueError::Rejected(Box::new(SdkError::ServiceError(e))))
            }
            Err(e) => Err(QueueError::Unavailable(Box::new(e))),
        }
    }
}

fn is_rejection(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "InvalidMessageContents"
                | "InvalidParameterValue"
                | "MessageTooLong"
                | "UnsupportedOperation"
                | "AWS.SimpleQueueService.UnsupportedOperation"
        )
    )
}

/// URLs of the queues in `resources.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrls {
    /// The inbound queue.
    pub inbound: String,
    /// Its dead-letter queue.
    pub dead_letter: String,
    /// The outbound queue (auto-reply notices), when `resources.json` has one.
    pub outbound: Option<String>,
}

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// `resources.json` is not of the expected shape.
    #[error("resources.json: {0}")]
    Resources(String),
    /// The SQS call failed.
    #[error("sqs: {0}")]
    Sqs(#[source] crate::ports::Cause),
}

/// Creates the queues `resources.json` describes (`{prefix}inbound`, `{prefix}inbound-dlq`, …)
/// (redrive policy, visibility timeout, retention); idempotent.
pub async fn create_queues(
    client: &Client,
    resources_json: &str,
    prefix: &str,
) -> Result<QueueUrls, ProvisionError> {
    let doc: serde_json::Value = serde_json::from_str(resources_json)
        .map_err(|e| ProvisionError::Resources(e.to_string()))?;
    let queues = doc["queues"]
        .as_array()
        .ok_or_else(|| ProvisionError::Resources("no queues array".into()))?;
    let mut urls = std::collections::HashMap::new();
    // Dead-letter queues first, so redrive policies can name their ARNs.
    let mut ordered: Vec<&serde_json::Value> =
        queues.iter().filter(|q| q["dlq"].is_null()).collect();
    ordered.extend(queues.iter().filter(|q| !q["dlq"].is_null()));
    for q in ordered {
        let name = q["name"]
            .as_str()
            .ok_or_else(|| ProvisionError::Resources("queue without name".into()))?;
        let mut req = client.create_queue().queue_name(format!("{prefix}{name}"));
        if let Some(v) = q["visibility_timeout"].as_u64() {
            req = req.attributes(QueueAttributeName::VisibilityTimeout, v.to_string());
        }
        if let Some(v) = q["message_retention"].as_u64() {
            req = req.attributes(QueueAttributeName::MessageRetentionPeriod, v.to_string());
        }
        if let Some(dlq) = q["dlq"].as_str() {
            let dlq_url: &String = urls
                .get(dlq)
                .ok_or_else(|| ProvisionError::Resources(format!("{name}: unknown dlq {dlq}")))?;
            let attrs = client
                .get_queue_attributes()
                .queue_url(dlq_url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|e| ProvisionError::Sqs(Box::new(e)))?;
            let arn = attrs
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::QueueArn))
                .cloned()
                .unwrap_or_default();
            let max = q["max_receive_count"].as_u64().unwrap_or(5);
            req = req.attributes(
                QueueAttributeName::RedrivePolicy,
                serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max.to_string() }).to_string(),
            );
        }
        let out = req
            .send()
            .await
            .map_err(|e| ProvisionError::Sqs(Box::new(e)))?;
        urls.insert(
            name.to_owned(),
            out.queue_url().unwrap_or_default().to_owned(),
        );
    }
    let get = |n: &str| {
        urls.get(n)
            .cloned()
            .ok_or_else(|| ProvisionError::Resources(format!("no queue {n}")))
    };
    Ok(QueueUrls {
        inbound: get("inbound")?,
        dead_letter: get("inbound-dlq")?,
        outbound: urls.get("outbound").cloned(),
    })
}
