//! One conversation as `kefu conversation show` reports it: the send window and its messages in
//! order, read through the same `MessageStore` port the processor writes with, and its text form.
//!
//! Not the command line (flags, `--json`, exit status): `commands::conversation`.

use serde::Serialize;
use shared::ids::ConversationKey;
use shared::ports::MessageStore;
use shared::records::Direction;

use crate::Error;

/// The send window.
#[derive(Debug, Clone, Serialize)]
pub struct QuotaView {
    /// Messages left in the window, as stored.
    pub remaining: u32,
    /// Window end, Unix seconds.
    pub expires_at: u64,
    /// Messages that could be sent now (0 once the window has passed).
    pub remaining_now: u32,
    /// Whether the window has passed.
    pub expired: bool,
}

/// One stored message.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// `"in"` or `"out"`.
    pub direction: Direction,
    /// Message type.
    pub msg_type: String,
    /// Unix seconds.
    pub create_time: u64,
    /// The platform's `MsgId`, exact, when the message has one.
    pub msg_id: Option<String>,
    /// Text content (exact) for text messages.
    pub content: Option<String>,
    /// Media reference (picture URL, media id or page path).
    pub media: Option<String>,
    /// Outbound status (`sent`, `partial`, `failed`, `unknown`).
    pub status: Option<shared::records::OutboundStatus>,
    /// Platform error code of a failed send.
    pub errcode: Option<i64>,
    /// Who sent it from the desk (an agent's id, `auto-greeting`, `auto-away`) or made a desk event
    /// (`system` for the idle sweep); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// The conversation as `conversation show` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationView {
    /// Platform.
    pub platform: String,
    /// App id.
    pub app_id: String,
    /// User open id.
    pub open_id: String,
    /// Conversation status (`open`).
    pub status: String,
    /// The send window.
    pub quota: QuotaView,
    /// `CreateTime` of the newest inbound message.
    pub last_in_at: Option<u64>,
    /// Inbound messages stored.
    pub inbound_count: u64,
    /// Unread inbound messages.
    pub unread: u64,
    /// Messages in `CreateTime` order.
    pub messages: Vec<MessageView>,
}

/// Reads the conversation, or `None` when no message of it was ever stored.
pub async fn show<S: MessageStore>(
    store: &S,
    key: &ConversationKey,
    now: u64,
) -> Result<Option<ConversationView>, Error> {
    let Some(conversation) = store.conversation(key).await? else {
        return Ok(None);
    };
    let messages = store.messages(key, None).await?;
    let window = conversation.window;
    Ok(Some(ConversationView {
        platform: key.platform.to_string(),
        app_id: key.app_id.clone(),
        open_id: key.open_id.clone(),
        status: conversation.status,
        quota: QuotaView {
            remaining: window.remaining,
            expires_at: window.expires_at,
            remaining_now: window.remaining_at(now),
            expired: now >= window.expires_at,
        },
        last_in_at: conversation.last_in_at,
        inbound_count: conversation.inbound_count,
        unread: conversation.unread,
        messages: messages
            .into_iter()
            .map(|m| MessageView {
                direction: m.direction,
                msg_type: m.msg_type,
                create_time: m.create_time,
                msg_id: m.msg_id,
                content: m.content,
                media: m.media,
                status: m.status,
                errcode: m.errcode,
                agent: m.agent,
            })
            .collect(),
    }))
}

fn duration(secs: u64) -> String {
    let (h, m) = (secs / 3600, secs % 3600 / 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else {
        format!("{m}m{:02}s", secs % 60)
    }
}

/// The human-readable form.
pub fn render_text(view: &ConversationView, now: u64) -> String {
    let q = &view.quota;
    let window = if q.expired {
        format!("window closed {} ago", duration(now - q.expires_at))
    } else {
        format!("window open for {}", duration(q.expires_at - now))
    };
    let mut out = format!(
        "conversation {}#{}#{}  status {}\nquota: {} remaining (usable now: {}), expires_at {} ({window})\nmessages ({}):\n",
        view.platform,
        view.app_id,
        view.open_id,
        view.status,
        q.remaining,
        q.remaining_now,
        q.expires_at,
        view.messages.len()
    );
    for m in &view.messages {
        let dir = match m.direction {
            Direction::In => "in ",
            Direction::Out => "out",
            Direction::Desk => "desk",
        };
        let what = m
            .content
            .as_deref()
            .map(|c| format!("{c:?}"))
            .or_else(|| m.media.clone())
            .unwrap_or_default();
        let status = m
            .status
            .map(|s| format!(" [{}]", s.as_str()))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {} {dir} {:<16} msg_id={:<20} {what}{status}\n",
            m.create_time,
            m.msg_type,
            m.msg_id.as_deref().unwrap_or("-"),
        ));
    }
    out
}
