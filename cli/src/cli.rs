//! The command line (clap) and what each command prints.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use shared::config::{
    BAIDU_API_BASE, Env, INBOUND_QUEUE_URL, KEFU_APPS_FILE, SEND_REGISTRY_SECRET_ID,
    VERIFY_REGISTRY_SECRET_ID, WECHAT_API_BASE,
};
use shared::message::ConversationKey;
use shared::protocol::simulate::VerifyVia;
use shared::protocol::{DataFormat, Mode, Platform};

use crate::simulate::{Content, DEFAULT_FROM, Push};
use crate::{Error, conversation, queues, serve};

/// `INBOUND_DLQ_URL`, as infra/local/seed.py prints it.
pub const INBOUND_DLQ_URL: &str = "INBOUND_DLQ_URL";
/// `KEFU_LOCAL_TOKEN`: the bearer token of the local send routes.
pub const KEFU_LOCAL_TOKEN: &str = "KEFU_LOCAL_TOKEN";
/// The test-only registry used when `KEFU_APPS_FILE` is unset.
pub const DEFAULT_APPS_FILE: &str = "infra/local/apps.json";

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
    Serve(ServeArgs),
    /// Send what the platform would send (signed, encrypted).
    Simulate {
        /// Platform or `verify`.
        #[command(subcommand)]
        command: SimulateCommand,
    },
    /// Conversations.
    Conversation {
        /// What to do.
        #[command(subcommand)]
        command: ConversationCommand,
    },
    /// Inbound queue and DLQ depth.
    Queues {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Dead-letter queue.
    Dlq {
        /// What to do.
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Run the local fake of the WeChat and Baidu send APIs in the foreground.
    FakePlatform {
        /// Port on 127.0.0.1 (default: a free one).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Print a deployed stack's outputs as `export` lines for the operations commands.
    Env(crate::env::EnvArgs),
    /// The app registry: validate a file, or push it to the stack's verify and send secrets.
    Registry {
        /// What to do.
        #[command(subcommand)]
        command: crate::registry::RegistryCommand,
    },
    /// Post-deploy check: signed URL verification per app, queues and tables reachable.
    Smoke(crate::smoke::SmokeArgs),
}

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

/// Push content: exactly one (default `--text "hello from kefu simulate"`).
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct ContentArgs {
    /// A text message.
    #[arg(long)]
    pub text: Option<String>,
    /// An image message with this picture URL.
    #[arg(long)]
    pub image: Option<String>,
    /// A mini program card: TITLE,PATH.
    #[arg(long, value_name = "TITLE,PATH")]
    pub miniprogram: Option<String>,
    /// The user_enter_tempsession event with this SessionFrom.
    #[arg(long, value_name = "FROM")]
    pub enter_session: Option<String>,
}

/// `kefu simulate wechat|baidu` flags.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// App id.
    #[arg(long)]
    pub app: String,
    /// Base URL of kefu serve (default http://127.0.0.1:$KEFU_PORT, port 3000).
    #[arg(long)]
    pub url: Option<String>,
    /// App registry file (the app's Token and EncodingAESKey).
    #[arg(long, env = "KEFU_APPS_FILE", default_value = DEFAULT_APPS_FILE)]
    pub apps: PathBuf,
    /// Message protection mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Safe)]
    pub mode: ModeArg,
    /// Data format.
    #[arg(long, value_enum, default_value_t = FormatArg::Json)]
    pub format: FormatArg,
    /// What the user sends.
    #[command(flatten)]
    pub content: ContentArgs,
    /// The user's open id.
    #[arg(long, default_value = DEFAULT_FROM)]
    pub from: String,
    /// Deliver the identical push N times (a platform retry).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
}

/// `kefu simulate` subcommands.
#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// A WeChat push.
    Wechat(PushArgs),
    /// A Baidu push.
    Baidu(PushArgs),
    /// The URL verification request.
    Verify(VerifyArgs),
}

/// `kefu simulate verify` flags.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Platform.
    #[arg(value_enum)]
    pub platform: PlatformArg,
    /// App id.
    #[arg(long)]
    pub app: String,
    /// Base URL of kefu serve (default http://127.0.0.1:$KEFU_PORT, port 3000).
    #[arg(long)]
    pub url: Option<String>,
    /// App registry file.
    #[arg(long, env = "KEFU_APPS_FILE", default_value = DEFAULT_APPS_FILE)]
    pub apps: PathBuf,
    /// Where the parameters go (Baidu's docs disagree; WeChat always uses the query).
    #[arg(long, value_enum, default_value_t = ViaArg::Query)]
    pub via: ViaArg,
}

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

/// A platform on the command line.
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

/// A protection mode on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// 明文模式.
    Plain,
    /// 兼容模式.
    Compat,
    /// 安全模式.
    Safe,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Plain => Mode::Plaintext,
            ModeArg::Compat => Mode::Compatible,
            ModeArg::Safe => Mode::Safe,
        }
    }
}

/// A data format on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// JSON.
    Json,
    /// XML.
    Xml,
}

impl From<FormatArg> for DataFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Json => DataFormat::Json,
            FormatArg::Xml => DataFormat::Xml,
        }
    }
}

/// Where verification parameters go.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ViaArg {
    /// GET with a query string.
    Query,
    /// POST form body.
    Form,
    /// POST JSON body.
    Json,
}

impl From<ViaArg> for VerifyVia {
    fn from(v: ViaArg) -> Self {
        match v {
            ViaArg::Query => VerifyVia::Query,
            ViaArg::Form => VerifyVia::Form,
            ViaArg::Json => VerifyVia::Json,
        }
    }
}

fn default_url(url: Option<String>) -> String {
    url.unwrap_or_else(|| {
        let port = Env::process()
            .optional("KEFU_PORT")
            .unwrap_or_else(|| "3000".into());
        format!("http://127.0.0.1:{port}")
    })
}

impl ContentArgs {
    /// The content; text `hello from kefu simulate` when none is given.
    pub fn content(self) -> Result<Content, Error> {
        Ok(if let Some(t) = self.text {
            Content::Text(t)
        } else if let Some(url) = self.image {
            Content::Image(url)
        } else if let Some(mp) = self.miniprogram {
            let (title, path) = mp.split_once(',').ok_or("--miniprogram takes TITLE,PATH")?;
            Content::MiniProgram {
                title: title.to_owned(),
                path: path.to_owned(),
            }
        } else if let Some(from) = self.enter_session {
            Content::EnterSession(from)
        } else {
            Content::Text("hello from kefu simulate".into())
        })
    }
}

/// Resolves `kefu serve` settings from its flags and the Lambdas' environment variables: each
/// function's configuration is read by that function's own `Config::from_env`, with the flags
/// (`--apps`, `--wechat-api-base`, `--baidu-api-base`) standing in for their variables.
pub async fn serve_settings(
    args: &ServeArgs,
    endpoint: Option<&str>,
) -> Result<serve::Settings, Error> {
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
        local_token,
        poll_wait_secs: args.poll_wait,
    })
}

fn print_delivery(i: usize, d: &crate::simulate::Delivery) {
    println!(
        "delivery {}: {} {} in {} ms: {}",
        i + 1,
        d.status,
        hyper::StatusCode::from_u16(d.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or(""),
        d.latency.as_millis(),
        d.body
    );
}

/// Runs a parsed command line; the exit code says whether it succeeded.
pub async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let endpoint = cli.aws_endpoint.as_deref();
    match cli.command {
        Command::Serve(args) => {
            shared::telemetry::init();
            let settings = serve_settings(&args, endpoint).await?;
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
        Command::Simulate { command } => simulate(command).await,
        Command::Conversation {
            command:
                ConversationCommand::Show {
                    platform,
                    app,
                    open_id,
                    json,
                },
        } => {
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
                    eprintln!("no conversation {}", key.partition_key());
                    return Ok(ExitCode::FAILURE);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Queues { json } => {
            let sdk = crate::sdk_config(endpoint).await;
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            let stats = vec![
                queues::stats(&sqs, "inbound", &crate::required_env(INBOUND_QUEUE_URL)?).await?,
                queues::stats(&sqs, "dlq", &crate::required_env(INBOUND_DLQ_URL)?).await?,
            ];
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print!("{}", queues::render_text(&stats));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq {
            command: DlqCommand::Redrive { max },
        } => {
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
        Command::FakePlatform { port } => {
            crate::fake::run(
                port,
                |url| println!("fake platform: serving the WeChat and Baidu APIs on {url}"),
                crate::shutdown_signal(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        // Exit status 1 when the command reports a failed check or an invalid file.
        Command::Env(args) => {
            let ok = crate::env::run(args, endpoint, &mut std::io::stdout()).await?;
            Ok(ExitCode::from(u8::from(!ok)))
        }
        Command::Registry { command } => {
            let ok = crate::registry::run(command, endpoint, &mut std::io::stdout()).await?;
            Ok(ExitCode::from(u8::from(!ok)))
        }
        Command::Smoke(args) => {
            let ok = crate::smoke::run(args, endpoint, &mut std::io::stdout()).await?;
            Ok(ExitCode::from(u8::from(!ok)))
        }
    }
}

async fn simulate(command: SimulateCommand) -> Result<ExitCode, Error> {
    let (platform, args) = match command {
        SimulateCommand::Wechat(a) => (Platform::Wechat, a),
        SimulateCommand::Baidu(a) => (Platform::Baidu, a),
        SimulateCommand::Verify(v) => {
            let registry = crate::load_registry(&v.apps)?;
            let platform = v.platform.into();
            let (d, echo) = crate::simulate::verify(
                &registry,
                platform,
                &v.app,
                &default_url(v.url),
                v.via.into(),
            )
            .await?;
            print_delivery(0, &d);
            let ok = d.status == 200 && d.body == echo;
            println!(
                "verification {}",
                if ok {
                    "passed (echo returned verbatim)"
                } else {
                    "FAILED"
                }
            );
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    };
    let registry = crate::load_registry(&args.apps)?;
    let push = Push {
        platform,
        app_id: args.app,
        url: default_url(args.url),
        mode: args.mode.into(),
        format: args.format.into(),
        content: args.content.content()?,
        from: args.from,
        repeat: args.repeat,
    };
    let pushed = crate::simulate::push(&registry, &push).await?;
    let m = &pushed.message;
    println!(
        "push: {platform} app {} from {} msg_type {} msg_id {} create_time {} ({} mode, {})",
        push.app_id,
        m.from_user_name,
        m.msg_type(),
        m.msg_id.as_ref().map(|i| i.0.as_str()).unwrap_or("-"),
        m.create_time,
        Mode::from(args.mode).as_str(),
        DataFormat::from(args.format).as_str(),
    );
    for (i, d) in pushed.deliveries.iter().enumerate() {
        print_delivery(i, d);
    }
    let ok = pushed
        .deliveries
        .iter()
        .all(|d| d.status == 200 && d.body == "success");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
