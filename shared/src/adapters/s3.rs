//! [`MediaStore`] on S3: the stack's private, encrypted media bucket. `PutObject` by the sender
//! (the bucket's default encryption applies), presigned `GetObject` URLs for the desk's page.
//!
//! Not here: which images are kept (the sender's `auto_reply` consumer) or who may see them (the
//! desk's routes).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use crate::ports::StoreError;
use crate::ports::media_store::MediaStore;

/// The media bucket.
#[derive(Clone, Debug)]
pub struct MediaBucket {
    client: Client,
    bucket: String,
}

impl MediaBucket {
    /// The bucket `bucket` through `client`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// A client for `sdk`; against an emulator (`AWS_ENDPOINT_URL`) with path-style URLs.
    pub fn client(sdk: &aws_config::SdkConfig) -> Client {
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build();
        Client::from_conf(config)
    }
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

/// An SDK error with its whole chain (the service's code and message), never a body.
fn sdk<E: std::error::Error>(e: E) -> StoreError {
    StoreError::Unavailable(aws_sdk_s3::error::DisplayErrorContext(e).to_string().into())
}

#[async_trait]
impl MediaStore for MediaBucket {
    async fn put_image(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }

    async fn image_url(&self, key: &str, ttl: Duration) -> Result<String, StoreError> {
        let config = PresigningConfig::expires_in(ttl).map_err(unavailable)?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(sdk)?;
        Ok(request.uri().to_owned())
    }
}
