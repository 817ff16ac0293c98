//! `kefu queues`: the inbound queue's and the DLQ's depth — and the outbound queue's and its DLQ's
//! (auto-reply and image notices) when `OUTBOUND_QUEUE_URL` / `OUTBOUND_DLQ_URL` are set — as a
//! table or `--json`.
//!
//! Not the SQS calls ([`crate::queues`]) and not `kefu dlq redrive` ([`super::dlq`]).

use std::process::ExitCode;

use clap::Args;
use shared::config::INBOUND_QUEUE_URL;

use crate::{Error, INBOUND_DLQ_URL, queues};

/// `kefu queues` flags.
#[derive(Debug, Args)]
pub struct QueuesArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The outbound queue's dead-letter queue (`kefu env` exports it).
pub const OUTBOUND_DLQ_URL: &str = "OUTBOUND_DLQ_URL";

/// Runs `kefu queues` against the queues named by `INBOUND_QUEUE_URL` and `INBOUND_DLQ_URL` (and
/// the outbound ones when named).
pub async fn run(args: QueuesArgs, endpoint: Option<&str>) -> Result<ExitCode, Error> {
    let sdk = crate::sdk_config(endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mut stats = vec![
        queues::stats(&sqs, "inbound", &crate::required_env(INBOUND_QUEUE_URL)?).await?,
        queues::stats(&sqs, "dlq", &crate::required_env(INBOUND_DLQ_URL)?).await?,
    ];
    let env = shared::config::Env::process();
    for (name, var) in [
        ("outbound", shared::config::OUTBOUND_QUEUE_URL),
        ("outbound-dlq", OUTBOUND_DLQ_URL),
    ] {
        if let Some(url) = env.optional(var) {
            stats.push(queues::stats(&sqs, name, &url).await?);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print!("{}", queues::render_text(&stats));
    }
    Ok(ExitCode::SUCCESS)
}
