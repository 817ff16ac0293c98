//! `kefu dlq redrive`: moves dead letters back to the inbound queue and prints how many; exit
//! status 1 when any message failed to move.
//!
//! Not the SQS calls: [`crate::queues::redrive`] does the receive, send and delete.

use std::process::ExitCode;

use clap::Subcommand;
use shared::config::INBOUND_QUEUE_URL;

use crate::{Error, INBOUND_DLQ_URL, queues};

/// `kefu dlq` subcommands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Move DLQ messages back to the inbound queue.
    Redrive {
        /// Move at most N messages (default: all).
        #[arg(long)]
        max: Option<u64>,
    },
}

/// Runs `kefu dlq …` against the queues named by `INBOUND_DLQ_URL` and `INBOUND_QUEUE_URL`.
pub async fn run(command: DlqCommand, endpoint: Option<&str>) -> Result<ExitCode, Error> {
    let DlqCommand::Redrive { max } = command;
    let sdk = crate::sdk_config(endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dlq = crate::required_env(INBOUND_DLQ_URL)?;
    let inbound = crate::required_env(INBOUND_QUEUE_URL)?;
    let report = queues::redrive(&sqs, &dlq, &inbound, max).await?;
    println!(
        "redrive: moved {} message(s) from the DLQ to the inbound queue{}",
        report.moved,
        if report.failed > 0 {
            format!(", {} failed", report.failed)
        } else {
            String::new()
        }
    );
    Ok(if report.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
