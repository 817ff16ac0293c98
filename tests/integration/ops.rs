//! The deploy-time commands against the emulator, driven through the command line parser as an
//! operator types them: `kefu env --stack` prints exactly the stack's outputs as exports,
//! `kefu registry push --stack` writes each part to its own secret with only that part's fields,
//! `kefu registry check` names the bad field and never prints a value, and `kefu smoke` passes
//! against a running `kefu serve` and fails when the verify secret's Token is wrong.
//!
//! The stack is a CloudFormation stack in moto with the real output names. moto's CloudFormation
//! has no `AWS::SecretsManager::Secret`, so the two registry secrets are created with
//! `CreateSecret` and passed to the stack as parameters that its outputs return.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use clap::Parser as _;
use kefu::cli::{Cli, Command};
use serde_json::{Value, json};
use shared::registry::{AppRegistry, Purpose};

use crate::helpers::{APPS, TestEnv};

const EMPTY_REGISTRY: &str = r#"{"apps":[],"components":[]}"#;
const API_URL: &str = "https://kefuapi.execute-api.us-east-1.amazonaws.com";
/// Secret values of `infra/local/apps.json` (test-only): none may ever be printed.
const SECRETS: &[&str] = &[
    "kefuTestToken1",
    "kefuTestToken2",
    "kefuTestToken3",
    "kefuTestOnlyKey0000000000000000000000000001",
    "kefuTestOnlyKey0000000000000000000000000002",
    "kefuTestOnlyKey0000000000000000000000000003",
    "test-only-wechat-secret",
    "test-only-baidu-app-key",
    "test-only-baidu-secret",
];
/// Fields only the verify part may hold, and fields only the send part may hold.
const VERIFY_ONLY: &[&str] = &[
    "token",
    "previous_token",
    "encoding_aes_key",
    "previous_encoding_aes_key",
];
const SEND_ONLY: &[&str] = &["app_secret", "app_key", "component_app_secret"];

fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("kefu-{what}-{nanos}-{}", N.fetch_add(1, Ordering::SeqCst))
}

/// Writes `text` to a fresh file under the temp dir.
fn temp_file(text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.json", unique("registry")));
    std::fs::write(&path, text).unwrap();
    path
}

fn assert_no_secret(text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "a secret value was printed:\n{text}");
    }
}

/// Runs one `kefu` command line in process; `(exit status 0, what it printed)`, or the error it
/// would print.
async fn kefu(args: &[&str]) -> Result<(bool, String), String> {
    let cli = Cli::try_parse_from(std::iter::once("kefu").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    let endpoint = cli.aws_endpoint.clone();
    let endpoint = endpoint.as_deref();
    let mut out = Vec::new();
    let ok = match cli.command {
        Command::Env(a) => kefu::commands::env::run(a, endpoint, &mut out).await,
        Command::Registry { command } => {
            kefu::commands::registry::run(command, endpoint, &mut out).await
        }
        Command::Smoke(a) => kefu::commands::smoke::run(a, endpoint, &mut out).await,
        other => panic!("not an ops command: {other:?}"),
    }
    .map_err(|e| e.to_string())?;
    Ok((ok, String::from_utf8(out).unwrap()))
}

/// A stack in the emulator with the template's output names.
struct Stack {
    name: String,
    sdk: aws_config::SdkConfig,
    prefix: String,
    inbound: String,
    dlq: String,
    verify_arn: String,
    send_arn: String,
}

fn table(name: &str) -> Value {
    json!({
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{ "AttributeName": "pk", "AttributeType": "S" }],
            "KeySchema": [{ "AttributeName": "pk", "KeyType": "HASH" }]
        }
    })
}

fn output(value: Value) -> Value {
    json!({ "Value": value })
}

impl Stack {
    /// Creates the secrets and the stack; `None` (test skipped) without an emulator.
    async fn create() -> Option<Stack> {
        if std::env::var("AWS_ENDPOINT_URL").is_err() {
            println!("skipped: AWS_ENDPOINT_URL not set (run through make test)");
            return None;
        }
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let name = unique("ops");
        let sm = aws_sdk_secretsmanager::Client::new(&sdk);
        let mut arns = Vec::new();
        for part in ["verify", "send"] {
            let out = sm
                .create_secret()
                .name(format!("{name}/registry/{part}"))
                .secret_string(EMPTY_REGISTRY)
                .send()
                .await
                .unwrap();
            arns.push(out.arn.unwrap());
        }
        let prefix = format!("{name}-");
        let template = json!({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Parameters": {
                "VerifySecretArn": { "Type": "String" },
                "SendSecretArn": { "Type": "String" }
            },
            "Resources": {
                "ConversationsTable": table(&format!("{prefix}conversations")),
                "MessagesTable": table(&format!("{prefix}messages")),
                "TokensTable": table(&format!("{prefix}tokens")),
                "InboundDLQ": { "Type": "AWS::SQS::Queue", "Properties": { "QueueName": format!("{prefix}dlq") } },
                "InboundQueue": { "Type": "AWS::SQS::Queue", "Properties": {
                    "QueueName": format!("{prefix}inbound"),
                    "RedrivePolicy": { "deadLetterTargetArn": { "Fn::GetAtt": ["InboundDLQ", "Arn"] }, "maxReceiveCount": 5 }
                } }
            },
            "Outputs": {
                "ConversationsTableName": output(json!({ "Ref": "ConversationsTable" })),
                "MessagesTableName": output(json!({ "Ref": "MessagesTable" })),
                "TokensTableName": output(json!({ "Ref": "TokensTable" })),
                "InboundQueueUrl": output(json!({ "Ref": "InboundQueue" })),
                "InboundDlqUrl": output(json!({ "Ref": "InboundDLQ" })),
                "VerifyRegistrySecretArn": output(json!({ "Ref": "VerifySecretArn" })),
                "SendRegistrySecretArn": output(json!({ "Ref": "SendSecretArn" })),
                "ApiUrl": output(json!(API_URL)),
                "DashboardUrl": output(json!("https://console.example.invalid/dashboard"))
            }
        });
        let cfn = aws_sdk_cloudformation::Client::new(&sdk);
        let param = |k: &str, v: &str| {
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        };
        cfn.create_stack()
            .stack_name(&name)
            .template_body(template.to_string())
            .parameters(param("VerifySecretArn", &arns[0]))
            .parameters(param("SendSecretArn", &arns[1]))
            .send()
            .await
            .unwrap();
        wait_created(&cfn, &name).await;
        // The queue URLs as the stack reports them (moto's `Ref` of a queue is its AWS-style URL).
        let outputs = cfn
            .describe_stacks()
            .stack_name(&name)
            .send()
            .await
            .unwrap()
            .stacks
            .unwrap()
            .remove(0)
            .outputs
            .unwrap();
        let url = |key: &str| {
            outputs
                .iter()
                .find(|o| o.output_key.as_deref() == Some(key))
                .and_then(|o| o.output_value.clone())
                .unwrap()
        };
        let (inbound, dlq) = (url("InboundQueueUrl"), url("InboundDlqUrl"));
        assert!(inbound.ends_with(&format!("/{prefix}inbound")), "{inbound}");
        assert!(dlq.ends_with(&format!("/{prefix}dlq")), "{dlq}");
        Some(Stack {
            name,
            sdk,
            prefix,
            inbound,
            dlq,
            send_arn: arns.pop().unwrap(),
            verify_arn: arns.pop().unwrap(),
        })
    }

    async fn secret(&self, arn: &str) -> (String, String) {
        let out = aws_sdk_secretsmanager::Client::new(&self.sdk)
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .unwrap();
        (out.secret_string.unwrap(), out.version_id.unwrap())
    }
}

async fn wait_created(cfn: &aws_sdk_cloudformation::Client, name: &str) {
    for _ in 0..100 {
        let out = cfn.describe_stacks().stack_name(name).send().await.unwrap();
        let status = out.stacks.unwrap()[0]
            .stack_status
            .clone()
            .unwrap()
            .as_str()
            .to_owned();
        match status.as_str() {
            "CREATE_COMPLETE" => return,
            "CREATE_IN_PROGRESS" => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("stack {name}: {other}"),
        }
    }
    panic!("stack {name} not created");
}

#[tokio::test]
async fn env_prints_exactly_the_stack_outputs_as_exports() {
    let Some(stack) = Stack::create().await else {
        return;
    };
    let p = &stack.prefix;
    let (ok, text) = kefu(&["env", "--stack", &stack.name]).await.unwrap();
    assert!(ok);
    let expected = format!(
        "export CONVERSATIONS_TABLE={p}conversations\n\
         export MESSAGES_TABLE={p}messages\n\
         export TOKENS_TABLE={p}tokens\n\
         export INBOUND_QUEUE_URL={}\n\
         export INBOUND_DLQ_URL={}\n\
         export VERIFY_REGISTRY_SECRET_ID={}\n\
         export SEND_REGISTRY_SECRET_ID={}\n\
         export KEFU_API_URL={API_URL}\n",
        kefu::env::shell_quote(&stack.inbound),
        kefu::env::shell_quote(&stack.dlq),
        kefu::env::shell_quote(&stack.verify_arn),
        kefu::env::shell_quote(&stack.send_arn),
    );
    assert_eq!(text, expected);

    let (ok, text) = kefu(&["env", "--stack", &stack.name, "--json"])
        .await
        .unwrap();
    assert!(ok);
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        json,
        json!({
            "CONVERSATIONS_TABLE": format!("{p}conversations"),
            "MESSAGES_TABLE": format!("{p}messages"),
            "TOKENS_TABLE": format!("{p}tokens"),
            "INBOUND_QUEUE_URL": stack.inbound,
            "INBOUND_DLQ_URL": stack.dlq,
            "VERIFY_REGISTRY_SECRET_ID": stack.verify_arn,
            "SEND_REGISTRY_SECRET_ID": stack.send_arn,
            "KEFU_API_URL": API_URL,
        })
    );

    let e = kefu(&["env", "--stack", "kefu-no-such-stack"])
        .await
        .unwrap_err();
    assert!(e.contains("kefu-no-such-stack"), "{e}");
}

#[tokio::test]
async fn env_names_every_missing_output() {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        println!("skipped: AWS_ENDPOINT_URL not set (run through make test)");
        return;
    }
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let name = unique("partial");
    let template = json!({
        "Resources": { "InboundQueue": { "Type": "AWS::SQS::Queue", "Properties": { "QueueName": format!("{name}-inbound") } } },
        "Outputs": { "InboundQueueUrl": output(json!({ "Ref": "InboundQueue" })), "ApiUrl": output(json!(API_URL)) }
    });
    cfn.create_stack()
        .stack_name(&name)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    wait_created(&cfn, &name).await;
    let e = kefu(&["env", "--stack", &name]).await.unwrap_err();
    assert!(
        e.contains(
            "no output ConversationsTableName, MessagesTableName, TokensTableName, InboundDlqUrl, VerifyRegistrySecretArn, SendRegistrySecretArn"
        ),
        "{e}"
    );
}

/// Every app and component object of a part holds only identity fields and its own fields.
fn assert_part_fields(part: &str, forbidden: &[&str], leaked: &[&str]) {
    let doc: Value = serde_json::from_str(part).unwrap();
    for list in ["apps", "components"] {
        for entry in doc[list].as_array().unwrap() {
            for f in forbidden {
                assert!(entry.get(*f).is_none(), "{f} in {part}");
            }
        }
    }
    for s in leaked {
        assert!(!part.contains(s), "{s} in {part}");
    }
}

#[tokio::test]
async fn registry_push_writes_each_part_to_its_own_secret() {
    let Some(stack) = Stack::create().await else {
        return;
    };
    let file = temp_file(APPS);
    let file = file.to_str().unwrap();
    let (ok, text) = kefu(&["registry", "push", file, "--stack", &stack.name])
        .await
        .unwrap();
    assert!(ok, "{text}");
    assert_no_secret(&text);
    let (verify, verify_version) = stack.secret(&stack.verify_arn).await;
    let (send, send_version) = stack.secret(&stack.send_arn).await;
    assert_eq!(
        text,
        format!(
            "wrote verify part: 3 apps, 0 components to {} (version {verify_version})\n\
             wrote send part: 3 apps, 0 components to {} (version {send_version})\n",
            stack.verify_arn, stack.send_arn
        )
    );

    // Each part holds only its function's material …
    assert_part_fields(
        &verify,
        SEND_ONLY,
        &[
            "test-only-wechat-secret",
            "test-only-baidu-app-key",
            "test-only-baidu-secret",
        ],
    );
    assert_part_fields(
        &send,
        VERIFY_ONLY,
        &[
            "kefuTestToken1",
            "kefuTestToken2",
            "kefuTestOnlyKey0000000000000000000000000001",
            "kefuTestOnlyKey0000000000000000000000000002",
        ],
    );
    // … and is what that function parses cleanly.
    let v = AppRegistry::parse_for(&verify, Purpose::Verify).unwrap();
    assert!(v.invalid().is_empty());
    assert_eq!(v.apps().count(), 3);
    let s = AppRegistry::parse_for(&send, Purpose::Send).unwrap();
    assert!(s.invalid().is_empty());
    let wx = s
        .app(shared::ids::Platform::Wechat, "wxkefu0000000001")
        .unwrap();
    assert_eq!(
        wx.app_secret.as_ref().map(|x| x.expose()),
        Some("test-only-wechat-secret")
    );

    // The explicit form writes to the secrets named.
    let (ok, text) = kefu(&[
        "registry",
        "push",
        file,
        "--verify-secret",
        &stack.verify_arn,
        "--send-secret",
        &stack.send_arn,
    ])
    .await
    .unwrap();
    assert!(ok, "{text}");
    assert_ne!(stack.secret(&stack.verify_arn).await.1, verify_version);

    // An invalid file is refused before anything is written.
    let before = (
        stack.secret(&stack.verify_arn).await.1,
        stack.secret(&stack.send_arn).await.1,
    );
    let bad = temp_file(&APPS.replace(
        "kefuTestOnlyKey0000000000000000000000000002",
        "kefuTestOnlyKey000000000000000000000000002",
    ));
    let (ok, text) = kefu(&[
        "registry",
        "push",
        bad.to_str().unwrap(),
        "--stack",
        &stack.name,
    ])
    .await
    .unwrap();
    assert!(!ok);
    assert!(text.contains("apps[1].encoding_aes_key"), "{text}");
    assert!(text.contains("nothing written"), "{text}");
    assert_no_secret(&text);
    assert!(!text.contains("kefuTestOnlyKey000000000000000000000000002"));
    let after = (
        stack.secret(&stack.verify_arn).await.1,
        stack.secret(&stack.send_arn).await.1,
    );
    assert_eq!(before, after);

    // Neither form without the other half.
    let e = kefu(&["registry", "push", file, "--verify-secret", "x"])
        .await
        .unwrap_err();
    assert!(e.contains("--send-secret"), "{e}");
}

#[tokio::test]
async fn registry_check_names_the_field_and_never_the_value() {
    let file = temp_file(APPS);
    let (ok, text) = kefu(&["registry", "check", file.to_str().unwrap()])
        .await
        .unwrap();
    assert!(ok);
    assert_eq!(text, "ok: 3 apps (wechat 2, baidu 1), 0 components\n");

    let short_key = "kefuTestOnlyKey000000000000000000000000002";
    let bad = APPS
        .replace("kefuTestOnlyKey0000000000000000000000000002", short_key)
        .replace("\"kefuTestToken1\"", "7654321012");
    let file = temp_file(&bad);
    let (ok, text) = kefu(&["registry", "check", file.to_str().unwrap()])
        .await
        .unwrap();
    assert!(!ok);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].ends_with(": 2 error(s)"), "{text}");
    assert!(lines[1].starts_with("apps[0].token: "), "{text}");
    assert!(lines[2].starts_with("apps[1].encoding_aes_key: "), "{text}");
    for value in [short_key, "7654321012"] {
        assert!(!text.contains(value), "{text}");
    }
    assert_no_secret(&text);

    let (ok, text) = kefu(&["registry", "check", file.to_str().unwrap(), "--json"])
        .await
        .unwrap();
    assert!(!ok);
    assert_no_secret(&text);
    assert!(!text.contains(short_key));
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["apps"], 3);
    assert_eq!(json["errors"][1]["field"], "apps[1].encoding_aes_key");

    let file = temp_file("{\"apps\": [ {\"token\": \"kefuTestToken1\" ");
    let (ok, text) = kefu(&["registry", "check", file.to_str().unwrap()])
        .await
        .unwrap();
    assert!(!ok);
    assert!(text.contains("document: "), "{text}");
    assert_no_secret(&text);
}

#[tokio::test]
async fn smoke_passes_against_kefu_serve_and_fails_on_a_wrong_token() {
    let Some(stack) = Stack::create().await else {
        return;
    };
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let server = kefu::serve::start(kefu::serve::Settings {
        port: 0,
        sdk: env.sdk.clone(),
        ingress: env.ingress_config(),
        processor: env.processor_config(),
        sender: env.sender_config("http://127.0.0.1:9"),
        desk: None,
        local_token: "smoke-local-token".into(),
        poll_wait_secs: 1,
    })
    .await
    .unwrap();
    let url = server.url();

    // Before the registry is pushed there is nothing to verify.
    let (ok, text) = kefu(&["smoke", "--stack", &stack.name, "--api-url", &url])
        .await
        .unwrap();
    assert!(!ok, "{text}");
    assert!(text.contains("FAILED  registry: 0 valid apps"), "{text}");

    let file = temp_file(APPS);
    let (ok, _) = kefu(&[
        "registry",
        "push",
        file.to_str().unwrap(),
        "--stack",
        &stack.name,
    ])
    .await
    .unwrap();
    assert!(ok);
    let (ok, text) = kefu(&["smoke", "--stack", &stack.name, "--api-url", &url])
        .await
        .unwrap();
    assert!(ok, "{text}");
    assert_no_secret(&text);
    let p = &stack.prefix;
    for line in [
        format!("smoke: stack {} against {url}", stack.name),
        "ok      registry: 3 valid apps (wechat 2, baidu 1), 0 invalid entries".into(),
        "ok      verify baidu 10000001: echo returned verbatim".into(),
        "ok      verify wechat wxkefu0000000001: echo returned verbatim".into(),
        "ok      verify wechat wxkefu0000000002: echo returned verbatim".into(),
        "ok      queue inbound: 0 visible, 0 in flight".into(),
        "ok      queue dlq: 0 visible, 0 in flight".into(),
        format!("ok      table CONVERSATIONS_TABLE: {p}conversations ACTIVE"),
        format!("ok      table MESSAGES_TABLE: {p}messages ACTIVE"),
        format!("ok      table TOKENS_TABLE: {p}tokens ACTIVE"),
        "smoke: 9 ok, 0 FAILED".into(),
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line.as_str())),
            "{line}:\n{text}"
        );
    }

    // --app limits the verification to that app; an unknown one fails.
    let (ok, text) = kefu(&[
        "smoke",
        "--stack",
        &stack.name,
        "--api-url",
        &url,
        "--app",
        "10000001",
    ])
    .await
    .unwrap();
    assert!(ok, "{text}");
    assert!(!text.contains("verify wechat"), "{text}");
    let (ok, text) = kefu(&[
        "smoke",
        "--stack",
        &stack.name,
        "--api-url",
        &url,
        "--app",
        "wxnotregistered",
    ])
    .await
    .unwrap();
    assert!(!ok);
    assert!(
        text.contains("FAILED  verify wxnotregistered: not in the verify secret"),
        "{text}"
    );

    // A wrong Token in the secret (the console and the secret disagree): that app fails.
    let wrong = temp_file(&APPS.replace("kefuTestToken1", "kefuWrongToken1"));
    let (ok, _) = kefu(&[
        "registry",
        "push",
        wrong.to_str().unwrap(),
        "--stack",
        &stack.name,
    ])
    .await
    .unwrap();
    assert!(ok);
    let (ok, text) = kefu(&["smoke", "--stack", &stack.name, "--api-url", &url])
        .await
        .unwrap();
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAILED  verify wechat wxkefu0000000001: 401"),
        "{text}"
    );
    assert!(
        text.contains("ok      verify baidu 10000001: echo returned verbatim"),
        "{text}"
    );
    assert!(text.contains("smoke: 8 ok, 1 FAILED"), "{text}");
    assert!(!text.contains("kefuWrongToken1"), "{text}");
    assert_no_secret(&text);

    // Nothing answering at the API URL: the verification fails, the AWS checks still run.
    let (ok, text) = kefu(&[
        "smoke",
        "--stack",
        &stack.name,
        "--api-url",
        "http://127.0.0.1:9",
    ])
    .await
    .unwrap();
    assert!(!ok);
    assert!(text.contains("ok      queue inbound"), "{text}");
    server.stop().await;
}

#[test]
fn every_output_kefu_env_reads_is_in_the_template() {
    let template =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
            .unwrap();
    let outputs: Vec<&str> = template
        .split_once("\nOutputs:\n")
        .expect("template.yaml has Outputs")
        .1
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .filter_map(|l| l.strip_prefix("  ")?.strip_suffix(':'))
        .filter(|name| !name.starts_with(' '))
        .collect();
    for (var, output) in kefu::env::EXPORTS {
        assert!(
            outputs.contains(&output),
            "{var}: template.yaml has no output {output} (outputs: {outputs:?})"
        );
    }
}
