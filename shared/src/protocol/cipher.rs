//! The WXBizMsgCrypt cipher shared by WeChat and Baidu: AES-256-CBC, IV = key[0..16], PKCS#7 to
//! 32-byte blocks, frame `random16 | u32 BE length | msg | receive id` (docs/protocol.md §3).
//!
//! [`open`] rejects every malformed input with a distinct [`CipherError`] and never panics;
//! [`seal`] takes its 16 random bytes from the caller so results are reproducible in tests.
//! Not here: signatures, receive-id policy, message parsing.

use aes::cipher::KeyInit;
use aes::{Aes256, Aes256Dec, Block};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, InnerIvInit, KeyIvInit};

/// WeChat's PKCS#7 block: 32 bytes, not AES's 16 (docs/protocol.md §3.2).
const PAD_BLOCK: usize = 32;
/// AES block size; ciphertexts must be a whole number of these.
const AES_BLOCK: usize = 16;
/// Bytes before the message: 16 random + 4 length.
const HEADER: usize = 20;

/// Decoder for EncodingAESKey + "=": real keys have non-zero trailing bits (docs/protocol.md §3.1 trap 1).
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Why an `Encrypt` value could not be opened, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// Not strict standard base64 (alphabet, padding, no whitespace).
    #[error("Encrypt is not valid base64")]
    Base64,
    /// The ciphertext is empty or not a whole number of AES blocks.
    #[error("ciphertext length is not a positive multiple of 16")]
    CiphertextLength,
    /// The PKCS#7 padding is not 1..=32 bytes all equal to the pad length.
    #[error("padding is invalid")]
    Padding,
    /// The frame is shorter than its header or the length field runs past the end.
    #[error("frame length field is invalid")]
    FrameLength,
}

/// Why an EncodingAESKey was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not 43 characters.
    #[error("EncodingAESKey must be 43 characters, got {0}")]
    Length(usize),
    /// A character outside `[A-Za-z0-9]`.
    #[error("EncodingAESKey must contain only A-Z, a-z and 0-9")]
    Alphabet,
}

/// A decoded 32-byte AES key with its decryption key schedule expanded once (keys are decoded at
/// cold start, so request paths never expand them). `Debug` never shows the bytes.
#[derive(Clone)]
pub struct AesKey {
    bytes: [u8; 32],
    dec: Aes256Dec,
}

impl PartialEq for AesKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for AesKey {}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(***)")
    }
}

impl AesKey {
    /// Decodes a console EncodingAESKey: exactly 43 chars of `[A-Za-z0-9]`, base64 with "=" appended.
    pub fn from_encoding_aes_key(encoding_aes_key: &str) -> Result<Self, KeyError> {
        let chars = encoding_aes_key.chars().count();
        if chars != 43 {
            return Err(KeyError::Length(chars));
        }
        if !encoding_aes_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(KeyError::Alphabet);
        }
        let mut padded = [0u8; 44];
        padded[..43].copy_from_slice(encoding_aes_key.as_bytes());
        padded[43] = b'=';
        let mut key = [0u8; 32];
        match KEY_ENGINE.decode_slice(padded, &mut key) {
            Ok(32) => Ok(Self {
                bytes: key,
                dec: Aes256Dec::new(&key.into()),
            }),
            _ => Err(KeyError::Alphabet),
        }
    }

    /// The raw key bytes (for tests and known-answer checks).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.bytes[..16]);
        iv
    }
}

/// A successfully opened frame: the decrypted buffer and where its parts lie.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    buf: Vec<u8>,
    msg_end: usize,
    end: usize,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("msg_len", &(self.msg_end - HEADER))
            .finish_non_exhaustive()
    }
}

impl Frame {
    /// The 16 random bytes that start the frame.
    pub fn random(&self) -> &[u8] {
        &self.buf[..16]
    }

    /// The message bytes (not yet checked for UTF-8).
    pub fn message_bytes(&self) -> &[u8] {
        &self.buf[HEADER..self.msg_end]
    }

    /// The receive id that follows the message (AppID, component AppID or Baidu's numeric id).
    pub fn receive_id(&self) -> &[u8] {
        &self.buf[self.msg_end..self.end]
    }

    /// Consumes the frame and returns the message as a `String`, or `None` if it is not UTF-8.
    pub fn into_message(mut self) -> Option<String> {
        self.buf.truncate(self.msg_end);
        self.buf.drain(..HEADER);
        String::from_utf8(self.buf).ok()
    }
}

/// Decrypts a base64 `Encrypt` value and checks padding and framing.
pub fn open(key: &AesKey, encrypt: &str) -> Result<Frame, CipherError> {
    let input = encrypt.as_bytes();
    // Standard alphabet, padding required, non-canonical trailing bits refused (as `base64`'s
    // STANDARD engine, which seals); SIMD, about three times faster on a push.
    let len = base64_simd::STANDARD
        .decoded_length(input)
        .map_err(|_| CipherError::Base64)?;
    if len == 0 || len % AES_BLOCK != 0 {
        // Decode first so that malformed base64 reports as such, not as a length problem.
        base64_simd::STANDARD
            .decode_to_vec(input)
            .map_err(|_| CipherError::Base64)?;
        return Err(CipherError::CiphertextLength);
    }
    let mut buf = vec![0u8; len];
    base64_simd::STANDARD
        .decode(input, base64_simd::Out::from_slice(&mut buf))
        .map_err(|_| CipherError::Base64)?;
    // CBC in place; the mode keeps the ciphertext blocks it still needs (parallel in the backend).
    cbc::Decryptor::<Aes256Dec>::inner_iv_init(key.dec.clone(), &key.iv().into())
        .decrypt_padded::<NoPadding>(&mut buf)
        .map_err(|_| CipherError::CiphertextLength)?;

    // PKCS#7 with a 32-byte block; every pad byte must equal the count (strict, docs/protocol.md §3.4).
    let pad = usize::from(buf[len - 1]);
    if pad == 0 || pad > PAD_BLOCK || pad > len {
        return Err(CipherError::Padding);
    }
    if !buf[len - pad..].iter().all(|&b| usize::from(b) == pad) {
        return Err(CipherError::Padding);
    }
    let end = len - pad;
    if end < HEADER {
        return Err(CipherError::FrameLength);
    }
    let msg_len = u32::from_be_bytes([buf[16], buf[17], buf[18], buf[19]]);
    let msg_end = usize::try_from(msg_len)
        .ok()
        .and_then(|l| l.checked_add(HEADER))
        .filter(|&e| e <= end)
        .ok_or(CipherError::FrameLength)?;
    Ok(Frame { buf, msg_end, end })
}

/// Encrypts `msg` for `receive_id` with the given 16 random bytes; returns the base64 `Encrypt`.
pub fn seal(key: &AesKey, random: &[u8; 16], msg: &[u8], receive_id: &str) -> String {
    let body = HEADER + msg.len() + receive_id.len();
    let pad = PAD_BLOCK - body % PAD_BLOCK;
    let mut buf = Vec::with_capacity(body + pad);
    buf.extend_from_slice(random);
    // A message over 4 GiB cannot be framed; the platforms cap bodies far below that.
    let msg_len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&msg_len.to_be_bytes());
    buf.extend_from_slice(msg);
    buf.extend_from_slice(receive_id.as_bytes());
    // `pad` is 1..=32, so it fits a byte.
    buf.resize(body + pad, u8::try_from(pad).unwrap_or(32));
    let (blocks, _) = Block::slice_as_chunks_mut(&mut buf);
    cbc::Encryptor::<Aes256>::new(&key.bytes.into(), &key.iv().into()).encrypt_blocks(blocks);
    STANDARD.encode(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    #[test]
    fn decodes_keys_with_trailing_bits() {
        let key = AesKey::from_encoding_aes_key(V3_KEY).unwrap();
        let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051"
        );
    }

    #[test]
    fn rejects_bad_keys() {
        assert_eq!(
            AesKey::from_encoding_aes_key("abc"),
            Err(KeyError::Length(3))
        );
        let plus = format!("{}+", &V3_KEY[..42]);
        assert_eq!(
            AesKey::from_encoding_aes_key(&plus),
            Err(KeyError::Alphabet)
        );
    }

    #[test]
    fn seals_the_official_java_vector() {
        // docs/protocol.md §5 V3 A1.
        let key = AesKey::from_encoding_aes_key(V3_KEY).unwrap();
        let sealed = seal(
            &key,
            b"aaaabbbbccccdddd",
            "我是中文abcd123".as_bytes(),
            "wxb11529c136998cb6",
        );
        assert_eq!(
            sealed,
            "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
        );
        let frame = open(&key, &sealed).unwrap();
        assert_eq!(frame.receive_id(), b"wxb11529c136998cb6");
        assert_eq!(frame.random(), b"aaaabbbbccccdddd");
        assert_eq!(frame.into_message().as_deref(), Some("我是中文abcd123"));
    }

    #[test]
    fn rejects_malformed_ciphertexts_with_distinct_errors() {
        let key = AesKey::from_encoding_aes_key(V3_KEY).unwrap();
        assert_eq!(open(&key, "not base64!"), Err(CipherError::Base64));
        assert_eq!(open(&key, ""), Err(CipherError::CiphertextLength));
        assert_eq!(open(&key, "AAAA"), Err(CipherError::CiphertextLength));
    }
}
