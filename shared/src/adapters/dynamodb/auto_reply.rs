//! [`AutoReplyStore`] on DynamoDB: the markers `auto_greeting_until` / `auto_away_until` on the
//! conversation item, each claim one conditional `UpdateItem` (and, when it loses, a second one
//! that moves the marker on within the same window).

use async_trait::async_trait;

use super::DynamoDbStore;
use super::conditional::applied;
use super::items::{self, n, s};
use crate::desk::auto_reply::AutoReplyKind;
use crate::ids::ConversationKey;
use crate::ports::StoreError;
use crate::ports::auto_reply::AutoReplyStore;

fn marker(kind: AutoReplyKind) -> &'static str {
    match kind {
        AutoReplyKind::Greeting => items::AUTO_GREETING_UNTIL,
        AutoReplyKind::Away => items::AUTO_AWAY_UNTIL,
    }
}

#[async_trait]
impl AutoReplyStore for DynamoDbStore {
    async fn claim_auto_reply(
        &self,
        key: &ConversationKey,
        kind: AutoReplyKind,
        t: u64,
        until: u64,
    ) -> Result<bool, StoreError> {
        let update = |condition: &'static str| {
            self.client
                .update_item()
                .table_name(&self.tables.conversations)
                .key(items::PK, s(key.to_string()))
                .update_expression("SET #m = :until")
                .condition_expression(condition)
                .expression_attribute_names("#pk", items::PK)
                .expression_attribute_names("#m", marker(kind))
                .expression_attribute_values(":until", n(until))
        };
        // Due: never sent, or the window it was sent in ended before this action.
        let claimed = update("attribute_exists(#pk) AND (attribute_not_exists(#m) OR #m < :t)")
            .expression_attribute_values(":t", n(t))
            .send()
            .await;
        if applied(claimed)? {
            return Ok(true);
        }
        // Same window: it goes on until the new end (never moved back).
        let moved = update("attribute_exists(#pk) AND #m < :until").send().await;
        applied(moved)?;
        Ok(false)
    }

    async fn release_auto_reply(
        &self,
        key: &ConversationKey,
        kind: AutoReplyKind,
        until: u64,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.conversations)
            .key(items::PK, s(key.to_string()))
            .update_expression("REMOVE #m")
            .condition_expression("#m = :until")
            .expression_attribute_names("#m", marker(kind))
            .expression_attribute_values(":until", n(until))
            .send()
            .await;
        applied(result).map(|_| ())
    }
}
