//! [`KeptImages`] on DynamoDB: `stored_media` on the inbound message's item, conditioned on the
//! item existing (an expired message is not brought back).

use async_trait::async_trait;

use super::DynamoDbStore;
use super::conditional::applied;
use super::items::{self, s};
use crate::ids::ConversationKey;
use crate::ports::StoreError;
use crate::ports::media_store::KeptImages;

#[async_trait]
impl KeptImages for DynamoDbStore {
    async fn image_kept(
        &self,
        key: &ConversationKey,
        position: &str,
        object: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.messages)
            .key(items::PK, s(key.to_string()))
            .key(items::SK, s(position))
            .update_expression("SET #m = :object")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#m", items::STORED_MEDIA)
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_values(":object", s(object))
            .send()
            .await;
        applied(result)
    }
}
