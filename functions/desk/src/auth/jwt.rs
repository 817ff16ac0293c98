//! Access tokens of the desk's Cognito user pool, checked the way the HTTP API's JWT authorizer
//! checks them — RS256 signature by a key of the pool's JWKS, issuer, client, `token_use` =
//! `access`, expiry — so the same validation runs deployed (behind the authorizer) and locally
//! (where moto's Cognito issues the tokens and serves the JWKS).
//!
//! Pure: the key set and the time are passed in. Fetching the JWKS is `auth::jwks`.

use std::collections::HashMap;

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// Why a token was refused (the API answers 401 with the label; never the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization: Bearer …` header.
    #[error("token_missing")]
    Missing,
    /// Not three base64url parts of JSON, or not RS256.
    #[error("token_malformed")]
    Malformed,
    /// Signed by no key of the pool (after one refresh of the key set).
    #[error("token_unknown_key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("token_signature")]
    Signature,
    /// Another issuer, client or token use.
    #[error("token_not_for_desk")]
    Audience,
    /// Expired.
    #[error("token_expired")]
    Expired,
}

impl TokenError {
    /// The reason label.
    pub fn reason(self) -> &'static str {
        match self {
            TokenError::Missing => "token_missing",
            TokenError::Malformed => "token_malformed",
            TokenError::UnknownKey => "token_unknown_key",
            TokenError::Signature => "token_signature",
            TokenError::Audience => "token_not_for_desk",
            TokenError::Expired => "token_expired",
        }
    }
}

/// One RSA key of a JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaKey {
    /// Modulus, big-endian.
    pub n: Vec<u8>,
    /// Exponent, big-endian.
    pub e: Vec<u8>,
}

/// A JWKS: RSA keys by `kid`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet(pub HashMap<String, RsaKey>);

#[derive(Deserialize)]
struct JwksDoc {
    keys: Vec<JwkDoc>,
}

#[derive(Deserialize)]
struct JwkDoc {
    kty: String,
    kid: String,
    #[serde(default)]
    n: String,
    #[serde(default)]
    e: String,
}

impl KeySet {
    /// Reads a JWKS document, keeping its RSA keys; `None` when it is not one.
    pub fn parse(json: &str) -> Option<KeySet> {
        let doc: JwksDoc = serde_json::from_str(json).ok()?;
        let mut keys = HashMap::new();
        for k in doc.keys.into_iter().filter(|k| k.kty == "RSA") {
            let n = URL_SAFE_NO_PAD.decode(k.n.trim_end_matches('=')).ok()?;
            let e = URL_SAFE_NO_PAD.decode(k.e.trim_end_matches('=')).ok()?;
            keys.insert(k.kid, RsaKey { n, e });
        }
        Some(KeySet(keys))
    }
}

/// What the desk needs to accept a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    /// `iss`: `https://cognito-idp.<region>.amazonaws.com/<pool id>`.
    pub issuer: String,
    /// `client_id`: the page's app client.
    pub client_id: String,
}

/// The claims of an accepted token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    /// The user's stable id: the desk's agent id.
    pub sub: String,
    /// The sign-in name.
    #[serde(default)]
    pub username: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    #[serde(default)]
    iss: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    token_use: String,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: String,
}

/// The token's `kid`, or why it cannot be read.
pub fn key_id(token: &str) -> Result<String, TokenError> {
    let header = token.split('.').next().ok_or(TokenError::Malformed)?;
    let header: Header = decode_json(header)?;
    if header.alg != "RS256" {
        return Err(TokenError::Malformed);
    }
    Ok(header.kid)
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// Verifies `token` with `keys` for `audience` at `now` (Unix seconds).
pub fn verify(
    token: &str,
    keys: &KeySet,
    audience: &Audience,
    now: u64,
) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let kid = key_id(token)?;
    let key = keys.0.get(&kid).ok_or(TokenError::UnknownKey)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    let signed = &token[..header.len() + 1 + payload.len()];
    RsaPublicKeyComponents {
        n: key.n.as_slice(),
        e: key.e.as_slice(),
    }
    .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature)
    .map_err(|_| TokenError::Signature)?;
    let claims: Claims = decode_json(payload)?;
    if claims.iss != audience.issuer
        || claims.client_id != audience.client_id
        || claims.token_use != "access"
        || claims.sub.is_empty()
    {
        return Err(TokenError::Audience);
    }
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
pub(crate) mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};

    use super::*;

    /// A signing key and its key set, for tests.
    pub(crate) struct TestSigner {
        pair: KeyPair,
        /// The JWKS holding its public half under `kid` `test`.
        pub keys: KeySet,
    }

    impl TestSigner {
        pub(crate) fn new() -> Self {
            let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
            let (n, e) = pkcs1_components(pair.public_key().as_ref());
            let keys = KeySet([("test".to_owned(), RsaKey { n, e })].into());
            Self { pair, keys }
        }

        /// A token with `header` and `claims` (JSON), signed.
        pub(crate) fn token(&self, header: &str, claims: &str) -> String {
            let signed = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(claims)
            );
            let mut sig = vec![0; self.pair.public_modulus_len()];
            self.pair
                .sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    signed.as_bytes(),
                    &mut sig,
                )
                .unwrap();
            format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
        }
    }

    /// `n` and `e` of a PKCS#1 `RSAPublicKey` (DER `SEQUENCE { INTEGER n, INTEGER e }`).
    fn pkcs1_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
        fn read(der: &[u8], at: &mut usize) -> Vec<u8> {
            *at += 1; // tag
            let first = der[*at] as usize;
            *at += 1;
            let len = if first < 0x80 {
                first
            } else {
                let bytes = first & 0x7f;
                let len = der[*at..*at + bytes]
                    .iter()
                    .fold(0, |acc, b| (acc << 8) | *b as usize);
                *at += bytes;
                len
            };
            let value = der[*at..*at + len].to_vec();
            *at += len;
            value
        }
        let mut at = 0;
        let seq = read(der, &mut at);
        let mut at = 0;
        let strip = |v: Vec<u8>| v.into_iter().skip_while(|b| *b == 0).collect::<Vec<u8>>();
        let n = strip(read(&seq, &mut at));
        let e = strip(read(&seq, &mut at));
        (n, e)
    }

    pub(crate) fn audience() -> Audience {
        Audience {
            issuer: "https://cognito-idp.us-east-1.amazonaws.com/pool".into(),
            client_id: "page".into(),
        }
    }

    pub(crate) fn claims(exp: u64) -> String {
        format!(
            r#"{{"iss":"https://cognito-idp.us-east-1.amazonaws.com/pool","sub":"agent-1","client_id":"page","token_use":"access","exp":{exp},"username":"ann"}}"#
        )
    }

    const HEADER: &str = r#"{"kid":"test","alg":"RS256"}"#;

    #[test]
    fn accepts_a_token_of_the_pool_for_the_page() {
        let s = TestSigner::new();
        let c = verify(&s.token(HEADER, &claims(2000)), &s.keys, &audience(), 1000).unwrap();
        assert_eq!((c.sub.as_str(), c.username.as_str()), ("agent-1", "ann"));
    }

    #[test]
    fn refuses_what_the_authorizer_refuses() {
        let s = TestSigner::new();
        let good = s.token(HEADER, &claims(2000));
        let at = |t: &str| verify(t, &s.keys, &audience(), 1000);
        assert_eq!(
            at(&s.token(HEADER, &claims(1000))),
            Err(TokenError::Expired)
        );
        let other_client = claims(2000).replace(r#""client_id":"page""#, r#""client_id":"x""#);
        assert_eq!(
            at(&s.token(HEADER, &other_client)),
            Err(TokenError::Audience)
        );
        let id_token = claims(2000).replace("access", "id");
        assert_eq!(at(&s.token(HEADER, &id_token)), Err(TokenError::Audience));
        let other_pool = claims(2000).replace("/pool", "/other");
        assert_eq!(at(&s.token(HEADER, &other_pool)), Err(TokenError::Audience));
        let unknown = s.token(r#"{"kid":"old","alg":"RS256"}"#, &claims(2000));
        assert_eq!(at(&unknown), Err(TokenError::UnknownKey));
        let none = s.token(r#"{"kid":"test","alg":"none"}"#, &claims(2000));
        assert_eq!(at(&none), Err(TokenError::Malformed));
        // A payload swapped under a valid signature.
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(claims(2000).replace("agent-1", "agent-2"));
        parts[1] = &forged;
        assert_eq!(at(&parts.join(".")), Err(TokenError::Signature));
        // Another key with the same kid.
        let impostor = TestSigner::new();
        assert_eq!(
            at(&impostor.token(HEADER, &claims(2000))),
            Err(TokenError::Signature)
        );
        assert_eq!(at("a.b"), Err(TokenError::Malformed));
        assert_eq!(at(&format!("{good}.x")), Err(TokenError::Malformed));
    }

    #[test]
    fn reads_a_jwks_document() {
        let doc = r#"{"keys":[{"alg":"RS256","e":"AQAB","kid":"dummy","kty":"RSA","n":"j1pT3w","use":"sig"},{"kty":"EC","kid":"ec"}]}"#;
        let keys = KeySet::parse(doc).unwrap();
        assert_eq!(keys.0.len(), 1);
        assert_eq!(keys.0["dummy"].e, vec![1, 0, 1]);
        assert_eq!(KeySet::parse("{}"), None);
    }
}
