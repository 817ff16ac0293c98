//! Keeping an inbound image for the desk: the outbound queue's notice of an image message
//! (queued by the processor, so the copy is off its transaction path) → the bytes (WeChat
//! `media/get` by `MediaId` with the app's token — WeChat keeps them 3 days; Baidu the `PicUrl`,
//! under the image fetch policy) → the private media bucket → `stored_media` on the message, for
//! the desk to show through a short-lived signed URL.
//!
//! An image the platform no longer has (or a URL the policy refuses) is dropped with a log line;
//! anything that may pass (a token, the network, the bucket) fails the record for a redelivery.

use shared::api::PlatformError;
use shared::clock::Clock;
use shared::desk::auto_reply::ImageRef;
use shared::ids::{ConversationKey, Platform};
use shared::ports::media_store::{MediaStore, image_key};
use shared::ports::{AccessTokenCache, MediaIdCache, OutboundStore, QuotaLedger, StoreError};
use tracing::{info, warn};

use crate::auto_reply::DeskPorts;
use crate::token::CallError;
use crate::{App, SendError, pick_app};

/// Why an image could not be kept this time.
#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    /// The store or the bucket failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The platform or the network failed in a way that may pass.
    #[error("image not fetched: {0}")]
    Fetch(String),
}

/// The content type of image bytes, by their signature (JPEG when unknown).
pub fn sniff(bytes: &[u8]) -> &'static str {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        [b'G', b'I', b'F', b'8', ..] => "image/gif",
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => "image/webp",
        _ => "image/jpeg",
    }
}

impl<S, T, M, C> App<S, T, M, C>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    M: MediaIdCache,
    C: Clock,
{
    /// Copies the image of `image` into `media` and notes it on its message.
    pub(crate) async fn keep_image(
        &self,
        desk: &dyn DeskPorts,
        media: &dyn MediaStore,
        key: &ConversationKey,
        image: &ImageRef,
    ) -> Result<(), KeepError> {
        let max = self.config.max_image_bytes * 5;
        let fetched = match (key.platform, &image.media_id, &image.pic_url) {
            (Platform::Wechat, Some(id), _) => {
                let registry = self.registry.current().await;
                let app = match pick_app(&registry, &key.app_id, Some(Platform::Wechat)) {
                    Ok(app) => app,
                    Err(e) => {
                        warn!(reason = %e, "image not kept: the app cannot send");
                        return Ok(());
                    }
                };
                let got = self
                    .with_token(app, |token| async move {
                        self.clients.wechat.get_media(&token, id, max).await
                    })
                    .await;
                match got {
                    Ok(m) => Some((m.bytes, m.content_type)),
                    Err(CallError::Platform(e @ PlatformError::Rejected { .. })) => {
                        // 40007: WeChat no longer has it (older than 3 days), or never had it.
                        warn!(error.message = %e, "image not kept: the platform refused it");
                        None
                    }
                    Err(CallError::Platform(e)) => return Err(KeepError::Fetch(e.to_string())),
                    Err(CallError::Token(e)) => return Err(KeepError::Fetch(token_error(&e))),
                }
            }
            (_, _, Some(url)) => {
                match crate::fetch::fetch(&self.clients.images, &self.config.image_fetch, url, max)
                    .await
                {
                    Ok(bytes) => {
                        let kind = sniff(&bytes).to_owned();
                        Some((bytes, kind))
                    }
                    Err(why)
                        if [
                            "must be an https URL",
                            "non-public address",
                            "not a valid URL",
                        ]
                        .iter()
                        .any(|refused| why.contains(refused)) =>
                    {
                        warn!(reason = %why, "image not kept: its URL is refused");
                        None
                    }
                    Err(why) => return Err(KeepError::Fetch(why)),
                }
            }
            _ => None,
        };
        let Some((bytes, content_type)) = fetched else {
            return Ok(());
        };
        let object = image_key(key, &image.position);
        let size = bytes.len();
        media.put_image(&object, bytes, &content_type).await?;
        if !desk.image_kept(key, &image.position, &object).await? {
            warn!("image kept but its message is gone (expired)");
        }
        info!(platform = %key.platform, size, "image kept");
        Ok(())
    }
}

fn token_error(e: &SendError) -> String {
    e.body()["error"].as_str().unwrap_or("token").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_kinds_are_told_by_their_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(sniff(b"GIF89a"), "image/gif");
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), "image/jpeg");
    }
}
