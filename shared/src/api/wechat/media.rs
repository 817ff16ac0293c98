//! WeChat's `media/get`: the bytes of a temporary media id (an inbound image's `MediaId`, kept by
//! WeChat for 3 days), so kefu can keep the image longer. An answer in JSON is an error; anything
//! else is the file, with its content type.

use super::{PlatformError, WechatClient, body_bytes, classify, parse_json, url_with};

/// `GET /cgi-bin/media/get?access_token=…&media_id=…`.
pub const MEDIA_GET_PATH: &str = "/cgi-bin/media/get";

/// A downloaded media file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The content type the platform gave (`image/jpeg` when it gave none).
    pub content_type: String,
}

impl WechatClient {
    /// Downloads temporary media; at most `max_bytes` are accepted.
    #[tracing::instrument(skip_all)]
    pub async fn get_media(
        &self,
        token: &str,
        media_id: &str,
        max_bytes: usize,
    ) -> Result<Media, PlatformError> {
        let url = url_with(
            &self.base,
            MEDIA_GET_PATH,
            &[("access_token", token), ("media_id", media_id)],
        )?;
        self.retry
            .run(|| async {
                let resp = self
                    .http
                    .get(url.clone())
                    .send()
                    .await
                    .map_err(PlatformError::from_reqwest)?;
                let status = resp.status();
                let content_type = resp
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("image/jpeg")
                    .to_owned();
                let bytes = body_bytes(resp).await?;
                let json = content_type.starts_with("application/json")
                    || content_type.starts_with("text/");
                if json || !status.is_success() {
                    let value = parse_json(status, &bytes)?;
                    super::check(&value, classify)?;
                    return Err(PlatformError::Protocol(format!(
                        "media/get answered HTTP {} without the file",
                        status.as_u16()
                    )));
                }
                if bytes.len() > max_bytes {
                    return Err(PlatformError::Rejected {
                        errcode: None,
                        errmsg: format!("media larger than {max_bytes} bytes"),
                    });
                }
                Ok(Media {
                    bytes,
                    content_type,
                })
            })
            .await
    }
}
