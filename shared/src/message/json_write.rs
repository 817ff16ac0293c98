//! The small JSON writer behind [`QueueEnvelope::to_json`](super::QueueEnvelope::to_json): string
//! literals escaped exactly as serde_json escapes them, except that U+FFFE and U+FFFF — which SQS
//! refuses in a message body — are written as `\ufffe` / `\uffff`; and unsigned integers.
//!
//! Not here: the envelope's shape (`envelope`), or any reading of JSON.

/// Appends `s` as a JSON string literal (serde_json's escapes; SQS's two forbidden characters as
/// `\u` escapes).
pub(super) fn push_str_literal(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let (escape, lead) = scan(bytes);
    if !(escape || (lead && has_sqs_forbidden(bytes))) {
        out.push_str(s);
    } else {
        push_escaped(out, s);
    }
    out.push('"');
}

/// Appends `n` in decimal.
pub(super) fn push_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Replaces SQS's two forbidden characters in JSON produced elsewhere (serde_json writes them raw
/// inside strings, where an escape means the same).
pub(super) fn sqs_safe(json: String) -> String {
    if has_sqs_forbidden(json.as_bytes()) {
        json.replace('\u{fffe}', "\\ufffe")
            .replace('\u{ffff}', "\\uffff")
    } else {
        json
    }
}

/// One pass, eight bytes at a time in a register: whether any byte needs a JSON escape (`"`, `\\`
/// or a C0 control), and whether any byte is `EF`, the lead byte of SQS's two forbidden characters
/// (and of other characters from U+F000, such as full-width punctuation). The strings are short,
/// so this beats a SIMD loop and its scalar tail.
fn scan(bytes: &[u8]) -> (bool, bool) {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const SPACES: u64 = u64::from_ne_bytes([0x20; 8]);
    const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
    const BACKSLASHES: u64 = u64::from_ne_bytes([b'\\'; 8]);
    const LEADS: u64 = u64::from_ne_bytes([0xEF; 8]);
    // Exact as a test of the whole word: some byte is zero / some byte is below 0x20.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let below_space = |x: u64| x.wrapping_sub(SPACES) & !x & HIGHS;
    let (mut escape, mut lead) = (0u64, 0u64);
    let mut chunks = bytes.chunks_exact(8);
    let mut word = |w: u64| {
        escape |= below_space(w) | zero(w ^ QUOTES) | zero(w ^ BACKSLASHES);
        lead |= zero(w ^ LEADS);
    };
    for chunk in &mut chunks {
        word(u64::from_le_bytes(
            <[u8; 8]>::try_from(chunk).unwrap_or_default(),
        ));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // Pad with a byte that matches nothing.
        let mut tail = [b'a'; 8];
        tail[..rest.len()].copy_from_slice(rest);
        word(u64::from_le_bytes(tail));
    }
    (escape != 0, lead != 0)
}

/// Whether the UTF-8 `bytes` contain U+FFFE (`EF BF BE`) or U+FFFF (`EF BF BF`).
fn has_sqs_forbidden(bytes: &[u8]) -> bool {
    memchr::memchr_iter(0xEF, bytes).any(|at| {
        bytes.get(at + 1) == Some(&0xBF) && matches!(bytes.get(at + 2), Some(0xBE | 0xBF))
    })
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{fffe}' => out.push_str("\\ufffe"),
            '\u{ffff}' => out.push_str("\\uffff"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[(c as usize) >> 4]));
                out.push(char::from(HEX[(c as usize) & 0xf]));
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(s: &str) -> String {
        let mut out = String::new();
        push_str_literal(&mut out, s);
        out
    }

    #[test]
    fn integers_are_decimal() {
        for n in [0, 7, 10, 1_482_048_670, u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn the_scan_sees_every_byte_that_matters_at_every_offset() {
        for special in [b'"', b'\\', 0x00, 0x1f, 0xEF] {
            for len in 1..40 {
                for at in 0..len {
                    let mut bytes = vec![b'x'; len];
                    bytes[at] = special;
                    let expect = if special == 0xEF {
                        (false, true)
                    } else {
                        (true, false)
                    };
                    assert_eq!(scan(&bytes), expect, "{special} {len} {at}");
                }
            }
        }
        for harmless in [0x20u8, 0x7f, 0x80, 0xBF, 0xEE, 0xF0, 0xFF, b'!', b'#', b'['] {
            assert_eq!(scan(&[harmless; 19]), (false, false), "{harmless}");
        }
    }

    #[test]
    fn full_width_punctuation_is_not_mistaken_for_a_forbidden_character() {
        // U+FF0C and U+FF1F start with EF as U+FFFE does.
        assert!(!has_sqs_forbidden("您好，请问？".as_bytes()));
        assert!(has_sqs_forbidden("a\u{fffe}".as_bytes()));
        assert!(has_sqs_forbidden("\u{ffff}".as_bytes()));
        assert_eq!(literal("，\u{ffff}"), "\"，\\uffff\"");
    }

    proptest::proptest! {
        #[test]
        fn literals_equal_serde_json_up_to_the_sqs_escapes(
            s in "\\PC*|[\\x00-\\x1f\"\\\\a-z\u{fffe}\u{ffff}，]{0,40}"
        ) {
            let serde = serde_json::to_string(&s).unwrap()
                .replace('\u{fffe}', "\\ufffe")
                .replace('\u{ffff}', "\\uffff");
            proptest::prop_assert_eq!(literal(&s), serde);
        }
    }
}
