//! The ingress function's configuration and its one assembly path: [`Config::from_env`] reads every
//! variable ingress needs (and nothing else), [`App::build`] turns a config and the AWS SDK
//! configuration into a ready [`App`]. `main.rs`, `kefu serve`, the integration tests and the
//! benches all go through these two, so what runs locally is wired as what runs deployed.

use std::time::Duration;

use aws_config::SdkConfig;
use shared::adapters::sqs::SqsQueue;
use shared::clock::SystemClock;
use shared::config::{
    self, ConfigError, ENQUEUE_BUDGET_MS, Env, INBOUND_QUEUE_URL, KEFU_SERVICE, MAX_BODY_BYTES,
    REGISTRY_TTL_SECS, REPLAY_WINDOW_SECS, VERIFY_REGISTRY_SECRET_ID,
};
use shared::registry::{Purpose, Refresh, RegistryLocation};
use shared::registry_source::{LiveRegistry, SourceError};

use crate::App;

/// Request-path limits, with their defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted body (default 64 KiB).
    pub max_body_bytes: usize,
    /// Reject signed timestamps older than this; `None` disables the guard (default 10 min).
    pub replay_window: Option<Duration>,
    /// Budget for the SQS send, retries included (default 1.2 s, well inside Baidu's 2 s).
    pub enqueue_budget: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            replay_window: Some(Duration::from_secs(600)),
            enqueue_budget: Duration::from_millis(1200),
        }
    }
}

/// Everything ingress reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `KEFU_SERVICE`: the `service` metric dimension.
    pub service: String,
    /// `LOG_HASH_KEY_SECRET_ID`: the stack's key for user tags in logs (unset: random per process).
    pub log_hash_key_secret: Option<String>,
    /// `INBOUND_QUEUE_URL`.
    pub queue_url: String,
    /// `VERIFY_REGISTRY_SECRET_ID` (deployed), else `KEFU_APPS_JSON` / `KEFU_APPS_FILE` (local).
    pub registry: RegistryLocation,
    /// `REGISTRY_TTL_SECS`: how often the registry is re-read.
    pub refresh: Refresh,
    /// `MAX_BODY_BYTES`, `REPLAY_WINDOW_SECS`, `ENQUEUE_BUDGET_MS`.
    pub limits: Limits,
}

/// Why ingress could not be assembled.
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
}

/// The variables [`Config::from_env`] reads: exactly what `template.yaml` gives the function
/// (plus the local-only registry fallbacks). Checked against the template by the rehearsal.
pub const VARIABLES: &[&str] = &[
    KEFU_SERVICE,
    shared::config::LOG_HASH_KEY_SECRET_ID,
    INBOUND_QUEUE_URL,
    VERIFY_REGISTRY_SECRET_ID,
    REGISTRY_TTL_SECS,
    MAX_BODY_BYTES,
    REPLAY_WINDOW_SECS,
    ENQUEUE_BUDGET_MS,
];

impl Config {
    /// Reads the configuration; errors name the variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let d = Limits::default();
        let replay: u64 = env.parsed(
            REPLAY_WINDOW_SECS,
            d.replay_window.map_or(0, |w| w.as_secs()),
        )?;
        let limits = Limits {
            max_body_bytes: env.parsed(MAX_BODY_BYTES, d.max_body_bytes)?,
            replay_window: (replay > 0).then(|| Duration::from_secs(replay)),
            enqueue_budget: match env
                .parsed::<u64>(ENQUEUE_BUDGET_MS, d.enqueue_budget.as_millis() as u64)?
            {
                0 => {
                    return Err(ConfigError::Invalid {
                        name: ENQUEUE_BUDGET_MS,
                        reason: "must be at least 1 ms".into(),
                    });
                }
                ms => Duration::from_millis(ms),
            },
        };
        Ok(Self {
            service: config::service(env),
            log_hash_key_secret: env.optional(shared::config::LOG_HASH_KEY_SECRET_ID),
            queue_url: env.required(INBOUND_QUEUE_URL)?,
            registry: config::registry_location(env, VERIFY_REGISTRY_SECRET_ID)?,
            refresh: config::registry_refresh(env)?,
            limits,
        })
    }
}

impl App<SqsQueue, SystemClock> {
    /// Assembles ingress from its configuration: the SQS client with the enqueue budget, the
    /// registry's verify part loaded (and kept fresh) from its location.
    pub async fn build(config: Config, sdk: &SdkConfig) -> Result<Self, BuildError> {
        shared::metrics::set_service(&config.service);
        let queue = SqsQueue::new(
            SqsQueue::client_with_budget(sdk, config.limits.enqueue_budget),
            config.queue_url,
        );
        // The registry and the log-hash key are read side by side: one cold-start wait, not two.
        let (registry, key) = tokio::join!(
            LiveRegistry::load(
                config.registry.source(sdk),
                Purpose::Verify,
                config.refresh,
                "ingress",
            ),
            shared::log_key::install(sdk, config.log_hash_key_secret.as_deref()),
        );
        let registry = registry?;
        key?;
        Ok(App::with_registry(
            config.limits,
            registry,
            queue,
            SystemClock,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_variable_it_lists_and_names_the_missing_one() {
        let env = Env(|n: &str| match n {
            INBOUND_QUEUE_URL => Some("http://q".to_owned()),
            VERIFY_REGISTRY_SECRET_ID => Some("arn:verify".to_owned()),
            KEFU_SERVICE => Some("kefu-prod".to_owned()),
            REGISTRY_TTL_SECS => Some("60".to_owned()),
            REPLAY_WINDOW_SECS => Some("0".to_owned()),
            _ => None,
        });
        let c = Config::from_env(&env).unwrap();
        assert_eq!(c.service, "kefu-prod");
        assert_eq!(c.registry, RegistryLocation::Secret("arn:verify".into()));
        assert_eq!(c.refresh.ttl, Duration::from_secs(60));
        assert_eq!(c.limits.replay_window, None);
        assert_eq!(c.limits.max_body_bytes, 65_536);
        let no_queue = Env(|n: &str| (n == VERIFY_REGISTRY_SECRET_ID).then(|| "s".to_owned()));
        assert!(matches!(
            Config::from_env(&no_queue),
            Err(ConfigError::Missing(INBOUND_QUEUE_URL))
        ));
        let no_registry = Env(|n: &str| (n == INBOUND_QUEUE_URL).then(|| "q".to_owned()));
        assert!(matches!(
            Config::from_env(&no_registry),
            Err(ConfigError::Missing(VERIFY_REGISTRY_SECRET_ID))
        ));
        let zero_ttl = Env(|n: &str| match n {
            INBOUND_QUEUE_URL | VERIFY_REGISTRY_SECRET_ID => Some("x".to_owned()),
            REGISTRY_TTL_SECS => Some("0".to_owned()),
            _ => None,
        });
        assert!(matches!(
            Config::from_env(&zero_ttl),
            Err(ConfigError::Invalid {
                name: REGISTRY_TTL_SECS,
                ..
            })
        ));
    }

    #[test]
    fn reads_nothing_it_does_not_list() {
        let seen = std::sync::Mutex::new(Vec::new());
        let env = Env(|n: &str| {
            seen.lock().unwrap().push(n.to_owned());
            Some("1".to_owned())
        });
        Config::from_env(&env).unwrap();
        let local_only = [
            shared::config::KEFU_APPS_JSON,
            shared::config::KEFU_APPS_FILE,
        ];
        for name in seen.lock().unwrap().iter() {
            assert!(
                VARIABLES.contains(&name.as_str()) || local_only.contains(&name.as_str()),
                "{name} is read but not listed in VARIABLES"
            );
        }
    }
}
