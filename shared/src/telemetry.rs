//! Logging setup and the canonical log field names.
//!
//! JSON lines on stdout (what Lambda's JSON log format expects), level from `RUST_LOG` (default
//! `info`). Never log message content, ciphertext, tokens, keys, secrets or URLs with
//! `access_token=`; name users by [`open_id_hash`] only.

use std::sync::Once;

/// Field: platform name.
pub const PLATFORM: &str = "platform";
/// Field: app id.
pub const APP_ID: &str = "app_id";
/// Field: outcome of the invocation or step.
pub const OUTCOME: &str = "outcome";

/// Installs the JSON subscriber once; later calls do nothing.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        // A subscriber may already be installed (tests, the local runner): keep it.
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(false)
            .with_target(false)
            .without_time()
            .try_init();
    });
}

/// Namespace of kefu's CloudWatch metrics.
pub const METRICS_NAMESPACE: &str = "kefu";

/// Writes one CloudWatch Embedded Metric Format line to stdout: CloudWatch turns it into a metric
/// without any API call on the hot path. `dimensions` become both dimensions and log fields; never
/// pass content, secrets or user ids.
pub fn metric(name: &str, value: f64, unit: &str, dimensions: &[(&str, &str)]) {
    println!(
        "{}",
        emf_line(
            name,
            value,
            unit,
            dimensions,
            crate::clock::Clock::now_ms(&crate::clock::SystemClock)
        )
    );
}

/// The EMF JSON for one metric value (separate from [`metric`] so it can be tested).
pub fn emf_line(
    name: &str,
    value: f64,
    unit: &str,
    dimensions: &[(&str, &str)],
    timestamp_ms: u64,
) -> String {
    let mut root = serde_json::Map::new();
    let dims: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    root.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [dims],
                "Metrics": [{ "Name": name, "Unit": unit }],
            }],
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).to_owned(), serde_json::Value::String((*v).to_owned()));
    }
    root.insert(name.to_owned(), serde_json::json!(value));
    serde_json::Value::Object(root).to_string()
}

/// A short, stable, non-reversible tag for an open id, for logs (FNV-1a, 8 hex digits).
pub fn open_id_hash(open_id: &str) -> String {
    crate::secret::short_hash(open_id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn emf_lines_have_the_documented_shape() {
        let line = super::emf_line(
            "SendOutcome",
            1.0,
            "Count",
            &[("function", "sender"), ("outcome", "sent")],
            42,
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "kefu");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            serde_json::json!(["function", "outcome"])
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "SendOutcome"
        );
        assert_eq!(
            (
                v["SendOutcome"].as_f64(),
                v["outcome"].as_str(),
                v["_aws"]["Timestamp"].as_u64()
            ),
            (Some(1.0), Some("sent"), Some(42))
        );
    }

    #[test]
    fn open_id_hash_is_short_and_stable() {
        assert_eq!(super::open_id_hash("oUser"), super::open_id_hash("oUser"));
        assert_ne!(super::open_id_hash("oUser"), super::open_id_hash("oUses"));
        assert_eq!(super::open_id_hash("x").len(), 8);
    }
}
