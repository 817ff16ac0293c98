//! The app registry (DESIGN §4): one JSON document listing the mini programs and 服务商
//! components, parsed and validated once per cold start.
//!
//! Errors name the offending field (`apps[1].encoding_aes_key`). Secrets are wrapped in
//! [`Secret`] and keys are decoded here, so request paths never decode base64 keys again.

use std::collections::HashMap;

use serde::Deserialize;

use crate::protocol::{AesKey, Credentials, Platform, ReceiveIdRule};
use crate::secret::Secret;

/// Why a registry document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Not JSON of the registry's shape.
    #[error("app registry is not valid JSON: {0}")]
    Json(String),
    /// A field is missing or invalid.
    #[error("app registry field {field}: {reason}")]
    Invalid {
        /// Path of the field, e.g. `apps[0].token`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One mini program.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Its platform.
    pub platform: Platform,
    /// Its AppID (WeChat `wx…`, Baidu's app id); the `{app}` of the callback route.
    pub app_id: String,
    /// WeChat original id (`gh_…`), if given.
    pub original_id: Option<String>,
    /// WeChat AppSecret / Baidu App Secret, for access tokens.
    pub app_secret: Option<Secret>,
    /// Baidu App Key (OAuth `client_id`).
    pub app_key: Option<Secret>,
    /// Baidu `user_type` for sends when the request does not say (1 guest, 2 Baidu account).
    pub default_user_type: Option<u8>,
    /// The 服务商 component that receives for this app, if any.
    pub component_app_id: Option<String>,
    /// Token, keys and receive-id rule used to authenticate and open its callbacks.
    pub credentials: Credentials,
}

/// One 服务商 (third-party platform) component.
#[derive(Debug, Clone)]
pub struct ComponentConfig {
    /// Its platform.
    pub platform: Platform,
    /// The component AppID.
    pub component_app_id: String,
    /// The component secret.
    pub component_app_secret: Option<Secret>,
}

/// The parsed, validated registry.
#[derive(Debug, Clone, Default)]
pub struct AppRegistry {
    apps: HashMap<(Platform, String), AppConfig>,
    components: HashMap<(Platform, String), ComponentConfig>,
}

#[derive(Deserialize)]
struct RawRegistry {
    #[serde(default)]
    apps: Vec<RawApp>,
    #[serde(default)]
    components: Vec<RawComponent>,
}

#[derive(Deserialize)]
struct RawApp {
    platform: Option<String>,
    app_id: Option<String>,
    original_id: Option<String>,
    token: Option<Secret>,
    encoding_aes_key: Option<Secret>,
    previous_encoding_aes_key: Option<Secret>,
    app_secret: Option<Secret>,
    app_key: Option<Secret>,
    receive_id: Option<String>,
    default_user_type: Option<u8>,
    component_app_id: Option<String>,
}

#[derive(Deserialize)]
struct RawComponent {
    platform: Option<String>,
    component_app_id: Option<String>,
    token: Option<Secret>,
    encoding_aes_key: Option<Secret>,
    previous_encoding_aes_key: Option<Secret>,
    component_app_secret: Option<Secret>,
}

fn invalid(field: String, reason: impl Into<String>) -> RegistryError {
    RegistryError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, RegistryError> {
    value.ok_or_else(|| invalid(field.to_owned(), "is required"))
}

fn platform(value: Option<String>, field: &str) -> Result<Platform, RegistryError> {
    required(value, field)?
        .parse()
        .map_err(|e: crate::protocol::UnknownPlatform| invalid(field.to_owned(), e.to_string()))
}

fn non_empty(value: Option<String>, field: &str) -> Result<String, RegistryError> {
    let v = required(value, field)?;
    if v.trim().is_empty() || v.contains('#') || v.contains('/') {
        return Err(invalid(
            field.to_owned(),
            "must be non-empty and contain no '#' or '/'",
        ));
    }
    Ok(v)
}

fn key(value: Option<&Secret>, field: &str) -> Result<Option<AesKey>, RegistryError> {
    value
        .map(|s| {
            AesKey::from_encoding_aes_key(s.expose())
                .map_err(|e| invalid(field.to_owned(), e.to_string()))
        })
        .transpose()
}

fn token(value: Option<Secret>, field: &str) -> Result<Secret, RegistryError> {
    let t = required(value, field)?;
    if t.expose().is_empty() || !t.expose().is_ascii() {
        return Err(invalid(field.to_owned(), "must be non-empty ASCII"));
    }
    Ok(t)
}

impl AppRegistry {
    /// Parses and validates a registry document.
    pub fn parse(json: &str) -> Result<Self, RegistryError> {
        let raw: RawRegistry =
            serde_json::from_str(json).map_err(|e| RegistryError::Json(e.to_string()))?;
        let mut registry = AppRegistry::default();
        let mut component_creds: HashMap<(Platform, String), (Secret, AesKey, Option<AesKey>)> =
            HashMap::new();
        for (i, c) in raw.components.into_iter().enumerate() {
            let f = |name: &str| format!("components[{i}].{name}");
            let platform = platform(c.platform, &f("platform"))?;
            let id = non_empty(c.component_app_id, &f("component_app_id"))?;
            let token = token(c.token, &f("token"))?;
            let key_value = key(c.encoding_aes_key.as_ref(), &f("encoding_aes_key"))?
                .ok_or_else(|| invalid(f("encoding_aes_key"), "is required"))?;
            let previous = key(
                c.previous_encoding_aes_key.as_ref(),
                &f("previous_encoding_aes_key"),
            )?;
            if component_creds
                .insert((platform, id.clone()), (token, key_value, previous))
                .is_some()
            {
                return Err(invalid(
                    f("component_app_id"),
                    format!("{id} is listed twice"),
                ));
            }
            registry.components.insert(
                (platform, id.clone()),
                ComponentConfig {
                    platform,
                    component_app_id: id,
                    component_app_secret: c.component_app_secret,
                },
            );
        }
        for (i, a) in raw.apps.into_iter().enumerate() {
            let f = |name: &str| format!("apps[{i}].{name}");
            let platform = platform(a.platform, &f("platform"))?;
            let app_id = non_empty(a.app_id, &f("app_id"))?;
            if let Some(t) = a.default_user_type
                && !(1..=2).contains(&t)
            {
                return Err(invalid(
                    f("default_user_type"),
                    "must be 1 (guest) or 2 (Baidu account)",
                ));
            }
            let credentials = match &a.component_app_id {
                Some(component) => {
                    let (token, key, previous) = component_creds
                        .get(&(platform, component.clone()))
                        .cloned()
                        .ok_or_else(|| {
                            invalid(
                                f("component_app_id"),
                                format!("no {platform} component {component} in components"),
                            )
                        })?;
                    let receive_id = match (platform, &a.receive_id) {
                        (Platform::Wechat, _) => ReceiveIdRule::Exact(component.clone()),
                        (Platform::Baidu, Some(id)) => ReceiveIdRule::Exact(id.clone()),
                        (Platform::Baidu, None) => ReceiveIdRule::Report,
                    };
                    Credentials {
                        token,
                        key,
                        previous_key: previous,
                        receive_id,
                    }
                }
                None => {
                    let token = token(a.token, &f("token"))?;
                    let key_value = key(a.encoding_aes_key.as_ref(), &f("encoding_aes_key"))?
                        .ok_or_else(|| invalid(f("encoding_aes_key"), "is required"))?;
                    let previous = key(
                        a.previous_encoding_aes_key.as_ref(),
                        &f("previous_encoding_aes_key"),
                    )?;
                    let receive_id = match (platform, &a.receive_id) {
                        (Platform::Wechat, _) => ReceiveIdRule::Exact(app_id.clone()),
                        (Platform::Baidu, Some(id)) => ReceiveIdRule::Exact(id.clone()),
                        (Platform::Baidu, None) => ReceiveIdRule::Report,
                    };
                    Credentials {
                        token,
                        key: key_value,
                        previous_key: previous,
                        receive_id,
                    }
                }
            };
            let app = AppConfig {
                platform,
                app_id: app_id.clone(),
                original_id: a.original_id,
                app_secret: a.app_secret,
                app_key: a.app_key,
                default_user_type: a.default_user_type,
                component_app_id: a.component_app_id,
                credentials,
            };
            if registry
                .apps
                .insert((platform, app_id.clone()), app)
                .is_some()
            {
                return Err(invalid(
                    f("app_id"),
                    format!("{platform} app {app_id} is listed twice"),
                ));
            }
        }
        Ok(registry)
    }

    /// The app with this platform and AppID.
    pub fn app(&self, platform: Platform, app_id: &str) -> Option<&AppConfig> {
        self.apps.get(&(platform, app_id.to_owned()))
    }

    /// The component with this platform and id.
    pub fn component(
        &self,
        platform: Platform,
        component_app_id: &str,
    ) -> Option<&ComponentConfig> {
        self.components
            .get(&(platform, component_app_id.to_owned()))
    }

    /// All apps, in no particular order.
    pub fn apps(&self) -> impl Iterator<Item = &AppConfig> {
        self.apps.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    fn doc(apps: &str, components: &str) -> String {
        format!(r#"{{"apps":[{apps}],"components":[{components}],"ignored":1}}"#)
    }

    #[test]
    fn parses_apps_and_components_with_their_receive_id_rules() {
        let json = doc(
            &format!(
                r#"{{"platform":"wechat","app_id":"wx1","token":"t","encoding_aes_key":"{KEY}","app_secret":"s","extra":true}},
                   {{"platform":"baidu","app_id":"123","token":"t","encoding_aes_key":"{KEY}","previous_encoding_aes_key":"{KEY}"}},
                   {{"platform":"wechat","app_id":"wx2","component_app_id":"wxc"}}"#
            ),
            &format!(
                r#"{{"platform":"wechat","component_app_id":"wxc","token":"ct","encoding_aes_key":"{KEY}"}}"#
            ),
        );
        let r = AppRegistry::parse(&json).unwrap();
        let wx1 = r.app(Platform::Wechat, "wx1").unwrap();
        assert_eq!(
            wx1.credentials.receive_id,
            ReceiveIdRule::Exact("wx1".into())
        );
        assert_eq!(wx1.app_secret.as_ref().map(Secret::expose), Some("s"));
        let bd = r.app(Platform::Baidu, "123").unwrap();
        assert_eq!(bd.credentials.receive_id, ReceiveIdRule::Report);
        assert!(bd.credentials.previous_key.is_some());
        let wx2 = r.app(Platform::Wechat, "wx2").unwrap();
        assert_eq!(
            wx2.credentials.receive_id,
            ReceiveIdRule::Exact("wxc".into())
        );
        assert_eq!(wx2.credentials.token.expose(), "ct");
        assert!(r.app(Platform::Baidu, "wx1").is_none());
        assert!(
            !format!("{wx1:?}").contains("\"t\""),
            "secrets must not print"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                doc(
                    r#"{"platform":"qq","app_id":"a","token":"t","encoding_aes_key":"x"}"#,
                    "",
                ),
                "apps[0].platform",
            ),
            (
                doc(
                    &format!(
                        r#"{{"platform":"wechat","app_id":"a","token":"t","encoding_aes_key":"{}"}}"#,
                        &KEY[..42]
                    ),
                    "",
                ),
                "apps[0].encoding_aes_key",
            ),
            (
                doc(
                    &format!(r#"{{"platform":"wechat","app_id":"a","encoding_aes_key":"{KEY}"}}"#),
                    "",
                ),
                "apps[0].token",
            ),
            (
                doc(
                    r#"{"platform":"wechat","app_id":"a","component_app_id":"nope"}"#,
                    "",
                ),
                "apps[0].component_app_id",
            ),
            (
                doc(
                    &format!(
                        r#"{{"platform":"baidu","app_id":"a","token":"t","encoding_aes_key":"{KEY}","default_user_type":3}}"#
                    ),
                    "",
                ),
                "apps[0].default_user_type",
            ),
            (
                doc(
                    &format!(
                        r#"{{"platform":"wechat","app_id":"a","token":"t","encoding_aes_key":"{KEY}"}},{{"platform":"wechat","app_id":"a","token":"t","encoding_aes_key":"{KEY}"}}"#
                    ),
                    "",
                ),
                "apps[1].app_id",
            ),
        ];
        for (json, field) in cases {
            match AppRegistry::parse(&json) {
                Err(RegistryError::Invalid { field: f, .. }) => assert_eq!(f, field, "{json}"),
                other => panic!("{json}: expected an error on {field}, got {other:?}"),
            }
        }
        assert!(matches!(
            AppRegistry::parse("{"),
            Err(RegistryError::Json(_))
        ));
    }
}
