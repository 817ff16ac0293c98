//! [`MediaIdCache`] on DynamoDB, on the tokens table: one item per (platform, app, image digest),
//! `media#platform#app_id#sha1`, holding the media id (`media`), the time until which it is reused
//! (`expires_at`) and DynamoDB's `ttl` (the same time: nothing reads it after). A `GetItem` and a
//! `PutItem`; no expression.
//!
//! The key changed from `token#platform#app_id#media#sha1`, when media ids were stored as if they
//! were the access token of a made-up app id: under the access-token cache's prefix, read and
//! written by its methods (each put also tried to drop a refresh lease that could not exist).
//! `media#` now names the kind, as `token#` and `idem#` do theirs, so a look at the table tells
//! which item is what, and no media item can be taken for a token. Items under the old key are
//! never read again; they are a cache, and DynamoDB's TTL removes them within a few days.
//!
//! Not here: the item layout ([`items::media_item`]) or when an id is worth reusing (the sender:
//! 3 days less a margin).

use async_trait::async_trait;

use super::items;
use super::{DynamoDbStore, unavailable};
use crate::ids::Platform;
use crate::ports::{MediaIdCache, StoreError};

#[async_trait]
impl MediaIdCache for DynamoDbStore {
    async fn get_media_id(
        &self,
        platform: Platform,
        app_id: &str,
        digest: &str,
        now: u64,
    ) -> Result<Option<String>, StoreError> {
        let pk = items::media_pk(platform, app_id, digest);
        match self.tokens_item(&pk).await? {
            Some(item) => items::media_id_from_item(&item, &pk, now),
            None => Ok(None),
        }
    }

    async fn put_media_id(
        &self,
        platform: Platform,
        app_id: &str,
        digest: &str,
        media_id: &str,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(self.tokens_table()?)
            .set_item(Some(items::media_item(
                platform, app_id, digest, media_id, expires_at,
            )))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
