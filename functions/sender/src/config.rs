//! The sender function's configuration and its one assembly path: [`Config::from_env`] reads every
//! variable the sender needs (its three tables, its registry part, the platform settings),
//! [`App::build`] turns it and the AWS SDK configuration into a ready [`App`]. `main.rs`,
//! `kefu serve`, the integration tests and the benches all go through these two.

use std::time::Duration;

use aws_config::SdkConfig;
use shared::adapters::dynamodb::{DynamoDbStore, Tables};
use shared::adapters::s3::MediaBucket;
use shared::api::{BaseUrls, baidu::BaiduClient, http_client, wechat::WechatClient};
use shared::clock::SystemClock;
use shared::config::{
    self, BAIDU_API_BASE, CONVERSATIONS_TABLE, ConfigError, Env, KEFU_SERVICE,
    MESSAGE_RETENTION_DAYS, MESSAGES_TABLE, PLATFORM_TIMEOUT_MS, SEND_REGISTRY_SECRET_ID,
    TOKENS_TABLE, WECHAT_API_BASE, WECHAT_TOKEN_MODE,
};
use shared::ports::media_store::MediaStore;
use shared::registry::{Purpose, Refresh, RegistryLocation};
use shared::registry_source::{LiveRegistry, SourceError};

use crate::fetch::FetchPolicy;
use std::sync::Arc;

use crate::auto_reply::DeskPorts;
use crate::{App, Clients};

/// Total timeout of one platform call when `PLATFORM_TIMEOUT_MS` is unset.
pub const DEFAULT_PLATFORM_TIMEOUT: Duration = Duration::from_secs(5);

/// Local runs only (never in the template): `1` lets image URLs be `http://` and point at
/// loopback or private addresses, so `kefu serve` and tests can fetch from a local server.
pub const IMAGE_FETCH_LOCAL: &str = "IMAGE_FETCH_LOCAL";

/// Request-path settings of the sender, with their defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// WeChat token endpoint: `stable_token` (default) or the classic `token`.
    pub wechat_stable_token: bool,
    /// Total timeout of one platform call (`PLATFORM_TIMEOUT_MS`, default 5 s): no call starts
    /// unless this much time is left before the deadline (plus [`Settings::record_reserve`]).
    pub platform_timeout: Duration,
    /// The deadline when the invocation has none (local runs; default 25 s). Deployed, the
    /// deadline is the Lambda invocation's.
    pub max_request: Duration,
    /// Time kept after the last platform call to record the outcome (default 3 s).
    pub record_reserve: Duration,
    /// Largest text part in UTF-8 bytes (default 2000, docs/protocol.md §11.1).
    pub max_text_bytes: usize,
    /// Largest image accepted for upload (default 2 MiB, WeChat's temp-media rule).
    pub max_image_bytes: usize,
    /// How image URLs may be fetched (https only, public addresses only, by default).
    pub image_fetch: FetchPolicy,
    /// How long a `client_msg_id` is remembered (default 7 days).
    pub idempotency_ttl_secs: u64,
    /// An idempotency claim is held until the deadline plus this (default 30 s); a claim that
    /// died before sending can be taken over after that.
    pub lease_margin_secs: u64,
    /// Refresh a token this long before it expires (default 300 s).
    pub token_margin_secs: u64,
    /// How long one instance may hold the refresh lease (default 10 s).
    pub token_lease_secs: u64,
    /// How long a request waits for another instance's refresh (default 3 s).
    pub token_wait: Duration,
    /// Media ids are reused until this long before their 3-day expiry (default 1 h).
    pub media_margin_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            wechat_stable_token: true,
            platform_timeout: DEFAULT_PLATFORM_TIMEOUT,
            max_request: Duration::from_secs(25),
            record_reserve: Duration::from_secs(3),
            max_text_bytes: shared::api::MAX_TEXT_BYTES,
            max_image_bytes: 2 * 1024 * 1024,
            image_fetch: FetchPolicy::default(),
            idempotency_ttl_secs: 7 * 86_400,
            lease_margin_secs: 30,
            token_margin_secs: 300,
            token_lease_secs: 10,
            token_wait: Duration::from_secs(3),
            media_margin_secs: 3600,
        }
    }
}

/// Everything the sender reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `KEFU_SERVICE`: the `service` metric dimension.
    pub service: String,
    /// `LOG_HASH_KEY_SECRET_ID`: the stack's key for user tags in logs (unset: random per process).
    pub log_hash_key_secret: Option<String>,
    /// `CONVERSATIONS_TABLE`, `MESSAGES_TABLE`, `TOKENS_TABLE`, and `DESK_TABLE` when the sender
    /// consumes the outbound queue (auto replies).
    pub tables: Tables,
    /// `SEND_REGISTRY_SECRET_ID` (deployed), else `KEFU_APPS_JSON` / `KEFU_APPS_FILE` (local).
    pub registry: RegistryLocation,
    /// `REGISTRY_TTL_SECS`: how often the registry is re-read.
    pub refresh: Refresh,
    /// `WECHAT_API_BASE`, `BAIDU_API_BASE` (local runs point them at the fake platform).
    pub base_urls: BaseUrls,
    /// `MESSAGE_RETENTION_DAYS` for the outbound records (0 keeps them forever).
    pub retention_days: u64,
    /// `WECHAT_TOKEN_MODE`, `PLATFORM_TIMEOUT_MS`, `IMAGE_FETCH_LOCAL` and the request-path
    /// defaults.
    pub settings: Settings,
    /// `MEDIA_BUCKET`: where inbound images are kept (unset: not kept).
    pub media_bucket: Option<String>,
}

/// Why the sender could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A variable is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The registry could not be read at all.
    #[error(transparent)]
    Registry(#[from] SourceError),
    /// The stack's log-hash key could not be read.
    #[error(transparent)]
    LogKey(#[from] shared::log_key::LogKeyError),
    /// The HTTP client could not be built.
    #[error("cannot build the platform HTTP client: {0}")]
    Http(String),
}

/// The variables [`Config::from_env`] reads that `template.yaml` gives the function. Besides
/// these it reads only local-run variables: `KEFU_APPS_JSON`, `KEFU_APPS_FILE`,
/// `WECHAT_API_BASE`, `BAIDU_API_BASE`, [`IMAGE_FETCH_LOCAL`].
pub const VARIABLES: &[&str] = &[
    KEFU_SERVICE,
    shared::config::LOG_HASH_KEY_SECRET_ID,
    CONVERSATIONS_TABLE,
    MESSAGES_TABLE,
    TOKENS_TABLE,
    SEND_REGISTRY_SECRET_ID,
    shared::config::REGISTRY_TTL_SECS,
    WECHAT_TOKEN_MODE,
    PLATFORM_TIMEOUT_MS,
    MESSAGE_RETENTION_DAYS,
    shared::config::DESK_TABLE,
    shared::config::MEDIA_BUCKET,
];

impl Config {
    /// Reads the configuration; errors name the variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let wechat_stable_token = match env.optional(WECHAT_TOKEN_MODE).as_deref() {
            None | Some("stable") => true,
            Some("classic") => false,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: WECHAT_TOKEN_MODE,
                    reason: "expected stable or classic".into(),
                });
            }
        };
        let defaults = BaseUrls::default();
        let timeout_ms: u64 = env.parsed(
            PLATFORM_TIMEOUT_MS,
            DEFAULT_PLATFORM_TIMEOUT.as_millis() as u64,
        )?;
        if timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                name: PLATFORM_TIMEOUT_MS,
                reason: "must be at least 1 ms".into(),
            });
        }
        Ok(Self {
            service: config::service(env),
            log_hash_key_secret: env.optional(shared::config::LOG_HASH_KEY_SECRET_ID),
            tables: Tables {
                desk: env.optional(shared::config::DESK_TABLE),
                ..Tables::from_env(env)?
            },
            registry: config::registry_location(env, SEND_REGISTRY_SECRET_ID)?,
            refresh: config::registry_refresh(env)?,
            base_urls: BaseUrls {
                wechat: env.optional(WECHAT_API_BASE).unwrap_or(defaults.wechat),
                baidu: env.optional(BAIDU_API_BASE).unwrap_or(defaults.baidu),
            },
            retention_days: env.parsed(MESSAGE_RETENTION_DAYS, 0)?,
            settings: Settings {
                wechat_stable_token,
                platform_timeout: Duration::from_millis(timeout_ms),
                image_fetch: if env.optional(IMAGE_FETCH_LOCAL).as_deref() == Some("1") {
                    FetchPolicy::local()
                } else {
                    FetchPolicy::default()
                },
                ..Settings::default()
            },
            media_bucket: env.optional(shared::config::MEDIA_BUCKET),
        })
    }
}

impl App<DynamoDbStore, DynamoDbStore, DynamoDbStore, SystemClock> {
    /// Assembles the sender: the DynamoDB store (ledger, records, token cache, media-id cache),
    /// the platform clients with connect and total timeouts, the registry's send part kept fresh.
    pub async fn build(config: Config, sdk: &SdkConfig) -> Result<Self, BuildError> {
        shared::metrics::set_service(&config.service);
        let http = http_client(Duration::from_secs(2), config.settings.platform_timeout)
            .map_err(|e| BuildError::Http(e.to_string()))?;
        let images = crate::fetch::image_client(
            &config.settings.image_fetch,
            config.settings.platform_timeout,
        )
        .map_err(|e| BuildError::Http(e.to_string()))?;
        let has_desk = config.tables.desk.is_some();
        let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(sdk), config.tables)
            .with_message_retention_days(config.retention_days);
        // The registry and the log-hash key are read side by side: one cold-start wait, not two.
        let (registry, key) = tokio::join!(
            LiveRegistry::load(
                config.registry.source(sdk),
                Purpose::Send,
                config.refresh,
                "sender",
            ),
            shared::log_key::install(sdk, config.log_hash_key_secret.as_deref()),
        );
        let registry = registry?;
        key?;
        let desk: Option<Arc<dyn DeskPorts>> = has_desk.then(|| Arc::new(store.clone()) as _);
        let mut app = App::with_registry(
            config.settings,
            registry,
            store.clone(),
            store.clone(),
            store,
            Clients {
                wechat: WechatClient::new(http.clone(), config.base_urls.wechat),
                baidu: BaiduClient::new(http, config.base_urls.baidu),
                images,
            },
            SystemClock,
        );
        app.desk = desk;
        app.images = config.media_bucket.map(|bucket| {
            Arc::new(MediaBucket::new(MediaBucket::client(sdk), bucket)) as Arc<dyn MediaStore>
        });
        Ok(app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_variables_and_names_the_bad_one() {
        let seen = std::sync::Mutex::new(Vec::new());
        let env = Env(|n: &str| {
            seen.lock().unwrap().push(n.to_owned());
            match n {
                CONVERSATIONS_TABLE | MESSAGES_TABLE | TOKENS_TABLE => Some(format!("t-{n}")),
                SEND_REGISTRY_SECRET_ID => Some("arn:send".to_owned()),
                WECHAT_TOKEN_MODE => Some("classic".to_owned()),
                _ => None,
            }
        });
        let c = Config::from_env(&env).unwrap();
        assert_eq!(c.tables.tokens.as_deref(), Some("t-TOKENS_TABLE"));
        assert_eq!(c.registry, RegistryLocation::Secret("arn:send".into()));
        assert!(!c.settings.wechat_stable_token);
        assert_eq!(c.settings.platform_timeout, Duration::from_secs(5));
        assert!(!c.settings.image_fetch.allow_local);
        let local_only = [
            shared::config::KEFU_APPS_JSON,
            shared::config::KEFU_APPS_FILE,
            WECHAT_API_BASE,
            BAIDU_API_BASE,
            IMAGE_FETCH_LOCAL,
        ];
        for name in seen.lock().unwrap().iter() {
            assert!(
                VARIABLES.contains(&name.as_str()) || local_only.contains(&name.as_str()),
                "{name} read but not listed"
            );
        }
        let bad = Env(|n: &str| match n {
            WECHAT_TOKEN_MODE => Some("fast".to_owned()),
            _ => Some("x".to_owned()),
        });
        assert!(matches!(
            Config::from_env(&bad),
            Err(ConfigError::Invalid {
                name: WECHAT_TOKEN_MODE,
                ..
            })
        ));
    }
}
