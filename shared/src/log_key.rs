//! The stack's log-hash key (feature `secrets`): read once at cold start from the stack-generated
//! secret named by `LOG_HASH_KEY_SECRET_ID`, then installed for [`crate::secret::short_hash`].
//!
//! Deployed, a key that cannot be read fails the cold start, as an unreadable registry does: the
//! template grants the read, so a failure is a broken deploy to surface, not to log around. Local
//! runs without the variable keep a random per-process key.

use crate::secret::{MIN_HASH_KEY_BYTES, set_hash_key};

/// Why the key could not be installed (never contains the key).
#[derive(Debug, thiserror::Error)]
pub enum LogKeyError {
    /// Secrets Manager refused or failed.
    #[error("cannot read the log hash key secret {id}: {reason}")]
    Unreadable {
        /// The secret id.
        id: String,
        /// The SDK's error text.
        reason: String,
    },
    /// The secret holds no string, or one that is too short.
    #[error("the log hash key secret {0} is empty or shorter than {MIN_HASH_KEY_BYTES} bytes")]
    TooShort(String),
}

/// Reads the key from Secrets Manager and installs it; `None` (local runs) keeps the random key.
pub async fn install(
    sdk: &aws_config::SdkConfig,
    secret_id: Option<&str>,
) -> Result<(), LogKeyError> {
    let Some(id) = secret_id else {
        return Ok(());
    };
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| LogKeyError::Unreadable {
            id: id.to_owned(),
            reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
        })?;
    match out.secret_string() {
        Some(key) if key.len() >= MIN_HASH_KEY_BYTES => {
            set_hash_key(key.as_bytes());
            Ok(())
        }
        _ => Err(LogKeyError::TooShort(id.to_owned())),
    }
}
