//! `kefu smoke --stack NAME`: the flags, which API URL the checks go to, and the report it
//! prints; exit status 1 when any check failed.
//!
//! Not the checks themselves: [`crate::smoke`] runs them.

use std::io::Write;

use clap::Args;

use crate::env::KEFU_API_URL;
use crate::{Error, smoke};

/// `kefu smoke` flags.
#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// Stack name (its outputs name the API, queues, tables and the verify secret).
    #[arg(long)]
    pub stack: String,
    /// Send the verification requests here instead of the stack's ApiUrl (e.g. `kefu serve`).
    #[arg(long)]
    pub api_url: Option<String>,
    /// Check only this app id (repeatable; default: every app in the verify secret).
    #[arg(long = "app", value_name = "APP_ID")]
    pub apps: Vec<String>,
    /// AWS region (default: the SDK's, e.g. AWS_REGION).
    #[arg(long)]
    pub region: Option<String>,
}

/// Runs `kefu smoke`, writing what it prints to `out`; `Ok(false)` (exit status 1) when any check
/// failed.
pub async fn run(
    args: SmokeArgs,
    endpoint: Option<&str>,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    let sdk = crate::env::sdk_config(endpoint, args.region.as_deref()).await;
    let stack = crate::env::stack_env(&sdk, &args.stack).await?;
    let api_url = args
        .api_url
        .unwrap_or_else(|| stack.get(KEFU_API_URL).to_owned());
    writeln!(out, "smoke: stack {} against {api_url}", args.stack)?;
    let checks = smoke::checks(&sdk, &stack, &api_url, &args.apps).await;
    out.write_all(smoke::render(&checks).as_bytes())?;
    Ok(checks.iter().all(|c| c.ok))
}
