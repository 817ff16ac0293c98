//! Logging setup and the canonical log field names.
//!
//! JSON lines on stdout (what Lambda's JSON log format expects), level from `RUST_LOG` (default
//! `info`). Metrics are in `metrics`. Never log message content, ciphertext, tokens, keys, secrets or URLs with
//! `access_token=`; name users by [`open_id_hash`] only.

use std::sync::Once;

/// Field: platform name.
pub const PLATFORM: &str = "platform";
/// Field: app id.
pub const APP_ID: &str = "app_id";
/// Field: outcome of the invocation or step.
pub const OUTCOME: &str = "outcome";

/// Installs the JSON subscriber once; later calls do nothing.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        // A subscriber may already be installed (tests, the local runner): keep it.
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(false)
            // No per-line span list (request and trace ids): Lambda's log stream already ties lines
            // to their invocation, and the list was ~185 bytes of every line.
            .with_span_list(false)
            .with_target(false)
            .without_time()
            .try_init();
    });
}

/// A short, stable, non-reversible tag for an open id, for logs: the stack-keyed HMAC of
/// [`crate::secret::short_hash`] (16 hex digits).
pub fn open_id_hash(open_id: &str) -> String {
    crate::secret::short_hash(open_id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn open_id_hash_is_short_and_stable() {
        assert_eq!(super::open_id_hash("oUser"), super::open_id_hash("oUser"));
        assert_ne!(super::open_id_hash("oUser"), super::open_id_hash("oUses"));
        assert_eq!(super::open_id_hash("x").len(), 16);
    }
}
