//! Access tokens shared by every instance (docs/protocol.md §10; one refresher at a time): read the cached
//! token; if it is missing or near expiry, one instance takes the refresh lease (a conditional
//! write) and fetches, the others wait briefly for it or keep using the still-valid token. After
//! a token error the failed token is invalidated only if the cache still holds it, then refreshed
//! once. 服务商 apps (with `component_app_id`) never refresh here: their authorizer token is put in
//! the cache by the operator (README) until the component-ticket flow exists.

use std::time::Duration;

use shared::api::PlatformError;
use shared::clock::Clock;
use shared::ids::Platform;
use shared::ports::{AccessTokenCache, MediaIdCache, OutboundStore, QuotaLedger};
use shared::registry::AppConfig;
use tracing::{info, warn};

use crate::{App, SendError, Settings};

/// The token cache with this instance's lease identity and timing.
pub struct Tokens<T> {
    cache: T,
    owner: String,
    margin_secs: u64,
    lease_secs: u64,
    wait: Duration,
}

impl<T: AccessTokenCache> Tokens<T> {
    /// Wraps a cache; the lease owner is unique per process.
    pub fn new(cache: T, config: &Settings) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        Self {
            cache,
            owner: format!("{:x}{:x}", std::process::id(), nanos),
            margin_secs: config.token_margin_secs,
            lease_secs: config.token_lease_secs,
            wait: config.token_wait,
        }
    }

    /// This instance's lease identity.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The cache itself.
    pub fn cache(&self) -> &T {
        &self.cache
    }
}

impl<S, T, M, C> App<S, T, M, C>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    M: MediaIdCache,
    C: Clock,
{
    /// A usable access token for `app`; `failed` is a token the platform just rejected.
    pub async fn token(&self, app: &AppConfig, failed: Option<&str>) -> Result<String, SendError> {
        let t = &self.tokens;
        if let Some(failed) = failed {
            t.cache
                .invalidate_if_equals(app.platform, &app.app_id, failed)
                .await?;
        }
        let deadline = tokio::time::Instant::now() + t.wait;
        loop {
            let now = self.clock.now_secs();
            let cached = t.cache.get_token(app.platform, &app.app_id).await?;
            let usable = cached
                .as_ref()
                .filter(|c| Some(c.token.expose()) != failed && c.expires_at > now);
            if let Some(c) = usable
                && c.expires_at > now + t.margin_secs
            {
                return Ok(c.token.expose().to_owned());
            }
            if app.component_app_id.is_some() {
                // Authorizer tokens come from the 服务商 flow (not yet built): use what is stored.
                return usable.map(|c| c.token.expose().to_owned()).ok_or_else(|| {
                    SendError::Token(format!(
                        "no authorizer access token for {} app {} in the token store (see README: 服务商 apps)",
                        app.platform, app.app_id
                    ))
                });
            }
            if t.cache
                .try_lease(app.platform, &app.app_id, &t.owner, now, t.lease_secs)
                .await?
            {
                let fetched = self.fetch_token(app, failed.is_some()).await;
                return match fetched {
                    Ok((token, expires_in)) => {
                        t.cache
                            .put_token(
                                app.platform,
                                &app.app_id,
                                &token,
                                now + expires_in,
                                &t.owner,
                            )
                            .await?;
                        info!(platform = %app.platform, app_id = %app.app_id, outcome = "token_refreshed", expires_in, "access token refreshed");
                        shared::metrics::emit(
                            &shared::metrics::TOKEN_REFRESHES,
                            1.0,
                            &[(shared::metrics::OUTCOME, "ok")],
                        );
                        Ok(token)
                    }
                    Err(e) => {
                        shared::metrics::emit(
                            &shared::metrics::TOKEN_REFRESHES,
                            1.0,
                            &[(shared::metrics::OUTCOME, "failed")],
                        );
                        warn!(platform = %app.platform, app_id = %app.app_id, outcome = "token_refresh_failed", error.message = %e, "access token refresh failed");
                        t.cache
                            .release_lease(app.platform, &app.app_id, &t.owner)
                            .await?;
                        Err(SendError::Token(e.to_string()))
                    }
                };
            }
            if let Some(c) = usable {
                return Ok(c.token.expose().to_owned());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SendError::Token(
                    "another instance is refreshing the token; try again".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn fetch_token(&self, app: &AppConfig, force: bool) -> Result<(String, u64), SendError> {
        let secret = app
            .app_secret
            .as_ref()
            .ok_or_else(|| SendError::Token(format!("app {} has no app_secret", app.app_id)))?;
        let result = match app.platform {
            Platform::Wechat => {
                self.clients
                    .wechat
                    .fetch_token(
                        &app.app_id,
                        secret.expose(),
                        self.config.wechat_stable_token,
                        force && self.config.wechat_stable_token,
                    )
                    .await
            }
            Platform::Baidu => {
                let key = app.app_key.as_ref().ok_or_else(|| {
                    SendError::Token(format!("app {} has no app_key", app.app_id))
                })?;
                self.clients
                    .baidu
                    .fetch_token(key.expose(), secret.expose())
                    .await
            }
        };
        result.map_err(|e| SendError::Token(e.to_string()))
    }
}

/// Why a platform call through [`App::with_token`] failed.
pub(crate) enum CallError {
    /// The platform answered with an error, or did not answer.
    Platform(PlatformError),
    /// No access token could be had: nothing was sent.
    Token(SendError),
}

impl<S, T, M, C> App<S, T, M, C>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    M: MediaIdCache,
    C: Clock,
{
    /// Runs a platform call with the app's token; on a token error, refreshes once and retries once.
    pub(crate) async fn with_token<F, Fut, R>(
        &self,
        app: &AppConfig,
        call: F,
    ) -> Result<R, CallError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<R, PlatformError>>,
    {
        let token = self.token(app, None).await.map_err(CallError::Token)?;
        match call(token.clone()).await {
            Err(PlatformError::TokenInvalid { errcode }) => {
                warn!(platform = %app.platform, app_id = %app.app_id, errcode, "access token rejected; refreshing once");
                let fresh = self
                    .token(app, Some(&token))
                    .await
                    .map_err(CallError::Token)?;
                call(fresh).await.map_err(CallError::Platform)
            }
            other => other.map_err(CallError::Platform),
        }
    }
}
