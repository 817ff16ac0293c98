//! WeChat images: bytes from `image.data` or fetched from `image.url` (under the fetch policy),
//! checked to be PNG, JPEG or GIF under the size cap, uploaded as temporary media, and the media
//! id reused for the same bytes until shortly before its 3-day expiry: the ids are kept in the
//! [`MediaIdCache`] port by (platform, app, SHA-1 of the bytes), apart from the access tokens.

use sha1::{Digest, Sha1};
use shared::clock::Clock;
use shared::ports::{AccessTokenCache, MediaIdCache, OutboundStore, QuotaLedger};
use shared::quota::Window;
use shared::registry::AppConfig;

use crate::compose::Upload;
use crate::deadline::Deadline;
use crate::error::{SendError, invalid};
use crate::token::CallError;
use crate::{App, fetch};

/// The image's content type from its magic bytes.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

/// Hex SHA-1 of image bytes: the media-id cache key (not a security boundary).
pub fn digest(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl<S, T, M, C> App<S, T, M, C>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    M: MediaIdCache,
    C: Clock,
{
    /// The media id for an image to upload (fetching it first when given by URL).
    pub(crate) async fn media_id(
        &self,
        app: &AppConfig,
        upload: Upload<'_>,
        deadline: &Deadline,
    ) -> Result<String, SendError> {
        let max = self.config.max_image_bytes;
        let bytes = match upload {
            Upload::Data(bytes) => {
                if bytes.len() > max {
                    return Err(invalid("image.data", format!("over {max} bytes")));
                }
                bytes.to_vec()
            }
            Upload::Url(url) => {
                let budget = deadline.budget();
                let fetched = tokio::time::timeout(
                    budget,
                    fetch::fetch(&self.clients.images, &self.config.image_fetch, url, max),
                )
                .await
                .map_err(|_| invalid("image.url", "fetch did not finish in time"))?;
                fetched.map_err(|reason| invalid("image.url", reason))?
            }
        };
        self.upload(app, bytes, deadline).await
    }

    /// Uploads image bytes (WeChat), reusing a cached media id for the same bytes.
    async fn upload(
        &self,
        app: &AppConfig,
        bytes: Vec<u8>,
        deadline: &Deadline,
    ) -> Result<String, SendError> {
        let now = self.clock.now_secs();
        let digest = digest(&bytes);
        if let Some(id) = self
            .media
            .get_media_id(app.platform, &app.app_id, &digest, now)
            .await?
        {
            return Ok(id);
        }
        let content_type =
            sniff_image(&bytes).ok_or_else(|| invalid("image", "not a PNG, JPEG or GIF image"))?;
        let filename = format!("image.{}", content_type.trim_start_matches("image/"));
        if !deadline.allows(self.config.platform_timeout) {
            return Err(SendError::NoTimeLeft);
        }
        let media_id = self
            .with_token(app, |token| {
                let bytes = bytes.clone();
                let filename = filename.clone();
                async move {
                    self.clients
                        .wechat
                        .upload_image(&token, bytes, &filename, content_type)
                        .await
                }
            })
            .await
            .map_err(|e| match e {
                CallError::Platform(e) => SendError::Platform(e, Window::default()),
                CallError::Token(e) => e,
            })?;
        self.media
            .put_media_id(
                app.platform,
                &app.app_id,
                &digest,
                &media_id,
                now + 3 * 86_400 - self.config.media_margin_secs,
            )
            .await?;
        Ok(media_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_three_image_types() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff_image(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(sniff_image(b"GIF89a.."), Some("image/gif"));
        assert_eq!(sniff_image(b"<svg>"), None);
    }
}
