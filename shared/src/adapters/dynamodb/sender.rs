//! The sender's side of the store: the quota ledger on the conversations table, the shared
//! access-token cache and idempotency keys on the tokens table (TTL attribute `ttl`), and outbound
//! records on the messages table.
//!
//! tokens table items:
//!
//! | `pk` | attributes |
//! | --- | --- |
//! | `token#platform#app_id` | `token` S, `expires_at` N, `lease_owner` S, `lease_until` N, `ttl` N |
//! | `idem#key` | `state` S (`pending` → `sending` → `done`), `fingerprint` S, `lease_until` N, `response` S, `ttl` N |

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::items::{self, ItemReader, n, s};
use super::{DynamoDbStore, unavailable};
use crate::Platform;
use crate::message::ConversationKey;
use crate::ports::{
    AccessTokenCache, CachedToken, Claim, ClaimRequest, OutboundRecord, OutboundStatus,
    OutboundStore, QuotaLedger, Reservation, StoreError,
};
use crate::quota::{Refusal, Window};
use crate::secret::Secret;

/// Reserve: `remaining >= :k AND expires_at > :now` (docs/design.md §6).
pub const RESERVE_CONDITION: &str = "#remaining >= :k AND #expires_at > :now";
/// Reserve: take the units.
pub const RESERVE_UPDATE: &str = "SET #remaining = #remaining - :k";
/// Release, exhaust, close: only while no grant was applied since the reservation. A
/// conversation never granted has no `grant_gen` (generation 0).
pub const SAME_GENERATION: &str = "#grant_gen = :gen";
/// [`SAME_GENERATION`] for generation 0.
pub const NO_GENERATION_YET: &str = "attribute_not_exists(#grant_gen)";
/// Release: give the units back.
pub const RELEASE_UPDATE: &str = "SET #remaining = #remaining + :k";
/// Token lease free: nobody holds an unexpired lease.
pub const LEASE_FREE: &str = "attribute_not_exists(lease_until) OR lease_until < :now";
/// Idempotency key unused, or claimed for the same request by an attempt that died before it
/// started sending (its lease expired while `pending`).
pub const IDEM_CLAIMABLE: &str = "attribute_not_exists(pk) OR \
     (#state = :pending AND #lease_until < :now AND #fingerprint = :fp)";

fn token_pk(platform: Platform, app_id: &str) -> String {
    format!("token#{platform}#{app_id}")
}

fn idem_pk(key: &str) -> String {
    format!("idem#{key}")
}

fn is_condition_failed<R>(err: &SdkError<UpdateItemError, R>) -> bool {
    matches!(
        err.as_service_error(),
        Some(UpdateItemError::ConditionalCheckFailedException(_))
    )
}

/// Whether a conditional update was applied: `false` when its condition failed, `Err` otherwise.
fn applied<O, R>(result: Result<O, SdkError<UpdateItemError, R>>) -> Result<bool, StoreError>
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_condition_failed(&err) => Ok(false),
        Err(err) => Err(unavailable(err)),
    }
}

/// The generation condition and its value (`None` for generation 0, which has no value).
fn generation_condition(
    generation: u64,
) -> (
    &'static str,
    Option<aws_sdk_dynamodb::types::AttributeValue>,
) {
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
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_values(":k", n(units))
            .expression_attribute_values(":now", n(now))
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
        let (condition, gen_value) = generation_condition(generation);
        let mut values: std::collections::HashMap<_, _> = [(":k".to_owned(), n(units))].into();
        values.extend(gen_value.map(|v| (":gen".to_owned(), v)));
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.conversations)
            .key(items::PK, s(key.partition_key()))
            .condition_expression(format!("attribute_exists(#pk) AND {condition}"))
            .update_expression(RELEASE_UPDATE)
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_names("#remaining", items::REMAINING)
            .expression_attribute_names("#grant_gen", items::GENERATION)
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        applied(result)
    }

    async fn exhaust(&self, key: &ConversationKey, generation: u64) -> Result<(), StoreError> {
        let (condition, gen_value) = generation_condition(generation);
        let mut values: std::collections::HashMap<_, _> = [(":zero".to_owned(), n(0))].into();
        values.extend(gen_value.map(|v| (":gen".to_owned(), v)));
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.conversations)
            .key(items::PK, s(key.partition_key()))
            .condition_expression(format!("attribute_exists(#pk) AND {condition}"))
            .update_expression("SET #remaining = :zero")
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_names("#remaining", items::REMAINING)
            .expression_attribute_names("#grant_gen", items::GENERATION)
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        applied(result).map(|_| ())
    }

    async fn close_window(
        &self,
        key: &ConversationKey,
        now: u64,
        generation: u64,
    ) -> Result<(), StoreError> {
        let (condition, gen_value) = generation_condition(generation);
        let mut values: std::collections::HashMap<_, _> = [(":now".to_owned(), n(now))].into();
        values.extend(gen_value.map(|v| (":gen".to_owned(), v)));
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.conversations)
            .key(items::PK, s(key.partition_key()))
            .condition_expression(format!("#expires_at > :now AND {condition}"))
            .update_expression("SET #expires_at = :now")
            .expression_attribute_names("#expires_at", items::EXPIRES_AT)
            .expression_attribute_names("#grant_gen", items::GENERATION)
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        applied(result).map(|_| ())
    }
}

#[async_trait]
impl AccessTokenCache for DynamoDbStore {
    async fn get_token(
        &self,
        platform: Platform,
        app_id: &str,
    ) -> Result<Option<CachedToken>, StoreError> {
        let pk = token_pk(platform, app_id);
        let out = self
            .client
            .get_item()
            .table_name(self.tokens_table()?)
            .key(items::PK, s(&pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let r = ItemReader::new(&item, pk);
        match (r.opt_s("token")?, r.opt_n::<u64>(items::EXPIRES_AT)?) {
            (Some(token), Some(expires_at)) => Ok(Some(CachedToken {
                token: Secret::new(token),
                expires_at,
            })),
            _ => Ok(None),
        }
    }

    async fn try_lease(
        &self,
        platform: Platform,
        app_id: &str,
        owner: &str,
        now: u64,
        lease_secs: u64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(self.tokens_table()?)
            .key(items::PK, s(token_pk(platform, app_id)))
            .condition_expression(LEASE_FREE)
            .update_expression("SET lease_owner = :owner, lease_until = :until")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":until", n(now + lease_secs))
            .send()
            .await;
        applied(result)
    }

    async fn put_token(
        &self,
        platform: Platform,
        app_id: &str,
        token: &str,
        expires_at: u64,
        owner: &str,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(self.tokens_table()?)
            .key(items::PK, s(token_pk(platform, app_id)))
            .update_expression("SET #token = :token, #expires_at = :exp, #ttl = :ttl")
            .expression_attribute_names("#token", "token")
            .expression_attribute_names("#expires_at", items::EXPIRES_AT)
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":exp", n(expires_at))
            .expression_attribute_values(":ttl", n(expires_at + 86_400))
            .send()
            .await
            .map_err(unavailable)?;
        // The lease may have expired and been taken by another instance: only ours is dropped.
        self.release_lease(platform, app_id, owner).await
    }

    async fn release_lease(
        &self,
        platform: Platform,
        app_id: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(self.tokens_table()?)
            .key(items::PK, s(token_pk(platform, app_id)))
            .condition_expression("lease_owner = :owner")
            .update_expression("REMOVE lease_owner, lease_until")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        applied(result).map(|_| ())
    }

    async fn invalidate_if_equals(
        &self,
        platform: Platform,
        app_id: &str,
        failed: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(self.tokens_table()?)
            .key(items::PK, s(token_pk(platform, app_id)))
            .condition_expression("#token = :failed")
            .update_expression("REMOVE #token, #expires_at")
            .expression_attribute_names("#token", "token")
            .expression_attribute_names("#expires_at", items::EXPIRES_AT)
            .expression_attribute_values(":failed", s(failed))
            .send()
            .await;
        applied(result)
    }
}

/// What a claim that found an existing item means for this request.
fn existing_claim(
    item: &items::Item,
    pk: String,
    request: &ClaimRequest<'_>,
) -> Result<Claim, StoreError> {
    let r = ItemReader::new(item, pk);
    if r.opt_s("fingerprint")?
        .is_some_and(|fp| fp != request.fingerprint)
    {
        return Ok(Claim::Reused);
    }
    let lease_until: Option<u64> = r.opt_n("lease_until")?;
    let expired = lease_until.is_some_and(|until| until < request.now);
    Ok(match (r.opt_s("state")?, r.opt_s("response")?) {
        (Some("done"), Some(resp)) => Claim::Completed(resp.to_owned()),
        (Some("sending"), _) if expired => Claim::Interrupted,
        _ => Claim::InProgress,
    })
}

#[async_trait]
impl OutboundStore for DynamoDbStore {
    async fn record_outbound(&self, record: &OutboundRecord) -> Result<(), StoreError> {
        let pk = record.key.partition_key();
        let mut item = items::Item::new();
        item.insert(items::PK.into(), s(&pk));
        item.insert(
            items::SK.into(),
            s(format!(
                "{}#o#{}",
                crate::message::sort_time(record.sent_at),
                record.id
            )),
        );
        item.insert(items::DIRECTION.into(), s(items::DIRECTION_OUT));
        item.insert(items::MSG_TYPE.into(), s(&record.msg_type));
        item.insert(items::CREATE_TIME.into(), n(record.sent_at));
        item.insert(items::STATUS.into(), s(record.status.as_str()));
        item.insert("parts".into(), n(record.parts));
        item.insert("parts_sent".into(), n(record.parts_sent));
        if let Some(c) = &record.content {
            item.insert(items::CONTENT.into(), s(c));
        }
        if let Some(m) = &record.media {
            item.insert(items::MEDIA.into(), s(m));
        }
        if let Some(e) = record.errcode {
            item.insert(items::ERRCODE.into(), n(e));
        }
        if let Some(secs) = self.message_retention_secs() {
            item.insert(items::TTL.into(), n(record.sent_at.saturating_add(secs)));
        }
        self.client
            .put_item()
            .table_name(&self.tables.messages)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        if record.status != OutboundStatus::Failed {
            let result = self
                .client
                .update_item()
                .table_name(&self.tables.conversations)
                .key(items::PK, s(&pk))
                .condition_expression("attribute_exists(#pk)")
                .update_expression("SET last_out_at = :t, updated_at = :t")
                .expression_attribute_names("#pk", items::PK)
                .expression_attribute_values(":t", n(record.sent_at))
                .send()
                .await;
            applied(result)?;
        }
        Ok(())
    }

    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Claim, StoreError> {
        let pk = idem_pk(request.key);
        let result = self
            .client
            .put_item()
            .table_name(self.tokens_table()?)
            .item(items::PK, s(&pk))
            .item("state", s("pending"))
            .item("fingerprint", s(request.fingerprint))
            .item("lease_until", n(request.lease_until))
            .item("ttl", n(request.now + request.ttl_secs))
            .condition_expression(IDEM_CLAIMABLE)
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#lease_until", "lease_until")
            .expression_attribute_names("#fingerprint", "fingerprint")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":now", n(request.now))
            .expression_attribute_values(":fp", s(request.fingerprint))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Claim::New),
            Err(err) => err,
        };
        let Some(PutItemError::ConditionalCheckFailedException(e)) = err.as_service_error() else {
            return Err(unavailable(err));
        };
        let old = match &e.item {
            Some(item) => Some(item.clone()),
            None => {
                self.client
                    .get_item()
                    .table_name(self.tokens_table()?)
                    .key(items::PK, s(&pk))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(unavailable)?
                    .item
            }
        };
        match old {
            Some(item) => existing_claim(&item, pk, request),
            None => Ok(Claim::InProgress),
        }
    }

    async fn start_sending(&self, idempotency_key: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(self.tokens_table()?)
            .key(items::PK, s(idem_pk(idempotency_key)))
            .update_expression("SET #state = :sending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", s("sending"))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn complete(&self, idempotency_key: &str, response: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(self.tokens_table()?)
            .key(items::PK, s(idem_pk(idempotency_key)))
            .update_expression("SET #state = :done, #response = :r")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#response", "response")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":r", s(response))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn abandon(&self, idempotency_key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(self.tokens_table()?)
            .key(items::PK, s(idem_pk(idempotency_key)))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
