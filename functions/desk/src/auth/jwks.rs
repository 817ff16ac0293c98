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

/// The shortest time between two fetches of the key set after one succeeded.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// The shortest time between two attempts after one failed (a cold start's fetch that failed must
/// not lock every agent out for a minute).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(5);

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
    /// When the last attempt was made and whether it succeeded.
    attempt: Option<(Instant, bool)>,
}

/// Verifies bearer tokens against the pool's keys.
pub struct Verifier {
    audience: Audience,
    source: Arc<dyn KeySource>,
    cache: RwLock<Cached>,
    /// [`REFETCH_INTERVAL`] and [`RETRY_INTERVAL`] (shorter in tests).
    intervals: (Duration, Duration),
}

impl Verifier {
    /// A verifier for `audience` with keys from `source`.
    pub fn new(audience: Audience, source: Arc<dyn KeySource>) -> Self {
        Self {
            audience,
            source,
            cache: RwLock::new(Cached {
                keys: KeySet::default(),
                attempt: None,
            }),
            intervals: (REFETCH_INTERVAL, RETRY_INTERVAL),
        }
    }

    /// The same verifier waiting `refetch` after a fetch and `retry` after a failed one.
    #[must_use]
    pub fn with_intervals(mut self, refetch: Duration, retry: Duration) -> Self {
        self.intervals = (refetch, retry);
        self
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

    /// Fetches the key set unless it was fetched less than [`REFETCH_INTERVAL`] ago (or an
    /// attempt failed less than [`RETRY_INTERVAL`] ago); a failed fetch keeps the keys held (and
    /// is logged).
    async fn refresh(&self) {
        let mut cache = self.cache.write().await;
        let (refetch, retry) = self.intervals;
        let wait = |ok: bool| if ok { refetch } else { retry };
        if cache
            .attempt
            .is_some_and(|(at, ok)| at.elapsed() < wait(ok))
        {
            return;
        }
        let ok = match self.source.fetch().await {
            Ok(doc) => match KeySet::parse(&doc) {
                Some(keys) => {
                    cache.keys = keys;
                    true
                }
                None => {
                    tracing::error!(outcome = "jwks_invalid", "the JWKS is not a key set");
                    false
                }
            },
            Err(e) => {
                tracing::error!(outcome = "jwks_unavailable", error.message = %e, "cannot fetch the JWKS");
                false
            }
        };
        cache.attempt = Some((Instant::now(), ok));
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

    /// Fails its first fetch, then serves `doc`.
    struct FlakyOnce {
        doc: String,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl KeySource for FlakyOnce {
        async fn fetch(&self) -> Result<String, String> {
            match self.calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err("connection refused".into()),
                _ => Ok(self.doc.clone()),
            }
        }
    }

    #[tokio::test]
    async fn a_failed_fetch_is_retried_sooner_than_a_successful_one() {
        let s = TestSigner::new();
        let v = Verifier::new(
            audience(),
            Arc::new(FlakyOnce {
                doc: jwks(&s),
                calls: AtomicUsize::new(0),
            }),
        )
        .with_intervals(Duration::from_secs(3600), Duration::from_millis(20));
        let bearer = format!(
            "Bearer {}",
            s.token(r#"{"kid":"test","alg":"RS256"}"#, &claims(2000))
        );
        assert_eq!(
            v.verify_header(Some(&bearer), 1000).await,
            Err(TokenError::UnknownKey)
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(
            v.verify_header(Some(&bearer), 1000).await.unwrap().sub,
            "agent-1"
        );
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
