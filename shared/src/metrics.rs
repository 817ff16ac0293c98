//! The catalogue of kefu's CloudWatch metrics: every name, unit, emitting function and dimension
//! set, in one place, and the only way to emit one ([`emit`], as an Embedded Metric Format line).
//!
//! Every metric carries the `service` dimension (the stack name, `KEFU_SERVICE`), so two stacks in
//! one account never mix. `infra/metrics.json` is this catalogue as JSON (a test keeps them equal);
//! the template's alarms and dashboard are checked against that file, so nothing watches a metric
//! that is not emitted and nothing is emitted that nobody watches. Not here: log fields (`telemetry`).

use std::sync::OnceLock;

/// Namespace of kefu's metrics.
pub const NAMESPACE: &str = "kefu";

/// Dimension every metric carries: the stack name (`KEFU_SERVICE`).
pub const SERVICE: &str = "service";
/// Dimension: the push's platform (`wechat`, `baidu`).
pub const PLATFORM: &str = "platform";
/// Dimension: why a push or a send was refused (an error's reason code).
pub const REASON: &str = "reason";
/// Dimension: how a send or a token refresh ended.
pub const OUTCOME: &str = "outcome";
/// Dimension: the function that emitted it (for metrics more than one function emits).
pub const FUNCTION: &str = "function";
/// Dimension: the registry field an invalid entry was refused for (`none` on a clean load).
pub const FIELD: &str = "field";

/// One metric: what it is called, counts and who emits it with which dimension sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// CloudWatch metric name.
    pub name: &'static str,
    /// CloudWatch unit (`Count`, `Milliseconds`).
    pub unit: &'static str,
    /// The functions that emit it.
    pub functions: &'static [&'static str],
    /// Each dimension set it is emitted under (every one starts with `service`): the dimensions
    /// allowed in an [`emit`] of it, and the ones it needs.
    pub dimension_sets: &'static [&'static [&'static str]],
    /// The values an enumerated dimension takes (`outcome`, `reason`); others are free.
    pub values: &'static [(&'static str, &'static [&'static str])],
    /// What it counts.
    pub help: &'static str,
}

/// Ingress: time from request to `success` for a queued push.
pub const ACK_LATENCY_MS: Metric = Metric {
    name: "AckLatencyMs",
    unit: "Milliseconds",
    functions: &["ingress"],
    dimension_sets: &[&[SERVICE], &[SERVICE, PLATFORM]],
    values: &[(PLATFORM, &["wechat", "baidu"])],
    help: "one sample per push answered success (its SampleCount is the push count)",
};

/// Ingress: a verified push that was answered 5xx because it could not be queued.
pub const INGRESS_NOT_QUEUED: Metric = Metric {
    name: "IngressNotQueued",
    unit: "Count",
    functions: &["ingress"],
    dimension_sets: &[&[SERVICE], &[SERVICE, REASON]],
    values: &[(
        REASON,
        &[
            "queue_rejected",
            "queue_unavailable",
            "queue_timeout",
            "app_misconfigured",
        ],
    )],
    help: "pushes answered 5xx (the platform retries them)",
};

/// Ingress: a push for a configured app refused with a 4xx (signature, decryption, replay window,
/// recipient, size, unparseable body). The platform gives up on a 4xx, so each one is a lost message
/// unless it was forged: a wrong Token or key after a rotation shows here first.
pub const INGRESS_REJECTED: Metric = Metric {
    name: "IngressRejected",
    unit: "Count",
    functions: &["ingress"],
    dimension_sets: &[&[SERVICE], &[SERVICE, REASON]],
    values: &[],
    help: "pushes for a configured app answered 4xx (unknown apps and routes not counted)",
};

/// Ingress and sender: a re-read of the registry that failed (the last good copy is kept).
pub const REGISTRY_REFRESH_FAILED: Metric = Metric {
    name: "RegistryRefreshFailed",
    unit: "Count",
    functions: &["ingress", "sender"],
    dimension_sets: &[&[SERVICE], &[SERVICE, FUNCTION]],
    values: &[(FUNCTION, &["ingress", "sender"])],
    help: "registry re-reads that failed or timed out (a rotation does not take effect meanwhile)",
};

/// Ingress and sender: a registry entry refused at a (re)load, by field.
pub const REGISTRY_INVALID: Metric = Metric {
    name: "RegistryInvalid",
    unit: "Count",
    functions: &["ingress", "sender"],
    dimension_sets: &[&[SERVICE], &[SERVICE, FUNCTION, FIELD]],
    values: &[(FUNCTION, &["ingress", "sender"])],
    help: "invalid app registry entries at each load, by field (their apps are disabled); a clean load emits 0 with field \"none\"",
};

/// Processor: new messages stored per batch.
pub const STORED: Metric = Metric {
    name: "Stored",
    unit: "Count",
    functions: &["processor"],
    dimension_sets: &[&[SERVICE]],
    values: &[],
    help: "inbound messages stored",
};

/// Processor: records that were already stored (platform retries, SQS redeliveries).
pub const DEDUPE_HITS: Metric = Metric {
    name: "DedupeHits",
    unit: "Count",
    functions: &["processor"],
    dimension_sets: &[&[SERVICE]],
    values: &[],
    help: "inbound records that were duplicates",
};

/// Processor: plaintext pushes refused because their signed nonce and timestamp were already
/// stored with another body (a forged replay of a seen push URL).
pub const REPLAY_REFUSED: Metric = Metric {
    name: "ReplayRefused",
    unit: "Count",
    functions: &["processor"],
    dimension_sets: &[&[SERVICE]],
    values: &[],
    help: "plaintext pushes refused as forged replays",
};

/// Sender: one per send request that reached the platform step, by outcome.
pub const SEND_OUTCOME: Metric = Metric {
    name: "SendOutcome",
    unit: "Count",
    functions: &["sender"],
    dimension_sets: &[&[SERVICE, OUTCOME]],
    values: &[(
        OUTCOME,
        &[
            "sent",
            "rejected",
            "quota_exhausted",
            "window_expired",
            "unknown",
            "token_unavailable",
        ],
    )],
    help: "sends by outcome (token_unavailable: no access token, nothing sent)",
};

/// Sender: sends refused by kefu's own ledger before the platform was called.
pub const QUOTA_REFUSALS: Metric = Metric {
    name: "QuotaRefusals",
    unit: "Count",
    functions: &["sender"],
    dimension_sets: &[&[SERVICE], &[SERVICE, REASON]],
    values: &[(REASON, &["quota_exhausted", "window_expired"])],
    help: "sends refused because the user's window is used up or closed",
};

/// Sender: access-token refreshes, by outcome.
pub const TOKEN_REFRESHES: Metric = Metric {
    name: "TokenRefreshes",
    unit: "Count",
    functions: &["sender"],
    dimension_sets: &[&[SERVICE, OUTCOME]],
    values: &[(OUTCOME, &["ok", "failed"])],
    help: "access-token refreshes (failed: wrong AppSecret, IP whitelist, platform down)",
};

static SERVICE_NAME: OnceLock<String> = OnceLock::new();
#[cfg(feature = "simulation")]
static SILENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stops [`emit`] writing for the rest of the process: for in-process simulations that run the
/// handlers hundreds of thousands of times (`faults`). Only with the `simulation` feature, which no
/// function enables.
#[cfg(feature = "simulation")]
pub fn silence() {
    SILENT.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Sets the `service` dimension's value for this process (from `KEFU_SERVICE`); first call wins.
pub fn set_service(name: &str) {
    let _ = SERVICE_NAME.set(name.to_owned());
}

/// The `service` dimension's value (`kefu-local` when never set).
pub fn service() -> &'static str {
    SERVICE_NAME.get().map_or("kefu-local", String::as_str)
}

/// Writes one value of `metric` to stdout as an EMF line (CloudWatch turns it into the metric
/// under each of its dimension sets, with no API call). `dimensions` are the non-`service`
/// dimensions' values, named by this module's constants (exactly those of the metric's
/// `dimension_sets`); never pass content, secrets or user ids.
pub fn emit(metric: &Metric, value: f64, dimensions: &[(&'static str, &str)]) {
    #[cfg(feature = "simulation")]
    if SILENT.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    println!("{}", emf_line(metric, value, service(), dimensions, now));
}

/// The EMF JSON for one value (separate from [`emit`] so it can be tested).
fn emf_line(
    metric: &Metric,
    value: f64,
    service: &str,
    dimensions: &[(&'static str, &str)],
    timestamp_ms: u64,
) -> String {
    debug_assert!(
        metric
            .dimension_sets
            .iter()
            .flat_map(|s| s.iter())
            .all(|d| *d == SERVICE || dimensions.iter().any(|(k, _)| k == d)),
        "{} emitted without one of its dimensions",
        metric.name
    );
    debug_assert!(
        dimensions
            .iter()
            .all(|(k, _)| *k != SERVICE && metric.dimension_sets.iter().any(|s| s.contains(k))),
        "{} emitted with a dimension it does not declare: {dimensions:?}",
        metric.name
    );
    let mut root = serde_json::Map::new();
    root.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": metric.dimension_sets,
                "Metrics": [{ "Name": metric.name, "Unit": metric.unit }],
            }],
        }),
    );
    root.insert(
        SERVICE.into(),
        serde_json::Value::String(service.to_owned()),
    );
    for (k, v) in dimensions {
        root.insert((*k).to_owned(), serde_json::Value::String((*v).to_owned()));
    }
    root.insert(metric.name.to_owned(), serde_json::json!(value));
    serde_json::Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric kefu emits (a new one is added here, then `infra/metrics.json` blessed).
    const CATALOG: &[&Metric] = &[
        &ACK_LATENCY_MS,
        &INGRESS_NOT_QUEUED,
        &INGRESS_REJECTED,
        &REGISTRY_INVALID,
        &REGISTRY_REFRESH_FAILED,
        &STORED,
        &DEDUPE_HITS,
        &REPLAY_REFUSED,
        &SEND_OUTCOME,
        &QUOTA_REFUSALS,
        &TOKEN_REFRESHES,
    ];

    /// The catalogue as the JSON document kept in `infra/metrics.json`.
    fn catalog_json() -> String {
        let metrics: Vec<serde_json::Value> = CATALOG
            .iter()
            .map(|m| {
                let values: serde_json::Map<String, serde_json::Value> = m
                    .values
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), serde_json::json!(v)))
                    .collect();
                serde_json::json!({
                    "name": m.name,
                    "unit": m.unit,
                    "functions": m.functions,
                    "dimension_sets": m.dimension_sets,
                    "values": values,
                    "help": m.help,
                })
            })
            .collect();
        let doc = serde_json::json!({ "namespace": NAMESPACE, "metrics": metrics });
        let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
        out.push('\n');
        out
    }

    #[test]
    fn every_dimension_set_starts_with_service_and_names_are_unique() {
        let dimensions = [SERVICE, PLATFORM, REASON, OUTCOME, FUNCTION, FIELD];
        let mut names = std::collections::HashSet::new();
        for m in CATALOG {
            assert!(names.insert(m.name), "{} twice", m.name);
            for set in m.dimension_sets {
                assert_eq!(set.first(), Some(&SERVICE), "{}: {set:?}", m.name);
                for dim in *set {
                    assert!(dimensions.contains(dim), "{}: {dim} is no constant", m.name);
                }
            }
            for (dim, _) in m.values {
                assert!(
                    m.dimension_sets.iter().any(|s| s.contains(dim)),
                    "{}: values for unknown dimension {dim}",
                    m.name
                );
            }
        }
    }

    #[test]
    fn emf_lines_carry_every_dimension_set() {
        let line = emf_line(&SEND_OUTCOME, 1.0, "kefu-prod", &[(OUTCOME, "sent")], 42);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "kefu");
        assert_eq!(
            cw["Dimensions"],
            serde_json::json!([["service", "outcome"]])
        );
        assert_eq!(cw["Metrics"][0]["Name"], "SendOutcome");
        assert_eq!(
            (
                v["SendOutcome"].as_f64(),
                v["outcome"].as_str(),
                v["service"].as_str()
            ),
            (Some(1.0), Some("sent"), Some("kefu-prod"))
        );
        let ack = emf_line(&ACK_LATENCY_MS, 12.0, "s", &[(PLATFORM, "baidu")], 1);
        let v: serde_json::Value = serde_json::from_str(&ack).unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["service"], ["service", "platform"]])
        );
    }

    /// Every emit call in the workspace names its dimensions by this module's constants (a literal
    /// name would escape the catalogue's checks until the debug assertion in `emf_line` meets it).
    #[test]
    fn emit_call_sites_name_dimensions_by_constant() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() && path.file_name().is_some_and(|n| n != "target") {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for dir in ["shared", "functions", "cli", "faults", "testkit", "tests"] {
            walk(&root.join(dir), &mut files);
        }
        let needle = concat!("metrics::", "emit(");
        let mut calls = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (at, _) in text.match_indices(needle) {
                let args = &text[at + needle.len()..];
                let mut depth = 1;
                let end = args
                    .char_indices()
                    .find(|&(_, c)| {
                        depth += match c {
                            '(' => 1,
                            ')' => -1,
                            _ => 0,
                        };
                        depth == 0
                    })
                    .map_or(args.len(), |(i, _)| i);
                let call: String = args[..end].split_whitespace().collect();
                assert!(
                    !call.contains("(\""),
                    "{}: a dimension named by a literal in emit({call}); use shared::metrics' constants",
                    file.display()
                );
                calls += 1;
            }
        }
        assert!(calls >= 10, "found only {calls} emit calls");
    }

    /// `infra/metrics.json` is what the template checks read; it must be this catalogue.
    /// `KEFU_BLESS=1 cargo test -p shared metrics` rewrites it after a deliberate change.
    #[test]
    fn infra_metrics_json_is_the_catalogue() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/metrics.json");
        let want = catalog_json();
        if std::env::var_os("KEFU_BLESS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "infra/metrics.json differs from the catalogue in shared::metrics; run \
             `KEFU_BLESS=1 cargo test -p shared metrics` and commit it"
        );
    }
}
