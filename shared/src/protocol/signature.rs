//! The platforms' request signature: lowercase hex SHA-1 over the sorted, concatenated parts.
//!
//! `signature` signs (token, timestamp, nonce); `msg_signature` signs (token, timestamp, nonce,
//! Encrypt). Sorting is plain byte order (docs/protocol.md §2.3). Comparison is constant-time and
//! case-sensitive: the platforms send lowercase hex. Pure: no I/O, no logging.

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// Length of a signature: SHA-1 in lowercase hex.
const SIGNATURE_LEN: usize = 40;

/// A computed signature: 40 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl Signature {
    /// Signs the given parts: sort them bytewise, concatenate, SHA-1, lowercase hex.
    pub fn compute(parts: &mut [&str]) -> Self {
        parts.sort_unstable();
        let mut hasher = Sha1::new();
        for part in parts.iter() {
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        let mut out = [0u8; SIGNATURE_LEN];
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, byte) in digest.iter().enumerate() {
            out[2 * i] = HEX[usize::from(byte >> 4)];
            out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
        Self(out)
    }

    /// The 3-part `signature` of URL verification and plaintext pushes.
    pub fn plain(token: &str, timestamp: &str, nonce: &str) -> Self {
        Self::compute(&mut [token, timestamp, nonce])
    }

    /// The 4-part `msg_signature` that authenticates an `Encrypt` value.
    pub fn message(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> Self {
        Self::compute(&mut [token, timestamp, nonce, encrypt])
    }

    /// The signature as a string slice.
    pub fn as_str(&self) -> &str {
        // The buffer only ever holds ASCII hex digits.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Whether `given` equals this signature, compared in constant time (case-sensitive).
    pub fn matches(&self, given: &str) -> bool {
        let given = given.as_bytes();
        if given.len() != self.0.len() {
            return false;
        }
        // Word by word (5 constant-time comparisons instead of 40); the length is public.
        const _: () = assert!(SIGNATURE_LEN.is_multiple_of(8), "whole words only");
        let word = |b: &[u8]| u64::from_ne_bytes(<[u8; 8]>::try_from(b).unwrap_or_default());
        let equal = self
            .0
            .chunks_exact(8)
            .zip(given.chunks_exact(8))
            .fold(subtle::Choice::from(1), |acc, (a, b)| {
                acc & word(a).ct_eq(&word(b))
            });
        bool::from(equal)
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_verification_example() {
        // docs/protocol.md §1.1: Token AAAAA, sorted "15147114921714036504AAAAA".
        let sig = Signature::plain("AAAAA", "1714036504", "1514711492");
        assert_eq!(sig.as_str(), "f464b24fc39322e44b38aa78f5edd27bd1441696");
        assert!(sig.matches("f464b24fc39322e44b38aa78f5edd27bd1441696"));
        assert!(!sig.matches("F464B24FC39322E44B38AA78F5EDD27BD1441696"));
        assert!(!sig.matches("f464b24fc39322e44b38aa78f5edd27bd144169"));
        assert!(!sig.matches(""));
    }
}
