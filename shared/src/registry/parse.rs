//! Reading a registry document entry by entry: each field is read by name, so an error names its
//! field (`apps[2].token`) and never quotes a value, and a bad entry disables only its own app.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::{
    AppConfig, AppMode, AppRegistry, ComponentConfig, Handoff, InvalidEntry, Purpose, RegistryError,
};
use crate::ids::Platform;
use crate::protocol::{AesKey, Credentials, ReceiveIdRule};
use crate::secret::Secret;

type Object = Map<String, Value>;

/// The verification material of a component, shared by the apps it receives for.
#[derive(Clone)]
struct ComponentKeys {
    token: Secret,
    previous_token: Option<Secret>,
    key: AesKey,
    previous_key: Option<AesKey>,
}

fn invalid(field: String, reason: impl Into<String>) -> RegistryError {
    RegistryError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A JSON error by category and position only: serde's own text can quote the document.
fn json_error(e: &serde_json::Error) -> RegistryError {
    RegistryError::Json(format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    ))
}

/// The fields of one entry, read by name with its path for errors.
struct Entry<'a> {
    object: &'a Object,
    path: String,
}

impl<'a> Entry<'a> {
    fn new(value: &'a Value, path: String) -> Result<Self, RegistryError> {
        match value {
            Value::Object(object) => Ok(Self { object, path }),
            _ => Err(invalid(path, "must be an object")),
        }
    }

    fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    fn string(&self, name: &str) -> Result<Option<&'a str>, RegistryError> {
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(self.field(name), "must be a string")),
        }
    }

    fn required(&self, name: &str) -> Result<&'a str, RegistryError> {
        self.string(name)?
            .ok_or_else(|| invalid(self.field(name), "is required"))
    }

    fn platform(&self) -> Result<Platform, RegistryError> {
        self.required("platform")?
            .parse()
            .map_err(|_| invalid(self.field("platform"), "must be \"wechat\" or \"baidu\""))
    }

    /// An id used in storage keys and routes: non-empty, without `#` or `/`.
    fn id(&self, name: &str) -> Result<String, RegistryError> {
        let v = self.required(name)?;
        if v.trim().is_empty() || v.contains('#') || v.contains('/') {
            return Err(invalid(
                self.field(name),
                "must be non-empty and contain no '#' or '/'",
            ));
        }
        Ok(v.to_owned())
    }

    fn secret(&self, name: &str) -> Result<Option<Secret>, RegistryError> {
        Ok(self.string(name)?.map(Secret::new))
    }

    fn token(&self, name: &str) -> Result<Option<Secret>, RegistryError> {
        match self.string(name)? {
            None => Ok(None),
            Some(t) if t.is_empty() || !t.is_ascii() => {
                Err(invalid(self.field(name), "must be non-empty ASCII"))
            }
            Some(t) => Ok(Some(Secret::new(t))),
        }
    }

    fn key(&self, name: &str) -> Result<Option<AesKey>, RegistryError> {
        self.string(name)?
            .map(|s| {
                AesKey::from_encoding_aes_key(s)
                    .map_err(|e| invalid(self.field(name), e.to_string()))
            })
            .transpose()
    }

    fn mode(&self) -> Result<AppMode, RegistryError> {
        match self.string("mode")? {
            None => Ok(AppMode::default()),
            Some(mode) => mode.parse().map_err(|()| {
                invalid(
                    self.field("mode"),
                    "must be \"plaintext\", \"compatible\" or \"safe\"",
                )
            }),
        }
    }

    /// `handoff`: only WeChat's web tool exists, and it cannot be reached through a 服务商
    /// (WeChat then delivers every customer-service message to the component: docs/protocol.md §7).
    fn handoff(&self, platform: Platform, component: bool) -> Result<Handoff, RegistryError> {
        let handoff = match self.string("handoff")? {
            None | Some("none") => return Ok(Handoff::None),
            Some("wechat_tool") => Handoff::WechatTool,
            Some(_) => {
                return Err(invalid(
                    self.field("handoff"),
                    "must be \"none\" or \"wechat_tool\"",
                ));
            }
        };
        if platform != Platform::Wechat {
            return Err(invalid(
                self.field("handoff"),
                "\"wechat_tool\" is for WeChat apps only",
            ));
        }
        if component {
            return Err(invalid(
                self.field("handoff"),
                "\"wechat_tool\" is not available to a component app (WeChat sends its messages to the 服务商)",
            ));
        }
        Ok(handoff)
    }

    fn user_type(&self) -> Result<Option<u8>, RegistryError> {
        let name = "default_user_type";
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if matches!(n.as_u64(), Some(1 | 2)) => {
                Ok(n.as_u64().map(|v| v as u8))
            }
            Some(_) => Err(invalid(
                self.field(name),
                "must be 1 (guest) or 2 (Baidu account)",
            )),
        }
    }

    /// Token, previous Token, EncodingAESKey and previous key of an app or component.
    fn keys(&self) -> Result<ComponentKeys, RegistryError> {
        let token = self
            .token("token")?
            .ok_or_else(|| invalid(self.field("token"), "is required"))?;
        let previous_token = self.token("previous_token")?;
        let key = self
            .key("encoding_aes_key")?
            .ok_or_else(|| invalid(self.field("encoding_aes_key"), "is required"))?;
        let previous_key = self.key("previous_encoding_aes_key")?;
        Ok(ComponentKeys {
            token,
            previous_token,
            key,
            previous_key,
        })
    }
}

fn entries<'a>(root: &'a Object, name: &str) -> Result<&'a [Value], RegistryError> {
    match root.get(name) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(invalid(name.to_owned(), "must be an array")),
    }
}

/// Parses `json` for `purpose` (see [`AppRegistry::parse_for`]).
pub(super) fn parse(json: &str, purpose: Purpose) -> Result<AppRegistry, RegistryError> {
    let root: Value = serde_json::from_str(json).map_err(|e| json_error(&e))?;
    let Value::Object(root) = root else {
        return Err(RegistryError::Json(
            "the document must be a JSON object".into(),
        ));
    };
    let mut registry = AppRegistry::default();
    let mut keys: HashMap<(Platform, String), Option<ComponentKeys>> = HashMap::new();
    let mut broken: HashMap<(Platform, String), String> = HashMap::new();
    let mut seen_components = HashSet::new();
    for (i, value) in entries(&root, "components")?.iter().enumerate() {
        let (id, result) = match component(value, i, purpose) {
            Ok((config, component_keys)) => (
                Some((config.platform, config.component_app_id.clone())),
                Ok((config, component_keys)),
            ),
            Err((id, error)) => (id, Err(error)),
        };
        // A component listed more than once is ambiguous: every copy is refused, whatever their order.
        if let Some(id) = &id
            && !seen_components.insert(id.clone())
        {
            keys.remove(id);
            registry.components.remove(id);
            let field = format!("components[{i}].component_app_id");
            broken.insert(id.clone(), field.clone());
            registry.invalid.push(InvalidEntry {
                app: None,
                error: invalid(field, "is listed twice"),
            });
            continue;
        }
        match result {
            Ok((config, component_keys)) => {
                if let Some(id) = id {
                    keys.insert(id.clone(), component_keys);
                    registry.components.insert(id, config);
                }
            }
            Err(error) => {
                if let Some(id) = id {
                    broken.insert(id, error.field().to_owned());
                }
                registry.invalid.push(InvalidEntry { app: None, error });
            }
        }
    }
    let mut seen = HashSet::new();
    for (i, value) in entries(&root, "apps")?.iter().enumerate() {
        let entry = match Entry::new(value, format!("apps[{i}]")) {
            Ok(entry) => entry,
            Err(error) => {
                registry.invalid.push(InvalidEntry { app: None, error });
                continue;
            }
        };
        let id = match entry.platform().and_then(|p| Ok((p, entry.id("app_id")?))) {
            Ok(id) => id,
            Err(error) => {
                registry.invalid.push(InvalidEntry { app: None, error });
                continue;
            }
        };
        let result = if seen.insert(id.clone()) {
            app(&entry, &id, purpose, &keys, &broken)
        } else {
            registry.apps.remove(&id);
            Err(invalid(
                entry.field("app_id"),
                format!("{} app {} is listed twice", id.0, id.1),
            ))
        };
        match result {
            Ok(config) => {
                registry.apps.insert(id, config);
            }
            Err(error) => {
                registry.disabled.insert(id.clone(), error.clone());
                registry.invalid.push(InvalidEntry {
                    app: Some(id),
                    error,
                });
            }
        }
    }
    Ok(registry)
}

type ComponentResult =
    Result<(ComponentConfig, Option<ComponentKeys>), (Option<(Platform, String)>, RegistryError)>;

fn component(value: &Value, i: usize, purpose: Purpose) -> ComponentResult {
    let entry = Entry::new(value, format!("components[{i}]")).map_err(|e| (None, e))?;
    let platform = entry.platform().map_err(|e| (None, e))?;
    let id = entry.id("component_app_id").map_err(|e| (None, e))?;
    let key = (platform, id.clone());
    let component_keys = match purpose {
        Purpose::Send => None,
        Purpose::Full | Purpose::Verify => Some(entry.keys().map_err(|e| (Some(key.clone()), e))?),
    };
    let component_app_secret = match purpose {
        Purpose::Verify => None,
        Purpose::Full | Purpose::Send => entry
            .secret("component_app_secret")
            .map_err(|e| (Some(key), e))?,
    };
    Ok((
        ComponentConfig {
            platform,
            component_app_id: id,
            component_app_secret,
        },
        component_keys,
    ))
}

fn app(
    entry: &Entry<'_>,
    (platform, app_id): &(Platform, String),
    purpose: Purpose,
    components: &HashMap<(Platform, String), Option<ComponentKeys>>,
    broken: &HashMap<(Platform, String), String>,
) -> Result<AppConfig, RegistryError> {
    let platform = *platform;
    let original_id = entry.string("original_id")?.map(str::to_owned);
    let receive_id = entry.string("receive_id")?.map(str::to_owned);
    let component_app_id = entry.string("component_app_id")?.map(str::to_owned);
    let default_user_type = entry.user_type()?;
    let (app_secret, app_key) = match purpose {
        Purpose::Verify => (None, None),
        Purpose::Full | Purpose::Send => (entry.secret("app_secret")?, entry.secret("app_key")?),
    };
    // The sender needs the material for an access token, except for a 服务商 app (whose token is
    // the authorizer's): without it every send would fail with no refresh ever attempted.
    if purpose == Purpose::Send && component_app_id.is_none() {
        if app_secret.is_none() {
            return Err(invalid(entry.field("app_secret"), "is required to send"));
        }
        if platform == Platform::Baidu && app_key.is_none() {
            return Err(invalid(entry.field("app_key"), "is required to send"));
        }
    }
    let component_keys = match &component_app_id {
        None => None,
        Some(component) => {
            let id = (platform, component.clone());
            match components.get(&id) {
                Some(keys) => keys.clone(),
                None => {
                    let reason = match broken.get(&id) {
                        Some(field) => format!("its component is invalid ({field})"),
                        None => format!("no {platform} component {component} in components"),
                    };
                    return Err(invalid(entry.field("component_app_id"), reason));
                }
            }
        }
    };
    let (mode, handoff) = match purpose {
        Purpose::Send => (AppMode::default(), Handoff::None),
        Purpose::Full | Purpose::Verify => (
            entry.mode()?,
            entry.handoff(platform, component_app_id.is_some())?,
        ),
    };
    // A 服务商's apps share the component's Token and key, so neither the signature nor the frame
    // says which app a push is for: only the encrypted message's ToUserName does.
    if purpose != Purpose::Send && component_app_id.is_some() {
        if mode == AppMode::Plaintext {
            return Err(invalid(
                entry.field("mode"),
                "must not be \"plaintext\" for a component app (its pushes are encrypted)",
            ));
        }
        if platform == Platform::Wechat && original_id.is_none() {
            return Err(invalid(
                entry.field("original_id"),
                "is required for a component app (it names the app a push is for)",
            ));
        }
    }
    let credentials = match purpose {
        Purpose::Send => None,
        Purpose::Full | Purpose::Verify => {
            let keys = match component_keys {
                Some(keys) => keys,
                None => entry.keys()?,
            };
            let receive_id = match (platform, &component_app_id, receive_id) {
                (Platform::Wechat, Some(component), _) => ReceiveIdRule::Exact(component.clone()),
                (Platform::Wechat, None, _) => ReceiveIdRule::Exact(app_id.clone()),
                (Platform::Baidu, _, Some(id)) => ReceiveIdRule::Exact(id),
                (Platform::Baidu, _, None) => ReceiveIdRule::Report,
            };
            Some(Credentials {
                token: keys.token,
                previous_token: keys.previous_token,
                key: keys.key,
                previous_key: keys.previous_key,
                receive_id,
            })
        }
    };
    Ok(AppConfig {
        platform,
        app_id: app_id.clone(),
        original_id,
        mode,
        app_secret,
        app_key,
        default_user_type,
        component_app_id,
        handoff,
        credentials,
    })
}
