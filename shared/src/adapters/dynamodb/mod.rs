//! DynamoDB adapter: [`DynamoDbStore`] on the conversations, messages and tokens tables
//! (docs/design.md §5) implements the ports, one file per port:
//!
//! | port | file | tables |
//! | --- | --- | --- |
//! | [`MessageStore`](crate::ports::MessageStore) | [`messages`] | messages, conversations |
//! | [`QuotaLedger`](crate::ports::QuotaLedger) | [`ledger`] | conversations |
//! | [`OutboundStore`](crate::ports::OutboundStore) | [`outbound`] | messages, conversations, tokens |
//! | [`AccessTokenCache`](crate::ports::AccessTokenCache) | [`tokens`] | tokens |
//! | [`MediaIdCache`](crate::ports::MediaIdCache) | [`media`] | tokens |
//! | [`DeskStore`](crate::ports::desk::DeskStore) | [`desk`] | desk, conversations (list index), messages |
//!
//! Every expression they send is in [`expressions`], every attribute name and item mapping in
//! [`items`]; [`provision`] creates the tables from `infra/local/resources.json`.
//!
//! This file holds only what they share: the store, its [`Tables`], and the request plumbing
//! (putting an [`Expression`] on a request, the unavailable-error mapping). Not here: business
//! rules. The quota rule is [`Ledger::apply_grant`](crate::quota::Ledger::apply_grant); the
//! adapters only encode it as conditional writes.

pub mod auto_reply;
mod conditional;
pub mod desk;
pub mod desk_notes;
pub mod desk_stats;
pub mod desk_sweep;
pub mod expressions;
pub mod items;
pub mod kept_images;
pub mod ledger;
pub mod media;
pub mod messages;
pub mod outbound;
pub mod provision;
pub mod tokens;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::builders::{PutBuilder, UpdateBuilder};

use self::expressions::Expression;
use crate::config::{CONVERSATIONS_TABLE, ConfigError, Env, MESSAGES_TABLE, TOKENS_TABLE};
use crate::ports::StoreError;

/// The table names the store uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// Conversations table (`pk` S).
    pub conversations: String,
    /// Messages table (`pk` S, `sk` S).
    pub messages: String,
    /// Tokens table (`pk` S, TTL `ttl`): access tokens and leases, media ids, idempotency records.
    /// Only the sender has one; the processor's store has none.
    pub tokens: Option<String>,
    /// Desk table (`pk` S, `sk` S): agents, memberships, quick replies, settings. Only the desk
    /// has one.
    pub desk: Option<String>,
}

impl Tables {
    /// Reads `CONVERSATIONS_TABLE`, `MESSAGES_TABLE` and `TOKENS_TABLE` (all required: the sender).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            tokens: Some(env.required(TOKENS_TABLE)?),
            ..Self::inbound_from_env(env)?
        })
    }

    /// Reads `CONVERSATIONS_TABLE` and `MESSAGES_TABLE` only (the processor: no tokens table).
    pub fn inbound_from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            conversations: env.required(CONVERSATIONS_TABLE)?,
            messages: env.required(MESSAGES_TABLE)?,
            tokens: None,
            desk: None,
        })
    }
}

/// The ports on DynamoDB (see the table above).
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    tables: Tables,
    retention_secs: Option<u64>,
}

impl DynamoDbStore {
    /// A store on `tables` through `client` (build both once per cold start).
    pub fn new(client: Client, tables: Tables) -> Self {
        Self {
            client,
            tables,
            retention_secs: None,
        }
    }

    /// Messages written from now on expire (DynamoDB TTL) `days` after their time; 0 keeps them.
    #[must_use]
    pub fn with_message_retention_days(mut self, days: u64) -> Self {
        self.retention_secs = (days > 0).then(|| days.saturating_mul(86_400));
        self
    }

    /// The message retention in seconds, if any.
    pub fn message_retention_secs(&self) -> Option<u64> {
        self.retention_secs
    }

    /// The SDK client (shared with other adapters, e.g. the sender's quota updates).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table names.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The tokens table, or an error for a store built without one (the processor's).
    fn tokens_table(&self) -> Result<&str, StoreError> {
        self.tables
            .tokens
            .as_deref()
            .ok_or_else(|| StoreError::Corrupt {
                key: "tokens".into(),
                reason: "this store was built without a tokens table (TOKENS_TABLE)".into(),
            })
    }

    /// One item of the tokens table by its key, read consistently (tokens, media ids, idempotency
    /// records).
    async fn tokens_item(
        &self,
        pk: &str,
    ) -> Result<Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(self.tokens_table()?)
            .key(items::PK, items::s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?
            .item)
    }
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(err: E) -> StoreError {
    StoreError::Unavailable(Box::new(err))
}

/// Puts an [`Expression`] on a request: its strings, names and values, each only when it has one
/// (DynamoDB rejects empty expressions, names and values).
trait WithExpression: Sized {
    /// The request with `e`.
    fn expression(self, e: Expression) -> Self;
}

fn some<T: Default + PartialEq>(v: T) -> Option<T> {
    (v != T::default()).then_some(v)
}

fn some_map<V>(map: HashMap<String, V>) -> Option<HashMap<String, V>> {
    (!map.is_empty()).then_some(map)
}

impl WithExpression for UpdateItemFluentBuilder {
    fn expression(self, e: Expression) -> Self {
        self.set_update_expression(some(e.update))
            .set_condition_expression(some(e.condition))
            .set_expression_attribute_names(some_map(e.names))
            .set_expression_attribute_values(some_map(e.values))
    }
}

impl WithExpression for UpdateBuilder {
    fn expression(self, e: Expression) -> Self {
        self.set_update_expression(some(e.update))
            .set_condition_expression(some(e.condition))
            .set_expression_attribute_names(some_map(e.names))
            .set_expression_attribute_values(some_map(e.values))
    }
}

impl WithExpression for PutItemFluentBuilder {
    fn expression(self, e: Expression) -> Self {
        debug_assert!(e.update.is_empty(), "a Put has no update expression");
        self.set_condition_expression(some(e.condition))
            .set_expression_attribute_names(some_map(e.names))
            .set_expression_attribute_values(some_map(e.values))
    }
}

impl WithExpression for PutBuilder {
    fn expression(self, e: Expression) -> Self {
        debug_assert!(e.update.is_empty(), "a Put has no update expression");
        self.set_condition_expression(some(e.condition))
            .set_expression_attribute_names(some_map(e.names))
            .set_expression_attribute_values(some_map(e.values))
    }
}

impl WithExpression for QueryFluentBuilder {
    fn expression(self, e: Expression) -> Self {
        debug_assert!(e.update.is_empty(), "a Query has no update expression");
        self.set_key_condition_expression(some(e.condition))
            .set_expression_attribute_names(some_map(e.names))
            .set_expression_attribute_values(some_map(e.values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_need_all_three_names() {
        let all = Env(|n: &str| Some(format!("t-{n}")));
        assert_eq!(
            Tables::from_env(&all).unwrap(),
            Tables {
                conversations: "t-CONVERSATIONS_TABLE".into(),
                messages: "t-MESSAGES_TABLE".into(),
                tokens: Some("t-TOKENS_TABLE".into()),
                desk: None,
            }
        );
        let inbound =
            Tables::inbound_from_env(&Env(|n: &str| (n != TOKENS_TABLE).then(|| "x".to_owned())))
                .unwrap();
        assert_eq!(inbound.tokens, None, "the processor needs no tokens table");
        let no_tokens = Env(|n: &str| (n != TOKENS_TABLE).then(|| "x".to_owned()));
        assert_eq!(
            Tables::from_env(&no_tokens),
            Err(ConfigError::Missing(TOKENS_TABLE))
        );
    }
}
