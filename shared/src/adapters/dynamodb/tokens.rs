//! [`AccessTokenCache`] on DynamoDB, on the tokens table, shared by every sender instance: the item
//! `token#platform#app_id` holds the token (`token`, `expires_at`) and the refresh lease
//! (`lease_owner`, `lease_until`), which only its owner drops.
//!
//! Not here: the expressions ([`expressions`]: `LEASE_FREE`, `TAKE_LEASE`, `PUT_TOKEN`, …), the
//! item schema ([`items`]), or the media ids kept on the same table (`media`, its own port).

use async_trait::async_trait;

use super::conditional::applied;
use super::expressions;
use super::items::{self, s};
use super::{DynamoDbStore, WithExpression, unavailable};
use crate::ids::Platform;
use crate::ports::{AccessTokenCache, CachedToken, StoreError};

#[async_trait]
impl AccessTokenCache for DynamoDbStore {
    async fn get_token(
        &self,
        platform: Platform,
        app_id: &str,
    ) -> Result<Option<CachedToken>, StoreError> {
        let pk = items::token_pk(platform, app_id);
        match self.tokens_item(&pk).await? {
            Some(item) => items::cached_token_from_item(&item, &pk),
            None => Ok(None),
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
            .key(items::PK, s(items::token_pk(platform, app_id)))
            .expression(expressions::take_lease(owner, now, now + lease_secs))
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
        let ttl = expires_at + items::TOKEN_TTL_GRACE_SECS;
        self.client
            .update_item()
            .table_name(self.tokens_table()?)
            .key(items::PK, s(items::token_pk(platform, app_id)))
            .expression(expressions::put_token(token, expires_at, ttl))
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
            .key(items::PK, s(items::token_pk(platform, app_id)))
            .expression(expressions::release_lease(owner))
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
            .key(items::PK, s(items::token_pk(platform, app_id)))
            .expression(expressions::invalidate(failed))
            .send()
            .await;
        applied(result)
    }
}
