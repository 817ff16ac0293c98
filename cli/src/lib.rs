//! The `kefu` command as a library: the local loop (`serve`, `simulate`, `fake-platform`) and the
//! operations commands (`conversation show`, `queues`, `dlq redrive`, `env`, `registry`, `smoke`),
//! plus the helpers they share (SDK configuration, the store, environment variables).
//!
//! Layout: [`cli`] is the top-level command enum and its dispatch; [`commands`] has one module per
//! command (flags, output, exit status); the other modules do the work, so the integration tests
//! call the same functions in process. `main.rs` only parses the command line and calls [`run`].
//! This file holds only the module list and those helpers, no command's flags or output.

pub mod cli;
pub mod commands;
pub mod conversation;
pub mod env;
pub mod fake;
pub mod queues;
pub mod registry;
pub mod serve;
pub mod simulate;
pub mod smoke;

use std::path::Path;

use aws_config::{BehaviorVersion, SdkConfig};
use shared::adapters::dynamodb::{DynamoDbStore, Tables};
use shared::config::Env;
use shared::registry::AppRegistry;
use testkit::emulator::OneAtATime;

pub use cli::run;

/// `INBOUND_DLQ_URL`, as infra/local/seed.py prints it.
pub const INBOUND_DLQ_URL: &str = "INBOUND_DLQ_URL";

/// Any error the command reports (printed once, exit status 1).
pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The AWS SDK configuration from the usual sources, pointed at `endpoint` when given (the local
/// emulator; otherwise `AWS_ENDPOINT_URL` still applies as the SDK reads it itself).
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// The SDK configuration for DynamoDB clients: against an emulator (an endpoint override is set)
/// every client built from it shares one [`OneAtATime`] gate; against AWS it is `sdk` itself.
pub fn dynamodb_sdk(sdk: &SdkConfig) -> SdkConfig {
    if sdk.endpoint_url().is_some() {
        sdk.to_builder().http_client(OneAtATime::new()).build()
    } else {
        sdk.clone()
    }
}

/// A DynamoDB client. Against an emulator (an endpoint override is set) requests go through
/// [`OneAtATime`], because moto does not isolate concurrent transactions; against AWS they do not.
pub fn dynamodb_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&dynamodb_sdk(sdk))
}

/// The DynamoDB store on the tables named by `CONVERSATIONS_TABLE`, `MESSAGES_TABLE` and
/// `TOKENS_TABLE`, as the Lambdas read them.
pub fn store_from_env(sdk: &SdkConfig) -> Result<DynamoDbStore, Error> {
    let tables = Tables::from_env(&Env::process()).map_err(|e| {
        format!("{e} (run `make dev`, or eval the exports printed by infra/local/seed.py)")
    })?;
    Ok(DynamoDbStore::new(dynamodb_client(sdk), tables))
}

/// A required environment variable, with a hint in the error.
pub fn required_env(name: &str) -> Result<String, Error> {
    Env::process().optional(name).ok_or_else(|| {
        format!(
            "{name} is not set (run `make dev`, or eval the exports printed by infra/local/seed.py)"
        )
        .into()
    })
}

/// Reads and validates the app registry file (`KEFU_APPS_FILE`).
pub fn load_registry(path: &Path) -> Result<AppRegistry, Error> {
    let json = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the app registry {}: {e}", path.display()))?;
    AppRegistry::parse(&json).map_err(|e| format!("app registry {}: {e}", path.display()).into())
}

/// Current Unix time in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// `n` random bytes as lowercase hex (tokens, nonces).
pub fn random_hex(n: usize) -> Result<String, Error> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| format!("no randomness: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
