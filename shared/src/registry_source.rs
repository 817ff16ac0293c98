//! Where a function's app registry comes from at run time, and keeping it fresh.
//!
//! Deployed, each function reads its own part of the registry from Secrets Manager (ingress the
//! verify secret, the sender the send secret) at cold start and again once the copy is older than
//! a TTL, so a Token or key rotation needs no redeploy. Locally the registry is a file (re-read on
//! the same TTL) or an inline document. A failed re-read keeps serving the last good copy and tries
//! again a little later; only the first load must succeed.
//!
//! Not here: the document's format and validation (`registry`).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use async_trait::async_trait;

use crate::registry::{AppRegistry, Purpose, Refresh, RegistryError, RegistryLocation};

/// Why the registry could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The store holding it did not answer or refused (permissions, missing secret, network).
    #[error("cannot read the app registry from {location}: {reason}")]
    Unavailable {
        /// Where it was read from (a secret id or path, never a value).
        location: String,
        /// What went wrong.
        reason: String,
    },
    /// The document is not a registry at all.
    #[error(transparent)]
    Invalid(#[from] RegistryError),
}

/// Reads the registry document's current text.
#[async_trait]
pub trait FetchRegistry: Send + Sync {
    /// The document as it is now.
    async fn fetch(&self) -> Result<String, SourceError>;
}

/// A file read on every fetch.
struct FileSource(PathBuf);

#[async_trait]
impl FetchRegistry for FileSource {
    async fn fetch(&self) -> Result<String, SourceError> {
        std::fs::read_to_string(&self.0).map_err(|e| SourceError::Unavailable {
            location: self.0.display().to_string(),
            reason: e.to_string(),
        })
    }
}

/// A fixed document.
struct InlineSource(String);

#[async_trait]
impl FetchRegistry for InlineSource {
    async fn fetch(&self) -> Result<String, SourceError> {
        Ok(self.0.clone())
    }
}

/// A Secrets Manager secret's current (`AWSCURRENT`) string value.
pub struct SecretSource {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretSource {
    /// A source reading `secret_id` through `client`.
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

#[async_trait]
impl FetchRegistry for SecretSource {
    async fn fetch(&self) -> Result<String, SourceError> {
        let unavailable = |reason: String| SourceError::Unavailable {
            location: format!("secret {}", self.secret_id),
            reason,
        };
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| {
                let e = aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string();
                unavailable(e)
            })?;
        out.secret_string
            .ok_or_else(|| unavailable("the secret has no string value".into()))
    }
}

impl RegistryLocation {
    /// The fetcher for this location. A secret needs the AWS SDK configuration.
    pub fn source(&self, sdk: &aws_config::SdkConfig) -> Box<dyn FetchRegistry> {
        match self {
            RegistryLocation::Secret(id) => Box::new(SecretSource::new(
                aws_sdk_secretsmanager::Client::new(sdk),
                id.clone(),
            )),
            RegistryLocation::File(path) => Box::new(FileSource(path.clone())),
            RegistryLocation::Inline(json) => Box::new(InlineSource(json.clone())),
        }
    }
}

struct Loaded {
    registry: Arc<AppRegistry>,
    next_check: Option<Instant>,
}

/// The registry a function serves from: loaded once, re-read when older than the TTL.
pub struct LiveRegistry {
    source: Option<Box<dyn FetchRegistry>>,
    purpose: Purpose,
    refresh: Refresh,
    function: &'static str,
    loaded: RwLock<Loaded>,
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for LiveRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRegistry")
            .field("purpose", &self.purpose)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl LiveRegistry {
    /// A registry that never changes (tests, benches).
    pub fn fixed(registry: AppRegistry) -> Self {
        Self {
            source: None,
            purpose: Purpose::Full,
            refresh: Refresh::default(),
            function: "fixed",
            loaded: RwLock::new(Loaded {
                registry: Arc::new(registry),
                next_check: None,
            }),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads the registry from `source` for `purpose` (cold start). `function` names the reader
    /// in logs and metrics. Invalid entries are reported (log line and `RegistryInvalid` metric
    /// naming the field) and disable only their apps; a source that cannot be read is an error.
    pub async fn load(
        source: Box<dyn FetchRegistry>,
        purpose: Purpose,
        refresh: Refresh,
        function: &'static str,
    ) -> Result<Self, SourceError> {
        let registry = read(source.as_ref(), purpose, function).await?;
        Ok(Self {
            source: Some(source),
            purpose,
            refresh,
            function,
            loaded: RwLock::new(Loaded {
                registry: Arc::new(registry),
                next_check: Some(Instant::now() + refresh.ttl),
            }),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// The registry to serve this request from, re-read first when the copy is older than the
    /// TTL (one re-read at a time; concurrent requests keep using the current copy).
    pub async fn current(&self) -> Arc<AppRegistry> {
        let (registry, due) = {
            let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
            let due = loaded.next_check.is_some_and(|t| Instant::now() >= t);
            (loaded.registry.clone(), due)
        };
        let Some(source) = self.source.as_deref().filter(|_| due) else {
            return registry;
        };
        let Ok(_guard) = self.refreshing.try_lock() else {
            return registry;
        };
        let outcome = tokio::time::timeout(
            self.refresh.timeout,
            read(source, self.purpose, self.function),
        )
        .await;
        let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(Ok(fresh)) => {
                loaded.registry = Arc::new(fresh);
                loaded.next_check = Some(Instant::now() + self.refresh.ttl);
            }
            Ok(Err(e)) => {
                tracing::error!(function = self.function, outcome = "registry_refresh_failed", error.message = %e, "keeping the last good app registry");
                self.refresh_failed(&mut loaded);
            }
            Err(_) => {
                tracing::error!(
                    function = self.function,
                    outcome = "registry_refresh_timeout",
                    timeout_ms = self.refresh.timeout.as_millis() as u64,
                    "keeping the last good app registry"
                );
                self.refresh_failed(&mut loaded);
            }
        }
        loaded.registry.clone()
    }

    /// A failed re-read: counted (`RegistryRefreshFailed`, alarmed) and tried again shortly.
    fn refresh_failed(&self, loaded: &mut Loaded) {
        crate::metrics::emit(
            &crate::metrics::REGISTRY_REFRESH_FAILED,
            1.0,
            &[(crate::metrics::FUNCTION, self.function)],
        );
        loaded.next_check = Some(Instant::now() + self.refresh.retry_after);
    }
}

async fn read(
    source: &dyn FetchRegistry,
    purpose: Purpose,
    function: &'static str,
) -> Result<AppRegistry, SourceError> {
    let json = source.fetch().await?;
    let registry = AppRegistry::parse_for(&json, purpose)?;
    if registry.invalid().is_empty() {
        // A clean load reports 0, so the alarm returns to OK once the registry is fixed.
        crate::metrics::emit(
            &crate::metrics::REGISTRY_INVALID,
            0.0,
            &[
                (crate::metrics::FUNCTION, function),
                (crate::metrics::FIELD, "none"),
            ],
        );
    }
    for entry in registry.invalid() {
        let field = entry.error.field();
        tracing::error!(function, outcome = "registry_entry_invalid", field, error.message = %entry.error, "app registry entry refused; its app is disabled");
        crate::metrics::emit(
            &crate::metrics::REGISTRY_INVALID,
            1.0,
            &[
                (crate::metrics::FUNCTION, function),
                (crate::metrics::FIELD, field),
            ],
        );
    }
    Ok(registry)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::ids::Platform;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    struct Scripted {
        docs: Mutex<Vec<Result<String, String>>>,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl FetchRegistry for Arc<Scripted> {
        async fn fetch(&self) -> Result<String, SourceError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut docs = self.docs.lock().unwrap();
            let next = if docs.len() > 1 {
                docs.remove(0)
            } else {
                docs[0].clone()
            };
            next.map_err(|reason| SourceError::Unavailable {
                location: "test".into(),
                reason,
            })
        }
    }

    fn doc(token: &str) -> String {
        format!(
            r#"{{"apps":[{{"platform":"wechat","app_id":"wx1","token":"{token}","encoding_aes_key":"{KEY}"}}]}}"#
        )
    }

    fn token(r: &AppRegistry) -> String {
        let app = r.app(Platform::Wechat, "wx1").unwrap();
        app.credentials.as_ref().unwrap().token.expose().to_owned()
    }

    fn scripted(docs: Vec<Result<String, String>>) -> Arc<Scripted> {
        Arc::new(Scripted {
            docs: Mutex::new(docs),
            calls: AtomicUsize::new(0),
        })
    }

    #[tokio::test]
    async fn serves_the_copy_inside_the_ttl() {
        let script = scripted(vec![Ok(doc("one")), Ok(doc("two"))]);
        let live = LiveRegistry::load(
            Box::new(script.clone()),
            Purpose::Verify,
            Refresh::default(),
            "test",
        )
        .await
        .unwrap();
        assert_eq!(token(&*live.current().await), "one");
        assert_eq!(token(&*live.current().await), "one");
        assert_eq!(
            script.calls.load(Ordering::SeqCst),
            1,
            "no re-read inside the TTL"
        );
    }

    #[tokio::test]
    async fn rereads_after_the_ttl_and_keeps_the_last_good_copy_on_failure() {
        let script = scripted(vec![
            Ok(doc("one")),
            Err("throttled".into()),
            Ok(doc("two")),
        ]);
        let short = Refresh {
            ttl: Duration::from_millis(20),
            timeout: Duration::from_millis(500),
            retry_after: Duration::from_millis(20),
        };
        let live = LiveRegistry::load(Box::new(script.clone()), Purpose::Verify, short, "test")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            token(&*live.current().await),
            "one",
            "a failed re-read keeps the copy"
        );
        assert_eq!(script.calls.load(Ordering::SeqCst), 2);
        assert_eq!(
            token(&*live.current().await),
            "one",
            "no retry before retry_after"
        );
        assert_eq!(script.calls.load(Ordering::SeqCst), 2);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            token(&*live.current().await),
            "two",
            "the next re-read takes effect"
        );
    }

    #[tokio::test]
    async fn the_first_load_must_succeed_but_invalid_entries_do_not_stop_it() {
        let unreadable = LocalOnly(Err("AccessDenied".into()));
        let e = LiveRegistry::load(
            Box::new(unreadable),
            Purpose::Verify,
            Refresh::default(),
            "t",
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("AccessDenied"), "{e}");
        let partly = LocalOnly(Ok(format!(
            r#"{{"apps":[{{"platform":"wechat","app_id":"ok","token":"t","encoding_aes_key":"{KEY}"}},{{"platform":"wechat","app_id":"bad","token":"t"}}]}}"#
        )));
        let live = LiveRegistry::load(Box::new(partly), Purpose::Verify, Refresh::default(), "t")
            .await
            .unwrap();
        let r = live.current().await;
        assert!(r.app(Platform::Wechat, "ok").is_some());
        assert_eq!(r.invalid().len(), 1);
    }

    struct LocalOnly(Result<String, String>);

    #[async_trait]
    impl FetchRegistry for LocalOnly {
        async fn fetch(&self) -> Result<String, SourceError> {
            self.0.clone().map_err(|reason| SourceError::Unavailable {
                location: "test".into(),
                reason,
            })
        }
    }
}
