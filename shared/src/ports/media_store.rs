//! The ports for inbound images kept for the desk: bytes in, a short-lived URL out (the S3 adapter
//! is `adapters::s3`), and the message's note of where its image is (`adapters::dynamodb`).
//! Contracts only.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;
use crate::ids::ConversationKey;

/// Where an image of a conversation is kept: `images/<platform>/<app_id>/<open_id>/<position>`.
pub fn image_key(key: &ConversationKey, position: &str) -> String {
    format!(
        "images/{}/{}/{}/{}",
        key.platform, key.app_id, key.open_id, position
    )
}

/// The image store.
#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Keeps `bytes` under `key` (writing it again replaces it with the same bytes).
    async fn put_image(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError>;

    /// A URL that reads `key` for `ttl`, signed with the caller's credentials.
    async fn image_url(&self, key: &str, ttl: Duration) -> Result<String, StoreError>;
}

/// Where a message says its image is kept.
#[async_trait]
pub trait KeptImages: Send + Sync {
    /// Records on the message at `position` that its image is kept under `object`; `false` when
    /// there is no such message (it expired).
    async fn image_kept(
        &self,
        key: &ConversationKey,
        position: &str,
        object: &str,
    ) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_kept_under_its_conversation_and_position() {
        let key = ConversationKey {
            platform: crate::ids::Platform::Wechat,
            app_id: "wx1".into(),
            open_id: "o1".into(),
        };
        assert_eq!(
            image_key(&key, "0000000100#m#42"),
            "images/wechat/wx1/o1/0000000100#m#42"
        );
    }
}
