//! Byte search for the inbound hot path: the first occurrence of one byte, eight bytes at a time
//! in a register for the first 32 bytes (where the names and values of requests end, and where a
//! SIMD search's setup costs more than it saves), then `memchr`.
//!
//! Not here: anything that knows what the bytes mean.

/// The index of the first `needle` in `bytes`.
pub(crate) fn find(bytes: &[u8], needle: u8) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = u64::from_ne_bytes([needle; 8]);
    let mut at = 0;
    while at < 32 {
        let Some(chunk) = bytes.get(at..at + 8) else {
            break;
        };
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default()) ^ pattern;
        // The lowest flagged byte is the first zero byte of `x`, i.e. the first `needle`.
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    memchr::memchr(needle, &bytes[at..]).map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_occurrence_at_every_offset() {
        for needle in [b'"', b'&', b'=', 0x00, 0x80, 0xFF] {
            let other = if needle == b'a' { b'b' } else { b'a' };
            for len in 0..80 {
                for at in 0..=len {
                    let mut bytes = vec![other; len];
                    bytes.extend_from_slice(&[needle, other, needle]);
                    if at < len {
                        bytes[at] = needle;
                    }
                    assert_eq!(
                        find(&bytes, needle),
                        Some(at.min(len)),
                        "{needle} {len} {at}"
                    );
                }
                assert_eq!(find(&vec![other; len], needle), None);
            }
        }
    }
}
