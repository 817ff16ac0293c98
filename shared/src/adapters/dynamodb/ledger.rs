//! [`QuotaLedger`] on DynamoDB, on the conversations table (docs/design.md §6): one conditional
//! write per reservation, and releases / platform refusals conditioned on the grant generation the
//! units were reserved under.
//!
//! Not here: the expressions ([`expressions`]: `RESERVE_*`, `RELEASE_UPDATE`, the generation
//! conditions) or the window rule ([`Window::consume`], which only names a refusal here).

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::conditional::{applied, is_condition_failed};
use super::expressions;
use super::expressions::Expression;
use super::items::{self, ItemReader, s};
use super::{DynamoDbStore, WithExpression, unavailable};
use crate::ids::ConversationKey;
use crate::ports::{QuotaLedger, Reservation, StoreError};
use crate::quota::{Refusal, Window};

#[async_trait]
impl QuotaLedger for DynamoDbStore {
    async fn reserve(
        &self,
        key: &ConversationKey,
        units: u32,
        now: u64,
    ) -> Result<Reservation, StoreError> {
        let pk = key.to_string();
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.conversations)
            .key(items::PK, s(&pk))
            .expression(expressions::reserve(
                units,
                now,
                now + crate::quota::SEND_HORIZON_SECS,
            ))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                let r = ItemReader::new(&item, pk.clone());
                Ok(Reservation::Reserved {
                    window: Window {
                        remaining: r.opt_n(items::REMAINING)?.unwrap_or(0),
                        expires_at: r.opt_n(items::EXPIRES_AT)?.unwrap_or(0),
                    },
                    generation: r.opt_n(items::GENERATION)?.unwrap_or(0),
                })
            }
            Err(err) if is_condition_failed(&err) => {
                let old = match err.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(e)) => e.item.clone(),
                    _ => None,
                };
                let Some(item) = old else {
                    return Ok(Reservation::NoConversation);
                };
                let r = ItemReader::new(&item, pk.clone());
                let window = Window {
                    remaining: r.opt_n(items::REMAINING)?.unwrap_or(0),
                    expires_at: r.opt_n(items::EXPIRES_AT)?.unwrap_or(0),
                };
                let refusal = match window.consume(units, now) {
                    Err(refusal) => refusal,
                    // The item changed between the check and now; report it as exhausted.
                    Ok(_) => Refusal::QuotaExhausted,
                };
                Ok(Reservation::Refused(refusal, window))
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn release(
        &self,
        key: &ConversationKey,
        units: u32,
        generation: u64,
    ) -> Result<bool, StoreError> {
        self.conditional_update(key, expressions::release(units, generation))
            .await
    }

    async fn exhaust(&self, key: &ConversationKey, generation: u64) -> Result<(), StoreError> {
        self.conditional_update(key, expressions::exhaust(generation))
            .await
            .map(|_| ())
    }

    async fn close_window(
        &self,
        key: &ConversationKey,
        now: u64,
        generation: u64,
    ) -> Result<(), StoreError> {
        self.conditional_update(key, expressions::close_window(now, generation))
            .await
            .map(|_| ())
    }
}

impl DynamoDbStore {
    /// One conditional update of a conversation; whether it was applied.
    async fn conditional_update(
        &self,
        key: &ConversationKey,
        expression: Expression,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.conversations)
            .key(items::PK, s(key.to_string()))
            .expression(expression)
            .send()
            .await;
        applied(result)
    }
}
