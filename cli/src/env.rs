//! A deployed stack's outputs as the environment variables the operations commands read
//! (`kefu queues`, `dlq redrive`, `conversation show`, `smoke`, `stats`, `desk`): the mapping, and `DescribeStacks`.
//! Also the one place that reads a stack's outputs for `kefu registry push --stack` and
//! `kefu smoke`.
//!
//! Reads only `DescribeStacks`; it deploys nothing, and yields names, URLs and ARNs, never a secret
//! value (the stack's outputs carry none). Not the `kefu env` command line: `commands::env`.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudformation::error::DisplayErrorContext;
use serde_json::{Map, Value};
use shared::config::{CONVERSATIONS_TABLE, INBOUND_QUEUE_URL, MESSAGES_TABLE, TOKENS_TABLE};
pub use shared::config::{SEND_REGISTRY_SECRET_ID, VERIFY_REGISTRY_SECRET_ID};

use crate::{Error, INBOUND_DLQ_URL};

/// `KEFU_API_URL`: the HTTP API base URL (`https://…execute-api…`, no trailing slash).
pub const KEFU_API_URL: &str = "KEFU_API_URL";

/// Each exported variable and the stack output it comes from, in the order they are printed.
pub const EXPORTS: [(&str, &str); 8] = [
    (CONVERSATIONS_TABLE, "ConversationsTableName"),
    (MESSAGES_TABLE, "MessagesTableName"),
    (TOKENS_TABLE, "TokensTableName"),
    (INBOUND_QUEUE_URL, "InboundQueueUrl"),
    (INBOUND_DLQ_URL, "InboundDlqUrl"),
    (VERIFY_REGISTRY_SECRET_ID, "VerifyRegistrySecretArn"),
    (SEND_REGISTRY_SECRET_ID, "SendRegistrySecretArn"),
    (KEFU_API_URL, "ApiUrl"),
];

/// Exported when the stack has the output (stacks with the desk: `kefu stats`, `kefu desk`,
/// `kefu queues`' outbound rows).
pub const OPTIONAL_EXPORTS: [(&str, &str); 4] = [
    (shared::config::DESK_TABLE, "DeskTableName"),
    ("DESK_USER_POOL_ID", "DeskUserPoolId"),
    (shared::config::OUTBOUND_QUEUE_URL, "OutboundQueueUrl"),
    ("OUTBOUND_DLQ_URL", "OutboundDlqUrl"),
];

/// The variables of one stack, in [`EXPORTS`] order (then those of [`OPTIONAL_EXPORTS`] it has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackEnv {
    /// The stack name.
    pub stack: String,
    vars: Vec<(&'static str, String)>,
}

impl StackEnv {
    /// The variables from a stack's outputs (`(OutputKey, OutputValue)` pairs); an error names
    /// every output that is missing or empty.
    pub fn from_outputs(stack: &str, outputs: &[(String, String)]) -> Result<Self, Error> {
        let mut vars = Vec::new();
        let mut missing = Vec::new();
        for (var, output) in EXPORTS {
            match outputs
                .iter()
                .find(|(k, v)| k == output && !v.trim().is_empty())
            {
                Some((_, v)) => vars.push((var, v.clone())),
                None => missing.push(output),
            }
        }
        for (var, output) in OPTIONAL_EXPORTS {
            if let Some((_, v)) = outputs
                .iter()
                .find(|(k, v)| k == output && !v.trim().is_empty())
            {
                vars.push((var, v.clone()));
            }
        }
        if !missing.is_empty() {
            return Err(format!(
                "stack {stack} has no output {} (deployed from an older template, or the deploy did not finish?)",
                missing.join(", ")
            )
            .into());
        }
        Ok(Self {
            stack: stack.to_owned(),
            vars,
        })
    }

    /// The value of variable `var` (one of [`EXPORTS`]); empty when it is not one of them.
    pub fn get(&self, var: &str) -> &str {
        self.vars
            .iter()
            .find(|(k, _)| *k == var)
            .map_or("", |(_, v)| v.as_str())
    }

    /// `export VAR=value` lines, values shell-quoted, for `eval "$(kefu env --stack NAME)"`.
    pub fn render_exports(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.vars {
            out.push_str(&format!("export {k}={}\n", shell_quote(v)));
        }
        out
    }

    /// `{"VAR": "value", …}`: the same keys as [`StackEnv::render_exports`].
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
                .collect::<Map<_, _>>(),
        )
    }
}

/// `value` as one shell word: unchanged when it has only characters no shell treats specially,
/// otherwise in single quotes (a `'` inside written as `'\''`).
pub fn shell_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'_' | b'-' | b'.' | b'/' | b':' | b'@' | b',' | b'+' | b'=' | b'%'
                )
        });
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// The AWS SDK configuration from the usual sources, in `region` when given and pointed at
/// `endpoint` when given (the local emulator).
pub async fn sdk_config(endpoint: Option<&str>, region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    loader.load().await
}

/// Reads stack `stack`'s outputs (`DescribeStacks`).
pub async fn describe(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<StackEnv, Error> {
    let out = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| format!("DescribeStacks {stack}: {}", DisplayErrorContext(e)))?;
    let found = out
        .stacks
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| format!("stack {stack} does not exist"))?;
    let outputs: Vec<(String, String)> = found
        .outputs
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| Some((o.output_key?, o.output_value?)))
        .collect();
    StackEnv::from_outputs(stack, &outputs).map_err(|e| {
        let status = found
            .stack_status
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        if status.is_empty() {
            e
        } else {
            format!("{e} [stack status {status}]").into()
        }
    })
}

/// Reads stack `stack`'s outputs with a client built from `sdk`.
pub async fn stack_env(sdk: &SdkConfig, stack: &str) -> Result<StackEnv, Error> {
    describe(&aws_sdk_cloudformation::Client::new(sdk), stack).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs() -> Vec<(String, String)> {
        EXPORTS
            .iter()
            .map(|(var, out)| ((*out).to_owned(), format!("value-of-{var}")))
            .collect()
    }

    #[test]
    fn every_output_maps_to_its_variable_in_order() {
        let env = StackEnv::from_outputs("s", &outputs()).unwrap();
        let text = env.render_exports();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), EXPORTS.len());
        assert_eq!(
            lines[0],
            "export CONVERSATIONS_TABLE=value-of-CONVERSATIONS_TABLE"
        );
        assert_eq!(lines[7], "export KEFU_API_URL=value-of-KEFU_API_URL");
        let json = env.to_json();
        assert_eq!(json.as_object().unwrap().len(), EXPORTS.len());
        assert_eq!(json["INBOUND_DLQ_URL"], "value-of-INBOUND_DLQ_URL");
    }

    #[test]
    fn the_desks_outputs_are_exported_when_the_stack_has_them() {
        let mut o = outputs();
        o.push(("DeskTableName".into(), "kefu-desk".into()));
        o.push(("OutboundQueueUrl".into(), "https://sqs/outbound".into()));
        let env = StackEnv::from_outputs("s", &o).unwrap();
        assert_eq!(env.get("DESK_TABLE"), "kefu-desk");
        assert_eq!(env.get("OUTBOUND_QUEUE_URL"), "https://sqs/outbound");
        assert_eq!(env.get("DESK_USER_POOL_ID"), "", "absent: not exported");
        assert!(
            env.render_exports()
                .ends_with("export OUTBOUND_QUEUE_URL=https://sqs/outbound\n")
        );
    }

    #[test]
    fn a_missing_output_is_named() {
        let mut o = outputs();
        o.retain(|(k, _)| k != "SendRegistrySecretArn" && k != "ApiUrl");
        let e = StackEnv::from_outputs("s", &o).unwrap_err().to_string();
        assert!(e.contains("SendRegistrySecretArn, ApiUrl"), "{e}");
    }

    #[test]
    fn values_are_shell_quoted() {
        assert_eq!(
            shell_quote("https://a.execute-api.cn-north-1.amazonaws.com.cn"),
            "https://a.execute-api.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's $x"), r"'it'\''s $x'");
        assert_eq!(shell_quote(""), "''");
    }
}
