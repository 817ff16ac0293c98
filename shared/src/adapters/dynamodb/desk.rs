//! [`DeskStore`] on DynamoDB: agents in the desk table, conversation moves as one
//! `TransactWriteItems` of the conversation (conditioned on the list it is in), the agent's count
//! of held conversations (conditioned on capacity for an accept) and a timeline item in the
//! messages table — so two agents accepting at once cannot both win, and nobody exceeds capacity.
//!
//! Not here: the expressions (`expressions::desk`), item names (`items`), or the rules (`desk`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};

use super::conditional::applied;
use super::expressions::desk::{self as ex, ACCEPT_UPDATE, MOVE_UPDATE, Move, UNASSIGN_UPDATE};
use super::items::ItemReader;
use super::items::{self, Item, conversation_from_item, n, s};
use super::{DynamoDbStore, WithExpression, unavailable};
use crate::desk::{self, Agent, AgentStatus, DeskEvent, DeskList, DeskState, Role};
use crate::ids::ConversationKey;
use crate::ports::StoreError;
use crate::ports::desk::{AcceptOutcome, Actor, DeskStore};
use crate::records::Conversation;

/// Attempts of a transaction that DynamoDB cancelled for a conflict with another one.
const MAX_CONFLICT_ATTEMPTS: u32 = 6;

fn agent_pk(id: &str) -> String {
    format!("agent#{id}")
}

fn app_pk(app: &str) -> String {
    format!("app#{app}")
}

/// What a cancelled move says, item by item (index 0 the conversation, 1 the agent).
#[derive(Debug, PartialEq)]
enum Cancelled {
    /// The conversation's condition failed; the item as it was.
    Conversation(Option<Item>),
    /// The agent's condition failed (no such agent, or at capacity).
    Agent,
    /// Another transaction was writing the same items.
    Conflict,
    /// Anything else.
    Other,
}

fn classify(reasons: &[CancellationReason]) -> Cancelled {
    let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
    if reasons
        .iter()
        .any(|r| r.code() == Some("TransactionConflict"))
    {
        return Cancelled::Conflict;
    }
    match (code(0), code(1)) {
        ("ConditionalCheckFailed", _) => Cancelled::Conversation(reasons[0].item().cloned()),
        (_, "ConditionalCheckFailed") => Cancelled::Agent,
        _ => Cancelled::Other,
    }
}

impl DynamoDbStore {
    /// The desk table's name, or an error for a store built without one.
    pub(super) fn desk_table(&self) -> Result<&str, StoreError> {
        self.tables
            .desk
            .as_deref()
            .ok_or_else(|| StoreError::Unavailable("this store has no desk table".into()))
    }

    /// The timeline item of a desk event.
    fn event_item(&self, key: &ConversationKey, event: DeskEvent, by: Actor<'_>) -> Item {
        let mut item: Item = [
            (items::PK, s(key.to_string())),
            (
                items::SK,
                s(format!(
                    "{:010}#~d#{}-{}",
                    by.now_secs(),
                    by.now_ms,
                    by.agent
                )),
            ),
            (items::DIRECTION, s(items::DIRECTION_DESK)),
            (items::MSG_TYPE, s(event.as_str())),
            (items::CREATE_TIME, n(by.now_secs())),
            (items::AGENT, s(by.agent)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(retention) = self.retention_secs {
            item.insert(items::TTL.into(), n(by.now_secs() + retention));
        }
        item
    }

    /// One move: the conversation update, the agent's count (`agent`: id and expression), the
    /// timeline item; retried on conflicts.
    async fn apply_move(
        &self,
        key: &ConversationKey,
        conversation: super::expressions::Expression,
        agent: Option<(&str, super::expressions::Expression)>,
        event: Item,
    ) -> Result<Result<(), Cancelled>, StoreError> {
        let update = Update::builder()
            .table_name(&self.tables.conversations)
            .key(items::PK, s(key.to_string()))
            .expression(conversation)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(unavailable)?;
        let mut writes = vec![TransactWriteItem::builder().update(update).build()];
        if let Some((id, e)) = agent {
            let update = Update::builder()
                .table_name(self.desk_table()?)
                .key(items::PK, s(agent_pk(id)))
                .key(items::DESK_SK, s(items::SK_PROFILE))
                .expression(e)
                .build()
                .map_err(unavailable)?;
            writes.push(TransactWriteItem::builder().update(update).build());
        }
        let put = Put::builder()
            .table_name(&self.tables.messages)
            .set_item(Some(event))
            .build()
            .map_err(unavailable)?;
        writes.push(TransactWriteItem::builder().put(put).build());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Ok(())),
                Err(err) => err,
            };
            let cancelled = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    classify(c.cancellation_reasons())
                }
                _ => return Err(unavailable(err)),
            };
            match cancelled {
                Cancelled::Conflict if attempt < MAX_CONFLICT_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
                }
                Cancelled::Conflict => {
                    return Err(StoreError::Contention(format!(
                        "a desk move conflicted with other writes {attempt} times"
                    )));
                }
                Cancelled::Other => return Err(unavailable(err)),
                other => return Ok(Err(other)),
            }
        }
    }
}

fn agent_from_item(item: &Item) -> Result<Agent, StoreError> {
    let pk = match item.get(items::PK) {
        Some(AttributeValue::S(pk)) => pk.as_str(),
        _ => "<agent without pk>",
    };
    let r = ItemReader::new(item, pk);
    let id = r
        .req_s(items::PK)?
        .strip_prefix("agent#")
        .ok_or_else(|| r.corrupt("agent pk without the agent# prefix".into()))?
        .to_owned();
    let mut apps = BTreeMap::new();
    if let Some(AttributeValue::M(m)) = r.item().get(items::APPS) {
        for (app, role) in m {
            let role = match role {
                AttributeValue::S(role) => Role::parse(role.as_str()),
                _ => None,
            }
            .ok_or_else(|| r.corrupt(format!("apps.{app} is not a role")))?;
            apps.insert(app.clone(), role);
        }
    }
    Ok(Agent {
        id,
        name: r.opt_s(items::NAME)?.unwrap_or_default().to_owned(),
        apps,
        capacity: r
            .opt_n(items::CAPACITY)?
            .unwrap_or(desk::agent::DEFAULT_CAPACITY),
        active: r.opt_n::<i64>(items::ACTIVE)?.unwrap_or(0).max(0) as u32,
        auto_accept: r.opt_bool(items::AUTO_ACCEPT)?.unwrap_or(false),
        status: r
            .opt_s(items::AGENT_STATUS)?
            .and_then(AgentStatus::parse)
            .unwrap_or(AgentStatus::Offline),
        heartbeat_at: r.opt_n(items::HEARTBEAT_AT)?.unwrap_or(0),
    })
}

#[async_trait]
impl DeskStore for DynamoDbStore {
    async fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(self.desk_table()?)
            .key(items::PK, s(agent_pk(id)))
            .key(items::DESK_SK, s(items::SK_PROFILE))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item.as_ref().map(agent_from_item).transpose()
    }

    async fn put_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        let table = self.desk_table()?;
        let old = self.agent(&agent.id).await?;
        let map = |apps: &BTreeMap<String, Role>| -> AttributeValue {
            AttributeValue::M(
                apps.iter()
                    .map(|(app, role)| (app.clone(), s(role.as_str())))
                    .collect::<HashMap<_, _>>(),
            )
        };
        if let Some(old) = &old
            && old.apps.keys().any(|app| !agent.apps.contains_key(app))
        {
            return Err(StoreError::Contention(format!(
                "agent {}: an app cannot be taken from an agent through the desk",
                agent.id
            )));
        }
        let old_apps = old
            .as_ref()
            .map(|o| map(&o.apps))
            .unwrap_or_else(|| map(&BTreeMap::new()));
        let profile = Update::builder()
            .table_name(table)
            .key(items::PK, s(agent_pk(&agent.id)))
            .key(items::DESK_SK, s(items::SK_PROFILE))
            .expression(ex::profile(
                &agent.name,
                map(&agent.apps),
                old_apps,
                agent.capacity,
                agent.auto_accept,
            ))
            .build()
            .map_err(unavailable)?;
        let mut writes = vec![TransactWriteItem::builder().update(profile).build()];
        for (app, role) in &agent.apps {
            let item: Item = [
                (items::PK, s(app_pk(app))),
                (items::DESK_SK, s(agent_pk(&agent.id))),
                (items::AGENT, s(&agent.id)),
                (items::ROLE, s(role.as_str())),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .build()
                .map_err(unavailable)?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .map_err(|err| match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(_)) => {
                    StoreError::Contention(format!(
                        "agent {} changed while it was being written; read it again",
                        agent.id
                    ))
                }
                _ => unavailable(err),
            })?;
        Ok(())
    }

    async fn members(&self, app: &str) -> Result<Vec<Agent>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(self.desk_table()?)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_values(":pk", s(app_pk(app)))
            .limit(desk::MAX_AGENTS_PER_APP as i32)
            .send()
            .await
            .map_err(unavailable)?;
        let mut agents = Vec::new();
        for item in output.items() {
            let id = ItemReader::new(item, app).req_s(items::AGENT)?;
            if let Some(agent) = self.agent(id).await? {
                agents.push(agent);
            }
        }
        Ok(agents)
    }

    async fn heartbeat(&self, id: &str, status: AgentStatus, now: u64) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(self.desk_table()?)
            .key(items::PK, s(agent_pk(id)))
            .key(items::DESK_SK, s(items::SK_PROFILE))
            .expression(ex::heartbeat(status.as_str(), now))
            .send()
            .await;
        if applied(result)? {
            Ok(())
        } else {
            Err(StoreError::Contention(format!("no agent {id}")))
        }
    }

    async fn accept(
        &self,
        key: &ConversationKey,
        by: Actor<'_>,
    ) -> Result<AcceptOutcome, StoreError> {
        let from = DeskList::Waiting(key).value();
        let to = DeskList::Agent(by.agent).value();
        let conversation = Move {
            from: &from,
            to: &to,
            state: DeskState::Active.as_str(),
            now_ms: by.now_ms,
            agent: Some(by.agent),
            idle_before: None,
        }
        .expression(ACCEPT_UPDATE);
        let event = self.event_item(key, DeskEvent::Accepted, by);
        match self
            .apply_move(key, conversation, Some((by.agent, ex::hold_one())), event)
            .await?
        {
            Ok(()) => Ok(AcceptOutcome::Accepted),
            Err(Cancelled::Conversation(None)) => Ok(AcceptOutcome::NotFound),
            Err(Cancelled::Conversation(Some(item))) => {
                let c = conversation_from_item(&item)?;
                Ok(AcceptOutcome::Taken {
                    assignee: c.assignee,
                })
            }
            Err(Cancelled::Agent) => match self.agent(by.agent).await? {
                Some(_) => Ok(AcceptOutcome::AtCapacity),
                None => Ok(AcceptOutcome::NotFound),
            },
            Err(other) => Err(StoreError::Unavailable(unexpected(&other).into())),
        }
    }

    async fn release(
        &self,
        key: &ConversationKey,
        assignee: &str,
        event: DeskEvent,
        by: Actor<'_>,
    ) -> Result<bool, StoreError> {
        let from = DeskList::Agent(assignee).value();
        let to = DeskList::Waiting(key).value();
        let idle_before = (event == DeskEvent::IdleReleased)
            .then(|| by.now_secs().saturating_sub(desk::IDLE_SECS));
        let conversation = Move {
            from: &from,
            to: &to,
            state: DeskState::Waiting.as_str(),
            now_ms: by.now_ms,
            agent: None,
            idle_before,
        }
        .expression(UNASSIGN_UPDATE);
        let item = self.event_item(key, event, by);
        let moved = self
            .apply_move(key, conversation, Some((assignee, ex::release_one())), item)
            .await?;
        moved_or_refused(moved)
    }

    async fn close(
        &self,
        key: &ConversationKey,
        assignee: Option<&str>,
        by: Actor<'_>,
    ) -> Result<bool, StoreError> {
        let to = DeskList::Closed(key).value();
        let item = self.event_item(key, DeskEvent::Closed, by);
        // From the holder's list (their count goes down), or from the waiting list.
        let (from, update, agent) = match assignee {
            Some(assignee) => (
                DeskList::Agent(assignee).value(),
                UNASSIGN_UPDATE,
                Some((assignee, ex::release_one())),
            ),
            None => (DeskList::Waiting(key).value(), MOVE_UPDATE, None),
        };
        let conversation = Move {
            from: &from,
            to: &to,
            state: DeskState::Closed.as_str(),
            now_ms: by.now_ms,
            agent: None,
            idle_before: None,
        }
        .expression(update);
        let moved = self.apply_move(key, conversation, agent, item).await?;
        moved_or_refused(moved)
    }

    async fn list(&self, list: &str, limit: u32) -> Result<Vec<Conversation>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.conversations)
            .index_name(items::BY_LIST_INDEX)
            .expression(ex::list_is(list))
            .scan_index_forward(true)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(unavailable)?;
        output.items().iter().map(conversation_from_item).collect()
    }
}

/// A cancellation `apply_move` does not hand back, named without the item (it
/// would carry message content).
fn unexpected(c: &Cancelled) -> String {
    let what = match c {
        Cancelled::Conversation(_) => "the conversation's condition",
        Cancelled::Agent => "the agent's condition",
        Cancelled::Conflict => "a conflict",
        Cancelled::Other => "an unknown reason",
    };
    format!("desk move cancelled by {what}")
}

fn moved_or_refused(moved: Result<(), Cancelled>) -> Result<bool, StoreError> {
    match moved {
        Ok(()) => Ok(true),
        Err(Cancelled::Conversation(_)) | Err(Cancelled::Agent) => Ok(false),
        Err(other) => Err(StoreError::Unavailable(unexpected(&other).into())),
    }
}
