//! Admission (docs/protocol.md §4.1): which authenticated, opened pushes an app accepts — by the
//! app's mode, by the recipient the message names, and by the signed time.
//!
//! Pure: no I/O, no clock (the caller passes the time), no HTTP. Not here: signatures and
//! decryption (the platform rules), parsing (`crate::message`), storage-key limits.

use super::{Mode, Push};
use crate::ids::Platform;
use crate::message::InboundMessage;
use crate::registry::{AppConfig, AppMode};

/// What one app admits, and the time to judge a push's timestamp by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy<'a> {
    /// The route's platform.
    pub platform: Platform,
    /// The route's `{app}`: what a Baidu `ToUserName` must equal.
    pub route_app_id: &'a str,
    /// The app's configured mode: only [`AppMode::Plaintext`] admits unencrypted bodies.
    pub mode: AppMode,
    /// WeChat original id (`gh_…`): when set, `ToUserName` must be present and equal to it.
    pub original_id: Option<&'a str>,
    /// A 服务商 app: unencrypted bodies are never admitted.
    pub component: bool,
    /// Refuse signed timestamps older than this many seconds before `now_secs`; `None` turns the
    /// guard off.
    pub replay_window_secs: Option<u64>,
    /// The current time, Unix seconds.
    pub now_secs: u64,
}

impl<'a> Policy<'a> {
    /// The policy of a registry app, judged at `now_secs`.
    pub fn for_app(app: &'a AppConfig, replay_window_secs: Option<u64>, now_secs: u64) -> Self {
        Self {
            platform: app.platform,
            route_app_id: &app.app_id,
            mode: app.mode,
            original_id: app.original_id.as_deref(),
            component: app.component_app_id.is_some(),
            replay_window_secs,
            now_secs,
        }
    }
}

/// Why an authenticated push was not admitted. Each is answered 401 at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// An unencrypted body for an app not in plaintext mode, or for any 服务商 app.
    #[error("unencrypted push for an app that only admits encrypted ones")]
    PlaintextNotAllowed,
    /// WeChat: an original id is configured but the message has no `ToUserName`.
    #[error("message names no recipient")]
    RecipientMissing,
    /// WeChat: `ToUserName` is not the original id; Baidu: `ToUserName` is not the route's app id.
    #[error("message addressed to another mini program")]
    RecipientMismatch,
    /// The signed timestamp is older than the replay window, missing or not a number while the
    /// guard is on, or not a number on a plaintext push (its replay tag needs it).
    #[error("timestamp outside the replay window")]
    StaleTimestamp,
}

impl Refused {
    /// A stable, content-free label for logs, metrics and the response body.
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::PlaintextNotAllowed => "plaintext_not_allowed",
            Refused::RecipientMissing => "recipient_missing",
            Refused::RecipientMismatch => "recipient_mismatch",
            Refused::StaleTimestamp => "stale_timestamp",
        }
    }
}

/// Admits `message`, opened from `push`, under `policy`; checks mode, then time, then recipient.
pub fn admit(
    policy: &Policy<'_>,
    push: &Push,
    message: &InboundMessage<'_>,
) -> Result<(), Refused> {
    let plaintext = push.mode == Mode::Plaintext;
    if plaintext && (policy.component || policy.mode != AppMode::Plaintext) {
        return Err(Refused::PlaintextNotAllowed);
    }
    match (push.timestamp, policy.replay_window_secs) {
        (Some(ts), Some(window)) if policy.now_secs > ts.saturating_add(window) => {
            return Err(Refused::StaleTimestamp);
        }
        (None, Some(_)) => return Err(Refused::StaleTimestamp),
        (None, None) if plaintext => return Err(Refused::StaleTimestamp),
        _ => {}
    }
    let to = message.to_user_name.as_deref();
    match (policy.platform, policy.original_id, to) {
        (Platform::Wechat, Some(_), None) => Err(Refused::RecipientMissing),
        (Platform::Wechat, Some(expected), Some(to)) if to != expected => {
            Err(Refused::RecipientMismatch)
        }
        (Platform::Baidu, _, Some(to)) if to != policy.route_app_id => {
            Err(Refused::RecipientMismatch)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MsgId;
    use crate::message::MessageBody;
    use crate::protocol::DataFormat;

    const NOW: u64 = 1_700_000_000;

    fn policy(platform: Platform, mode: AppMode) -> Policy<'static> {
        Policy {
            platform,
            route_app_id: "app1",
            mode,
            original_id: (platform == Platform::Wechat).then_some("gh_1"),
            component: false,
            replay_window_secs: Some(600),
            now_secs: NOW,
        }
    }

    fn push(mode: Mode, timestamp: Option<u64>) -> Push {
        Push {
            plaintext: String::new(),
            mode,
            format: DataFormat::Json,
            timestamp,
            nonce: "n".into(),
            key_slot: None,
            token_slot: crate::protocol::KeySlot::Current,
            receive_id: None,
        }
    }

    fn to(to: Option<&str>) -> InboundMessage<'static> {
        InboundMessage {
            to_user_name: to.map(|to| to.to_owned().into()),
            from_user_name: "o".into(),
            create_time: NOW,
            msg_id: Some(MsgId("1".into())),
            body: MessageBody::Text {
                content: "hi".into(),
            },
        }
    }

    #[test]
    fn only_plaintext_apps_that_are_not_components_admit_unencrypted_bodies() {
        let m = to(Some("gh_1"));
        for (mode, component, push_mode, expected) in [
            (AppMode::Plaintext, false, Mode::Plaintext, Ok(())),
            (
                AppMode::Compatible,
                false,
                Mode::Plaintext,
                Err(Refused::PlaintextNotAllowed),
            ),
            (
                AppMode::Safe,
                false,
                Mode::Plaintext,
                Err(Refused::PlaintextNotAllowed),
            ),
            (
                AppMode::Plaintext,
                true,
                Mode::Plaintext,
                Err(Refused::PlaintextNotAllowed),
            ),
            (AppMode::Safe, false, Mode::Compatible, Ok(())),
            (AppMode::Safe, true, Mode::Safe, Ok(())),
            (AppMode::Plaintext, false, Mode::Safe, Ok(())),
        ] {
            let p = Policy {
                component,
                ..policy(Platform::Wechat, mode)
            };
            assert_eq!(
                admit(&p, &push(push_mode, Some(NOW)), &m),
                expected,
                "{mode:?} component={component} {push_mode:?}"
            );
        }
    }

    #[test]
    fn the_recipient_must_be_this_app() {
        let wechat = policy(Platform::Wechat, AppMode::Safe);
        let baidu = policy(Platform::Baidu, AppMode::Safe);
        let safe = push(Mode::Safe, Some(NOW));
        for (p, recipient, expected) in [
            (wechat, None, Err(Refused::RecipientMissing)),
            (wechat, Some("gh_2"), Err(Refused::RecipientMismatch)),
            (wechat, Some("gh_1"), Ok(())),
            (
                Policy {
                    original_id: None,
                    ..wechat
                },
                None,
                Ok(()),
            ),
            (baidu, Some("app2"), Err(Refused::RecipientMismatch)),
            (baidu, Some("app1"), Ok(())),
            (baidu, None, Ok(())),
        ] {
            assert_eq!(
                admit(&p, &safe, &to(recipient)),
                expected,
                "{:?} {recipient:?}",
                p.platform
            );
        }
    }

    #[test]
    fn the_signed_time_must_be_inside_the_window() {
        let p = policy(Platform::Wechat, AppMode::Plaintext);
        let m = to(Some("gh_1"));
        let off = Policy {
            replay_window_secs: None,
            ..p
        };
        for (p, push, expected) in [
            (p, push(Mode::Safe, Some(NOW - 600)), Ok(())),
            (
                p,
                push(Mode::Safe, Some(NOW - 601)),
                Err(Refused::StaleTimestamp),
            ),
            (p, push(Mode::Safe, None), Err(Refused::StaleTimestamp)),
            (off, push(Mode::Safe, Some(0)), Ok(())),
            (off, push(Mode::Safe, None), Ok(())),
            (
                off,
                push(Mode::Plaintext, None),
                Err(Refused::StaleTimestamp),
            ),
        ] {
            assert_eq!(admit(&p, &push, &m), expected, "{push:?}");
        }
    }

    #[test]
    fn reasons_are_stable_labels() {
        let labels: Vec<&str> = [
            Refused::PlaintextNotAllowed,
            Refused::RecipientMissing,
            Refused::RecipientMismatch,
            Refused::StaleTimestamp,
        ]
        .iter()
        .map(Refused::reason)
        .collect();
        assert_eq!(
            labels,
            [
                "plaintext_not_allowed",
                "recipient_missing",
                "recipient_mismatch",
                "stale_timestamp"
            ]
        );
    }
}
