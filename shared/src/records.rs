//! The read models: what the store holds and hands back — a conversation with its window, a stored
//! message in either direction, an outbound send's record and status. Plain data; the ports
//! (`ports`) move it, the adapters map it to items. Not here: identities (`message`, `protocol`)
//! or the quota rule (`quota`).

use serde::{Deserialize, Serialize};

use crate::ids::ConversationKey;
use crate::quota::Window;

/// Direction of a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the user.
    In,
    /// To the user.
    Out,
    /// A desk event in the conversation's timeline (accepted, released, closed).
    Desk,
}

/// A conversation item: one user of one app, with its send window and (later) workspace state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Which conversation.
    #[serde(skip)]
    pub key: Option<ConversationKey>,
    /// The send window (`remaining`, `expires_at`).
    pub window: Window,
    /// Action time of the grant that last set the window (see [`crate::quota::Ledger`]).
    pub grant_at: Option<u64>,
    /// Grants applied so far: the generation reservations are made under.
    pub generation: u64,
    /// Units reserved since a grant restarted the count (see [`crate::quota::Ledger`]).
    pub spent: u32,
    /// Until when the latest reserved units may reach the platform.
    pub spent_at: Option<u64>,
    /// `CreateTime` of the newest inbound message.
    pub last_in_at: Option<u64>,
    /// When a send last may have reached the user (the sender's `last_out_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_out_at: Option<u64>,
    /// The same for replies only (not auto replies): what the desk's statistics measure from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reply_at: Option<u64>,
    /// Preview of the newest inbound message.
    pub last_in_preview: Option<String>,
    /// Desk state: `waiting`, `active` or `closed` ([`crate::desk::DeskState`]; an item written
    /// before the desk existed reads as `waiting`).
    pub status: String,
    /// The agent the conversation is assigned to, if any.
    pub assignee: Option<String>,
    /// When it entered its desk list, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_at: Option<u64>,
    /// The last message in or out, or assignment, Unix seconds (the idle rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_at: Option<u64>,
    /// The agents' tags, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Inbound messages not yet read by an agent.
    pub unread: u64,
    /// Inbound messages stored so far.
    pub inbound_count: u64,
}

/// One message as stored in a conversation, inbound or outbound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Position within the conversation (`CreateTime` zero-padded, then the message's identity):
    /// text order is conversation order.
    pub position: String,
    /// In or out.
    pub direction: Direction,
    /// Message type (`text`, `image`, `miniprogrampage`, `event`, or the platform's own).
    pub msg_type: String,
    /// Unix seconds (`CreateTime` for inbound messages, send time for outbound).
    pub create_time: u64,
    /// Platform message id, exact.
    pub msg_id: Option<String>,
    /// Text content for text messages.
    pub content: Option<String>,
    /// Media reference: picture URL or media id, where the type has one.
    pub media: Option<String>,
    /// Outbound status; `None` for inbound.
    pub status: Option<OutboundStatus>,
    /// Platform error code of a failed send.
    pub errcode: Option<i64>,
    /// The full inbound message as JSON (kept exact, including unknown fields).
    pub raw: Option<String>,
    /// The agent of a desk event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Where the media bucket keeps this inbound image's copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_media: Option<String>,
}

/// What became of an outbound send, as recorded and as answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboundStatus {
    /// Every part reached the platform.
    Sent,
    /// Some parts reached the platform, then a refusal or a missing token stopped the rest.
    Partial,
    /// Nothing reached the platform (a definite refusal of the first part).
    Failed,
    /// A part timed out or was cut off: it may have gone out.
    Unknown,
}

impl OutboundStatus {
    /// The lowercase name stored and answered (`sent`, `partial`, `failed`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundStatus::Sent => "sent",
            OutboundStatus::Partial => "partial",
            OutboundStatus::Failed => "failed",
            OutboundStatus::Unknown => "unknown",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sent" => OutboundStatus::Sent,
            "partial" => OutboundStatus::Partial,
            "failed" => OutboundStatus::Failed,
            "unknown" => OutboundStatus::Unknown,
            _ => return None,
        })
    }
}

/// An outbound message as recorded in its conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRecord {
    /// The conversation.
    pub key: ConversationKey,
    /// kefu's id for the send (also the sort-key suffix).
    pub id: String,
    /// Unix seconds of the send.
    pub sent_at: u64,
    /// `text`, `image`, `link`, `miniprogrampage`.
    pub msg_type: String,
    /// Text content (all parts joined) for text sends.
    pub content: Option<String>,
    /// Media reference (media id, picture URL, link URL or page path).
    pub media: Option<String>,
    /// What became of it.
    pub status: OutboundStatus,
    /// Platform error code of a failed send.
    pub errcode: Option<i64>,
    /// Platform parts this send became (each cost one unit).
    pub parts: u32,
    /// Parts that reached the platform.
    pub parts_sent: u32,
    /// The desk agent who sent it (`None`: an API caller or an auto reply).
    pub agent: Option<String>,
}
