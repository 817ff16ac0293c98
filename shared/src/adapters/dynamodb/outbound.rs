//! Outbound records on the messages table and idempotency keys on the tokens table:
//! `idem#key` holds `state` S (`pending` → `sending` → `done`), `fingerprint` S, `lease_until` N,
//! `response` S and `ttl` N.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::conditional::applied;
use super::items::{self, ItemReader, n, s};
use super::{DynamoDbStore, unavailable};
use crate::ports::{Claim, ClaimRequest, OutboundStore, StoreError};
use crate::records::{OutboundRecord, OutboundStatus};

/// Idempotency key unused, or claimed for the same request by an attempt that died before it
/// started sending (its lease expired while `pending`).
pub const IDEM_CLAIMABLE: &str = "attribute_not_exists(pk) OR \
     (#state = :pending AND #lease_until < :now AND #fingerprint = :fp)";

fn idem_pk(key: &str) -> String {
    format!("idem#{key}")
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
