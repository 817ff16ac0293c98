//! Wire protocol of both platforms: signatures, the WXBizMsgCrypt cipher, request envelopes and
//! the per-platform rules that turn an HTTP request into a verification echo or a decrypted push.
//!
//! Pure: no I/O, no clock, no logging. Message types are parsed by [`crate::message`], not here;
//! which opened pushes an app accepts is [`admission`].

pub mod admission;
pub mod baidu;
pub mod cipher;
pub mod reply;
pub mod sealed;
pub mod signature;
pub mod simulate;
pub mod wechat;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use cipher::{AesKey, CipherError, Frame, KeyError};
pub use sealed::{DataFormat, Params, SealedBodyError};
pub use signature::Signature;

use crate::secret::Secret;

/// HTTP method of a callback request; only these two reach the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`: URL verification.
    Get,
    /// `POST`: pushes (and Baidu's verification).
    Post,
}

/// How the push was protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// 明文模式: the body is the message; only the 3-part signature.
    Plaintext,
    /// 兼容模式: plaintext fields and `Encrypt` side by side; `Encrypt` is authoritative.
    Compatible,
    /// 安全模式: only `Encrypt`.
    Safe,
}

impl Mode {
    /// The lowercase name used in the queue envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Plaintext => "plaintext",
            Mode::Compatible => "compatible",
            Mode::Safe => "safe",
        }
    }
}

/// Which of the app's keys opened the push (key rotation, docs/protocol.md §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySlot {
    /// The current EncodingAESKey.
    Current,
    /// The previous EncodingAESKey, still accepted during a rotation.
    Previous,
}

/// How the receive id at the end of a decrypted frame is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiveIdRule {
    /// Must equal this id exactly (WeChat: the AppID, or the component AppID for a 服务商).
    Exact(String),
    /// Not enforced; the id is reported so it can be logged (Baidu without a configured id).
    Report,
}

/// Everything needed to authenticate and open one app's callbacks.
#[derive(Clone)]
pub struct Credentials {
    /// The Token configured in the console (signs requests).
    pub token: Secret,
    /// The previous Token, still accepted during a Token rotation (so the change in the console
    /// and the change in the registry need not happen at the same instant).
    pub previous_token: Option<Secret>,
    /// The current EncodingAESKey.
    pub key: AesKey,
    /// The previous EncodingAESKey, accepted until the rotation is finished.
    pub previous_key: Option<AesKey>,
    /// The receive-id rule.
    pub receive_id: ReceiveIdRule,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("receive_id", &self.receive_id)
            .field("has_previous_key", &self.previous_key.is_some())
            .field("has_previous_token", &self.previous_token.is_some())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Which Token `sign(token)` matches `provided` for: the current one or, during a rotation,
    /// the previous one; `None` for neither. Each comparison is constant time.
    pub fn signed_by(&self, provided: &str, sign: impl Fn(&str) -> Signature) -> Option<KeySlot> {
        if sign(self.token.expose()).matches(provided) {
            return Some(KeySlot::Current);
        }
        self.previous_token
            .as_ref()
            .filter(|t| sign(t.expose()).matches(provided))
            .map(|_| KeySlot::Previous)
    }

    /// The Token in `slot` (the current one when there is no previous one).
    pub fn token(&self, slot: KeySlot) -> &Secret {
        match (slot, &self.previous_token) {
            (KeySlot::Previous, Some(previous)) => previous,
            _ => &self.token,
        }
    }

    /// The EncodingAESKey in `slot` (the current one when there is no previous one).
    pub fn key(&self, slot: KeySlot) -> &AesKey {
        match (slot, &self.previous_key) {
            (KeySlot::Previous, Some(previous)) => previous,
            _ => &self.key,
        }
    }
}

/// One callback request as the rules see it: method, decoded query parameters, raw body bytes.
#[derive(Debug, Clone, Copy)]
pub struct CallbackRequest<'a> {
    /// The HTTP method.
    pub method: Method,
    /// Query parameters, percent-decoded.
    pub query: &'a Params<'a>,
    /// The raw body (already base64-decoded if the gateway encoded it).
    pub body: &'a [u8],
}

/// What a valid callback asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    /// URL verification: answer with this string verbatim.
    Verify {
        /// The echo string.
        echo: String,
    },
    /// A message or event push, authenticated and decrypted.
    Push(Push),
}

/// An authenticated push, opened to its plaintext message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The plaintext message document (JSON or XML), exactly as the platform framed it.
    pub plaintext: String,
    /// How it was protected.
    pub mode: Mode,
    /// The body's format (the console's data format; the plaintext message normally has the same).
    pub format: DataFormat,
    /// The signed `timestamp` (Unix seconds) if it parsed as a number, for the replay guard.
    pub timestamp: Option<u64>,
    /// The request `nonce` (echoed in sealed replies).
    pub nonce: String,
    /// Which key opened it; `None` in plaintext mode.
    pub key_slot: Option<KeySlot>,
    /// Which Token signed it (a reply is signed with the same one).
    pub token_slot: KeySlot,
    /// The receive id found in the frame when the app's rule does not check it (to be reported);
    /// `None` when it was checked, and in plaintext mode.
    pub receive_id: Option<String>,
}

/// Why a callback was refused. Each variant maps to one HTTP status at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The body is not a usable JSON/XML envelope.
    #[error(transparent)]
    Body(#[from] SealedBodyError),
    /// A parameter the signature needs is absent.
    #[error("missing parameter {0}")]
    MissingParameter(&'static str),
    /// The signature does not match.
    #[error("signature mismatch")]
    SignatureMismatch,
    /// `Encrypt` could not be opened with any configured key.
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// The frame's receive id is not the expected one.
    #[error("receive id mismatch")]
    ReceiveIdMismatch,
    /// The message bytes are not UTF-8.
    #[error("message is not valid UTF-8")]
    Utf8,
}

impl ProtocolError {
    /// A stable, content-free label for logs and metrics (`signature_mismatch`, `padding_invalid`, …).
    pub fn reason(&self) -> &'static str {
        match self {
            ProtocolError::Body(_) => "envelope_invalid",
            ProtocolError::MissingParameter(_) => "missing_parameter",
            ProtocolError::SignatureMismatch => "signature_mismatch",
            ProtocolError::Cipher(CipherError::Base64) => "base64_invalid",
            ProtocolError::Cipher(CipherError::CiphertextLength) => "ciphertext_length_invalid",
            ProtocolError::Cipher(CipherError::Padding) => "padding_invalid",
            ProtocolError::Cipher(CipherError::FrameLength) => "length_invalid",
            ProtocolError::ReceiveIdMismatch => "appid_mismatch",
            ProtocolError::Utf8 => "utf8_invalid",
        }
    }

    /// Whether the request failed authentication (as opposed to being malformed).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            ProtocolError::MissingParameter(_)
                | ProtocolError::SignatureMismatch
                | ProtocolError::ReceiveIdMismatch
        )
    }
}

/// What [`open_signed`] opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The decrypted message (or echo string).
    pub plaintext: String,
    /// Which key opened it.
    pub key_slot: KeySlot,
    /// Which Token signed it.
    pub token_slot: KeySlot,
    /// The id written after the message when the receive-id rule does not check it (to be
    /// reported); `None` when it was checked.
    pub receive_id: Option<String>,
}

/// Verifies `msg_signature`, then opens `encrypt` with the current key, falling back to the
/// previous one, and applies the receive-id rule. Shared by both platforms' rules.
pub fn open_signed(
    creds: &Credentials,
    timestamp: &str,
    nonce: &str,
    msg_signature: &str,
    encrypt: &str,
) -> Result<Opened, ProtocolError> {
    let token_slot = creds
        .signed_by(msg_signature, |token| {
            Signature::message(token, timestamp, nonce, encrypt)
        })
        .ok_or(ProtocolError::SignatureMismatch)?;
    let opened = |(plaintext, receive_id), key_slot| Opened {
        plaintext,
        key_slot,
        token_slot,
        receive_id,
    };
    let first = open_with(creds, &creds.key, encrypt);
    match (&first, &creds.previous_key) {
        (Err(_), Some(previous)) => match open_with(creds, previous, encrypt) {
            Ok(found) => Ok(opened(found, KeySlot::Previous)),
            Err(_) => first.map(|found| opened(found, KeySlot::Current)),
        },
        _ => first.map(|found| opened(found, KeySlot::Current)),
    }
}

fn open_with(
    creds: &Credentials,
    key: &AesKey,
    encrypt: &str,
) -> Result<(String, Option<String>), ProtocolError> {
    let frame = cipher::open(key, encrypt)?;
    let receive_id = match &creds.receive_id {
        ReceiveIdRule::Exact(expected) if frame.receive_id() != expected.as_bytes() => {
            return Err(ProtocolError::ReceiveIdMismatch);
        }
        ReceiveIdRule::Exact(_) => None,
        ReceiveIdRule::Report => Some(String::from_utf8_lossy(frame.receive_id()).into_owned()),
    };
    let msg = frame.into_message().ok_or(ProtocolError::Utf8)?;
    Ok((msg, receive_id))
}

/// Verifies the 3-part `signature` from a parameter source; returns the Token that signed it.
pub(crate) fn verify_plain(
    creds: &Credentials,
    params: &Params<'_>,
) -> Result<KeySlot, ProtocolError> {
    let signature = params
        .get("signature")
        .ok_or(ProtocolError::MissingParameter("signature"))?;
    let timestamp = params
        .get("timestamp")
        .ok_or(ProtocolError::MissingParameter("timestamp"))?;
    let nonce = params
        .get("nonce")
        .ok_or(ProtocolError::MissingParameter("nonce"))?;
    creds
        .signed_by(signature, |token| Signature::plain(token, timestamp, nonce))
        .ok_or(ProtocolError::SignatureMismatch)
}

/// Parses a timestamp leniently (digits only) for the replay guard.
pub(crate) fn parse_timestamp(ts: &str) -> Option<u64> {
    ts.parse().ok()
}

/// The body as UTF-8 text for plaintext mode.
pub(crate) fn body_text(body: &[u8]) -> Result<String, ProtocolError> {
    std::str::from_utf8(body)
        .map(str::to_owned)
        .map_err(|_| ProtocolError::Utf8)
}
