//! `kefu registry check FILE` and `kefu registry push FILE`: the flags, which secrets a push
//! writes (from `--stack` or named directly), and the report each prints, every line of it through
//! [`scrub`] first; exit status 1 when the file is invalid.
//!
//! Not the validation, splitting or writing: [`crate::registry`].

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::Error;
use crate::registry::{check, push, render_check, render_written, scrub};

/// `kefu registry` subcommands.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Validate a registry file (the functions' parser); exit 1 on any error.
    Check(CheckArgs),
    /// Validate, split into the verify and send parts, and write each to its secret.
    Push(PushArgs),
}

/// `kefu registry check` flags.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The registry file (JSON).
    pub file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `kefu registry push` flags: the secrets come from the stack's outputs, or are named directly.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The registry file (JSON).
    pub file: PathBuf,
    /// Stack name: write to its VerifyRegistrySecretArn and SendRegistrySecretArn outputs.
    #[arg(long, required_unless_present_all = ["verify_secret", "send_secret"], conflicts_with_all = ["verify_secret", "send_secret"])]
    pub stack: Option<String>,
    /// Secret id or ARN for the verify part (instead of --stack).
    #[arg(long, requires = "send_secret")]
    pub verify_secret: Option<String>,
    /// Secret id or ARN for the send part (instead of --stack).
    #[arg(long, requires = "verify_secret")]
    pub send_secret: Option<String>,
    /// AWS region (default: the SDK's, e.g. AWS_REGION).
    #[arg(long)]
    pub region: Option<String>,
}

fn read(file: &Path) -> Result<String, Error> {
    std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()).into())
}

/// Runs `kefu registry …`, writing what it prints to `out`; `Ok(false)` means exit status 1.
pub async fn run(
    command: RegistryCommand,
    endpoint: Option<&str>,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    match command {
        RegistryCommand::Check(args) => {
            let json = read(&args.file)?;
            let report = check(&json);
            let text = if args.json {
                serde_json::to_string_pretty(&report)? + "\n"
            } else {
                render_check(&report, &args.file.display().to_string())
            };
            out.write_all(scrub(&text, &json).as_bytes())?;
            Ok(report.ok)
        }
        RegistryCommand::Push(args) => {
            let json = read(&args.file)?;
            let report = check(&json);
            if !report.ok {
                let text = render_check(&report, &args.file.display().to_string());
                out.write_all(scrub(&text, &json).as_bytes())?;
                writeln!(out, "nothing written")?;
                return Ok(false);
            }
            let sdk = crate::env::sdk_config(endpoint, args.region.as_deref()).await;
            let (verify_id, send_id) = match (args.stack, args.verify_secret, args.send_secret) {
                (Some(stack), _, _) => {
                    let env = crate::env::stack_env(&sdk, &stack).await?;
                    (
                        env.get(crate::env::VERIFY_REGISTRY_SECRET_ID).to_owned(),
                        env.get(crate::env::SEND_REGISTRY_SECRET_ID).to_owned(),
                    )
                }
                (None, Some(v), Some(s)) => (v, s),
                _ => return Err("give --stack NAME, or --verify-secret ID --send-secret ID".into()),
            };
            let sm = aws_sdk_secretsmanager::Client::new(&sdk);
            let written = push(&sm, &json, &verify_id, &send_id)
                .await
                .map_err(|e| scrub(&e.to_string(), &json))?;
            out.write_all(scrub(&render_written(&written), &json).as_bytes())?;
            Ok(true)
        }
    }
}
