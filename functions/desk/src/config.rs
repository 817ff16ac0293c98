//! The desk function's configuration and its one assembly path: [`Config::from_env`] reads every
//! variable the desk needs, [`App::build`] turns it and the AWS SDK configuration into a ready
//! [`App`]. `main.rs`, `kefu serve` and the tests all go through these two.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use shared::adapters::dynamodb::{DynamoDbStore, Tables};
use shared::adapters::s3::MediaBucket;
use shared::clock::SystemClock;
use shared::config::{
    CONVERSATIONS_TABLE, ConfigError, Env, KEFU_SERVICE, MESSAGE_RETENTION_DAYS, MESSAGES_TABLE,
    REGISTRY_TTL_SECS, SEND_REGISTRY_SECRET_ID,
};
use shared::registry_source::SourceError;

use crate::App;
use crate::auth::jwks::{HttpKeySource, Verifier};
use crate::auth::jwt::Audience;
use crate::signin::CognitoSignIn;

pub use shared::config::DESK_TABLE;
/// The agents' Cognito user pool id.
pub const DESK_USER_POOL_ID: &str = "DESK_USER_POOL_ID";
/// The page's app client id (tokens must be issued to it).
pub const DESK_CLIENT_ID: &str = "DESK_CLIENT_ID";
/// The tokens' issuer: `https://cognito-idp.<region>.<url suffix>/<pool id>`.
pub const DESK_ISSUER: &str = "DESK_ISSUER";
/// Local runs only (never in the template): where the pool's JWKS is served (the emulator);
/// deployed, it is the issuer's `/.well-known/jwks.json`.
pub const DESK_JWKS_URL: &str = "DESK_JWKS_URL";

/// Every variable the template must give the desk function: the sender's (a reply goes through
/// the sender's code, in process) and the desk's own.
pub const VARIABLES: &[&str] = &[
    KEFU_SERVICE,
    shared::config::LOG_HASH_KEY_SECRET_ID,
    CONVERSATIONS_TABLE,
    MESSAGES_TABLE,
    shared::config::TOKENS_TABLE,
    SEND_REGISTRY_SECRET_ID,
    REGISTRY_TTL_SECS,
    shared::config::WECHAT_TOKEN_MODE,
    shared::config::PLATFORM_TIMEOUT_MS,
    MESSAGE_RETENTION_DAYS,
    DESK_TABLE,
    DESK_USER_POOL_ID,
    DESK_CLIENT_ID,
    DESK_ISSUER,
    shared::config::MEDIA_BUCKET,
];

/// Everything the desk reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// The sender's configuration: replies are sent by its code with its settings.
    pub send: sender::Config,
    /// The conversations, messages, tokens and desk tables.
    pub tables: Tables,
    /// The user pool.
    pub user_pool_id: String,
    /// Issuer and client the tokens must carry.
    pub audience: Audience,
    /// The JWKS URL.
    pub jwks_url: String,
}

/// Why the desk could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A variable is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The registry could not be read.
    #[error(transparent)]
    Registry(#[from] SourceError),
    /// The sender could not be assembled.
    #[error(transparent)]
    Sender(#[from] sender::BuildError),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
}

impl Config {
    /// Reads the configuration; errors name the variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let issuer = env.required(DESK_ISSUER)?;
        if !issuer.starts_with("https://") && !issuer.starts_with("http://") {
            return Err(ConfigError::Invalid {
                name: DESK_ISSUER,
                reason: "must be the pool's issuer URL".into(),
            });
        }
        let issuer = issuer.trim_end_matches('/').to_owned();
        let send = sender::Config::from_env(env)?;
        Ok(Self {
            tables: Tables {
                desk: Some(env.required(DESK_TABLE)?),
                ..send.tables.clone()
            },
            send,
            user_pool_id: env.required(DESK_USER_POOL_ID)?,
            jwks_url: env
                .optional(DESK_JWKS_URL)
                .unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json")),
            audience: Audience {
                issuer,
                client_id: env.required(DESK_CLIENT_ID)?,
            },
        })
    }
}

impl App<DynamoDbStore, SystemClock> {
    /// Assembles the desk: the DynamoDB store, the registry's send part kept fresh, the token
    /// verifier on the pool's JWKS, and sign-in against the pool.
    pub async fn build(config: Config, sdk: &SdkConfig) -> Result<Self, BuildError> {
        let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(sdk), config.tables)
            .with_message_retention_days(config.send.retention_days);
        let images = config.send.media_bucket.clone().map(|bucket| {
            Arc::new(MediaBucket::new(MediaBucket::client(sdk), bucket))
                as Arc<dyn shared::ports::media_store::MediaStore>
        });
        // The sender reads the registry's send part and sets the metrics' service.
        let sender = sender::App::build(config.send, sdk).await?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| BuildError::Http(e.to_string()))?;
        let verifier = Verifier::new(
            config.audience.clone(),
            Arc::new(HttpKeySource {
                url: config.jwks_url,
                client: http,
            }),
        );
        // Sign-in is a public API of the pool: its requests go unsigned, never with the
        // function's credentials (so the role needs no Cognito permission at all).
        let mut cognito = aws_sdk_cognitoidentityprovider::config::Builder::from(sdk);
        cognito.set_credentials_provider(None);
        let cognito = cognito.build();
        let signin = CognitoSignIn::new(
            aws_sdk_cognitoidentityprovider::Client::from_conf(cognito),
            config.audience.client_id,
        );
        Ok(App {
            store,
            sender: Arc::new(sender),
            images,
            verifier,
            signin: Arc::new(signin),
            clock: SystemClock,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_variables_and_names_the_missing_one() {
        let seen = std::sync::Mutex::new(Vec::new());
        let env = Env(|n: &str| {
            seen.lock().unwrap().push(n.to_owned());
            match n {
                DESK_ISSUER => Some("https://cognito-idp.cn-north-1.amazonaws.com.cn/pool/".into()),
                SEND_REGISTRY_SECRET_ID => Some("arn:send".into()),
                KEFU_SERVICE | REGISTRY_TTL_SECS | MESSAGE_RETENTION_DAYS | DESK_JWKS_URL => None,
                shared::config::WECHAT_TOKEN_MODE | shared::config::PLATFORM_TIMEOUT_MS => None,
                shared::config::KEFU_APPS_JSON | shared::config::KEFU_APPS_FILE => None,
                shared::config::WECHAT_API_BASE | shared::config::BAIDU_API_BASE => None,
                sender::config::IMAGE_FETCH_LOCAL => None,
                n => Some(format!("v-{n}")),
            }
        });
        let c = Config::from_env(&env).unwrap();
        assert_eq!(c.tables.desk.as_deref(), Some("v-DESK_TABLE"));
        assert_eq!(
            c.audience.issuer,
            "https://cognito-idp.cn-north-1.amazonaws.com.cn/pool"
        );
        assert_eq!(
            c.jwks_url,
            "https://cognito-idp.cn-north-1.amazonaws.com.cn/pool/.well-known/jwks.json"
        );
        assert_eq!(c.audience.client_id, "v-DESK_CLIENT_ID");
        for name in seen.lock().unwrap().iter() {
            let local = [
                shared::config::KEFU_APPS_JSON,
                shared::config::KEFU_APPS_FILE,
                shared::config::WECHAT_API_BASE,
                shared::config::BAIDU_API_BASE,
                sender::config::IMAGE_FETCH_LOCAL,
                DESK_JWKS_URL,
            ];
            assert!(
                VARIABLES.contains(&name.as_str()) || local.contains(&name.as_str()),
                "{name} read but not listed"
            );
        }
        let missing = Env(|n: &str| match n {
            DESK_CLIENT_ID => None,
            n => (env.0)(n),
        });
        assert!(matches!(
            Config::from_env(&missing),
            Err(ConfigError::Missing(DESK_CLIENT_ID))
        ));
    }
}
