//! The top-level command line: the global `--aws-endpoint` flag, the list of commands, and [`run`],
//! which hands each command to its module's `run` and turns the outcome into the exit status.
//!
//! Not any command's flags or output: each is in its own module under `crate::commands`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::Error;
use crate::commands::{
    conversation, desk, dlq, env, fake_platform, queues, registry, serve, simulate, smoke, stats,
};

/// kefu: WeChat / Baidu customer-service messages — local loop and operations.
#[derive(Debug, Parser)]
#[command(name = "kefu", version, about)]
pub struct Cli {
    /// AWS endpoint override (the local emulator).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the ingress and sender routes on 127.0.0.1 and poll the inbound queue into the processor.
    Serve(serve::ServeArgs),
    /// Send what the platform would send (signed, encrypted).
    Simulate {
        /// Platform or `verify`.
        #[command(subcommand)]
        command: simulate::SimulateCommand,
    },
    /// Conversations.
    Conversation {
        /// What to do.
        #[command(subcommand)]
        command: conversation::ConversationCommand,
    },
    /// Inbound queue and DLQ depth.
    Queues(queues::QueuesArgs),
    /// Dead-letter queue.
    Dlq {
        /// What to do.
        #[command(subcommand)]
        command: dlq::DlqCommand,
    },
    /// Run the local fake of the WeChat and Baidu send APIs in the foreground.
    FakePlatform(fake_platform::FakePlatformArgs),
    /// Print a deployed stack's outputs as `export` lines for the operations commands.
    Env(env::EnvArgs),
    /// The app registry: validate a file, or push it to the stack's verify and send secrets.
    Registry {
        /// What to do.
        #[command(subcommand)]
        command: registry::RegistryCommand,
    },
    /// Post-deploy check: signed URL verification per app, queues and tables reachable.
    Smoke(smoke::SmokeArgs),
    /// The agents' desk: put an agent (an app's first admin) in place.
    Desk {
        /// What to do.
        #[command(subcommand)]
        command: desk::DeskCommand,
    },
    /// An app's desk statistics per day: conversations, messages in and out, response times,
    /// windows closed unanswered, refusals for quota, per agent.
    Stats(stats::StatsArgs),
}

/// Runs a parsed command line; the exit code says whether it succeeded.
pub async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let endpoint = cli.aws_endpoint.as_deref();
    let out = &mut std::io::stdout();
    // `env`, `registry` and `smoke` write to `out` and answer whether everything passed (exit
    // status 1 when a check failed or the file is invalid).
    let passed = |ok: bool| ExitCode::from(u8::from(!ok));
    match cli.command {
        Command::Serve(args) => serve::run(args, endpoint).await,
        Command::Simulate { command } => simulate::run(command).await,
        Command::Conversation { command } => conversation::run(command, endpoint).await,
        Command::Queues(args) => queues::run(args, endpoint).await,
        Command::Dlq { command } => dlq::run(command, endpoint).await,
        Command::FakePlatform(args) => fake_platform::run(args).await,
        Command::Env(args) => Ok(passed(env::run(args, endpoint, out).await?)),
        Command::Registry { command } => Ok(passed(registry::run(command, endpoint, out).await?)),
        Command::Smoke(args) => Ok(passed(smoke::run(args, endpoint, out).await?)),
        Command::Stats(args) => stats::run(args, endpoint).await,
        Command::Desk { command } => desk::run(command, endpoint).await,
    }
}
