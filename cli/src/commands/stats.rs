//! `kefu stats --app A [--platform P] [--days N] [--json]`: an app's desk statistics per day
//! (China time) — conversations accepted, messages in and out, response time p50 / p90, windows
//! closed unanswered, sends refused for quota, and per agent — read from the stack's tables as
//! the desk's statistics page reads them (`desk::stats::read`). Needs `CONVERSATIONS_TABLE`,
//! `MESSAGES_TABLE`, `TOKENS_TABLE` and `DESK_TABLE` (`kefu env`, or `make dev`'s env file).

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use shared::adapters::dynamodb::Tables;
use shared::desk::stats::Day;

use super::PlatformArg;
use crate::Error;

/// `kefu stats` flags.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// App id.
    #[arg(long)]
    app: String,
    /// Platform.
    #[arg(long, value_enum, default_value = "wechat")]
    platform: PlatformArg,
    /// Days, ending today (1–31).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=31))]
    days: u32,
    /// Print JSON (`{"days":[…]}`, the desk's `GET …/stats` shape).
    #[arg(long)]
    json: bool,
}

fn secs(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |s| format!("≤{s}s"))
}

/// The days as a table.
pub fn render(days: &[Day], out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<10}  {:>5}  {:>6}  {:>6}  {:>9}  {:>9}  {:>10}  {:>7}",
        "date", "conv", "in", "out", "resp p50", "resp p90", "unanswered", "refused"
    )?;
    for d in days {
        writeln!(
            out,
            "{:<10}  {:>5}  {:>6}  {:>6}  {:>9}  {:>9}  {:>10}  {:>7}",
            d.date,
            d.conversations,
            d.messages_in,
            d.messages_out,
            secs(d.first_response_p50_secs),
            secs(d.first_response_p90_secs),
            d.unanswered,
            d.refused_quota
        )?;
        for a in &d.agents {
            writeln!(
                out,
                "  agent {}: {} conversations, {} out, response p50 {} p90 {}",
                a.agent,
                a.conversations,
                a.messages_out,
                secs(a.first_response_p50_secs),
                secs(a.first_response_p90_secs)
            )?;
        }
    }
    Ok(())
}

/// Runs `kefu stats`.
pub async fn run(args: StatsArgs, endpoint: Option<&str>) -> Result<ExitCode, Error> {
    let sdk = crate::sdk_config(endpoint).await;
    let store = crate::store_from_env(&sdk)?;
    let tables = Tables {
        desk: Some(crate::required_env(shared::config::DESK_TABLE)?),
        ..store.tables().clone()
    };
    let store = shared::adapters::dynamodb::DynamoDbStore::new(store.client().clone(), tables);
    let days = desk::stats::read(
        &store,
        args.platform.into(),
        &args.app,
        args.days,
        crate::unix_now(),
    )
    .await?;
    let out = &mut std::io::stdout();
    if args.json {
        writeln!(out, "{}", serde_json::json!({ "days": days }))?;
    } else {
        render(&days, out)?;
    }
    Ok(ExitCode::SUCCESS)
}
