//! `kefu queues`: the inbound queue's and the DLQ's depth, as a table or `--json`.
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

/// Runs `kefu queues` against the queues named by `INBOUND_QUEUE_URL` and `INBOUND_DLQ_URL`.
pub async fn run(args: QueuesArgs, endpoint: Option<&str>) -> Result<ExitCode, Error> {
    let sdk = crate::sdk_config(endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let stats = vec![
        queues::stats(&sqs, "inbound", &crate::required_env(INBOUND_QUEUE_URL)?).await?,
        queues::stats(&sqs, "dlq", &crate::required_env(INBOUND_DLQ_URL)?).await?,
    ];
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print!("{}", queues::render_text(&stats));
    }
    Ok(ExitCode::SUCCESS)
}
