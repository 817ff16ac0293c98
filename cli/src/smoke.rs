//! The post-deploy checks of a stack (`kefu smoke`). For each app in the verify secret (or those
//! named) it sends the platform's signed URL verification request to the deployed callback URL and
//! checks the echo comes back verbatim — the same request the WeChat / Baidu console sends when
//! the 消息推送 URL is saved; then it checks the queues (`GetQueueAttributes`) and tables
//! (`DescribeTable`) answer the operator's credentials.
//!
//! Not a load test and not a push test: nothing is queued or stored, no message is sent to a user.
//! It reads the verify secret with the operator's credentials and reports ids, statuses and counts,
//! never a Token or key. Not the command line: `commands::smoke`.

use std::time::Duration;

use aws_config::SdkConfig;
use serde::Serialize;
use shared::config::{CONVERSATIONS_TABLE, INBOUND_QUEUE_URL, MESSAGES_TABLE, TOKENS_TABLE};
use shared::ids::Platform;
use shared::protocol::simulate::VerifyVia;
use shared::registry::{AppRegistry, Lookup, Purpose};

use crate::env::{StackEnv, VERIFY_REGISTRY_SECRET_ID};
use crate::{Error, INBOUND_DLQ_URL};

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked (`verify wechat wx…`, `queue inbound`, `table MESSAGES_TABLE`).
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// What was seen (status, counts, the error).
    pub detail: String,
}

impl Check {
    fn ok(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: true,
            detail: detail.into(),
        }
    }

    fn failed(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: false,
            detail: detail.into(),
        }
    }
}

/// One `ok` / `FAILED` line per check, then a summary line.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{:<6}  {}: {}\n",
            if c.ok { "ok" } else { "FAILED" },
            c.name,
            c.detail
        ));
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    out.push_str(&format!(
        "smoke: {} ok, {failed} FAILED\n",
        checks.len() - failed
    ));
    out
}

/// At most 80 characters of a response body, on one line.
fn short(body: &str) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(80)
        .collect();
    if one_line.is_empty() {
        "(empty body)".into()
    } else {
        one_line
    }
}

/// Reads and parses the verify secret (the registry part ingress reads).
async fn verify_registry(
    sdk: &SdkConfig,
    secret_id: &str,
) -> Result<(AppRegistry, Option<String>), Error> {
    let sm = aws_sdk_secretsmanager::Client::new(sdk);
    let out = sm
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| {
            format!(
                "GetSecretValue {secret_id}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        })?;
    let json = out
        .secret_string()
        .ok_or_else(|| format!("{secret_id} has no SecretString"))?;
    let registry = AppRegistry::parse_for(json, Purpose::Verify)
        .map_err(|e| format!("{secret_id}: {} ({})", e.field(), e))?;
    Ok((registry, out.version_id))
}

/// The apps to verify: those named (each looked up on both platforms), else every valid app.
fn targets(
    registry: &AppRegistry,
    named: &[String],
    checks: &mut Vec<Check>,
) -> Vec<(Platform, String)> {
    if named.is_empty() {
        let mut all: Vec<(Platform, String)> = registry
            .apps()
            .map(|a| (a.platform, a.app_id.clone()))
            .collect();
        all.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
        return all;
    }
    let mut out = Vec::new();
    for id in named {
        let mut found = false;
        for platform in [Platform::Wechat, Platform::Baidu] {
            match registry.lookup(platform, id) {
                Lookup::Found(_) => {
                    found = true;
                    out.push((platform, id.clone()));
                }
                Lookup::Disabled(e) => {
                    found = true;
                    checks.push(Check::failed(
                        format!("verify {platform} {id}"),
                        format!("its registry entry is invalid ({})", e.field()),
                    ));
                }
                Lookup::Unknown => {}
            }
        }
        if !found {
            checks.push(Check::failed(
                format!("verify {id}"),
                "not in the verify secret (kefu registry push FILE --stack NAME)",
            ));
        }
    }
    out
}

/// URL verification of one app against `api_url`.
async fn verify_app(
    registry: &AppRegistry,
    platform: Platform,
    app_id: &str,
    api_url: &str,
) -> Check {
    let name = format!("verify {platform} {app_id}");
    match crate::simulate::verify(registry, platform, app_id, api_url, VerifyVia::Query).await {
        Ok((d, echo)) if d.status == 200 && d.body == echo => Check::ok(
            name,
            format!("echo returned verbatim ({} ms)", d.latency.as_millis()),
        ),
        Ok((d, _)) if d.status == 200 => Check::failed(
            name,
            format!("200 but the body is not the echo: {}", short(&d.body)),
        ),
        Ok((d, _)) => Check::failed(name, format!("{} {}", d.status, short(&d.body))),
        Err(e) => Check::failed(name, e.to_string()),
    }
}

/// Runs every check of `stack` (outputs already read) and returns them in order: registry, one
/// verification per app, the two queues, the three tables.
pub async fn checks(
    sdk: &SdkConfig,
    stack: &StackEnv,
    api_url: &str,
    apps: &[String],
) -> Vec<Check> {
    let mut checks = Vec::new();
    let secret_id = stack.get(VERIFY_REGISTRY_SECRET_ID);
    match verify_registry(sdk, secret_id).await {
        Ok((registry, version)) => {
            let count = |p: Platform| registry.apps().filter(|a| a.platform == p).count();
            let (wechat, baidu) = (count(Platform::Wechat), count(Platform::Baidu));
            let invalid = registry.invalid();
            let detail = format!(
                "{} valid apps (wechat {wechat}, baidu {baidu}), {} invalid entries, version {}",
                wechat + baidu,
                invalid.len(),
                version.as_deref().unwrap_or("-")
            );
            if wechat + baidu == 0 {
                checks.push(Check::failed(
                    "registry",
                    format!("{detail}: no app to verify (kefu registry push FILE --stack NAME)"),
                ));
            } else {
                checks.push(Check::ok("registry", detail));
            }
            for entry in invalid {
                let p = crate::registry::Problem::from(&entry.error);
                checks.push(Check::failed(format!("registry {}", p.field), p.reason));
            }
            for (platform, app_id) in targets(&registry, apps, &mut checks) {
                checks.push(verify_app(&registry, platform, &app_id, api_url).await);
            }
        }
        Err(e) => checks.push(Check::failed("registry", e.to_string())),
    }

    let sqs = aws_sdk_sqs::Client::new(sdk);
    for (name, var) in [("inbound", INBOUND_QUEUE_URL), ("dlq", INBOUND_DLQ_URL)] {
        let check = format!("queue {name}");
        checks.push(
            match crate::queues::stats(&sqs, name, stack.get(var)).await {
                Ok(s) => Check::ok(
                    check,
                    format!("{} visible, {} in flight", s.visible, s.in_flight),
                ),
                Err(e) => Check::failed(check, e.to_string()),
            },
        );
    }

    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    for var in [CONVERSATIONS_TABLE, MESSAGES_TABLE, TOKENS_TABLE] {
        let table = stack.get(var);
        let check = format!("table {var}");
        let described = tokio::time::timeout(
            Duration::from_secs(15),
            ddb.describe_table().table_name(table).send(),
        )
        .await;
        checks.push(match described {
            Ok(Ok(out)) => {
                let status = out
                    .table
                    .and_then(|t| t.table_status)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|| "unknown".into());
                if matches!(status.as_str(), "ACTIVE" | "UPDATING") {
                    Check::ok(check, format!("{table} {status}"))
                } else {
                    Check::failed(check, format!("{table} {status}"))
                }
            }
            Ok(Err(e)) => Check::failed(
                check,
                format!(
                    "DescribeTable {table}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                ),
            ),
            Err(_) => Check::failed(check, format!("DescribeTable {table}: no answer in 15 s")),
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_marks_failures_and_counts() {
        let text = render(&[
            Check::ok("queue inbound", "0 visible, 0 in flight"),
            Check::failed("verify wechat wx1", "401 signature_mismatch"),
        ]);
        assert_eq!(
            text,
            "ok      queue inbound: 0 visible, 0 in flight\nFAILED  verify wechat wx1: 401 signature_mismatch\nsmoke: 1 ok, 1 FAILED\n"
        );
    }

    #[test]
    fn short_bodies_stay_on_one_line() {
        assert_eq!(short("a\nb"), "a b");
        assert_eq!(short(""), "(empty body)");
        assert_eq!(short(&"x".repeat(200)).len(), 80);
    }
}
