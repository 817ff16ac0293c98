//! The processor function's configuration and its one assembly path: [`Config::from_env`] reads
//! every variable the processor needs (the conversations and messages tables, the grants, the
//! retention, the outbound queue and the desk table for auto-reply notices; no tokens table, no
//! registry), [`App::build`] turns it and the AWS SDK configuration
//! into a ready [`App`]. `main.rs`, `kefu serve`, the integration tests and the benches use both.

use aws_config::SdkConfig;
use shared::adapters::dynamodb::{DynamoDbStore, Tables};
use std::sync::Arc;
use std::time::Duration;

use shared::adapters::sqs::SqsQueue;
use shared::config::{
    self, CONVERSATIONS_TABLE, ConfigError, DESK_TABLE, Env, KEFU_SERVICE, MESSAGE_RETENTION_DAYS,
    MESSAGES_TABLE, OUTBOUND_QUEUE_URL, QUOTA_BAIDU_MESSAGE, QUOTA_WECHAT_ENTER_SESSION,
    QUOTA_WECHAT_MESSAGE,
};
use shared::quota::QuotaPolicy;

use crate::{App, FollowUps};

/// How long one auto-reply notice may take to queue (SQS retries within it).
const NOTICE_BUDGET: Duration = Duration::from_secs(4);

/// Everything the processor reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `KEFU_SERVICE`: the `service` metric dimension.
    pub service: String,
    /// `CONVERSATIONS_TABLE`, `MESSAGES_TABLE`.
    pub tables: Tables,
    /// `QUOTA_*`: the grant per user action.
    pub policy: QuotaPolicy,
    /// `MESSAGE_RETENTION_DAYS` (0 keeps messages forever).
    pub retention_days: u64,
    /// `OUTBOUND_QUEUE_URL` and `DESK_TABLE`: auto-reply notices and the settings they are gated
    /// on (both or neither; without them no notice is queued).
    pub follow_ups: Option<(String, String)>,
}

/// The variables [`Config::from_env`] reads: exactly what `template.yaml` gives the function.
pub const VARIABLES: &[&str] = &[
    KEFU_SERVICE,
    CONVERSATIONS_TABLE,
    MESSAGES_TABLE,
    QUOTA_WECHAT_MESSAGE,
    QUOTA_WECHAT_ENTER_SESSION,
    QUOTA_BAIDU_MESSAGE,
    MESSAGE_RETENTION_DAYS,
    OUTBOUND_QUEUE_URL,
    DESK_TABLE,
];

impl Config {
    /// Reads the configuration; errors name the variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            service: config::service(env),
            tables: Tables::inbound_from_env(env)?,
            policy: config::quota_policy(env)?,
            retention_days: env.parsed(MESSAGE_RETENTION_DAYS, 0)?,
            follow_ups: match (env.optional(OUTBOUND_QUEUE_URL), env.optional(DESK_TABLE)) {
                (Some(queue), Some(desk)) => Some((queue, desk)),
                (None, None) => None,
                (Some(_), None) => return Err(ConfigError::Missing(DESK_TABLE)),
                (None, Some(_)) => return Err(ConfigError::Missing(OUTBOUND_QUEUE_URL)),
            },
        })
    }
}

impl App<DynamoDbStore> {
    /// Assembles the processor: the DynamoDB store on its two tables with the retention, and the
    /// auto-reply notices when configured.
    pub fn build(config: Config, sdk: &SdkConfig) -> Self {
        shared::metrics::set_service(&config.service);
        let client = aws_sdk_dynamodb::Client::new(sdk);
        let follow_ups = config.follow_ups.map(|(queue, desk)| {
            let settings = DynamoDbStore::new(
                client.clone(),
                Tables {
                    desk: Some(desk),
                    ..config.tables.clone()
                },
            );
            let sqs = SqsQueue::client_with_budget(sdk, NOTICE_BUDGET);
            FollowUps::new(Arc::new(SqsQueue::new(sqs, queue)), Arc::new(settings))
        });
        let store = DynamoDbStore::new(client, config.tables)
            .with_message_retention_days(config.retention_days);
        let app = App::new(store, config.policy);
        match follow_ups {
            Some(f) => app.with_follow_ups(f),
            None => app,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_no_tokens_table_and_reads_only_what_it_lists() {
        let seen = std::sync::Mutex::new(Vec::new());
        let env = Env(|n: &str| {
            seen.lock().unwrap().push(n.to_owned());
            match n {
                CONVERSATIONS_TABLE | MESSAGES_TABLE => Some(format!("t-{n}")),
                _ => None,
            }
        });
        let c = Config::from_env(&env).unwrap();
        assert_eq!(c.tables.tokens, None);
        assert_eq!(c.retention_days, 0);
        for name in seen.lock().unwrap().iter() {
            assert!(
                VARIABLES.contains(&name.as_str()),
                "{name} read but not listed"
            );
        }
        let missing = Env(|n: &str| (n == CONVERSATIONS_TABLE).then(|| "c".to_owned()));
        assert!(matches!(
            Config::from_env(&missing),
            Err(ConfigError::Missing(MESSAGES_TABLE))
        ));
    }
}
