//! WeChat's callback rules (docs/protocol.md §1.1, §2.1–2.2): GET verification with `echostr` and the
//! 3-part `signature`; POST pushes in plaintext, compatible or safe mode, JSON or XML sniffed from
//! the body, safe mode authenticated by `msg_signature` from the query; receive id strict.
//!
//! Not here: the cipher or signature arithmetic (shared with Baidu), message types.

use super::sealed::{SealedBodyError, parse_sealed_body};
use super::{
    Callback, CallbackRequest, Credentials, Method, Mode, Opened, ProtocolError, Push, body_text,
    open_signed, parse_timestamp, verify_plain,
};

/// Applies WeChat's rules to one callback request.
pub fn read_callback(
    req: &CallbackRequest<'_>,
    creds: &Credentials,
) -> Result<Callback, ProtocolError> {
    let query = req.query;
    match req.method {
        Method::Get => {
            let echo = query
                .get("echostr")
                .ok_or(SealedBodyError::NotACallback("GET without echostr"))?;
            verify_plain(creds, query)?;
            Ok(Callback::Verify {
                echo: echo.to_owned(),
            })
        }
        Method::Post => {
            let (format, sealed) = parse_sealed_body(req.body)?;
            let safe_announced =
                query.get("encrypt_type") == Some("aes") || query.get("msg_signature").is_some();
            let nonce = query.get("nonce").unwrap_or_default().to_owned();
            match sealed.encrypt {
                Some(encrypt) => {
                    let msg_signature = query
                        .get("msg_signature")
                        .ok_or(ProtocolError::MissingParameter("msg_signature"))?;
                    let timestamp = query
                        .get("timestamp")
                        .ok_or(ProtocolError::MissingParameter("timestamp"))?;
                    let nonce_ref = query
                        .get("nonce")
                        .ok_or(ProtocolError::MissingParameter("nonce"))?;
                    let Opened {
                        plaintext,
                        key_slot: slot,
                        token_slot,
                        receive_id,
                    } = open_signed(creds, timestamp, nonce_ref, msg_signature, &encrypt)?;
                    Ok(Callback::Push(Push {
                        plaintext,
                        mode: if sealed.has_message_fields {
                            Mode::Compatible
                        } else {
                            Mode::Safe
                        },
                        format,
                        timestamp: parse_timestamp(timestamp),
                        nonce,
                        key_slot: Some(slot),
                        token_slot,
                        receive_id,
                    }))
                }
                None if safe_announced => Err(SealedBodyError::MissingEncrypt.into()),
                None => {
                    let token_slot = verify_plain(creds, query)?;
                    Ok(Callback::Push(Push {
                        plaintext: body_text(req.body)?,
                        mode: Mode::Plaintext,
                        format,
                        timestamp: query.get("timestamp").and_then(parse_timestamp),
                        nonce,
                        key_slot: None,
                        token_slot,
                        receive_id: None,
                    }))
                }
            }
        }
    }
}
