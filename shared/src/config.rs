//! Environment variable names (one place, matching `template.yaml` and the README's table) and
//! small typed readers that name the variable when a value is invalid.

use std::str::FromStr;

/// URL of the inbound SQS queue (ingress).
pub const INBOUND_QUEUE_URL: &str = "INBOUND_QUEUE_URL";
/// The outbound queue: auto-reply notices from the processor to the sender.
pub const OUTBOUND_QUEUE_URL: &str = "OUTBOUND_QUEUE_URL";
/// The media bucket: inbound images kept for the desk.
pub const MEDIA_BUCKET: &str = "MEDIA_BUCKET";
/// The desk table (agents, memberships, quick replies, auto-reply settings, tag lists).
pub const DESK_TABLE: &str = "DESK_TABLE";
/// Name of the conversations table.
pub const CONVERSATIONS_TABLE: &str = "CONVERSATIONS_TABLE";
/// Name of the messages table.
pub const MESSAGES_TABLE: &str = "MESSAGES_TABLE";
/// Name of the tokens table.
pub const TOKENS_TABLE: &str = "TOKENS_TABLE";
/// The stack (service) name: the `service` dimension of every metric (default `kefu-local`).
pub const KEFU_SERVICE: &str = "KEFU_SERVICE";
/// Ingress: id or ARN of the Secrets Manager secret with the registry's verify part.
pub const VERIFY_REGISTRY_SECRET_ID: &str = "VERIFY_REGISTRY_SECRET_ID";
/// Sender: id or ARN of the Secrets Manager secret with the registry's send part.
pub const SEND_REGISTRY_SECRET_ID: &str = "SEND_REGISTRY_SECRET_ID";
/// Secret holding the key open ids are hashed with in logs (generated per stack; unset: a random
/// key per process).
pub const LOG_HASH_KEY_SECRET_ID: &str = "LOG_HASH_KEY_SECRET_ID";
/// Re-read the registry once the copy is older than this many seconds (default 300).
pub const REGISTRY_TTL_SECS: &str = "REGISTRY_TTL_SECS";
/// Path of the app registry JSON file (local runs, when no secret id is set).
pub const KEFU_APPS_FILE: &str = "KEFU_APPS_FILE";
/// The app registry JSON itself (local runs and tests; alternative to the file).
pub const KEFU_APPS_JSON: &str = "KEFU_APPS_JSON";
/// Largest accepted callback body in bytes (default 65536).
pub const MAX_BODY_BYTES: &str = "MAX_BODY_BYTES";
/// Replay guard: reject signed timestamps older than this many seconds; 0 disables (default 600).
pub const REPLAY_WINDOW_SECS: &str = "REPLAY_WINDOW_SECS";
/// Time budget for the SQS send, retries included, in milliseconds (default 1200).
pub const ENQUEUE_BUDGET_MS: &str = "ENQUEUE_BUDGET_MS";
/// WeChat message grant, `MESSAGES/SECONDS` (default 5/172800).
pub const QUOTA_WECHAT_MESSAGE: &str = "QUOTA_WECHAT_MESSAGE";
/// WeChat enter-session grant, `MESSAGES/SECONDS` (default 1/60).
pub const QUOTA_WECHAT_ENTER_SESSION: &str = "QUOTA_WECHAT_ENTER_SESSION";
/// Baidu message grant, `MESSAGES/SECONDS` (default 5/172800).
pub const QUOTA_BAIDU_MESSAGE: &str = "QUOTA_BAIDU_MESSAGE";

/// WeChat token endpoint for the sender: `stable` (default, `cgi-bin/stable_token`) or `classic`.
pub const WECHAT_TOKEN_MODE: &str = "WECHAT_TOKEN_MODE";
/// Base URL of the WeChat API (default `https://api.weixin.qq.com`; tests point it at a fake).
pub const WECHAT_API_BASE: &str = "WECHAT_API_BASE";
/// Base URL of the Baidu API (default `https://openapi.baidu.com`).
pub const BAIDU_API_BASE: &str = "BAIDU_API_BASE";
/// Total timeout of one platform HTTP call in milliseconds (default 5000).
pub const PLATFORM_TIMEOUT_MS: &str = "PLATFORM_TIMEOUT_MS";

/// Keep messages this many days, then let DynamoDB's TTL remove them; 0 keeps them (default 0).
pub const MESSAGE_RETENTION_DAYS: &str = "MESSAGE_RETENTION_DAYS";

/// A missing or invalid environment variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Required and absent.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// Present but not valid.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// Reads environment variables through a lookup function, so tests need not touch the process env.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl Env<fn(&str) -> Option<String>> {
    /// The process environment.
    pub fn process() -> Self {
        Env(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// A required string.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    /// An optional, non-empty string.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// A parsed value, or `default` when absent.
    pub fn parsed<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            }),
        }
    }
}

/// Where a function reads its registry part: the secret named by `secret_var` when set (deployed),
/// else `KEFU_APPS_JSON`, else the file `KEFU_APPS_FILE` (local runs).
pub fn registry_location<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    secret_var: &'static str,
) -> Result<crate::registry::RegistryLocation, ConfigError> {
    use crate::registry::RegistryLocation;
    if let Some(id) = env.optional(secret_var) {
        return Ok(RegistryLocation::Secret(id));
    }
    if let Some(json) = env.optional(KEFU_APPS_JSON) {
        return Ok(RegistryLocation::Inline(json));
    }
    env.optional(KEFU_APPS_FILE)
        .map(|p| RegistryLocation::File(p.into()))
        .ok_or(ConfigError::Missing(secret_var))
}

/// `REGISTRY_TTL_SECS` (at least 1, default 300) as the registry's refresh policy.
pub fn registry_refresh<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<crate::registry::Refresh, ConfigError> {
    let d = crate::registry::Refresh::default();
    match env.parsed::<u64>(REGISTRY_TTL_SECS, d.ttl.as_secs())? {
        0 => Err(ConfigError::Invalid {
            name: REGISTRY_TTL_SECS,
            reason: "must be at least 1 second".into(),
        }),
        secs => Ok(crate::registry::Refresh {
            ttl: std::time::Duration::from_secs(secs),
            retry_after: d.retry_after.min(std::time::Duration::from_secs(secs)),
            ..d
        }),
    }
}

/// The service name for metrics (`KEFU_SERVICE`, default `kefu-local`).
pub fn service<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> String {
    env.optional(KEFU_SERVICE)
        .unwrap_or_else(|| "kefu-local".to_owned())
}

/// The quota grants, from `QUOTA_*` variables or the defaults of docs/design.md §6.
pub fn quota_policy<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<crate::quota::QuotaPolicy, ConfigError> {
    let d = crate::quota::QuotaPolicy::default();
    Ok(crate::quota::QuotaPolicy {
        wechat_message: env.parsed(QUOTA_WECHAT_MESSAGE, d.wechat_message)?,
        wechat_enter_session: env.parsed(QUOTA_WECHAT_ENTER_SESSION, d.wechat_enter_session)?,
        baidu_message: env.parsed(QUOTA_BAIDU_MESSAGE, d.baidu_message)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_variable_in_errors() {
        let env = Env(|n: &str| (n == "A").then(|| "x".to_owned()));
        assert_eq!(env.required("B"), Err(ConfigError::Missing("B")));
        assert!(matches!(
            env.parsed::<u64>("A", 1),
            Err(ConfigError::Invalid { name: "A", .. })
        ));
        assert_eq!(env.parsed::<u64>("C", 7), Ok(7));
    }

    #[test]
    fn reads_quota_grants() {
        let env = Env(|n: &str| (n == QUOTA_WECHAT_ENTER_SESSION).then(|| "2/60".to_owned()));
        let p = quota_policy(&env).unwrap();
        assert_eq!(p.wechat_enter_session, crate::quota::Grant::new(2, 60));
        assert_eq!(p.wechat_message, crate::quota::Grant::new(5, 172_800));
        let bad = Env(|n: &str| (n == QUOTA_BAIDU_MESSAGE).then(|| "five".to_owned()));
        assert!(matches!(
            quota_policy(&bad),
            Err(ConfigError::Invalid {
                name: QUOTA_BAIDU_MESSAGE,
                ..
            })
        ));
        assert_eq!(
            registry_location(&Env(|_: &str| None), VERIFY_REGISTRY_SECRET_ID),
            Err(ConfigError::Missing(VERIFY_REGISTRY_SECRET_ID))
        );
        let both = Env(|n: &str| match n {
            VERIFY_REGISTRY_SECRET_ID => Some("arn:secret".to_owned()),
            KEFU_APPS_FILE => Some("apps.json".to_owned()),
            _ => None,
        });
        assert_eq!(
            registry_location(&both, VERIFY_REGISTRY_SECRET_ID),
            Ok(crate::registry::RegistryLocation::Secret(
                "arn:secret".into()
            )),
            "the secret wins over a file"
        );
        assert_eq!(
            registry_location(&both, SEND_REGISTRY_SECRET_ID),
            Ok(crate::registry::RegistryLocation::File("apps.json".into()))
        );
    }
}
