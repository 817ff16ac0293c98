//! The user pool's signing keys, fetched from its JWKS URL on first use and again when a token
//! names a key not seen yet (a key rotation) — at most once a minute, so a flood of tokens with
//! made-up key ids cannot turn into a flood of fetches.
//!
//! Not here: the token checks (`auth::jwt`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::RwLock;

use super::jwt::{self, Audience, Claims, KeySet, TokenError};

/// The shortest time between two fetches of the key set.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// Where the key set comes from.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// The JWKS document, or why not.
    async fn fetch(&self) -> Result<String, String>;
}

/// The JWKS over HTTPS (or, locally, the emulator's HTTP).
pub struct HttpKeySource {
    /// The JWKS URL.
    pub url: String,
    /// The client (timeouts set by its builder).
    pub client: reqwest::Client,
}

#[async_trait]
impl KeySource for HttpKeySource {
    async fn fetch(&self) -> Result<String, String> {
        let resp = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| format!("GET {}: {e}", self.url))?;
        if !resp.status().is_success() {
            return Err(format!("GET {}: HTTP {}", self.url, resp.status()));
        }
        resp.text()
            .await
            .map_err(|e| format!("GET {}: {e}", self.url))
    }
}

struct Cached {
    keys: KeySet,
    fetched: Option<Instant>,
}

/// Verifies bearer tokens against the pool's keys.
pub struct Verifier {
    audience: Audience,
    source: Arc<dyn KeySource>,
    cache: RwLock<Cached>,
}

impl Verifier {
    /// A verifier for `audience` with keys from `source`.
    pub fn new(audience: Audience, source: Arc<dyn KeySource>) -> Self {
        Self {
            audience,
            source,
            cache: RwLock::new(Cached {
                keys: KeySet::default(),
                fetched: None,
            }),
        }
    }

    /// The claims of the `Authorization` header's bearer token at `now` (Unix seconds).
    pub async fn verify_header(
        &self,
        authorization: Option<&str>,
        now: u64,
    ) -> Result<Claims, TokenError> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Missing)?;
        let kid = jwt::key_id(token)?;
        {
            let cache = self.cache.read().await;
            if cache.keys.0.contains_key(&kid) {
                return jwt::verify(token, &cache.keys, &self.audience, now);
            }
        }
        self.refresh().await;
        let cache = self.cache.read().await;
        jwt::verify(token, &cache.keys, &self.audience, now)
    }

    /// Fetches the key set unless it was fetched less than [`REFETCH_INTERVAL`] ago; a failed
    /// fetch keeps the keys held (and is logged).
    async fn refresh(&self) {
        let mut cache = self.cache.write().await;
        if cache
            .fetched
            .is_some_and(|at| at.elapsed() < REFETCH_INTERVAL)
        {
            return;
        }
        cache.fetched = Some(Instant::now());
        match self.source.fetch().await {
            Ok(doc) => match KeySet::parse(&doc) {
                Some(keys) => cache.keys = keys,
                None => tracing::error!(outcome = "jwks_invalid", "the JWKS is not a key set"),
            },
            Err(e) => {
                tracing::error!(outcome = "jwks_unavailable", error.message = %e, "cannot fetch the JWKS")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::auth::jwt::tests::{TestSigner, audience, claims};

    struct Counting {
        doc: String,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl KeySource for Counting {
        async fn fetch(&self) -> Result<String, String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(self.doc.clone())
        }
    }

    fn jwks(s: &TestSigner) -> String {
        let k = &s.keys.0["test"];
        format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"test","n":"{}","e":"{}"}}]}}"#,
            URL_SAFE_NO_PAD.encode(&k.n),
            URL_SAFE_NO_PAD.encode(&k.e)
        )
    }

    #[tokio::test]
    async fn fetches_once_and_not_again_for_unknown_key_ids() {
        let s = TestSigner::new();
        let source = Arc::new(Counting {
            doc: jwks(&s),
            calls: AtomicUsize::new(0),
        });
        let v = Verifier::new(audience(), source.clone());
        let token = s.token(r#"{"kid":"test","alg":"RS256"}"#, &claims(2000));
        let bearer = format!("Bearer {token}");
        for _ in 0..3 {
            assert_eq!(
                v.verify_header(Some(&bearer), 1000).await.unwrap().sub,
                "agent-1"
            );
        }
        let unknown = s.token(r#"{"kid":"made-up","alg":"RS256"}"#, &claims(2000));
        for _ in 0..5 {
            assert_eq!(
                v.verify_header(Some(&format!("Bearer {unknown}")), 1000)
                    .await,
                Err(TokenError::UnknownKey)
            );
        }
        assert_eq!(
            source.calls.load(Ordering::SeqCst),
            1,
            "one fetch in a minute"
        );
        assert_eq!(v.verify_header(None, 1000).await, Err(TokenError::Missing));
        assert_eq!(
            v.verify_header(Some(&token), 1000).await,
            Err(TokenError::Missing),
            "not a bearer header"
        );
    }
}
