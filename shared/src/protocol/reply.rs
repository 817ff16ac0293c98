//! Passive replies other than `success` (docs/protocol.md §7): WeChat's `transfer_customer_service`
//! message, the sealed envelope it travels in outside plaintext mode, and the platform's side of
//! that envelope (verify and open a reply, as `kefu simulate` and the tests do).
//!
//! Pure: the caller passes the time, the nonce and the 16 random bytes. Which pushes get a
//! hand-off reply is the ingress function's rule, not this file's.

use std::fmt::Write as _;

use super::sealed::{DataFormat, parse_sealed_body};
use super::{AesKey, Signature, cipher};

/// The `MsgType` of WeChat's hand-off reply.
pub const TRANSFER_CUSTOMER_SERVICE: &str = "transfer_customer_service";

/// The plaintext `transfer_customer_service` reply in `format`: addressed to the user
/// (`ToUserName` = their open id) from the mini program (`FromUserName` = its `gh_…` original
/// id). `None` when an id cannot be written safely (empty, or a CDATA terminator in XML).
pub fn transfer_customer_service(
    format: DataFormat,
    open_id: &str,
    original_id: &str,
    create_time: u64,
) -> Option<String> {
    if open_id.is_empty() || original_id.is_empty() {
        return None;
    }
    match format {
        DataFormat::Json => Some(format!(
            r#"{{"ToUserName":{},"FromUserName":{},"CreateTime":{create_time},"MsgType":"{TRANSFER_CUSTOMER_SERVICE}"}}"#,
            json_string(open_id),
            json_string(original_id),
        )),
        DataFormat::Xml => {
            if open_id.contains("]]>") || original_id.contains("]]>") {
                return None;
            }
            Some(format!(
                "<xml><ToUserName><![CDATA[{open_id}]]></ToUserName><FromUserName><![CDATA[{original_id}]]></FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[{TRANSFER_CUSTOMER_SERVICE}]]></MsgType></xml>"
            ))
        }
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// What seals a reply for one app: its Token, its key and the receive id written after the
/// message (WeChat: the AppID).
#[derive(Debug, Clone, Copy)]
pub struct ReplySeal<'a> {
    /// The Token that signs the reply.
    pub token: &'a str,
    /// The current EncodingAESKey.
    pub key: &'a AesKey,
    /// The id framed after the message.
    pub receive_id: &'a str,
}

impl ReplySeal<'_> {
    /// The sealed envelope of `plaintext` in `format`: `Encrypt`, `MsgSignature` =
    /// sha1(sort(Token, TimeStamp, Nonce, Encrypt)), `TimeStamp` (a number in JSON) and the
    /// request's `Nonce` echoed (docs/protocol.md §3.7).
    pub fn seal(
        &self,
        format: DataFormat,
        plaintext: &str,
        timestamp: u64,
        nonce: &str,
        random: &[u8; 16],
    ) -> String {
        let encrypt = cipher::seal(self.key, random, plaintext.as_bytes(), self.receive_id);
        let ts = timestamp.to_string();
        let signature = Signature::message(self.token, &ts, nonce, &encrypt);
        match format {
            // The documented field order; base64 and hex need no escaping.
            DataFormat::Json => format!(
                r#"{{"Encrypt":"{encrypt}","MsgSignature":"{signature}","TimeStamp":{ts},"Nonce":{}}}"#,
                json_string(nonce)
            ),
            DataFormat::Xml => {
                let mut out = String::with_capacity(encrypt.len() + 160 + nonce.len());
                // Base64 and hex never contain a CDATA terminator; a nonce that does is cut short.
                let nonce = nonce.split("]]>").next().unwrap_or_default();
                let _ = write!(
                    out,
                    "<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{signature}]]></MsgSignature><TimeStamp>{ts}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
                );
                out
            }
        }
    }
}

/// Why a sealed reply could not be opened (the platform would show the user an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// Not a JSON or XML envelope with the four fields.
    #[error("reply is not a sealed envelope: {0}")]
    Envelope(String),
    /// `Nonce` is not the request's.
    #[error("reply Nonce is not the request's")]
    Nonce,
    /// `MsgSignature` does not match.
    #[error("reply MsgSignature does not match")]
    Signature,
    /// `Encrypt` does not open with the key.
    #[error("reply does not decrypt: {0}")]
    Cipher(String),
    /// The frame is for another receive id.
    #[error("reply is framed for another receive id")]
    ReceiveId,
}

/// Opens a sealed reply as the platform does: the envelope's format, then the echoed nonce,
/// the signature and the frame's receive id are checked; returns the format and the plaintext.
pub fn open_reply(
    seal: &ReplySeal<'_>,
    body: &[u8],
    request_nonce: &str,
) -> Result<(DataFormat, String), ReplyError> {
    let (format, sealed) =
        parse_sealed_body(body).map_err(|e| ReplyError::Envelope(e.to_string()))?;
    let field = |v: Option<std::borrow::Cow<'_, str>>, name: &str| {
        v.map(|c| c.into_owned())
            .ok_or_else(|| ReplyError::Envelope(format!("no {name}")))
    };
    let encrypt = field(sealed.encrypt, "Encrypt")?;
    let signature = field(sealed.msg_signature, "MsgSignature")?;
    let timestamp = field(sealed.timestamp, "TimeStamp")?;
    let nonce = field(sealed.nonce, "Nonce")?;
    if nonce != request_nonce {
        return Err(ReplyError::Nonce);
    }
    if !Signature::message(seal.token, &timestamp, &nonce, &encrypt).matches(&signature) {
        return Err(ReplyError::Signature);
    }
    let frame = cipher::open(seal.key, &encrypt).map_err(|e| ReplyError::Cipher(e.to_string()))?;
    if frame.receive_id() != seal.receive_id.as_bytes() {
        return Err(ReplyError::ReceiveId);
    }
    let plaintext = frame
        .into_message()
        .ok_or_else(|| ReplyError::Cipher("not UTF-8".into()))?;
    Ok((format, plaintext))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_43_A: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    fn key() -> AesKey {
        AesKey::from_encoding_aes_key(KEY_43_A).unwrap()
    }

    /// WeChat's documented JSON reply (V1): the same random bytes give the same bytes.
    #[test]
    fn seals_the_documented_json_reply_exactly() {
        let key = key();
        let seal = ReplySeal {
            token: "AAAAA",
            key: &key,
            receive_id: "wxba5fad812f8e6fb9",
        };
        let body = seal.seal(
            DataFormat::Json,
            r#"{"demo_resp":"good luck"}"#,
            1_713_424_427,
            "415670741",
            b"707722b803182950",
        );
        assert_eq!(
            body,
            r#"{"Encrypt":"ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ==","MsgSignature":"1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1","TimeStamp":1713424427,"Nonce":"415670741"}"#
        );
        let (format, plaintext) = open_reply(&seal, body.as_bytes(), "415670741").unwrap();
        assert_eq!(format, DataFormat::Json);
        assert_eq!(plaintext, r#"{"demo_resp":"good luck"}"#);
    }

    /// The third-party doc's XML reply (V2), receive id = the component AppID.
    #[test]
    fn seals_the_documented_xml_reply_exactly() {
        let key = key();
        let seal = ReplySeal {
            token: "AAAAA",
            key: &key,
            receive_id: "wx134c8103faa5a59e",
        };
        let body = seal.seal(
            DataFormat::Xml,
            "<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>",
            1_713_424_427,
            "415670741",
            b"999951349e8ee746",
        );
        assert_eq!(
            body,
            "<xml><Encrypt><![CDATA[hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7]]></Encrypt><MsgSignature><![CDATA[03e0812039325c2712ef5f0f980fd14c70d6e307]]></MsgSignature><TimeStamp>1713424427</TimeStamp><Nonce><![CDATA[415670741]]></Nonce></xml>"
        );
        assert!(open_reply(&seal, body.as_bytes(), "415670741").is_ok());
    }

    #[test]
    fn opening_checks_nonce_signature_and_receive_id() {
        let key = key();
        let seal = ReplySeal {
            token: "tok",
            key: &key,
            receive_id: "wx1",
        };
        let body = seal.seal(DataFormat::Json, "{}", 1, "n1", &[7; 16]);
        assert_eq!(
            open_reply(&seal, body.as_bytes(), "n2"),
            Err(ReplyError::Nonce)
        );
        let other_token = ReplySeal {
            token: "other",
            ..seal
        };
        assert_eq!(
            open_reply(&other_token, body.as_bytes(), "n1"),
            Err(ReplyError::Signature)
        );
        let other_id = ReplySeal {
            receive_id: "wx2",
            ..seal
        };
        assert_eq!(
            open_reply(&other_id, body.as_bytes(), "n1"),
            Err(ReplyError::ReceiveId)
        );
        assert!(matches!(
            open_reply(&seal, b"success", "n1"),
            Err(ReplyError::Envelope(_))
        ));
    }

    #[test]
    fn transfer_reply_in_both_formats() {
        assert_eq!(
            transfer_customer_service(DataFormat::Xml, "oUser", "gh_1", 42).unwrap(),
            "<xml><ToUserName><![CDATA[oUser]]></ToUserName><FromUserName><![CDATA[gh_1]]></FromUserName><CreateTime>42</CreateTime><MsgType><![CDATA[transfer_customer_service]]></MsgType></xml>"
        );
        let json: serde_json::Value = serde_json::from_str(
            &transfer_customer_service(DataFormat::Json, "o\"User", "gh_1", 42).unwrap(),
        )
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"ToUserName": "o\"User", "FromUserName": "gh_1", "CreateTime": 42, "MsgType": "transfer_customer_service"})
        );
        assert_eq!(
            transfer_customer_service(DataFormat::Xml, "o]]>x", "gh_1", 1),
            None
        );
        assert_eq!(
            transfer_customer_service(DataFormat::Json, "", "gh_1", 1),
            None
        );
    }
}
