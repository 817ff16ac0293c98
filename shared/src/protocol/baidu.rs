//! Baidu's callback rules (docs/protocol.md §1.2, §2.4): verification with `echoStr` read from the query,
//! a form body or a JSON body, by GET or POST; pushes in plaintext, compatible or safe mode, whose
//! 4-part signature travels in the body (`MsgSignature`, `TimeStamp`, `Nonce`) or the query;
//! receive id enforced only when configured.
//!
//! Not here: the cipher or signature arithmetic (shared with WeChat), message types.

use std::borrow::Cow;

use super::sealed::{DataFormat, Params, SealedBodyError, parse_sealed_body};
use super::{
    Callback, CallbackRequest, Credentials, Method, Mode, Opened, ProtocolError, Push, body_text,
    open_signed, parse_timestamp, verify_plain,
};

/// Applies Baidu's rules to one callback request.
pub fn read_callback(
    req: &CallbackRequest<'_>,
    creds: &Credentials,
) -> Result<Callback, ProtocolError> {
    let query = req.query;
    let body_is_blank = req.body.iter().all(u8::is_ascii_whitespace);
    if body_is_blank || req.method == Method::Get {
        // Verification by query string (GET, or POST with the parameters in the URL).
        return match echo(query) {
            Some(echo) => verify(creds, query, echo),
            None => Err(SealedBodyError::NotACallback("no echoStr and no body").into()),
        };
    }
    if DataFormat::sniff(req.body).is_none() {
        // Verification by form body.
        let text = std::str::from_utf8(req.body).map_err(|_| SealedBodyError::NotUtf8)?;
        let form = Params::parse_form(text);
        let merged = merge(query, &form);
        return match echo(&merged) {
            Some(echo) => verify(creds, &merged, echo),
            None => Err(SealedBodyError::UnknownFormat.into()),
        };
    }
    let (format, sealed) = parse_sealed_body(req.body)?;
    let Some(encrypt) = sealed.encrypt else {
        let merged = merge(query, &sealed.verification);
        if let Some(echo) = echo(&merged) {
            return verify(creds, &merged, echo);
        }
        if query.get("msg_signature").is_some() || sealed.msg_signature.is_some() {
            return Err(SealedBodyError::MissingEncrypt.into());
        }
        let token_slot = verify_plain(creds, query)?;
        return Ok(Callback::Push(Push {
            plaintext: body_text(req.body)?,
            mode: Mode::Plaintext,
            format,
            timestamp: query.get("timestamp").and_then(parse_timestamp),
            nonce: query.get("nonce").unwrap_or_default().to_owned(),
            key_slot: None,
            token_slot,
            receive_id: None,
        }));
    };
    // The signature inputs travel in the body (服务商 pushes) or in the query (first party).
    let msg_signature = sealed
        .msg_signature
        .as_deref()
        .or_else(|| query.get("msg_signature"))
        .ok_or(ProtocolError::MissingParameter("MsgSignature"))?;
    let timestamp = sealed
        .timestamp
        .as_deref()
        .or_else(|| query.get("timestamp"))
        .ok_or(ProtocolError::MissingParameter("TimeStamp"))?;
    let nonce = sealed
        .nonce
        .as_deref()
        .or_else(|| query.get("nonce"))
        .ok_or(ProtocolError::MissingParameter("Nonce"))?;
    let Opened {
        plaintext,
        key_slot: slot,
        token_slot,
        receive_id,
    } = open_signed(creds, timestamp, nonce, msg_signature, &encrypt)?;
    Ok(Callback::Push(Push {
        plaintext,
        mode: if sealed.has_message_fields {
            Mode::Compatible
        } else {
            Mode::Safe
        },
        format,
        timestamp: parse_timestamp(timestamp),
        nonce: nonce.to_owned(),
        key_slot: Some(slot),
        token_slot,
        receive_id,
    }))
}

fn echo<'p>(params: &'p Params<'_>) -> Option<&'p str> {
    params.get("echoStr").or_else(|| params.get("echostr"))
}

fn verify(creds: &Credentials, params: &Params<'_>, echo: &str) -> Result<Callback, ProtocolError> {
    verify_plain(creds, params)?;
    Ok(Callback::Verify {
        echo: echo.to_owned(),
    })
}

/// Query parameters first, then the body's: the first occurrence of a name wins.
fn merge<'a>(query: &'a Params<'a>, body: &'a Params<'a>) -> Params<'a> {
    let mut merged = Params::default();
    for source in [query, body] {
        for name in ["signature", "timestamp", "nonce", "echoStr", "echostr"] {
            if let Some(v) = source.get(name) {
                merged.push(Cow::Borrowed(name), Cow::Borrowed(v));
            }
        }
    }
    merged
}
