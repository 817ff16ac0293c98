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

/// A short, stable, non-reversible tag for a user id, for logs and error texts (FNV-1a, 8 hex).
pub fn short_hash(id: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// A storage key with its open id replaced by [`short_hash`] (`wechat#wx1#~1a2b3c4d…`), so
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
}
