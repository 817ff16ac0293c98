//! The app registry (docs/design.md §4): one JSON document listing the mini programs and 服务商
//! components, parsed and validated once per load.
//!
//! Deployed, the document is kept as two parts ([`split`]): the *verify* part that ingress reads
//! (Tokens, EncodingAESKeys) and the *send* part that the sender reads (AppSecrets, Baidu app keys),
//! each parsed with its [`Purpose`]. Parsing is per entry: an invalid entry disables that app alone
//! ([`Lookup::Disabled`], with the error naming the field) and never the others. [`AppRegistry::parse`]
//! is the strict form (any invalid entry is an error) used by `kefu registry check` and local files.
//!
//! Errors name the offending field (`apps[1].encoding_aes_key`) and never quote a value. Secrets are
//! wrapped in [`Secret`] and keys are decoded here, so request paths never decode base64 keys again.
//! Not here: where the document comes from (`registry_source`).

mod parse;
mod split;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use split::{RegistryParts, split};

use crate::ids::Platform;
use crate::protocol::Credentials;
use crate::secret::Secret;

/// Where a registry document is read from (chosen from the environment by each function's config;
/// read by `registry_source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryLocation {
    /// A Secrets Manager secret (id or ARN): the deployed form.
    Secret(String),
    /// A file (`KEFU_APPS_FILE`): local runs.
    File(std::path::PathBuf),
    /// The document itself (`KEFU_APPS_JSON`): local runs and tests.
    Inline(String),
}

/// How often to re-read, and how long a re-read may take on the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refresh {
    /// Re-read once the copy is older than this (default 300 s).
    pub ttl: std::time::Duration,
    /// A re-read slower than this is abandoned and the old copy kept (default 500 ms).
    pub timeout: std::time::Duration,
    /// After a failed re-read, wait this long before the next try (default 30 s).
    pub retry_after: std::time::Duration,
}

impl Default for Refresh {
    fn default() -> Self {
        Self {
            ttl: std::time::Duration::from_secs(300),
            timeout: std::time::Duration::from_millis(500),
            retry_after: std::time::Duration::from_secs(30),
        }
    }
}

/// Why a registry document or one of its entries was refused. Never contains a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Not JSON of the registry's shape (position and category only).
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

impl RegistryError {
    /// The field path (`apps[0].token`), or `document` for a JSON error.
    pub fn field(&self) -> &str {
        match self {
            RegistryError::Json(_) => "document",
            RegistryError::Invalid { field, .. } => field,
        }
    }
}

/// Which part of the registry a document is, and so which fields each entry needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The whole document (local runs, `kefu registry check`): verification material required,
    /// sending material optional.
    Full,
    /// The verify part (ingress): Token and EncodingAESKey required; sending material ignored.
    Verify,
    /// The send part (sender): no verification material needed, none kept.
    Send,
}

/// The console's 消息加密方式 for one app: which pushes ingress admits (docs/protocol.md §4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppMode {
    /// 明文模式: unencrypted bodies are admitted, and encrypted ones too (during a switch).
    Plaintext,
    /// 兼容模式: only pushes whose `Encrypt` opens are admitted.
    Compatible,
    /// 安全模式, the default: only pushes whose `Encrypt` opens are admitted.
    #[default]
    Safe,
}

impl AppMode {
    /// The lowercase name used in the registry document.
    pub fn as_str(self) -> &'static str {
        match self {
            AppMode::Plaintext => "plaintext",
            AppMode::Compatible => "compatible",
            AppMode::Safe => "safe",
        }
    }
}

/// Where a WeChat app's user messages go besides kefu (`handoff`, docs/design.md §3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Handoff {
    /// Nowhere: pushes are answered `success` (the default).
    #[default]
    None,
    /// `wechat_tool`: user messages are answered with `transfer_customer_service`, so WeChat also
    /// delivers them to its web tool and 客服小助手.
    WechatTool,
}

impl Handoff {
    /// The registry document's name (`none`, `wechat_tool`).
    pub fn as_str(self) -> &'static str {
        match self {
            Handoff::None => "none",
            Handoff::WechatTool => "wechat_tool",
        }
    }
}

impl std::str::FromStr for AppMode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "plaintext" => Ok(AppMode::Plaintext),
            "compatible" => Ok(AppMode::Compatible),
            "safe" => Ok(AppMode::Safe),
            _ => Err(()),
        }
    }
}

/// One mini program.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Its platform.
    pub platform: Platform,
    /// Its AppID (WeChat `wx…`, Baidu's app id); the `{app}` of the callback route.
    pub app_id: String,
    /// WeChat original id (`gh_…`), if given; required for a WeChat 服务商 app.
    pub original_id: Option<String>,
    /// The console's mode (`mode`, default `safe`); never `plaintext` for a 服务商 app. Verify
    /// material: [`AppMode::Safe`] in a registry parsed for [`Purpose::Send`].
    pub mode: AppMode,
    /// WeChat AppSecret / Baidu App Secret, for access tokens (send part).
    pub app_secret: Option<Secret>,
    /// Baidu App Key (OAuth `client_id`; send part).
    pub app_key: Option<Secret>,
    /// Baidu `user_type` for sends when the request does not say (1 guest, 2 Baidu account).
    pub default_user_type: Option<u8>,
    /// The 服务商 component that receives for this app, if any.
    pub component_app_id: Option<String>,
    /// Where user messages are also handed (verify part; [`Handoff::None`] in a send part).
    pub handoff: Handoff,
    /// Token, keys and receive-id rule used to authenticate and open its callbacks; `None` in a
    /// registry parsed for [`Purpose::Send`].
    pub credentials: Option<Credentials>,
}

/// One 服务商 (third-party platform) component.
#[derive(Debug, Clone)]
pub struct ComponentConfig {
    /// Its platform.
    pub platform: Platform,
    /// The component AppID.
    pub component_app_id: String,
    /// The component secret (send part).
    pub component_app_secret: Option<Secret>,
}

/// An entry that failed validation, with what is known of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidEntry {
    /// The app it would have been, when its platform and AppID could be read.
    pub app: Option<(Platform, String)>,
    /// What is wrong, naming the field.
    pub error: RegistryError,
}

/// What the registry says about one route's app.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// Configured and valid.
    Found(&'a AppConfig),
    /// Listed but invalid: requests for it must fail loudly (5xx), not as "unknown".
    Disabled(&'a RegistryError),
    /// Not listed.
    Unknown,
}

/// The parsed, validated registry: the valid entries, and what was refused.
#[derive(Debug, Clone, Default)]
pub struct AppRegistry {
    apps: HashMap<(Platform, String), AppConfig>,
    disabled: HashMap<(Platform, String), RegistryError>,
    components: HashMap<(Platform, String), ComponentConfig>,
    invalid: Vec<InvalidEntry>,
}

impl AppRegistry {
    /// Parses the whole document strictly: any invalid entry is an error (the first, by position).
    pub fn parse(json: &str) -> Result<Self, RegistryError> {
        let registry = Self::parse_for(json, Purpose::Full)?;
        match registry.invalid.first() {
            Some(entry) => Err(entry.error.clone()),
            None => Ok(registry),
        }
    }

    /// Parses one part per entry: only a document that is not JSON of the registry's shape is an
    /// error; invalid entries are kept aside ([`AppRegistry::invalid`]) and their apps disabled.
    pub fn parse_for(json: &str, purpose: Purpose) -> Result<Self, RegistryError> {
        parse::parse(json, purpose)
    }

    /// Every error in a whole document (empty when it is valid), as both functions would read
    /// their parts: ingress's verification material and the sender's sending material.
    pub fn check(json: &str) -> Vec<RegistryError> {
        let mut errors = Vec::new();
        for purpose in [Purpose::Full, Purpose::Send] {
            match Self::parse_for(json, purpose) {
                Ok(registry) => {
                    for e in registry.invalid {
                        if !errors.contains(&e.error) {
                            errors.push(e.error);
                        }
                    }
                }
                Err(e) => return vec![e],
            }
        }
        errors
    }

    /// The app with this platform and AppID, if it is configured and valid.
    pub fn app(&self, platform: Platform, app_id: &str) -> Option<&AppConfig> {
        self.apps.get(&(platform, app_id.to_owned()))
    }

    /// The app with this platform and AppID: found, disabled by an invalid entry, or unknown.
    pub fn lookup(&self, platform: Platform, app_id: &str) -> Lookup<'_> {
        let key = (platform, app_id.to_owned());
        if let Some(app) = self.apps.get(&key) {
            Lookup::Found(app)
        } else if let Some(error) = self.disabled.get(&key) {
            Lookup::Disabled(error)
        } else {
            Lookup::Unknown
        }
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

    /// All valid apps, in no particular order.
    pub fn apps(&self) -> impl Iterator<Item = &AppConfig> {
        self.apps.values()
    }

    /// The entries that were refused, in document order.
    pub fn invalid(&self) -> &[InvalidEntry] {
        &self.invalid
    }
}

#[cfg(test)]
mod tests;
