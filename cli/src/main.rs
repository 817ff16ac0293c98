//! `kefu`: parses the command line and runs it (see the library for what each command does).

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = kefu::cli::Cli::parse();
    match kefu::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kefu: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
