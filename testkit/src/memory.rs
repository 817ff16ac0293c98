//! In-memory fakes of every port, with the same contracts as the real adapters (checked by the
//! contract tests against moto), so handler tests assert on resulting state instead of mock expectations.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use shared::ids::ConversationKey;
use shared::message::QueueEnvelope;
use shared::ports::{MessageQueue, MessageStore, QueueError, StoreError, StoreOutcome};
use shared::quota::{Grant, Ledger, Window};
use shared::records::{Conversation, Direction, StoredMessage};

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
    /// Plaintext pushes' replay memory: (platform#app, timestamp, nonce) → body digest.
    replays: BTreeMap<(String, u64, String), String>,
}

/// A message store in memory, applying the same dedupe and quota rules as DynamoDB.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    state: Mutex<StoreState>,
    writes: AtomicUsize,
    claims: Mutex<BTreeMap<String, ClaimState>>,
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
                .entry(key.to_string())
                .or_insert_with(|| empty(key));
            conv.window = window;
        }
    }
}

fn empty(key: &ConversationKey) -> Conversation {
    Conversation {
        key: Some(key.clone()),
        window: Window::default(),
        grant_at: None,
        generation: 0,
        spent: 0,
        spent_at: None,
        last_in_at: None,
        last_out_at: None,
        last_reply_at: None,
        last_in_preview: None,
        status: "waiting".into(),
        assignee: None,
        list_at: None,
        active_at: None,
        tags: Vec::new(),
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
        envelope: &QueueEnvelope<'_>,
        grant: Option<Grant>,
    ) -> Result<StoreOutcome, StoreError> {
        let key = envelope.key();
        let pk = key.conversation.to_string();
        let m = &envelope.message;
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        let duplicate = state
            .messages
            .contains_key(&(pk.clone(), key.position.clone()));
        // A duplicate's tag is remembered too: that attempt was answered `success` as well.
        if let Some(tag) = &envelope.replay {
            let id = (
                format!("{}#{}", envelope.platform, envelope.app_id),
                tag.timestamp,
                tag.nonce.clone(),
            );
            match state.replays.get(&id) {
                Some(digest) if *digest != tag.digest && !duplicate => {
                    return Ok(StoreOutcome::ReplayRefused);
                }
                Some(_) => {}
                None => {
                    state.replays.insert(id, tag.digest.clone());
                }
            }
        }
        if duplicate {
            return Ok(StoreOutcome::Duplicate);
        }
        let (content, media) = shared::message::content_and_media(m);
        state.messages.insert(
            (pk.clone(), key.position.clone()),
            StoredMessage {
                position: key.position.clone(),
                direction: Direction::In,
                msg_type: m.msg_type().to_owned(),
                create_time: m.create_time,
                msg_id: m.msg_id.as_ref().map(|i| i.0.clone()),
                content,
                media,
                status: None,
                errcode: None,
                agent: None,
                stored_media: None,
                raw: match &m.body {
                    // As DynamoDbStore: a long text's `raw` copy is left out.
                    shared::message::MessageBody::Text { content }
                        if content.len() > shared::message::RAW_TEXT_LIMIT =>
                    {
                        None
                    }
                    _ => serde_json::to_string(m).ok(),
                },
            },
        );
        let conv = state
            .conversations
            .entry(pk)
            .or_insert_with(|| empty(&key.conversation));
        let t = shared::quota::action_time(m.create_time, envelope.received_at_ms / 1000);
        let ledger = Ledger {
            window: conv.window,
            grant_at: conv.grant_at,
            generation: conv.generation,
            spent: conv.spent,
            spent_at: conv.spent_at,
        };
        if let Some(next) = grant.and_then(|g| Ledger::apply_grant(Some(ledger), g, t)) {
            conv.window = next.window;
            conv.grant_at = next.grant_at;
            conv.generation = next.generation;
            conv.spent = next.spent;
        }
        if conv.last_in_at.is_none_or(|at| at <= t) {
            conv.last_in_at = Some(t);
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
        Ok(state.conversations.get(&key.to_string()).cloned())
    }

    async fn messages(
        &self,
        key: &ConversationKey,
        limit: Option<usize>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let pk = key.to_string();
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

#[async_trait]
impl shared::ports::QuotaLedger for InMemoryStore {
    async fn reserve(
        &self,
        key: &ConversationKey,
        units: u32,
        now: u64,
    ) -> Result<shared::ports::Reservation, StoreError> {
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        let Some(conv) = state.conversations.get_mut(&key.to_string()) else {
            return Ok(shared::ports::Reservation::NoConversation);
        };
        Ok(match conv.window.consume(units, now) {
            Ok(next) => {
                conv.window = next;
                conv.spent = conv.spent.saturating_add(units);
                conv.spent_at = Some(now + shared::quota::SEND_HORIZON_SECS);
                shared::ports::Reservation::Reserved {
                    window: next,
                    generation: conv.generation,
                }
            }
            Err(refusal) => shared::ports::Reservation::Refused(refusal, conv.window),
        })
    }

    async fn release(
        &self,
        key: &ConversationKey,
        units: u32,
        generation: u64,
    ) -> Result<bool, StoreError> {
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        match state.conversations.get_mut(&key.to_string()) {
            Some(conv) if conv.generation == generation => {
                conv.window.remaining += units;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn exhaust(&self, key: &ConversationKey, generation: u64) -> Result<(), StoreError> {
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        if let Some(conv) = state.conversations.get_mut(&key.to_string())
            && conv.generation == generation
        {
            conv.window.remaining = 0;
        }
        Ok(())
    }

    async fn close_window(
        &self,
        key: &ConversationKey,
        now: u64,
        generation: u64,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        if let Some(conv) = state.conversations.get_mut(&key.to_string())
            && conv.generation == generation
        {
            conv.window.expires_at = conv.window.expires_at.min(now);
        }
        Ok(())
    }
}

/// In-memory access tokens, leases and idempotency keys.
#[derive(Debug, Default)]
pub struct InMemoryTokens {
    tokens: Mutex<BTreeMap<String, TokenEntry>>,
}

/// A cached token (if any) and the refresh lease (owner, end) if held.
type TokenEntry = (Option<shared::ports::CachedToken>, Option<(String, u64)>);

impl InMemoryTokens {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }
}

fn app_key(platform: shared::ids::Platform, app_id: &str) -> String {
    format!("{platform}#{app_id}")
}

#[async_trait]
impl shared::ports::AccessTokenCache for InMemoryTokens {
    async fn get_token(
        &self,
        platform: shared::ids::Platform,
        app_id: &str,
    ) -> Result<Option<shared::ports::CachedToken>, StoreError> {
        let tokens = self.tokens.lock().map_err(|_| poisoned())?;
        Ok(tokens
            .get(&app_key(platform, app_id))
            .and_then(|(t, _)| t.clone()))
    }

    async fn try_lease(
        &self,
        platform: shared::ids::Platform,
        app_id: &str,
        owner: &str,
        now: u64,
        lease_secs: u64,
    ) -> Result<bool, StoreError> {
        let mut tokens = self.tokens.lock().map_err(|_| poisoned())?;
        let entry = tokens.entry(app_key(platform, app_id)).or_default();
        if entry.1.as_ref().is_some_and(|(_, until)| *until >= now) {
            return Ok(false);
        }
        entry.1 = Some((owner.to_owned(), now + lease_secs));
        Ok(true)
    }

    async fn put_token(
        &self,
        platform: shared::ids::Platform,
        app_id: &str,
        token: &str,
        expires_at: u64,
        owner: &str,
    ) -> Result<(), StoreError> {
        let mut tokens = self.tokens.lock().map_err(|_| poisoned())?;
        let entry = tokens.entry(app_key(platform, app_id)).or_default();
        entry.0 = Some(shared::ports::CachedToken {
            token: shared::secret::Secret::new(token),
            expires_at,
        });
        if entry
            .1
            .as_ref()
            .is_some_and(|(held_by, _)| held_by == owner)
        {
            entry.1 = None;
        }
        Ok(())
    }

    async fn release_lease(
        &self,
        platform: shared::ids::Platform,
        app_id: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        let mut tokens = self.tokens.lock().map_err(|_| poisoned())?;
        if let Some(entry) = tokens.get_mut(&app_key(platform, app_id))
            && entry
                .1
                .as_ref()
                .is_some_and(|(held_by, _)| held_by == owner)
        {
            entry.1 = None;
        }
        Ok(())
    }

    async fn invalidate_if_equals(
        &self,
        platform: shared::ids::Platform,
        app_id: &str,
        failed: &str,
    ) -> Result<bool, StoreError> {
        let mut tokens = self.tokens.lock().map_err(|_| poisoned())?;
        match tokens.get_mut(&app_key(platform, app_id)) {
            Some((t @ Some(_), _)) if t.as_ref().is_some_and(|c| c.token.expose() == failed) => {
                *t = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// In-memory media ids by (platform, app, digest), each with the time until which it is reused.
#[derive(Debug, Default)]
pub struct InMemoryMediaIds {
    ids: Mutex<BTreeMap<(String, String), (String, u64)>>,
}

impl InMemoryMediaIds {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl shared::ports::MediaIdCache for InMemoryMediaIds {
    async fn get_media_id(
        &self,
        platform: shared::ids::Platform,
        app_id: &str,
        digest: &str,
        now: u64,
    ) -> Result<Option<String>, StoreError> {
        let ids = self.ids.lock().map_err(|_| poisoned())?;
        Ok(ids
            .get(&(app_key(platform, app_id), digest.to_owned()))
            .filter(|(_, expires_at)| *expires_at > now)
            .map(|(id, _)| id.clone()))
    }

    async fn put_media_id(
        &self,
        platform: shared::ids::Platform,
        app_id: &str,
        digest: &str,
        media_id: &str,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        let mut ids = self.ids.lock().map_err(|_| poisoned())?;
        ids.insert(
            (app_key(platform, app_id), digest.to_owned()),
            (media_id.to_owned(), expires_at),
        );
        Ok(())
    }
}

#[async_trait]
impl shared::ports::OutboundStore for InMemoryStore {
    async fn record_outbound(
        &self,
        record: &shared::records::OutboundRecord,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        let position = format!(
            "{}#o#{}",
            shared::message::sort_time(record.sent_at),
            record.id
        );
        state.messages.insert(
            (record.key.to_string(), position.clone()),
            StoredMessage {
                position,
                direction: Direction::Out,
                msg_type: record.msg_type.clone(),
                create_time: record.sent_at,
                msg_id: None,
                content: record.content.clone(),
                media: record.media.clone(),
                status: Some(record.status),
                errcode: record.errcode,
                raw: None,
                agent: record.agent.clone(),
                stored_media: None,
            },
        );
        Ok(())
    }

    async fn claim(
        &self,
        request: &shared::ports::ClaimRequest<'_>,
    ) -> Result<shared::ports::Claim, StoreError> {
        use shared::ports::Claim;
        let mut claims = self.claims.lock().map_err(|_| poisoned())?;
        let fresh = ClaimState {
            fingerprint: request.fingerprint.to_owned(),
            lease_until: request.lease_until,
            stage: Stage::Pending,
        };
        let Some(held) = claims.get(request.key) else {
            claims.insert(request.key.to_owned(), fresh);
            return Ok(Claim::New);
        };
        if held.fingerprint != request.fingerprint {
            return Ok(Claim::Reused);
        }
        let expired = held.lease_until < request.now;
        Ok(match &held.stage {
            Stage::Done(response) => Claim::Completed(response.clone()),
            Stage::Pending if expired => {
                claims.insert(request.key.to_owned(), fresh);
                Claim::New
            }
            Stage::Sending if expired => Claim::Interrupted,
            Stage::Pending | Stage::Sending => Claim::InProgress,
        })
    }

    async fn start_sending(&self, idempotency_key: &str) -> Result<(), StoreError> {
        let mut claims = self.claims.lock().map_err(|_| poisoned())?;
        if let Some(held) = claims.get_mut(idempotency_key) {
            held.stage = Stage::Sending;
        }
        Ok(())
    }

    async fn complete(&self, idempotency_key: &str, response: &str) -> Result<(), StoreError> {
        let mut claims = self.claims.lock().map_err(|_| poisoned())?;
        if let Some(held) = claims.get_mut(idempotency_key) {
            held.stage = Stage::Done(response.to_owned());
        }
        Ok(())
    }

    async fn abandon(&self, idempotency_key: &str) -> Result<(), StoreError> {
        let mut claims = self.claims.lock().map_err(|_| poisoned())?;
        claims.remove(idempotency_key);
        Ok(())
    }
}

/// An idempotency key as the in-memory store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClaimState {
    fingerprint: String,
    lease_until: u64,
    stage: Stage,
}

/// Where a claimed request is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Pending,
    Sending,
    Done(String),
}
