//! `kefu conversation show`: its flags, and the view it prints as text or `--json`; exit status 1
//! when the conversation does not exist.
//!
//! Not the reading or the rendering: [`crate::conversation`] builds the view from the store.

use std::process::ExitCode;

use clap::Subcommand;
use shared::ids::ConversationKey;

use super::PlatformArg;
use crate::{Error, conversation};

/// `kefu conversation` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConversationCommand {
    /// The send window and the messages in order.
    Show {
        /// Platform.
        #[arg(long, value_enum)]
        platform: PlatformArg,
        /// App id.
        #[arg(long)]
        app: String,
        /// User open id.
        #[arg(long)]
        open_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `kefu conversation …` against the tables named by the environment.
pub async fn run(command: ConversationCommand, endpoint: Option<&str>) -> Result<ExitCode, Error> {
    let ConversationCommand::Show {
        platform,
        app,
        open_id,
        json,
    } = command;
    let sdk = crate::sdk_config(endpoint).await;
    let store = crate::store_from_env(&sdk)?;
    let key = ConversationKey {
        platform: platform.into(),
        app_id: app,
        open_id,
    };
    let now = crate::unix_now();
    match conversation::show(&store, &key, now).await? {
        Some(view) if json => println!("{}", serde_json::to_string_pretty(&view)?),
        Some(view) => print!("{}", conversation::render_text(&view, now)),
        None => {
            eprintln!("no conversation {}", key);
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
