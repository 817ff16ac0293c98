//! [`DeskSweep`] on DynamoDB: the agents holding conversations, by a filtered scan of the desk
//! table's profiles (`active > 0`), keys only.
//!
//! Not here: what the sweep releases (the desk function's `sweep`), the release itself (`desk`).

use async_trait::async_trait;

use super::items::{self, ItemReader, n, s};
use super::{DynamoDbStore, unavailable};
use crate::ports::StoreError;
use crate::ports::desk::DeskSweep;

#[async_trait]
impl DeskSweep for DynamoDbStore {
    async fn agents_holding(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(self.desk_table()?)
                .filter_expression("#sk = :profile AND #active > :zero")
                .projection_expression("#pk")
                .expression_attribute_names("#pk", items::PK)
                .expression_attribute_names("#sk", items::DESK_SK)
                .expression_attribute_names("#active", items::ACTIVE)
                .expression_attribute_values(":profile", s(items::SK_PROFILE))
                .expression_attribute_values(":zero", n(0))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                let r = ItemReader::new(item, "agent profile");
                if let Some(id) = r.req_s(items::PK)?.strip_prefix("agent#") {
                    out.push(id.to_owned());
                }
            }
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        Ok(out)
    }
}
