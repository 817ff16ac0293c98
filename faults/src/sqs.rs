//! SQS as the simulation sees it: the inbound queue ingress writes to (failing before or after
//! the commit, duplicating, delaying) and the event-source mapping that feeds the real processor
//! handler in batches of up to ten — out of order, with visibility that can run out before a
//! delete, failed records redelivered, and a dead-letter queue after five receives that the run
//! redrives at the end as an operator would. Not here: the real SQS wire protocol (the pipeline
//! tests run against moto) or message attributes.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use aws_sdk_sqs::types::Message;
use lambda_runtime::{Context, LambdaEvent};
use shared::clock::Clock;
use shared::ports::{MessageQueue, QueueError};
use testkit::esm::sqs_event;

use crate::clock::SimClock;
use crate::inject::{Kind, Shared};
use crate::store::SimStore;

const P_ENQUEUE_FAILED: f64 = 0.004;
const P_ENQUEUE_TIMEOUT: f64 = 0.004;
const P_DUPLICATE: f64 = 0.004;
const P_LATE: f64 = 0.003;
const P_REORDER: f64 = 0.3;
const P_VISIBILITY: f64 = 0.003;
/// Receives before a record moves to the DLQ (the template's `maxReceiveCount`).
const MAX_RECEIVES: u32 = 5;
/// Visibility timeout of a received record, seconds.
const VISIBILITY_SECS: u64 = 30;
const ARN: &str = "arn:aws:sqs:us-east-1:000000000000:kefu-inbound";

#[derive(Debug, Clone)]
struct Record {
    id: String,
    body: String,
    visible_at: u64,
    receives: u32,
}

#[derive(Debug, Default)]
struct Queues {
    next_id: u64,
    inbound: Vec<Record>,
    dlq: Vec<Record>,
    dead_lettered: u64,
}

/// The inbound queue and its DLQ, shared by ingress (as its [`MessageQueue`]) and the mapping.
#[derive(Debug, Clone)]
pub struct SimQueue {
    queues: Arc<Mutex<Queues>>,
    faults: Shared,
    clock: SimClock,
    lose_every: Option<u64>,
}

impl SimQueue {
    /// Empty queues injecting from `faults`, timed by `clock`.
    pub fn new(faults: Shared, clock: SimClock) -> Self {
        Self {
            queues: Arc::new(Mutex::new(Queues::default())),
            faults,
            clock,
            lose_every: None,
        }
    }

    /// Breaks the queue on purpose: every `n`th accepted message is dropped while `Ok` is
    /// answered, to show the storage check fails.
    pub fn losing_every(mut self, n: u64) -> Self {
        self.lose_every = Some(n);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn put(&self, body: &str, visible_at: u64) -> String {
        let mut q = self.lock();
        q.next_id += 1;
        let id = format!("sqs-{}", q.next_id);
        q.inbound.push(Record {
            id: id.clone(),
            body: body.to_owned(),
            visible_at,
            receives: 0,
        });
        id
    }

    /// Records moved to the DLQ so far.
    pub fn dead_lettered(&self) -> u64 {
        self.lock().dead_lettered
    }

    /// Moves every DLQ record back to the inbound queue (`kefu dlq redrive`).
    pub fn redrive(&self) {
        let now = self.clock.now_secs();
        let mut q = self.lock();
        let moved: Vec<Record> = q.dlq.drain(..).collect();
        for mut r in moved {
            r.visible_at = now;
            r.receives = 0;
            q.inbound.push(r);
        }
    }

    /// The time the next invisible record becomes visible, if any is waiting.
    pub fn next_visible_at(&self) -> Option<u64> {
        self.lock().inbound.iter().map(|r| r.visible_at).min()
    }

    /// One poll of the event-source mapping: up to ten visible records to the processor, settled
    /// by its partial-batch answer. Returns how many records were handed over.
    pub async fn poll(&self, processor: &processor::App<SimStore>) -> usize {
        let now = self.clock.now_secs();
        let mut batch: Vec<Record> = {
            let mut q = self.lock();
            let mut picked = Vec::new();
            for r in q.inbound.iter_mut().filter(|r| r.visible_at <= now) {
                r.receives += 1;
                r.visible_at = now + VISIBILITY_SECS;
                picked.push(r.clone());
                if picked.len() == 10 {
                    break;
                }
            }
            picked
        };
        if batch.is_empty() {
            return 0;
        }
        if batch.len() > 1 && self.faults.roll(Kind::SqsReorder, P_REORDER) {
            let n = batch.len() as u64;
            batch.rotate_left(1 + self.faults.below(n - 1) as usize);
        }
        let messages: Vec<Message> = batch
            .iter()
            .map(|r| {
                Message::builder()
                    .message_id(&r.id)
                    .receipt_handle(format!("{}-{}", r.id, r.receives))
                    .body(&r.body)
                    .build()
            })
            .collect();
        let event = LambdaEvent::new(sqs_event(&messages, ARN), Context::default());
        let failed: Option<Vec<String>> =
            processor::handle(processor, event).await.ok().map(|resp| {
                resp.batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect()
            });
        let mut q = self.lock();
        for r in &batch {
            let failed = failed.as_ref().is_none_or(|f| f.contains(&r.id));
            let Some(at) = q.inbound.iter().position(|x| x.id == r.id) else {
                continue;
            };
            if failed {
                if q.inbound[at].receives >= MAX_RECEIVES {
                    let dead = q.inbound.remove(at);
                    q.dlq.push(dead);
                    q.dead_lettered += 1;
                } else {
                    self.faults.count(Kind::PartialBatchRedelivery);
                    q.inbound[at].visible_at = now + self.faults.below(VISIBILITY_SECS);
                }
            } else if self.faults.roll(Kind::VisibilityExpired, P_VISIBILITY) {
                // The delete came too late: the record is already visible again.
                q.inbound[at].visible_at = now;
            } else {
                q.inbound.remove(at);
            }
        }
        batch.len()
    }
}

#[async_trait]
impl MessageQueue for SimQueue {
    async fn enqueue(&self, body: &str) -> Result<String, QueueError> {
        if self.faults.roll(Kind::EnqueueFailed, P_ENQUEUE_FAILED) {
            return Err(QueueError::Unavailable(
                "injected: SendMessage failed".into(),
            ));
        }
        let now = self.clock.now_secs();
        if let Some(n) = self.lose_every {
            let mut q = self.lock();
            q.next_id += 1;
            if q.next_id.is_multiple_of(n) {
                return Ok(format!("sqs-{}", q.next_id));
            }
        }
        let visible_at = if self.faults.roll(Kind::LateDelivery, P_LATE) {
            now + 600 + self.faults.below(7200)
        } else {
            now
        };
        let id = self.put(body, visible_at);
        if self.faults.roll(Kind::SqsDuplicate, P_DUPLICATE) {
            self.put(body, now + self.faults.below(60));
        }
        if self
            .faults
            .roll(Kind::EnqueueTimeoutAfterCommit, P_ENQUEUE_TIMEOUT)
        {
            return Err(QueueError::Unavailable(
                "injected: SendMessage timed out after SQS took the message".into(),
            ));
        }
        Ok(id)
    }
}
