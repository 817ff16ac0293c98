//! App registry files: validating one with the parser the functions use, and writing its two
//! parts to the stack's secrets — the verify part (Tokens, EncodingAESKeys) that only ingress
//! reads, the send part (AppSecrets, Baidu app keys) that only the sender reads.
//!
//! Yields field paths, counts, secret ids and version ids; never a value from the file (and
//! [`scrub`] removes the file's secret values from any text, in case a message ever quoted one).
//! Not a secret store: nothing is cached locally. Not the command line: `commands::registry`.

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use serde::Serialize;
use serde_json::Value;
use shared::ids::Platform;
use shared::registry::{AppRegistry, Purpose, RegistryError, split};

use crate::Error;

/// Largest `SecretString` Secrets Manager stores (bytes).
pub const MAX_SECRET_BYTES: usize = 65_536;

/// The fields whose values are secret, in apps and components.
const SECRET_FIELDS: &[&str] = &[
    "token",
    "previous_token",
    "encoding_aes_key",
    "previous_encoding_aes_key",
    "app_secret",
    "app_key",
    "component_app_secret",
];

/// One problem in a registry document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The field path (`apps[1].encoding_aes_key`), or `document`.
    pub field: String,
    /// What is wrong (never the value).
    pub reason: String,
}

impl From<&RegistryError> for Problem {
    fn from(e: &RegistryError) -> Self {
        let reason = match e {
            RegistryError::Json(reason) | RegistryError::Invalid { reason, .. } => reason.clone(),
        };
        Problem {
            field: e.field().to_owned(),
            reason,
        }
    }
}

/// What `kefu registry check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// No problems.
    pub ok: bool,
    /// App entries in the document.
    pub apps: usize,
    /// App entries with `"platform": "wechat"`.
    pub wechat: usize,
    /// App entries with `"platform": "baidu"`.
    pub baidu: usize,
    /// Component entries in the document.
    pub components: usize,
    /// Every problem, in document order.
    pub errors: Vec<Problem>,
}

fn entries<'a>(doc: &'a Value, name: &str) -> &'a [Value] {
    doc.get(name)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The secret values in a document (for [`scrub`]); none when it is not JSON.
fn secret_values(json: &str) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    let mut out: Vec<String> = ["apps", "components"]
        .iter()
        .flat_map(|list| entries(&doc, list))
        .filter_map(Value::as_object)
        .flat_map(|o| SECRET_FIELDS.iter().filter_map(|f| o.get(*f)))
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .filter(|s| s.len() >= 4)
        .collect();
    // Longest first, so a value containing another is replaced whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `text` with every secret value of the document `json` replaced by `***`.
pub fn scrub(text: &str, json: &str) -> String {
    secret_values(json)
        .iter()
        .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "***"))
}

/// Validates a whole registry document with [`AppRegistry::check`] (the parser the functions use,
/// every entry) and counts its entries.
pub fn check(json: &str) -> CheckReport {
    let errors: Vec<Problem> = AppRegistry::check(json).iter().map(Problem::from).collect();
    let doc = serde_json::from_str::<Value>(json).unwrap_or(Value::Null);
    let apps = entries(&doc, "apps");
    let on = |p: Platform| {
        apps.iter()
            .filter(|a| a.get("platform").and_then(Value::as_str) == Some(p.as_str()))
            .count()
    };
    CheckReport {
        ok: errors.is_empty(),
        apps: apps.len(),
        wechat: on(Platform::Wechat),
        baidu: on(Platform::Baidu),
        components: entries(&doc, "components").len(),
        errors,
    }
}

/// The text `kefu registry check` prints: `ok: N apps (wechat a, baidu b), M components`, or one
/// `FIELD: reason` line per problem after a count.
pub fn render_check(report: &CheckReport, file: &str) -> String {
    if report.ok {
        return format!(
            "ok: {} apps (wechat {}, baidu {}), {} components\n",
            report.apps, report.wechat, report.baidu, report.components
        );
    }
    let mut out = format!("{file}: {} error(s)\n", report.errors.len());
    for p in &report.errors {
        out.push_str(&format!("{}: {}\n", p.field, p.reason));
    }
    out
}

/// What one `PutSecretValue` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    /// `verify` or `send`.
    pub part: &'static str,
    /// The secret id (ARN) written.
    pub secret_id: String,
    /// The new version id.
    pub version_id: String,
    /// App entries in the part.
    pub apps: usize,
    /// Component entries in the part.
    pub components: usize,
}

/// The two parts of a valid document; an error when the document has any problem (`check` first),
/// a part is too large for a secret, or a part does not parse back cleanly for its function.
pub fn parts(json: &str) -> Result<shared::registry::RegistryParts, Error> {
    let report = check(json);
    if !report.ok {
        return Err(format!(
            "the registry has {} error(s); nothing written (run `kefu registry check FILE`)",
            report.errors.len()
        )
        .into());
    }
    let parts = split(json).map_err(|e| Problem::from(&e).reason)?;
    for (name, part, purpose) in [
        ("verify", &parts.verify, Purpose::Verify),
        ("send", &parts.send, Purpose::Send),
    ] {
        if part.len() > MAX_SECRET_BYTES {
            return Err(format!(
                "the {name} part is {} bytes; a secret holds at most {MAX_SECRET_BYTES} (minify the file or split the stack)",
                part.len()
            )
            .into());
        }
        let parsed = AppRegistry::parse_for(part, purpose).map_err(|e| {
            format!(
                "the {name} part does not parse: {}",
                Problem::from(&e).field
            )
        })?;
        if let Some(bad) = parsed.invalid().first() {
            let p = Problem::from(&bad.error);
            return Err(format!("the {name} part is invalid at {}: {}", p.field, p.reason).into());
        }
    }
    Ok(parts)
}

/// Checks `json`, splits it and writes the verify part to `verify_id`, then the send part to
/// `send_id`; when the second write fails, the error says the first has happened.
pub async fn push(
    sm: &aws_sdk_secretsmanager::Client,
    json: &str,
    verify_id: &str,
    send_id: &str,
) -> Result<Vec<Written>, Error> {
    let parts = parts(json)?;
    let mut written: Vec<Written> = Vec::new();
    for (part, id, value) in [
        ("verify", verify_id, &parts.verify),
        ("send", send_id, &parts.send),
    ] {
        let doc: Value = serde_json::from_str(value)?;
        let out = sm
            .put_secret_value()
            .secret_id(id)
            .secret_string(value.as_str())
            .send()
            .await
            .map_err(|e| {
                let done = written
                    .iter()
                    .map(|w| format!("; the {} part was written ({})", w.part, w.version_id))
                    .collect::<String>();
                format!(
                    "PutSecretValue {id} ({part} part): {}{done}",
                    DisplayErrorContext(e)
                )
            })?;
        written.push(Written {
            part,
            secret_id: out.arn.unwrap_or_else(|| id.to_owned()),
            version_id: out.version_id.unwrap_or_default(),
            apps: entries(&doc, "apps").len(),
            components: entries(&doc, "components").len(),
        });
    }
    Ok(written)
}

/// The text `kefu registry push` prints: one line per part written.
pub fn render_written(written: &[Written]) -> String {
    written
        .iter()
        .map(|w| {
            format!(
                "wrote {} part: {} apps, {} components to {} (version {})\n",
                w.part, w.apps, w.components, w.secret_id, w.version_id
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    fn doc(token: &str, key: &str) -> String {
        format!(
            r#"{{"apps":[{{"platform":"wechat","app_id":"wx1","token":"{token}","encoding_aes_key":"{key}","app_secret":"topSecretAppSecret"}},
                        {{"platform":"baidu","app_id":"123","token":"t2t2t2","encoding_aes_key":"{KEY}","app_key":"k","app_secret":"s"}}],
                "components":[]}}"#
        )
    }

    #[test]
    fn a_valid_file_is_counted() {
        let report = check(&doc("tok1", KEY));
        assert!(report.ok, "{report:?}");
        assert_eq!(
            render_check(&report, "f"),
            "ok: 2 apps (wechat 1, baidu 1), 0 components\n"
        );
    }

    #[test]
    fn every_error_names_its_field_and_no_value() {
        let json = doc("", &KEY[..40]).replace("\"t2t2t2\"", "12345678");
        let report = check(&json);
        let fields: Vec<&str> = report.errors.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["apps[0].token", "apps[1].token"], "{report:?}");
        let text = scrub(&render_check(&report, "f"), &json);
        assert!(
            !text.contains("12345678") && !text.contains(&KEY[..40]),
            "{text}"
        );
    }

    #[test]
    fn scrub_replaces_secret_values_only() {
        let json = doc("tok1", KEY);
        assert_eq!(scrub("wx1 topSecretAppSecret tok1", &json), "wx1 *** ***");
    }

    #[test]
    fn parts_refuses_an_invalid_document() {
        assert!(parts(&doc("", KEY)).is_err());
        let p = parts(&doc("tok1", KEY)).unwrap();
        assert!(!p.verify.contains("topSecretAppSecret"));
        assert!(!p.send.contains(KEY));
    }
}
