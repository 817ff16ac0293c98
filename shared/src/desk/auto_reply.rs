//! Auto replies and kept images, pure: the notice the processor queues after storing a user's
//! action for an app with auto replies on, or an image (copied to the media bucket off the
//! processor's path), and the rule that makes each reply go out at most once per conversation per
//! window.
//!
//! The rule: a conversation keeps, per kind, the window end (`expires_at`) in force when that
//! reply was last sent. A user action at `t` before that end is in the same window (the marker is
//! moved to the new end); one after it opens a new window, and the reply is due again. The store
//! applies both with conditions (`ports::auto_reply`), so redeliveries and racing consumers send
//! it once. No I/O.

use serde::{Deserialize, Serialize};

pub use super::notes::AutoReplyKind;
use crate::ids::{ConversationKey, Platform};

/// The agent id an auto reply is recorded with on its outbound message (reserved: no agent has
/// it).
pub fn agent_of(kind: AutoReplyKind) -> &'static str {
    match kind {
        AutoReplyKind::Greeting => "auto-greeting",
        AutoReplyKind::Away => "auto-away",
    }
}

/// Whether `id` is reserved for the desk's own doings (the idle sweep, auto replies).
pub fn reserved_agent_id(id: &str) -> bool {
    id == "system" || id.starts_with("auto-")
}

/// A stored user action of an app with auto replies on, or an image to keep: the outbound
/// queue's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The platform.
    pub platform: Platform,
    /// The mini program.
    pub app_id: String,
    /// The user.
    pub open_id: String,
    /// The action's time ([`crate::quota::action_time`]), Unix seconds.
    pub t: u64,
    /// Whether the action granted a window (the auto replies are looked at).
    #[serde(default = "granted_default")]
    pub granted: bool,
    /// The image message to copy to the media bucket, if it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
}

fn granted_default() -> bool {
    true
}

/// Where an inbound image is, as the push named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// The message's position in its conversation (its sort key).
    pub position: String,
    /// WeChat's temporary media id (`media/get`; WeChat keeps it 3 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// The picture URL (Baidu's `PicUrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pic_url: Option<String>,
}

impl Notice {
    /// The conversation.
    pub fn key(&self) -> ConversationKey {
        ConversationKey {
            platform: self.platform,
            app_id: self.app_id.clone(),
            open_id: self.open_id.clone(),
        }
    }
}

/// Whether a reply last sent in the window ending `marker` is due again for an action at `t`.
pub fn due(marker: Option<u64>, t: u64) -> bool {
    marker.is_none_or(|end| end < t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_window() {
        assert!(due(None, 100), "never sent");
        assert!(!due(Some(200), 150), "same window");
        assert!(!due(Some(200), 200), "the last second still counts");
        assert!(due(Some(200), 201), "a new window");
    }

    #[test]
    fn notices_round_trip_and_reserved_ids_are_the_desks() {
        let n = Notice {
            platform: Platform::Baidu,
            app_id: "b1".into(),
            open_id: "o1".into(),
            t: 7,
            granted: true,
            image: None,
        };
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(
            json,
            r#"{"platform":"baidu","app_id":"b1","open_id":"o1","t":7,"granted":true}"#
        );
        assert_eq!(serde_json::from_str::<Notice>(&json).unwrap(), n);
        let older = r#"{"platform":"baidu","app_id":"b1","open_id":"o1","t":7}"#;
        assert_eq!(serde_json::from_str::<Notice>(older).unwrap(), n);
        assert!(reserved_agent_id("system") && reserved_agent_id(agent_of(AutoReplyKind::Away)));
        assert!(!reserved_agent_id("3f2a-sub"));
    }
}
