//! `kefu serve`: its flags, how they and the Lambdas' environment variables resolve into
//! [`crate::serve::Settings`], and what it prints while it runs until Ctrl-C / SIGTERM.
//!
//! Not the server: the routes and the queue poller are `crate::serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use shared::config::{
    BAIDU_API_BASE, Env, KEFU_APPS_FILE, SEND_REGISTRY_SECRET_ID, VERIFY_REGISTRY_SECRET_ID,
    WECHAT_API_BASE,
};

use super::DEFAULT_APPS_FILE;
use crate::{Error, serve};

/// `KEFU_LOCAL_TOKEN`: the bearer token of the local send routes.
pub const KEFU_LOCAL_TOKEN: &str = "KEFU_LOCAL_TOKEN";

/// `kefu serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1.
    #[arg(long, env = "KEFU_PORT", default_value_t = 3000)]
    pub port: u16,
    /// App registry file.
    #[arg(long, env = "KEFU_APPS_FILE", default_value = DEFAULT_APPS_FILE)]
    pub apps: PathBuf,
    /// WeChat API origin (e.g. the fake platform).
    #[arg(long, env = "WECHAT_API_BASE")]
    pub wechat_api_base: Option<String>,
    /// Baidu API origin (e.g. the fake platform).
    #[arg(long, env = "BAIDU_API_BASE")]
    pub baidu_api_base: Option<String>,
    /// Read the registry from the secrets named by `VERIFY_REGISTRY_SECRET_ID` and
    /// `SEND_REGISTRY_SECRET_ID` (as the deployed functions do; `make dev` passes it) instead of
    /// `--apps`. Without it those variables are ignored, so exports from `kefu env --stack` never
    /// make a local server read a deployed stack's secrets.
    #[arg(long)]
    pub registry_secrets: bool,
    /// Long-poll wait of the queue poller, seconds.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..=5))]
    pub poll_wait: i32,
}

/// Resolves the settings: each function's own `Config::from_env` reads the environment, with the
/// flags (`--apps`, `--wechat-api-base`, `--baidu-api-base`) standing in for their variables.
pub async fn settings(args: &ServeArgs, endpoint: Option<&str>) -> Result<serve::Settings, Error> {
    let apps_file = args.apps.display().to_string();
    let (wechat, baidu) = (args.wechat_api_base.clone(), args.baidu_api_base.clone());
    let from_secrets = args.registry_secrets;
    let env = Env(move |name: &str| match name {
        VERIFY_REGISTRY_SECRET_ID | SEND_REGISTRY_SECRET_ID if !from_secrets => None,
        KEFU_APPS_FILE => Some(apps_file.clone()),
        WECHAT_API_BASE => wechat.clone().or_else(|| std::env::var(name).ok()),
        BAIDU_API_BASE => baidu.clone().or_else(|| std::env::var(name).ok()),
        _ => std::env::var(name).ok(),
    });
    let sdk = crate::sdk_config(endpoint).await;
    let local_token = env.optional(KEFU_LOCAL_TOKEN);
    let generated = local_token.is_none();
    let local_token = match local_token {
        Some(t) => t,
        None => crate::random_hex(16)?,
    };
    if generated {
        println!(
            "kefu serve: KEFU_LOCAL_TOKEN not set; generated bearer token for POST /messages and /typing: {local_token}"
        );
    }
    let hint = |e: shared::config::ConfigError| -> Error {
        format!("{e} (run `make dev`, or eval the exports printed by infra/local/seed.py)").into()
    };
    Ok(serve::Settings {
        port: args.port,
        sdk,
        ingress: ingress::Config::from_env(&env).map_err(hint)?,
        processor: processor::Config::from_env(&env).map_err(hint)?,
        sender: sender::Config::from_env(&env).map_err(hint)?,
        // The desk runs when the environment names its user pool (make dev creates one).
        desk: match env.optional(desk::config::DESK_USER_POOL_ID) {
            Some(_) => Some(desk::Config::from_env(&env).map_err(hint)?),
            None => None,
        },
        local_token,
        poll_wait_secs: args.poll_wait,
    })
}

/// Runs `kefu serve` until Ctrl-C or SIGTERM, then stops gracefully.
pub async fn run(args: ServeArgs, endpoint: Option<&str>) -> Result<ExitCode, Error> {
    shared::telemetry::init();
    let settings = settings(&args, endpoint).await?;
    let (wx, bd) = (
        settings.sender.base_urls.wechat.clone(),
        settings.sender.base_urls.baidu.clone(),
    );
    let running = serve::start(settings).await?;
    println!(
        "kefu serve: listening on {} (ingress /wechat/{{app}} /baidu/{{app}}, sender POST /messages /typing; WeChat API {wx}, Baidu API {bd})",
        running.url()
    );
    crate::shutdown_signal().await;
    println!("kefu serve: stopping");
    running.stop().await;
    Ok(ExitCode::SUCCESS)
}
