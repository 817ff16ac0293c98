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
pub(super) fn push_u64(out: &mut String, mut n: u64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + n as u8;
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
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

/// One branch-free pass (it vectorises): whether any byte needs a JSON escape (`"`, `\` or a C0
/// control), and whether any byte is `EF`, the lead byte of SQS's two forbidden characters (and
/// of other characters from U+F000, such as full-width punctuation).
fn scan(bytes: &[u8]) -> (bool, bool) {
    bytes.iter().fold((false, false), |(escape, lead), &b| {
        (
            escape | (b < 0x20) | (b == b'"') | (b == b'\\'),
            lead | (b == 0xEF),
        )
    })
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
