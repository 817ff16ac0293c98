//! `kefu simulate wechat|baidu|verify`: the flags (app, target URL, mode, format, content), the
//! push or verification request they describe, and the per-delivery lines it prints.
//!
//! Not the signing, encryption or HTTP: [`crate::simulate`] builds and delivers the requests.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use shared::config::Env;
use shared::ids::Platform;
use shared::protocol::simulate::VerifyVia;
use shared::protocol::{DataFormat, Mode};

use super::{DEFAULT_APPS_FILE, PlatformArg};
use crate::Error;
use crate::simulate::{Content, DEFAULT_FROM, Delivery, Push};

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

fn default_url(url: Option<String>) -> String {
    url.unwrap_or_else(|| {
        let port = Env::process()
            .optional("KEFU_PORT")
            .unwrap_or_else(|| "3000".into());
        format!("http://127.0.0.1:{port}")
    })
}

fn print_delivery(i: usize, d: &Delivery) {
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
    match &d.reply {
        Some(Ok(plaintext)) => println!("  reply opened: {plaintext}"),
        Some(Err(why)) => println!("  reply cannot be opened: {why}"),
        None => {}
    }
}

/// Runs `kefu simulate …`; exit status 1 unless every delivery got the expected answer.
pub async fn run(command: SimulateCommand) -> Result<ExitCode, Error> {
    let (platform, args) = match command {
        SimulateCommand::Wechat(a) => (Platform::Wechat, a),
        SimulateCommand::Baidu(a) => (Platform::Baidu, a),
        SimulateCommand::Verify(v) => return verify(v).await,
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
    let ok = pushed.deliveries.iter().all(Delivery::acknowledged);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `kefu simulate verify`: exit status 1 unless the echo came back verbatim with 200.
async fn verify(v: VerifyArgs) -> Result<ExitCode, Error> {
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
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
