//! Identity, in one place: which platform ([`Platform`]), which conversation ([`ConversationKey`]:
//! a user of one app on one platform, written `platform#app_id#open_id`) and which platform
//! message ([`MsgId`]).
//!
//! Not here: how a message is placed in its conversation (`message::DedupeKey`), or how any of
//! these is stored.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The two platforms kefu speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// WeChat mini programs (微信小程序).
    Wechat,
    /// Baidu smart programs (百度智能小程序).
    Baidu,
}

impl Platform {
    /// The lowercase name used in routes, keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Wechat => "wechat",
            Platform::Baidu => "baidu",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a platform name that is neither `wechat` nor `baidu`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform {0:?} (expected \"wechat\" or \"baidu\")")]
pub struct UnknownPlatform(pub String);

impl FromStr for Platform {
    type Err = UnknownPlatform;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wechat" => Ok(Platform::Wechat),
            "baidu" => Ok(Platform::Baidu),
            other => Err(UnknownPlatform(other.to_owned())),
        }
    }
}

/// One conversation: a user of one app on one platform. Its text form (`Display` / `FromStr`) is
/// `platform#app_id#open_id`; the open id may contain `#`, the platform and app id do not.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConversationKey {
    /// The platform.
    pub platform: Platform,
    /// The mini program's AppID.
    pub app_id: String,
    /// The user's open id.
    pub open_id: String,
}

impl fmt::Display for ConversationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}#{}", self.platform, self.app_id, self.open_id)
    }
}

/// A text that is not `platform#app_id#open_id`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a conversation key (expected platform#app_id#open_id)")]
pub struct NotAConversationKey;

impl FromStr for ConversationKey {
    type Err = NotAConversationKey;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(3, '#');
        let platform = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or(NotAConversationKey)?;
        let app_id = parts.next().ok_or(NotAConversationKey)?.to_owned();
        let open_id = parts.next().ok_or(NotAConversationKey)?.to_owned();
        Ok(Self {
            platform,
            app_id,
            open_id,
        })
    }
}

/// A platform message id, kept exactly as sent (64-bit values above 2^53, or opaque strings).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MsgId(pub String);

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_keys_round_trip_through_text() {
        let key = ConversationKey {
            platform: Platform::Baidu,
            app_id: "app1".into(),
            open_id: "o#with#hashes".into(),
        };
        assert_eq!(key.to_string(), "baidu#app1#o#with#hashes");
        assert_eq!(key.to_string().parse::<ConversationKey>(), Ok(key));
        for bad in ["", "wechat", "wechat#wx1", "weixin#wx1#o1"] {
            assert_eq!(
                bad.parse::<ConversationKey>(),
                Err(NotAConversationKey),
                "{bad}"
            );
        }
    }

    #[test]
    fn platforms_round_trip_through_text() {
        for p in [Platform::Wechat, Platform::Baidu] {
            assert_eq!(p.to_string().parse::<Platform>(), Ok(p));
        }
        assert!("Wechat".parse::<Platform>().is_err());
    }
}
