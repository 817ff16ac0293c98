//! One module per `kefu` command: its clap flags (`Args` / `Subcommand`), its `run`, what it
//! prints and its exit status; plus the few flag values more than one command takes.
//!
//! Not the work itself: a command parses, calls the library modules (`crate::serve`,
//! `crate::queues`, …) and prints. Not the top-level enum either: that is `crate::cli`.

pub mod conversation;
pub mod desk;
pub mod dlq;
pub mod env;
pub mod fake_platform;
pub mod queues;
pub mod registry;
pub mod serve;
pub mod simulate;
pub mod smoke;
pub mod stats;

use clap::ValueEnum;
use shared::ids::Platform;

/// The test-only registry used when `KEFU_APPS_FILE` is unset (`serve`, `simulate`).
pub const DEFAULT_APPS_FILE: &str = "infra/local/apps.json";

/// A platform on the command line (`simulate verify`, `conversation show`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PlatformArg {
    /// WeChat.
    Wechat,
    /// Baidu.
    Baidu,
}

impl From<PlatformArg> for Platform {
    fn from(p: PlatformArg) -> Self {
        match p {
            PlatformArg::Wechat => Platform::Wechat,
            PlatformArg::Baidu => Platform::Baidu,
        }
    }
}
