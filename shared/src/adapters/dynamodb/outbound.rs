//! [`OutboundStore`] on DynamoDB: outbound records on the messages table (and the conversation's
//! `last_out_at`), idempotency records on the tokens table: `idem#key` holds `state` S (`pending` →
//! `sending` → `done`), `fingerprint` S, `lease_until` N, `response` S and `ttl` N.
//!
//! Not here: the expressions ([`expressions`]: `IDEM_CLAIMABLE`, `START_SENDING`, `COMPLETE`,
//! `SET_LAST_OUT`) or the items ([`items::outbound_message_item`], [`items::claim_item`]).

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::conditional::applied;
use super::expressions;
use super::items::{self, ItemReader, s};
use super::{DynamoDbStore, WithExpression, unavailable};
use crate::ports::{Claim, ClaimRequest, OutboundStore, StoreError};
use crate::records::{OutboundRecord, OutboundStatus};

/// What a claim that found an existing item means for this request.
fn existing_claim(
    item: &items::Item,
    pk: String,
    request: &ClaimRequest<'_>,
) -> Result<Claim, StoreError> {
    let r = ItemReader::new(item, pk);
    if r.opt_s(items::FINGERPRINT)?
        .is_some_and(|fp| fp != request.fingerprint)
    {
        return Ok(Claim::Reused);
    }
    let lease_until: Option<u64> = r.opt_n(items::LEASE_UNTIL)?;
    let expired = lease_until.is_some_and(|until| until < request.now);
    Ok(match (r.opt_s(items::STATE)?, r.opt_s(items::RESPONSE)?) {
        (Some(items::STATE_DONE), Some(resp)) => Claim::Completed(resp.to_owned()),
        (Some(items::STATE_SENDING), _) if expired => Claim::Interrupted,
        _ => Claim::InProgress,
    })
}

#[async_trait]
impl OutboundStore for DynamoDbStore {
    async fn record_outbound(&self, record: &OutboundRecord) -> Result<(), StoreError> {
        let item = items::outbound_message_item(record, self.message_retention_secs());
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
                .key(items::PK, s(record.key.to_string()))
                .expression(expressions::last_out(
                    record.sent_at,
                    !record
                        .agent
                        .as_deref()
                        .is_some_and(crate::desk::auto_reply::reserved_agent_id),
                ))
                .send()
                .await;
            applied(result)?;
        }
        Ok(())
    }

    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Claim, StoreError> {
        let pk = items::idem_pk(request.key);
        let result = self
            .client
            .put_item()
            .table_name(self.tokens_table()?)
            .set_item(Some(items::claim_item(request)))
            .expression(expressions::claimable(request.fingerprint, request.now))
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
            None => self.tokens_item(&pk).await?,
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
            .key(items::PK, s(items::idem_pk(idempotency_key)))
            .expression(expressions::start_sending())
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn complete(&self, idempotency_key: &str, response: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(self.tokens_table()?)
            .key(items::PK, s(items::idem_pk(idempotency_key)))
            .expression(expressions::complete(response))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn abandon(&self, idempotency_key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(self.tokens_table()?)
            .key(items::PK, s(items::idem_pk(idempotency_key)))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
