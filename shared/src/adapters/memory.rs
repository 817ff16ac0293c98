//! In-memory fakes of every port (feature `test-util`), with the same contracts as the real
//! adapters, so handler tests assert on resulting state instead of mock expectations.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::message::{ConversationKey, QueueEnvelope};
use crate::ports::{
    Conversation, Direction, MessageQueue, MessageStore, QueueError, StoreError, StoreOutcome,
    StoredMessage,
};
use crate::quota::{Grant, Window};

/// A queue that keeps bodies in memory; can be told to fail or to stall.
#[derive(Debug, Default)]
pub struct InMemoryQueue {
    bodies: Mutex<Vec<String>>,
    fail: AtomicBool,
    stall_ms: AtomicUsize,
}

impl InMemoryQueue {
    /// An empty, healthy queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every later `enqueue` fails as unavailable (`true`) or works again (`false`).
    pub fn set_failing(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    /// Every later `enqueue` waits this long before answering.
    pub fn set_stall(&self, stall: Duration) {
        self.stall_ms.store(
            usize::try_from(stall.as_millis()).unwrap_or(usize::MAX),
            Ordering::SeqCst,
        );
    }

    /// The bodies accepted so far, in order.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl MessageQueue for InMemoryQueue {
    async fn enqueue(&self, body: &str) -> Result<String, QueueError> {
        let stall = self.stall_ms.load(Ordering::SeqCst);
        if stall > 0 {
            tokio::time::sleep(Duration::from_millis(stall as u64)).await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable(
                "in-memory queue set to fail".into(),
            ));
        }
        let mut bodies = self
            .bodies
            .lock()
            .map_err(|_| QueueError::Unavailable("poisoned".into()))?;
        bodies.push(body.to_owned());
        Ok(format!("mem-{}", bodies.len()))
    }
}

#[derive(Debug, Default)]
struct StoreState {
    conversations: BTreeMap<String, Conversation>,
    messages: BTreeMap<(String, String), StoredMessage>,
}

/// A message store in memory, applying the same dedupe and quota rules as DynamoDB.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    state: Mutex<StoreState>,
    writes: AtomicUsize,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many `store_inbound` calls wrote something.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// Sets a conversation's window directly (test setup).
    pub fn set_window(&self, key: &ConversationKey, window: Window) {
        if let Ok(mut state) = self.state.lock() {
            let conv = state
                .conversations
                .entry(key.partition_key())
                .or_insert_with(|| empty(key));
            conv.window = window;
        }
    }
}

fn empty(key: &ConversationKey) -> Conversation {
    Conversation {
        key: Some(key.clone()),
        window: Window::default(),
        last_in_at: None,
        last_in_preview: None,
        status: "open".into(),
        assignee: None,
        unread: 0,
        inbound_count: 0,
    }
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("in-memory store lock poisoned".into())
}

#[async_trait]
impl MessageStore for InMemoryStore {
    async fn store_inbound(
        &self,
        envelope: &QueueEnvelope,
        grant: Option<Grant>,
    ) -> Result<StoreOutcome, StoreError> {
        let key = envelope.key();
        let pk = key.conversation.partition_key();
        let m = &envelope.message;
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        if state
            .messages
            .contains_key(&(pk.clone(), key.sort_key.clone()))
        {
            return Ok(StoreOutcome::Duplicate);
        }
        let (content, media) = crate::message::content_and_media(m);
        state.messages.insert(
            (pk.clone(), key.sort_key.clone()),
            StoredMessage {
                sort_key: key.sort_key.clone(),
                direction: Direction::In,
                msg_type: m.msg_type().to_owned(),
                create_time: m.create_time,
                msg_id: m.msg_id.as_ref().map(|i| i.0.clone()),
                content,
                media,
                status: None,
                errcode: None,
                raw: serde_json::to_string(m).ok(),
            },
        );
        let conv = state
            .conversations
            .entry(pk)
            .or_insert_with(|| empty(&key.conversation));
        if let Some(grant) = grant {
            conv.window = Window::apply_grant(Some(conv.window), grant, m.create_time);
        }
        if conv.last_in_at.is_none_or(|t| t <= m.create_time) {
            conv.last_in_at = Some(m.create_time);
            conv.last_in_preview = Some(m.preview(80));
        }
        conv.unread += 1;
        conv.inbound_count += 1;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(StoreOutcome::Inserted)
    }

    async fn conversation(
        &self,
        key: &ConversationKey,
    ) -> Result<Option<Conversation>, StoreError> {
        let state = self.state.lock().map_err(|_| poisoned())?;
        Ok(state.conversations.get(&key.partition_key()).cloned())
    }

    async fn messages(
        &self,
        key: &ConversationKey,
        limit: Option<usize>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let pk = key.partition_key();
        let state = self.state.lock().map_err(|_| poisoned())?;
        Ok(state
            .messages
            .iter()
            .filter(|((p, _), _)| *p == pk)
            .map(|(_, m)| m.clone())
            .take(limit.unwrap_or(usize::MAX))
            .collect())
    }
}
