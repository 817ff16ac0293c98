//! Splitting one registry document into the part ingress reads and the part the sender reads, so
//! each function's secret holds only the material that function uses.
//!
//! Fields are kept by name (lists below); anything else is dropped from both parts. Not a validator:
//! check the document with [`AppRegistry::check`](super::AppRegistry::check) first.

use serde_json::{Map, Value};

use super::RegistryError;

/// Identity fields, in both parts.
const APP_IDENTITY: &[&str] = &["platform", "app_id", "component_app_id"];
/// App fields ingress needs: verification, decryption, recipient checks.
const APP_VERIFY: &[&str] = &[
    "original_id",
    "receive_id",
    "mode",
    "handoff",
    "token",
    "previous_token",
    "encoding_aes_key",
    "previous_encoding_aes_key",
];
/// App fields the sender needs: access tokens and send defaults.
const APP_SEND: &[&str] = &["app_secret", "app_key", "default_user_type"];
/// Component identity, in both parts.
const COMPONENT_IDENTITY: &[&str] = &["platform", "component_app_id"];
/// Component fields ingress needs.
const COMPONENT_VERIFY: &[&str] = &[
    "token",
    "previous_token",
    "encoding_aes_key",
    "previous_encoding_aes_key",
];
/// Component fields the sender needs.
const COMPONENT_SEND: &[&str] = &["component_app_secret"];

/// The two parts of a registry document, each a JSON document of the registry's shape.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryParts {
    /// For ingress (`VERIFY_REGISTRY_SECRET_ID`): no AppSecret or app key in it.
    pub verify: String,
    /// For the sender (`SEND_REGISTRY_SECRET_ID`): no Token or EncodingAESKey in it.
    pub send: String,
}

impl std::fmt::Debug for RegistryParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistryParts(***)")
    }
}

fn keep(entry: &Value, identity: &[&str], fields: &[&str]) -> Value {
    let mut out = Map::new();
    if let Value::Object(object) = entry {
        for name in identity.iter().chain(fields) {
            if let Some(v) = object.get(*name) {
                out.insert((*name).to_owned(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn part(root: &Map<String, Value>, app_fields: &[&str], component_fields: &[&str]) -> String {
    let list = |name: &str, identity: &[&str], fields: &[&str]| -> Value {
        let items = root.get(name).and_then(Value::as_array);
        Value::Array(
            items
                .into_iter()
                .flatten()
                .map(|e| keep(e, identity, fields))
                .collect(),
        )
    };
    serde_json::json!({
        "apps": list("apps", APP_IDENTITY, app_fields),
        "components": list("components", COMPONENT_IDENTITY, component_fields),
    })
    .to_string()
}

/// Splits a whole registry document into its verify and send parts.
pub fn split(json: &str) -> Result<RegistryParts, RegistryError> {
    let root: Value = serde_json::from_str(json).map_err(|e| {
        RegistryError::Json(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(root) = root else {
        return Err(RegistryError::Json(
            "the document must be a JSON object".into(),
        ));
    };
    Ok(RegistryParts {
        verify: part(&root, APP_VERIFY, COMPONENT_VERIFY),
        send: part(&root, APP_SEND, COMPONENT_SEND),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Platform;
    use crate::registry::{AppRegistry, Purpose};
    use crate::secret::Secret;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    fn doc(apps: &str, components: &str) -> String {
        format!(r#"{{"apps":[{apps}],"components":[{components}],"ignored":1}}"#)
    }

    #[test]
    fn split_keeps_each_part_to_its_fields() {
        let json = doc(
            &format!(
                r#"{{"platform":"wechat","app_id":"wx1","original_id":"gh_1","token":"tok","previous_token":"old","encoding_aes_key":"{KEY}","app_secret":"APPSECRET","unknown":1}},
                   {{"platform":"wechat","app_id":"wx2","original_id":"gh_2","component_app_id":"wxc"}}"#
            ),
            &format!(
                r#"{{"platform":"wechat","component_app_id":"wxc","token":"ct","encoding_aes_key":"{KEY}","component_app_secret":"CSECRET"}}"#
            ),
        );
        let parts = split(&json).unwrap();
        for secret in ["APPSECRET", "CSECRET", "unknown"] {
            assert!(!parts.verify.contains(secret), "{secret} in verify part");
        }
        for secret in ["tok", "old", KEY, "\"ct\"", "unknown"] {
            assert!(!parts.send.contains(secret), "{secret} in send part");
        }
        let verify = AppRegistry::parse_for(&parts.verify, Purpose::Verify).unwrap();
        assert!(verify.invalid().is_empty());
        let creds = verify
            .app(Platform::Wechat, "wx1")
            .unwrap()
            .credentials
            .clone()
            .unwrap();
        assert_eq!(creds.token.expose(), "tok");
        assert!(verify.app(Platform::Wechat, "wx2").is_some());
        let send = AppRegistry::parse_for(&parts.send, Purpose::Send).unwrap();
        assert!(send.invalid().is_empty());
        assert_eq!(
            send.app(Platform::Wechat, "wx1")
                .unwrap()
                .app_secret
                .as_ref()
                .map(Secret::expose),
            Some("APPSECRET")
        );
        assert_eq!(
            send.component(Platform::Wechat, "wxc")
                .and_then(|c| c.component_app_secret.as_ref())
                .map(Secret::expose),
            Some("CSECRET")
        );
        assert!(format!("{parts:?}").contains("***"));
    }
}
