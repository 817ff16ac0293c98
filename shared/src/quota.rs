//! The send-window rule of docs/design.md §6, pure: grants are configuration, the clock is passed in.
//!
//! A user action at time `t` ([`action_time`]: its `CreateTime`, never later than when the push was
//! received) with grant `(n, w)`, where `carried` is what is left of the current window at `t`:
//! - if `n > carried`: `remaining = n`, `expires_at = t + w` — the new units expire with their own
//!   grant, so a 1-minute enter-session unit never lives on in a 48-hour window;
//! - else: `remaining = carried`, `expires_at = max(expires_at, t + w)`.
//!
//! Grants refresh, they never accumulate. The [`Ledger`] remembers the action time of the grant
//! that last set the window and counts grants in `generation`: an action older than that time
//! (a late or redelivered older message) changes nothing (one of the same second is applied, less
//! what was sent since), and every later change of the window
//! (a release, a platform refusal) is conditioned on the generation its units were reserved under.
//! A send of `k` platform messages is allowed only while `expires_at > now` and `remaining >= k`.
//! Enforcement (one conditional write) lives in the store. On a definite platform rejection the
//! reserved units are given back (same generation only); on a timeout they stay spent, because the
//! message may have gone out.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::Platform;
use crate::message::{InboundMessage, MessageBody};

/// A grant: `messages` sends allowed within `window_secs` of the user's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// How many messages may be sent.
    pub messages: u32,
    /// For how long after the action, in seconds.
    pub window_secs: u64,
}

impl Grant {
    /// A grant of `messages` within `window_secs`.
    pub const fn new(messages: u32, window_secs: u64) -> Self {
        Self {
            messages,
            window_secs,
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.messages, self.window_secs)
    }
}

/// Error for a grant that is not `MESSAGES/SECONDS`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("grant must be MESSAGES/SECONDS with a window above 0, e.g. 5/172800, got {0:?}")]
pub struct GrantParseError(pub String);

impl FromStr for Grant {
    type Err = GrantParseError;
    /// Parses `MESSAGES/SECONDS`, e.g. `2/60`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || GrantParseError(s.to_owned());
        let (n, w) = s.trim().split_once('/').ok_or_else(err)?;
        let grant = Grant::new(
            n.trim().parse().map_err(|_| err())?,
            w.trim().parse().map_err(|_| err())?,
        );
        if grant.window_secs == 0 {
            Err(err())
        } else {
            Ok(grant)
        }
    }
}

/// The grants per platform and user action (defaults: docs/design.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaPolicy {
    /// WeChat: the user sends a message (default 5 / 48 h).
    pub wechat_message: Grant,
    /// WeChat: the user enters the session from a contact button (default 1 / 60 s; current
    /// WeChat docs say 2 — configurable).
    pub wechat_enter_session: Grant,
    /// Baidu: the user sends a message (default 5 / 48 h).
    pub baidu_message: Grant,
}

impl Default for QuotaPolicy {
    fn default() -> Self {
        Self {
            wechat_message: Grant::new(5, 48 * 3600),
            wechat_enter_session: Grant::new(1, 60),
            baidu_message: Grant::new(5, 48 * 3600),
        }
    }
}

impl QuotaPolicy {
    /// The grant a message earns, if any: user messages on both platforms, and WeChat's
    /// `user_enter_tempsession`; other events and pushes kept raw earn nothing.
    pub fn grant_for(&self, platform: Platform, message: &InboundMessage<'_>) -> Option<Grant> {
        match (platform, &message.body) {
            (Platform::Wechat, MessageBody::UserEnterTempSession { .. }) => {
                Some(self.wechat_enter_session)
            }
            (_, MessageBody::UserEnterTempSession { .. } | MessageBody::Event { .. }) => None,
            // Kept raw because it did not parse: kefu cannot tell whether the platform counted it
            // as a user message, so it opens nothing (never more than the platform allows).
            (_, MessageBody::Raw { .. }) => None,
            (Platform::Wechat, _) => Some(self.wechat_message),
            (Platform::Baidu, _) => Some(self.baidu_message),
        }
    }
}

/// Why a send was refused without calling the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The window has closed (or never opened): the user must act first.
    #[error("window_expired")]
    WindowExpired,
    /// The window is open but fewer units remain than the send needs.
    #[error("quota_exhausted")]
    QuotaExhausted,
}

/// A conversation's send window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Window {
    /// Units left in the window.
    pub remaining: u32,
    /// Unix seconds after which nothing may be sent.
    pub expires_at: u64,
}

impl Window {
    /// The window after a user action at `t` earning `grant`, from `current` (none yet: `None`).
    pub fn apply_grant(current: Option<Window>, grant: Grant, t: u64) -> Window {
        let cur = current.unwrap_or_default();
        let carried = cur.remaining_at(t);
        let own_end = t.saturating_add(grant.window_secs);
        if grant.messages > carried {
            Window {
                remaining: grant.messages,
                expires_at: own_end,
            }
        } else {
            Window {
                remaining: carried,
                expires_at: cur.expires_at.max(own_end),
            }
        }
    }

    /// The window after sending `units` at `now`, or why that is refused.
    pub fn consume(self, units: u32, now: u64) -> Result<Window, Refusal> {
        if self.expires_at <= now {
            Err(Refusal::WindowExpired)
        } else if self.remaining < units {
            Err(Refusal::QuotaExhausted)
        } else {
            Ok(Window {
                remaining: self.remaining - units,
                expires_at: self.expires_at,
            })
        }
    }

    /// Units usable at `now` (0 once the window has closed).
    pub fn remaining_at(self, now: u64) -> u32 {
        if self.expires_at > now {
            self.remaining
        } else {
            0
        }
    }
}

/// The time a push's grant is computed from: its `CreateTime`, bounded by when ingress received it,
/// so a `CreateTime` in the future (a wrong clock, or a forged value) never extends a window.
pub fn action_time(create_time: u64, received_at_secs: u64) -> u64 {
    create_time.min(received_at_secs)
}

/// A conversation's window together with the grant that set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ledger {
    /// The send window.
    pub window: Window,
    /// Action time of the latest grant applied (`None`: no grant yet).
    pub grant_at: Option<u64>,
    /// How many grants have been applied; reservations carry it, and releases and platform
    /// refusals only touch the window when it is unchanged.
    pub generation: u64,
    /// Units reserved since the last grant that found no send after its action (releases do
    /// not take them off, so it only over-counts): an upper bound of what reached the platform
    /// after any newer action.
    pub spent: u32,
    /// The latest time reserved units may reach the platform: the reservation's time plus
    /// [`SEND_HORIZON_SECS`] (`None`: never reserved).
    pub spent_at: Option<u64>,
}

/// How long after its reservation a unit may still reach the platform, as far as the ledger is
/// concerned: the sender's longest request (25 s) plus a margin for the platform's clock running
/// ahead of kefu's. A grant whose action falls inside it is reduced by [`Ledger::spent`].
pub const SEND_HORIZON_SECS: u64 = 60;

impl Ledger {
    /// The ledger after a user action at `t` earning `grant`, or `None` when the action is not
    /// newer than the latest grant applied (it then changes nothing).
    ///
    /// The platform applies the grant at `t`; kefu learns of it later. Units that reached the
    /// platform after `t` were counted against the new window, so when reserved units may have
    /// reached it at or after `t` ([`Ledger::spent_at`]) the grant is applied as the least the
    /// platform can have left: `spent` (which bounds those units from above) is taken off the
    /// grant, and because the platform compared the grant with what was left *before* those units
    /// went, a grant that may have won keeps only its own deadline. `spent` then carries on;
    /// otherwise the rule is [`Window::apply_grant`] and `spent` restarts.
    pub fn apply_grant(current: Option<Ledger>, grant: Grant, t: u64) -> Option<Ledger> {
        let cur = current.unwrap_or_default();
        // Older than the grant that set the window: a late or redelivered message. One of the
        // same second is another action of that second (an enter-session event and a card sent
        // with it): applied, with the units reserved since taken off as below.
        if cur.grant_at.is_some_and(|at| t < at) {
            return None;
        }
        let sent_since = if cur.spent_at.is_some_and(|at| at >= t) {
            cur.spent
        } else {
            0
        };
        let old = current.map(|l| l.window);
        let carried = old.unwrap_or_default().remaining_at(t);
        let window = if sent_since == 0 || grant.messages <= carried {
            // No send after `t`, or the old window wins whatever was sent: the plain rule.
            Window::apply_grant(old, grant, t)
        } else {
            Window {
                remaining: grant.messages.saturating_sub(sent_since).max(carried),
                expires_at: t.saturating_add(grant.window_secs),
            }
        };
        Some(Ledger {
            window,
            grant_at: Some(t),
            generation: cur.generation + 1,
            spent: sent_since,
            spent_at: cur.spent_at,
        })
    }

    /// The ledger after reserving `units` at `now` (the window already checked).
    pub fn spend(self, window: Window, units: u32, now: u64) -> Ledger {
        Ledger {
            window,
            spent: self.spent.saturating_add(units),
            spent_at: Some(now + SEND_HORIZON_SECS),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H48: u64 = 48 * 3600;

    #[test]
    fn grants_refresh_and_never_accumulate() {
        let g = Grant::new(5, H48);
        let w = Window::apply_grant(None, g, 1000);
        assert_eq!(
            w,
            Window {
                remaining: 5,
                expires_at: 1000 + H48
            }
        );
        let w = w.consume(2, 1001).unwrap();
        assert_eq!(w.remaining, 3);
        // A new message refreshes to 5, not 8, and restarts the 48 h.
        let w = Window::apply_grant(Some(w), g, 2000);
        assert_eq!(
            w,
            Window {
                remaining: 5,
                expires_at: 2000 + H48
            }
        );
        // Enter-session (1 / 60 s) inside a 48 h window keeps the larger grant.
        let w = Window::apply_grant(Some(w.consume(4, 2001).unwrap()), Grant::new(1, 60), 2002);
        assert_eq!(
            w,
            Window {
                remaining: 1,
                expires_at: 2000 + H48
            }
        );
    }

    #[test]
    fn expired_windows_carry_nothing_and_refuse() {
        let w = Window {
            remaining: 4,
            expires_at: 100,
        };
        assert_eq!(w.consume(1, 100), Err(Refusal::WindowExpired));
        assert_eq!(w.remaining_at(100), 0);
        assert_eq!(
            Window::apply_grant(Some(w), Grant::new(1, 60), 200),
            Window {
                remaining: 1,
                expires_at: 260
            }
        );
        assert_eq!(
            Window {
                remaining: 1,
                expires_at: 300
            }
            .consume(2, 200),
            Err(Refusal::QuotaExhausted)
        );
    }

    #[test]
    fn a_short_grant_adds_units_that_expire_with_it() {
        // Five units spent in a 48 h window; the contact button grants 1 / 60 s: that unit must not
        // live on for the rest of the 48 h.
        let spent = Window {
            remaining: 0,
            expires_at: 1000 + H48,
        };
        let w = Window::apply_grant(Some(spent), Grant::new(1, 60), 5000);
        assert_eq!(
            w,
            Window {
                remaining: 1,
                expires_at: 5060
            }
        );
        assert_eq!(w.consume(1, 5060), Err(Refusal::WindowExpired));
    }

    #[test]
    fn a_future_create_time_is_bounded_by_the_receive_time() {
        assert_eq!(action_time(4_102_444_800, 1_800_000_000), 1_800_000_000);
        assert_eq!(action_time(1_799_999_990, 1_800_000_000), 1_799_999_990);
    }

    #[test]
    fn an_older_or_equal_grant_never_refills_a_spent_window() {
        let g = Grant::new(5, H48);
        let m1 = Ledger::apply_grant(None, g, 2000).unwrap();
        assert_eq!((m1.grant_at, m1.generation), (Some(2000), 1));
        let spent = m1.spend(m1.window.consume(5, 2001).unwrap(), 5, 2001);
        // M0, older, arrives late (redelivery, DLQ redrive): nothing changes.
        assert_eq!(Ledger::apply_grant(Some(spent), g, 1990), None);
        // A second message of the same second is applied, but the units sent since are taken
        // off: it does not refill the window either.
        let same = Ledger::apply_grant(Some(spent), g, 2000).unwrap();
        assert_eq!(same.window.remaining, 0);
        // A newer one, after the sends may have landed, does, under a new generation.
        let m2 = Ledger::apply_grant(Some(spent), g, 2100).unwrap();
        assert_eq!(m2.window.remaining, 5);
        assert_eq!((m2.grant_at, m2.generation), (Some(2100), 2));
    }

    #[test]
    fn a_message_in_the_same_second_as_the_enter_event_opens_its_own_window() {
        // A user enters from a card: the enter-session event and the card arrive in one second.
        let enter = Ledger::apply_grant(None, Grant::new(1, 60), 3000).unwrap();
        let card = Ledger::apply_grant(Some(enter), Grant::new(5, H48), 3000).unwrap();
        assert_eq!(
            card.window,
            Window {
                remaining: 5,
                expires_at: 3000 + H48
            }
        );
        // The other order ends the same.
        let text = Ledger::apply_grant(None, Grant::new(5, H48), 3000).unwrap();
        let enter = Ledger::apply_grant(Some(text), Grant::new(1, 60), 3000).unwrap();
        assert_eq!(enter.window, card.window);
    }

    #[test]
    fn units_sent_after_an_action_are_taken_from_its_late_grant() {
        let g = Grant::new(5, H48);
        let m1 = Ledger::apply_grant(None, g, 1000).unwrap();
        // Two units reserved at 1110, after the user acted again at 1100 (not yet stored).
        let sent = m1.spend(m1.window.consume(2, 1110).unwrap(), 2, 1110);
        let m2 = Ledger::apply_grant(Some(sent), g, 1100).unwrap();
        assert_eq!(m2.window.remaining, 3);
        assert_eq!((m2.spent, m2.spent_at), (2, Some(1110 + SEND_HORIZON_SECS)));
        // A unit reserved just before an action may reach the platform after it.
        let m3 = Ledger::apply_grant(Some(m2), g, 1150).unwrap();
        assert_eq!((m3.window.remaining, m3.spent), (3, 2));
        // Past the horizon the sends belong to the old window: the grant is whole again.
        let m4 = Ledger::apply_grant(Some(m3), g, 1110 + SEND_HORIZON_SECS + 1).unwrap();
        assert_eq!((m4.window.remaining, m4.spent), (5, 0));
    }

    #[test]
    fn a_late_grant_that_may_have_won_keeps_only_its_own_deadline() {
        // 5 / 48 h at 0, 4 units reserved at 10; enter-session (2 / 60) at 20, stored late.
        let m1 = Ledger::apply_grant(None, Grant::new(5, H48), 0).unwrap();
        let sent = m1.spend(m1.window.consume(4, 10).unwrap(), 4, 10);
        let late = Ledger::apply_grant(Some(sent), Grant::new(2, 60), 20).unwrap();
        // The platform had 1 left at 20 and granted (2, 80); the units it then took are unknown:
        // never more than 1 left, never past 80.
        assert_eq!(
            late.window,
            Window {
                remaining: 1,
                expires_at: 80
            }
        );
        // With the old window ahead whatever was sent, its deadline stands.
        let m1 = Ledger::apply_grant(None, Grant::new(5, H48), 0).unwrap();
        let sent = m1.spend(m1.window.consume(1, 10).unwrap(), 1, 10);
        let late = Ledger::apply_grant(Some(sent), Grant::new(2, 60), 20).unwrap();
        assert_eq!(
            late.window,
            Window {
                remaining: 4,
                expires_at: H48
            }
        );
    }

    #[test]
    fn parses_grants() {
        assert_eq!("2/60".parse::<Grant>(), Ok(Grant::new(2, 60)));
        assert!("2".parse::<Grant>().is_err());
        assert!("2/0".parse::<Grant>().is_err());
        assert!("x/60".parse::<Grant>().is_err());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Grant { n: u32, w: u64 },
        Send { k: u32 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..8, 1u64..500).prop_map(|(n, w)| Op::Grant { n, w }),
            (1u32..4).prop_map(|k| Op::Send { k }),
        ]
    }

    proptest! {
        /// Between two user actions, at most as many units can be sent as the larger of the
        /// latest grant and what was still unspent and unexpired before it; the window never
        /// holds more than the largest grant ever given.
        #[test]
        fn sends_never_exceed_the_grants(ops in proptest::collection::vec((op(), 0u64..100), 1..200)) {
            let mut now = 0u64;
            let mut window: Option<Window> = None;
            let mut max_grant = 0u32;
            let mut allowance = 0u32; // units allowed since the last grant, per the rule
            let mut sent_since_grant = 0u32;
            for (op, dt) in ops {
                now += dt;
                match op {
                    Op::Grant { n, w } => {
                        let before = window.map_or(0, |w| w.remaining_at(now));
                        let next = Window::apply_grant(window, Grant::new(n, w), now);
                        max_grant = max_grant.max(n);
                        prop_assert_eq!(next.remaining, n.max(before));
                        // Units the grant added never outlive it.
                        if next.remaining > before {
                            prop_assert_eq!(next.expires_at, now + w);
                        }
                        prop_assert!(next.remaining <= max_grant);
                        allowance = next.remaining;
                        sent_since_grant = 0;
                        window = Some(next);
                    }
                    Op::Send { k } => {
                        if let Some(w) = window
                            && let Ok(next) = w.consume(k, now)
                        {
                            sent_since_grant += k;
                            window = Some(next);
                        }
                        prop_assert!(sent_since_grant <= allowance);
                    }
                }
            }
        }
    }
}
