//! What agents keep beside the conversations, pure: tags on a conversation, an app's quick
//! replies (text inserted with a `/shortcut`) and its auto replies (a greeting, an away message),
//! each with the rules a stored value must meet. No I/O; the store is `ports::desk_notes`.

use serde::{Deserialize, Serialize};

/// The most tags one conversation carries.
pub const MAX_TAGS: usize = 10;
/// The longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 32;
/// The most quick replies one app keeps.
pub const MAX_QUICK_REPLIES: usize = 200;
/// The longest quick reply or auto reply, in UTF-8 bytes (one platform text part).
pub const MAX_REPLY_BYTES: usize = 2000;

/// Why a value was refused: the label answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

/// The tags as stored: trimmed, unique, sorted (a conversation's tags are a set); refused when
/// one is empty, too long, holds `#` or `,`, or there are too many.
pub fn tags(given: &[String]) -> Result<Vec<String>, Invalid> {
    // Bounded before the quadratic de-duplication below.
    if given.len() > 4 * MAX_TAGS {
        return Err(Invalid("too_many_tags"));
    }
    let mut out: Vec<String> = Vec::new();
    for t in given {
        let t = t.trim();
        if t.is_empty() || t.chars().count() > MAX_TAG_CHARS || t.contains(['#', ',']) {
            return Err(Invalid("tag_invalid"));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(Invalid("too_many_tags"));
    }
    out.sort();
    Ok(out)
}

/// An id chosen by the page: 1–40 of `A-Z a-z 0-9 _ -`.
pub fn valid_id(id: &str) -> bool {
    (1..=40).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A quick reply of one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuickReply {
    /// Its id ([`valid_id`]).
    pub id: String,
    /// Typed after `/` to insert it: 1–20 of `a-z 0-9 _ -`.
    pub shortcut: String,
    /// The text inserted.
    pub text: String,
}

impl QuickReply {
    /// Passes when id, shortcut and text meet the rules.
    pub fn check(&self) -> Result<(), Invalid> {
        if !valid_id(&self.id) {
            return Err(Invalid("id_invalid"));
        }
        let shortcut_ok = (1..=20).contains(&self.shortcut.len())
            && self
                .shortcut
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !shortcut_ok {
            return Err(Invalid("shortcut_invalid"));
        }
        text_ok(&self.text)
    }
}

fn text_ok(text: &str) -> Result<(), Invalid> {
    if text.trim().is_empty() || text.len() > MAX_REPLY_BYTES {
        return Err(Invalid("text_invalid"));
    }
    Ok(())
}

/// One auto reply: off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoReply {
    /// Whether it is sent.
    pub enabled: bool,
    /// What is sent.
    #[serde(default)]
    pub text: String,
}

/// An app's auto replies, each sent at most once per conversation per window, each spending a
/// unit of the window like any send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoReplies {
    /// Sent when a conversation opens (the user's first message of a window).
    pub greeting: AutoReply,
    /// Sent when the user writes and no agent of the app is online.
    pub away: AutoReply,
}

impl AutoReplies {
    /// Passes when every enabled reply has a text within the limit.
    pub fn check(&self) -> Result<(), Invalid> {
        for r in [&self.greeting, &self.away] {
            if r.enabled || !r.text.is_empty() {
                text_ok(&r.text)?;
            }
        }
        Ok(())
    }
}

/// Which auto reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoReplyKind {
    /// The greeting.
    Greeting,
    /// The away message.
    Away,
}

impl AutoReplyKind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoReplyKind::Greeting => "greeting",
            AutoReplyKind::Away => "away",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn tags_are_trimmed_unique_and_bounded() {
        assert_eq!(
            tags(&owned(&[" vip", "vip", "退款"])).unwrap(),
            owned(&["vip", "退款"])
        );
        assert_eq!(tags(&owned(&["a#b"])), Err(Invalid("tag_invalid")));
        assert_eq!(tags(&owned(&[" "])), Err(Invalid("tag_invalid")));
        assert_eq!(
            tags(&owned(&[&"x".repeat(33)])),
            Err(Invalid("tag_invalid"))
        );
        let many: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        assert_eq!(tags(&many), Err(Invalid("too_many_tags")));
        assert!(tags(&[]).unwrap().is_empty());
    }

    #[test]
    fn quick_replies_need_an_id_a_shortcut_and_a_text() {
        let q = |id: &str, shortcut: &str, text: &str| QuickReply {
            id: id.into(),
            shortcut: shortcut.into(),
            text: text.into(),
        };
        assert_eq!(q("hello-1", "hi", "Hello!").check(), Ok(()));
        assert_eq!(q("a b", "hi", "x").check(), Err(Invalid("id_invalid")));
        assert_eq!(q("a", "Hi", "x").check(), Err(Invalid("shortcut_invalid")));
        assert_eq!(q("a", "hi", " ").check(), Err(Invalid("text_invalid")));
        let long = "长".repeat(700);
        assert_eq!(q("a", "hi", &long).check(), Err(Invalid("text_invalid")));
    }

    #[test]
    fn an_enabled_auto_reply_needs_a_text() {
        let mut a = AutoReplies::default();
        assert_eq!(a.check(), Ok(()));
        a.away.enabled = true;
        assert_eq!(a.check(), Err(Invalid("text_invalid")));
        a.away.text = "We are away; we will answer soon.".into();
        assert_eq!(a.check(), Ok(()));
    }
}
