//! `kefu env --stack NAME`: prints the stack's outputs as `export` lines or, with `--json`, as one
//! JSON object with the same keys.
//!
//! Not the reading of the stack: [`crate::env`] maps the outputs to variables.

use std::io::Write;

use clap::Args;

use crate::Error;
use crate::env::{sdk_config, stack_env};

/// `kefu env` flags.
#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Stack name.
    #[arg(long)]
    pub stack: String,
    /// AWS region (default: the SDK's, e.g. AWS_REGION).
    #[arg(long)]
    pub region: Option<String>,
    /// Print a JSON object with the same keys instead of `export` lines.
    #[arg(long)]
    pub json: bool,
}

/// Runs `kefu env`, writing what it prints to `out`.
pub async fn run(
    args: EnvArgs,
    endpoint: Option<&str>,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    let sdk = sdk_config(endpoint, args.region.as_deref()).await;
    let env = stack_env(&sdk, &args.stack).await?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&env.to_json())?)?;
    } else {
        out.write_all(env.render_exports().as_bytes())?;
    }
    Ok(true)
}
