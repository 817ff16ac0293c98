//! The quota ledger on the conversations table (docs/design.md §6): one conditional write per
//! reservation, and releases / platform refusals conditioned on the grant generation the units
//! were reserved under.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::conditional::{applied, is_condition_failed};
use super::expressions;
use super::items::{self, ItemReader, n, s};
use super::{DynamoDbStore, unavailable};
use crate::message::ConversationKey;
use crate::ports::{QuotaLedger, Reservation, StoreError};
use crate::quota::{Refusal, Window};

/// Reserve: `remaining >= :k AND expires_at > :now` (docs/design.md §6).
pub const RESERVE_CONDITION: &str = "#remaining >= :k AND #expires_at > :now";
/// Reserve: take the units, and count them as spent until `:until` = now +
/// [`crate::quota::SEND_HORIZON_SECS`] ([`crate::quota::Ledger::spent`]).
pub const RESERVE_UPDATE: &str =
    "SET #remaining = #remaining - :k, #spent_at = :until ADD #spent :k";
/// Release, exhaust, close: only while no grant was applied since the reservation. A
/// conversation never granted has no `grant_gen` (generation 0).
pub const SAME_GENERATION: &str = "#grant_gen = :gen";
/// [`SAME_GENERATION`] for generation 0.
pub const NO_GENERATION_YET: &str = "attribute_not_exists(#grant_gen)";
/// Release: give the units back (`spent` keeps them: it may only over-count).
pub const RELEASE_UPDATE: &str = "SET #remaining = #remaining + :k";
/// The generation condition and its value (`None` for generation 0, which has no value).
fn generation_condition(generation: u64) -> (&'static str, Option<AttributeValue>) {
    if generation == 0 {
        (NO_GENERATION_YET, None)
    } else {
        (SAME_GENERATION, Some(n(generation)))
    }
}

#[async_trait]
impl QuotaLedger for DynamoDbStore {
    async fn reserve(
        &self,
        key: &ConversationKey,
        units: u32,
        now: u64,
    ) -> Result<Reservation, StoreError> {
        let pk = key.partition_key();
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.conversations)
            .key(items::PK, s(&pk))
            .condition_expression(format!("attribute_exists(#pk) AND {RESERVE_CONDITION}"))
            .update_expression(RESERVE_UPDATE)
            .expression_attribute_names("#remaining", items::REMAINING)
            .expression_attribute_names("#expires_at", items::EXPIRES_AT)
            .expression_attribute_names("#spent", items::SPENT)
            .expression_attribute_names("#spent_at", items::SPENT_AT)
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_values(":k", n(units))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":until", n(now + crate::quota::SEND_HORIZON_SECS))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
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
        let condition = "attribute_exists(#pk)";
        self.update_in_generation(key, condition, RELEASE_UPDATE, (":k", n(units)), generation)
            .await
    }

    async fn exhaust(&self, key: &ConversationKey, generation: u64) -> Result<(), StoreError> {
        let (condition, update) = ("attribute_exists(#pk)", "SET #remaining = :zero");
        self.update_in_generation(key, condition, update, (":zero", n(0)), generation)
            .await
            .map(|_| ())
    }

    async fn close_window(
        &self,
        key: &ConversationKey,
        now: u64,
        generation: u64,
    ) -> Result<(), StoreError> {
        let (condition, update) = ("#expires_at > :now", "SET #expires_at = :now");
        self.update_in_generation(key, condition, update, (":now", n(now)), generation)
            .await
            .map(|_| ())
    }
}

impl DynamoDbStore {
    /// One conditional update of a conversation under `condition` and the generation condition;
    /// whether it was applied.
    async fn update_in_generation(
        &self,
        key: &ConversationKey,
        condition: &str,
        update: &str,
        value: (&str, AttributeValue),
        generation: u64,
    ) -> Result<bool, StoreError> {
        let (same_generation, gen_value) = generation_condition(generation);
        let e = expressions::build(
            update.to_owned(),
            format!("{condition} AND {same_generation}"),
            vec![(value.0, Some(value.1)), (":gen", gen_value)],
        );
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.conversations)
            .key(items::PK, s(key.partition_key()))
            .update_expression(e.update)
            .condition_expression(e.condition)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .send()
            .await;
        applied(result)
    }
}
