//! A wrapper for secret strings (tokens, keys, app secrets) that never prints its value.
//!
//! Not a vault: it only keeps secrets out of `Debug`/`Display` output and therefore out of logs.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A string that must not appear in logs; read it with [`Secret::expose`] at the point of use.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// The key of [`short_hash`], set once per process from the stack's `LOG_HASH_KEY`.
static HASH_KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Shortest `LOG_HASH_KEY` accepted, in bytes.
pub const MIN_HASH_KEY_BYTES: usize = 16;

/// Sets the key user ids are hashed with (first call wins). Deployed, every function of a stack
/// gets the same generated key, so one user has one tag across the stack's logs, and another
/// stack's tags do not match.
pub fn set_hash_key(key: &[u8]) {
    let _ = HASH_KEY.set(key.to_vec());
}

/// The hash key: the one set, else a random key for this process (an unconfigured run never
/// writes unkeyed, dictionary-reversible tags).
fn hash_key() -> &'static [u8] {
    HASH_KEY.get_or_init(|| {
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        (0u8..4)
            .flat_map(|i| state.hash_one(i).to_le_bytes())
            .collect()
    })
}

/// A short, stable, non-reversible tag for a user id, for logs and error texts: HMAC-SHA256 with
/// the stack's key, the first 64 bits as 16 hex digits (no dictionary reverses it without the key;
/// collisions only around 4 billion users).
pub fn short_hash(id: &str) -> String {
    keyed_hash(hash_key(), id)
}

/// [`short_hash`] with an explicit key.
pub fn keyed_hash(key: &[u8], id: &str) -> String {
    use hmac::{KeyInit, Mac};
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length; this branch cannot be reached.
        return "0".repeat(16);
    };
    mac.update(id.as_bytes());
    mac.finalize().into_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A storage key with its open id replaced by [`short_hash`] (`wechat#wx1#~1a2b3c4d5e6f7a8b…`), so
/// errors that name a key can be logged. Keys without an open id are returned unchanged.
pub fn redact_key(key: &str) -> String {
    let mut parts = key.splitn(3, '#');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(p @ ("wechat" | "baidu")), Some(app), Some(rest)) => {
            let (open_id, tail) = rest
                .split_once('|')
                .map_or((rest, None), |(o, t)| (o, Some(t)));
            let mut out = format!("{p}#{app}#~{}", short_hash(open_id));
            if let Some(t) = tail {
                out.push('|');
                out.push_str(t);
            }
            out
        }
        _ => key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn redacts_open_ids_in_keys() {
        let k = redact_key("wechat#wx1#oSecretUser|0000000001#m#5");
        assert!(!k.contains("oSecretUser"));
        assert!(
            k.starts_with("wechat#wx1#~") && k.ends_with("|0000000001#m#5"),
            "{k}"
        );
        assert_eq!(redact_key("token#wechat#wx1"), "token#wechat#wx1");
    }

    #[test]
    fn user_tags_are_a_keyed_64_bit_hmac() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") = f7bc83f430538424…
        let fox = "The quick brown fox jumps over the lazy dog";
        assert_eq!(keyed_hash(b"key", fox), "f7bc83f430538424");
        // Another stack's key gives another tag: no dictionary of one stack works on another.
        assert_ne!(
            keyed_hash(b"key", "oUser"),
            keyed_hash(b"other key", "oUser")
        );
        assert_eq!(short_hash("oUser"), short_hash("oUser"));
        assert_eq!(short_hash("oUser").len(), 16);
    }
}
