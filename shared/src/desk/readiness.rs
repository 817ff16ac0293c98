//! Whether a reply to a conversation would go out now, and if not why: what every conversation
//! view of the desk carries, so the page disables the reply box with the reason before the agent
//! types (the sender still decides, with one conditional write: docs/design.md §6).

use serde::{Deserialize, Serialize};

use crate::quota::{self, Window};

/// Why a send would be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The window has closed or never opened: the user must write first.
    WindowExpired,
    /// The window is open but every unit is spent.
    QuotaExhausted,
    /// The app is not in the send registry, or its authorization was revoked.
    AppUnauthorized,
}

impl Refusal {
    /// The reason label, the same as the sender's refusals.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::WindowExpired => "window_expired",
            Refusal::QuotaExhausted => "quota_exhausted",
            Refusal::AppUnauthorized => "app_unauthorized",
        }
    }
}

impl From<quota::Refusal> for Refusal {
    fn from(r: quota::Refusal) -> Self {
        match r {
            quota::Refusal::WindowExpired => Refusal::WindowExpired,
            quota::Refusal::QuotaExhausted => Refusal::QuotaExhausted,
        }
    }
}

/// A conversation's send readiness at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Units usable now (0 once the window has closed).
    pub remaining: u32,
    /// When the window closes, Unix seconds (0: never opened).
    pub expires_at: u64,
    /// Why a one-unit send would be refused now; `None` when it would go out.
    pub refusal: Option<Refusal>,
}

impl Readiness {
    /// The readiness of `window` at `now` for an app that may (`authorized`) send.
    pub fn at(window: Window, now: u64, authorized: bool) -> Readiness {
        let refusal = if !authorized {
            Some(Refusal::AppUnauthorized)
        } else {
            window.consume(1, now).err().map(Refusal::from)
        };
        Readiness {
            remaining: window.remaining_at(now),
            expires_at: window.expires_at,
            refusal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_follows_the_window_and_the_app() {
        let open = Window {
            remaining: 2,
            expires_at: 200,
        };
        assert_eq!(
            Readiness::at(open, 100, true),
            Readiness {
                remaining: 2,
                expires_at: 200,
                refusal: None
            }
        );
        let r = Readiness::at(open, 200, true);
        assert_eq!((r.remaining, r.refusal), (0, Some(Refusal::WindowExpired)));
        let spent = Window {
            remaining: 0,
            ..open
        };
        assert_eq!(
            Readiness::at(spent, 100, true).refusal,
            Some(Refusal::QuotaExhausted)
        );
        assert_eq!(
            Readiness::at(open, 100, false).refusal,
            Some(Refusal::AppUnauthorized)
        );
        assert_eq!(
            Readiness::at(Window::default(), 100, true).refusal,
            Some(Refusal::WindowExpired)
        );
        assert_eq!(Refusal::QuotaExhausted.as_str(), "quota_exhausted");
    }
}
