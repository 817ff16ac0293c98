//! The access-token cache on the tokens table (TTL attribute `ttl`), shared by every sender
//! instance: `token#platform#app_id` holds `token` S, `expires_at` N and the refresh lease
//! (`lease_owner` S, `lease_until` N), dropped only by its owner. Media ids are cached the same way.

use async_trait::async_trait;

use super::conditional::applied;
use super::items::{self, ItemReader, n, s};
use super::{DynamoDbStore, unavailable};
use crate::Platform;
use crate::ports::{AccessTokenCache, CachedToken, StoreError};
use crate::secret::Secret;

/// Token lease free: nobody holds an unexpired lease.
pub const LEASE_FREE: &str = "attribute_not_exists(lease_until) OR lease_until < :now";
fn token_pk(platform: Platform, app_id: &str) -> String {
    format!("token#{platform}#{app_id}")
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
