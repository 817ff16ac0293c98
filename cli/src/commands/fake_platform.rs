//! `kefu fake-platform`: its flag and the line it prints once the fake accepts connections; runs
//! until Ctrl-C / SIGTERM.
//!
//! Not the fake or the port forwarder: those are [`crate::fake`] and `testkit::fake_platform`.

use std::process::ExitCode;

use clap::Args;

use crate::Error;

/// `kefu fake-platform` flags.
#[derive(Debug, Args)]
pub struct FakePlatformArgs {
    /// Port on 127.0.0.1 (default: a free one).
    #[arg(long)]
    pub port: Option<u16>,
}

/// Runs `kefu fake-platform` in the foreground until Ctrl-C or SIGTERM.
pub async fn run(args: FakePlatformArgs) -> Result<ExitCode, Error> {
    crate::fake::run(
        args.port,
        |url| println!("fake platform: serving the WeChat and Baidu APIs on {url}"),
        crate::shutdown_signal(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
