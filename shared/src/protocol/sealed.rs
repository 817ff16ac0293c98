//! Sealed request bodies: query/form parameters and the JSON or XML body that carries `Encrypt`
//! ("envelope" in the platforms' docs; in kefu that word names only the queue contract,
//! `message::QueueEnvelope`).
//!
//! The body format is sniffed from its first non-blank byte (`{` JSON, `<` XML), never from the
//! Content-Type (docs/protocol.md §11.5). Not here: which fields a platform signs (see `wechat`, `baidu`).

use std::borrow::Cow;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::flat_json::{self, FlatValue};
use crate::scan;
use crate::xml::{self, Node};

/// Data format of a body or a plaintext message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// A JSON object.
    Json,
    /// An `<xml>` document.
    Xml,
}

impl DataFormat {
    /// The lowercase name used in the queue envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            DataFormat::Json => "json",
            DataFormat::Xml => "xml",
        }
    }

    /// Sniffs the format from the first byte that is not whitespace or a UTF-8 BOM.
    pub fn sniff(bytes: &[u8]) -> Option<DataFormat> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Some(DataFormat::Json),
            Some(b'<') => Some(DataFormat::Xml),
            _ => None,
        }
    }
}

/// Why a body is not a usable sealed body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealedBodyError {
    /// Neither JSON nor XML (nor, where allowed, a form).
    #[error("body is neither JSON nor XML")]
    UnknownFormat,
    /// Not UTF-8.
    #[error("body is not UTF-8")]
    NotUtf8,
    /// JSON that does not parse, or fields of the wrong type.
    #[error("body is not a valid JSON request body: {0}")]
    Json(String),
    /// XML that does not parse or carries a DOCTYPE.
    #[error("body is not a valid XML request body: {0}")]
    Xml(String),
    /// Safe mode announced but no `Encrypt` field.
    #[error("body has no Encrypt field")]
    MissingEncrypt,
    /// A request that is neither a verification nor a push.
    #[error("request is neither a verification nor a push: {0}")]
    NotACallback(&'static str),
}

/// The fields of a sealed body that the rules use. Values are unescaped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealedBody<'a> {
    /// `Encrypt`, the base64 ciphertext.
    pub encrypt: Option<Cow<'a, str>>,
    /// `MsgSignature` carried in the body (Baidu 服务商 pushes).
    pub msg_signature: Option<Cow<'a, str>>,
    /// `TimeStamp` carried in the body.
    pub timestamp: Option<Cow<'a, str>>,
    /// `Nonce` carried in the body.
    pub nonce: Option<Cow<'a, str>>,
    /// Whether plaintext message fields (`MsgType`) sit beside `Encrypt` (compatible mode).
    pub has_message_fields: bool,
    /// Verification parameters carried in a JSON body (Baidu): signature, timestamp, nonce, echo.
    pub verification: Params<'a>,
}

/// Parses a JSON or XML sealed body.
pub fn parse_sealed_body(body: &[u8]) -> Result<(DataFormat, SealedBody<'_>), SealedBodyError> {
    let format = DataFormat::sniff(body).ok_or(SealedBodyError::UnknownFormat)?;
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let sealed = match format {
        // serde_json validates UTF-8 where it reads strings; no separate pass needed.
        DataFormat::Json => parse_json(body)?,
        DataFormat::Xml => {
            parse_xml(std::str::from_utf8(body).map_err(|_| SealedBodyError::NotUtf8)?)?
        }
    };
    Ok((format, sealed))
}

#[derive(Deserialize)]
struct JsonBody<'a> {
    #[serde(rename = "Encrypt", borrow, default)]
    encrypt: Option<Cow<'a, str>>,
    #[serde(rename = "MsgSignature", borrow, default)]
    msg_signature: Option<Lenient<'a>>,
    #[serde(rename = "TimeStamp", borrow, default)]
    timestamp: Option<Lenient<'a>>,
    #[serde(rename = "Nonce", borrow, default)]
    nonce: Option<Lenient<'a>>,
    #[serde(rename = "MsgType", default)]
    msg_type: Option<IgnoredAny>,
    #[serde(borrow, default)]
    signature: Option<Lenient<'a>>,
    #[serde(rename = "timestamp", borrow, default)]
    v_timestamp: Option<Lenient<'a>>,
    #[serde(rename = "nonce", borrow, default)]
    v_nonce: Option<Lenient<'a>>,
    #[serde(rename = "echoStr", borrow, default)]
    echo_str: Option<Lenient<'a>>,
    #[serde(rename = "echostr", borrow, default)]
    echostr: Option<Lenient<'a>>,
}

fn parse_json(body: &[u8]) -> Result<SealedBody<'_>, SealedBodyError> {
    if let Some(sealed) = parse_flat_json(body) {
        return Ok(sealed);
    }
    let raw: JsonBody<'_> =
        serde_json::from_slice(body).map_err(|e| SealedBodyError::Json(e.to_string()))?;
    Ok(raw.into_sealed())
}

impl<'a> JsonBody<'a> {
    /// The sealed body serde read.
    fn into_sealed(self) -> SealedBody<'a> {
        sealed_from_json(
            self.encrypt,
            [
                lenient(self.msg_signature),
                lenient(self.timestamp),
                lenient(self.nonce),
                lenient(self.signature),
                lenient(self.v_timestamp),
                lenient(self.v_nonce),
                lenient(self.echo_str),
                lenient(self.echostr),
            ],
            self.msg_type.is_some(),
        )
    }
}

fn lenient(value: Option<Lenient<'_>>) -> Option<Cow<'_, str>> {
    value.map(|v| v.0)
}

/// The names of the string-or-integer members of a JSON body, in the order
/// [`sealed_from_json`] takes them.
const LENIENT_NAMES: [&str; 8] = [
    "MsgSignature",
    "TimeStamp",
    "Nonce",
    "signature",
    "timestamp",
    "nonce",
    "echoStr",
    "echostr",
];

/// The fast path (`flat_json`) for a flat JSON body; `None` leaves it to serde, which also
/// reports the errors (a repeated member, `Encrypt` as a number, …).
fn parse_flat_json(body: &[u8]) -> Option<SealedBody<'_>> {
    let body = std::str::from_utf8(body).ok()?;
    let mut encrypt = None;
    let mut lenient: [Option<Cow<'_, str>>; 8] = Default::default();
    let mut has_msg_type = false;
    flat_json::each_member(body, |name, value| {
        let text = match value {
            FlatValue::Str(s) | FlatValue::Int(s) => s,
        };
        if name == "Encrypt" {
            let FlatValue::Str(s) = value else {
                return None;
            };
            encrypt.replace(Cow::Borrowed(s)).is_none().then_some(())
        } else if name == "MsgType" {
            (!std::mem::replace(&mut has_msg_type, true)).then_some(())
        } else if let Some(i) = LENIENT_NAMES.iter().position(|n| *n == name) {
            lenient[i]
                .replace(Cow::Borrowed(text))
                .is_none()
                .then_some(())
        } else {
            Some(())
        }
    })?;
    Some(sealed_from_json(encrypt, lenient, has_msg_type))
}

/// A sealed body from a JSON body's members (`lenient` in [`LENIENT_NAMES`] order).
fn sealed_from_json<'a>(
    encrypt: Option<Cow<'a, str>>,
    lenient: [Option<Cow<'a, str>>; 8],
    has_message_fields: bool,
) -> SealedBody<'a> {
    let [
        msg_signature,
        timestamp,
        nonce,
        signature,
        v_timestamp,
        v_nonce,
        echo_str,
        echostr,
    ] = lenient;
    let mut verification = Params::default();
    for (name, value) in [
        ("signature", signature),
        ("timestamp", v_timestamp),
        ("nonce", v_nonce),
        ("echoStr", echo_str),
        ("echostr", echostr),
    ] {
        if let Some(v) = value {
            verification.push(Cow::Borrowed(name), v);
        }
    }
    SealedBody {
        encrypt,
        msg_signature,
        timestamp,
        nonce,
        has_message_fields,
        verification,
    }
}

fn parse_xml(text: &str) -> Result<SealedBody<'_>, SealedBodyError> {
    let fields = xml::parse_document(text).map_err(|e| SealedBodyError::Xml(e.to_string()))?;
    let mut sealed = SealedBody::default();
    for (name, node) in fields {
        let value = match node {
            Node::Text(t) => t,
            Node::Element(_) if name == "Encrypt" => {
                return Err(SealedBodyError::Xml("Encrypt is not text".into()));
            }
            Node::Element(_) => continue,
        };
        match name.as_ref() {
            "Encrypt" => sealed.encrypt = Some(value),
            "MsgSignature" => sealed.msg_signature = Some(value),
            "TimeStamp" => sealed.timestamp = Some(value),
            "Nonce" => sealed.nonce = Some(value),
            "MsgType" => sealed.has_message_fields = true,
            _ => {}
        }
    }
    Ok(sealed)
}

/// A string field that the platforms sometimes send as a JSON number (`TimeStamp`, `Nonce`).
struct Lenient<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Lenient<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lenient<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Lenient(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Lenient(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Lenient(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Lenient(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Lenient(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Decoded name/value parameters from a query string, a form body or a JSON body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Params<'a> {
    /// Parses a raw URL query string: `%XX` is decoded, `+` stays `+` (the platforms
    /// percent-encode `+`; decoding it as a space breaks echo strings, see corpus
    /// `url_verify_encrypted_plus_as_space`).
    pub fn parse_query(query: &'a str) -> Self {
        Self::parse(query, false)
    }

    /// Parses an `application/x-www-form-urlencoded` body: `%XX` decoded and `+` is a space.
    pub fn parse_form(body: &'a str) -> Self {
        Self::parse(body, true)
    }

    fn parse(input: &'a str, plus_is_space: bool) -> Self {
        let bytes = input.as_bytes();
        // One scan decides whether anything needs decoding (rarely: the platforms send hex and digits).
        let coded = if plus_is_space {
            memchr::memchr2(b'%', b'+', bytes).is_some()
        } else {
            memchr::memchr(b'%', bytes).is_some()
        };
        let decode = |part: &'a str| match coded {
            true => percent_decode(part, plus_is_space),
            false => Cow::Borrowed(part),
        };
        let mut pairs = Vec::with_capacity(8);
        let mut start = 0;
        while start <= bytes.len() {
            let end = scan::find(&bytes[start..], b'&').map_or(bytes.len(), |i| start + i);
            let pair = &input[start..end];
            if !pair.is_empty() {
                let (name, value) = match scan::find(pair.as_bytes(), b'=') {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, ""),
                };
                pairs.push((decode(name), decode(value)));
            }
            start = end + 1;
        }
        Self { pairs }
    }

    /// Appends one pair.
    pub fn push(&mut self, name: Cow<'a, str>, value: Cow<'a, str>) {
        self.pairs.push((name, value));
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// Whether no parameter is present.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

fn percent_decode(input: &str, plus_is_space: bool) -> Cow<'_, str> {
    let needs = if plus_is_space {
        memchr::memchr2(b'%', b'+', input.as_bytes()).is_some()
    } else {
        memchr::memchr(b'%', input.as_bytes()).is_some()
    };
    if !needs {
        return Cow::Borrowed(input);
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_plus_and_decodes_percent() {
        let q = Params::parse_query("echostr=abc%2Bdef%2Fghi%3D%3D&x=a+b&bad=%zz&end=%4");
        assert_eq!(q.get("echostr"), Some("abc+def/ghi=="));
        assert_eq!(q.get("x"), Some("a+b"));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(q.get("end"), Some("%4"));
        assert_eq!(q.get("missing"), None);
    }

    #[test]
    fn form_turns_plus_into_space() {
        let f = Params::parse_form("echoStr=a+b%21&nonce=1");
        assert_eq!(f.get("echoStr"), Some("a b!"));
    }

    #[test]
    fn sniffs_format_from_first_byte() {
        assert_eq!(DataFormat::sniff(b"  \n{\"a\":1}"), Some(DataFormat::Json));
        assert_eq!(
            DataFormat::sniff(b"\xEF\xBB\xBF<xml/>"),
            Some(DataFormat::Xml)
        );
        assert_eq!(DataFormat::sniff(b"a=b"), None);
        assert_eq!(DataFormat::sniff(b""), None);
    }

    #[test]
    fn json_body_unescapes_encrypt_and_reads_body_signature() {
        let body = br#"{"Nonce":4464221,"TimeStamp":"1535551395","Encrypt":"a\/b+c=","MsgSignature":"ab"}"#;
        let (format, env) = parse_sealed_body(body).unwrap();
        assert_eq!(format, DataFormat::Json);
        assert_eq!(env.encrypt.as_deref(), Some("a/b+c="));
        assert_eq!(env.nonce.as_deref(), Some("4464221"));
        assert_eq!(env.timestamp.as_deref(), Some("1535551395"));
        assert_eq!(env.msg_signature.as_deref(), Some("ab"));
        assert!(!env.has_message_fields);
    }

    #[test]
    fn rejects_non_string_encrypt_and_doctype() {
        assert!(matches!(
            parse_sealed_body(br#"{"Encrypt":12345}"#),
            Err(SealedBodyError::Json(_))
        ));
        let xxe = b"<!DOCTYPE x [<!ENTITY e \"1\">]><xml><Encrypt>&e;</Encrypt></xml>";
        assert!(matches!(
            parse_sealed_body(xxe),
            Err(SealedBodyError::Xml(_))
        ));
    }

    proptest::proptest! {
        /// The flat-JSON fast path reads a body exactly as serde does.
        #[test]
        fn the_fast_path_agrees_with_serde(
            members in proptest::collection::vec(
                (
                    "Encrypt|MsgSignature|TimeStamp|Nonce|MsgType|signature|timestamp|nonce|echoStr|echostr|ToUserName",
                    "\"[ -!#-\\[\\]-~]{0,6}\"|[1-9][0-9]{0,18}|0",
                ),
                0..6,
            ),
        ) {
            let body: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let doc = format!("{{{}}}", body.join(","));
            let serde = serde_json::from_slice::<JsonBody<'_>>(doc.as_bytes())
                .ok()
                .map(JsonBody::into_sealed);
            match parse_flat_json(doc.as_bytes()) {
                Some(fast) => proptest::prop_assert_eq!(Some(fast), serde, "{}", doc),
                // With these values (strings and unsigned integers), the fast path gives up only where
                // serde refuses too (a repeated member, a numeric Encrypt); `null` or a negative
                // number it leaves to serde, which may accept them.
                None => proptest::prop_assert!(serde.is_none(), "{}", doc),
            }
        }
    }
}
