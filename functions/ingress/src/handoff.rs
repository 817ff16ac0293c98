//! The hand-off to WeChat's own desk (`handoff: "wechat_tool"`, docs/design.md §3): which queued
//! pushes are answered with `transfer_customer_service` instead of `success`, and that reply,
//! sealed the way the push was.
//!
//! Only user messages are handed off — never events (WeChat refuses to transfer them) and never a
//! push kept raw, whose kind is unknown. Not here: the reply's bytes (`shared::protocol::reply`).

use shared::message::{InboundMessage, MessageBody};
use shared::protocol::reply::{ReplySeal, transfer_customer_service};
use shared::protocol::{DataFormat, KeySlot, Mode, Push, ReceiveIdRule};
use shared::registry::{AppConfig, Handoff};

/// A hand-off reply, ready to answer the push with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffReply {
    /// The response body.
    pub body: String,
    /// Its `Content-Type`.
    pub content_type: &'static str,
}

/// Whether WeChat can hand this message to its desk: a message the user wrote.
fn is_user_message(message: &InboundMessage<'_>) -> bool {
    matches!(
        message.body,
        MessageBody::Text { .. }
            | MessageBody::Image { .. }
            | MessageBody::MiniProgramPage { .. }
            | MessageBody::Unknown { .. }
    )
}

/// The reply for a push already on the queue, or `None` when it is answered `success`: the app
/// does not hand off, the message is not the user's, an id cannot be written, or no randomness
/// could be drawn (logged by the caller; the message is stored either way).
pub fn reply(
    app: &AppConfig,
    push: &Push,
    message_format: DataFormat,
    message: &InboundMessage<'_>,
    now_secs: u64,
) -> Option<HandoffReply> {
    if app.handoff != Handoff::WechatTool || !is_user_message(message) {
        return None;
    }
    // The push names the mini program in ToUserName; the registry's original id covers a push
    // that does not.
    let original_id = message
        .to_user_name
        .as_deref()
        .filter(|id| !id.is_empty())
        .or(app.original_id.as_deref())?;
    let plaintext = transfer_customer_service(
        message_format,
        &message.from_user_name,
        original_id,
        now_secs,
    )?;
    if push.mode == Mode::Plaintext {
        return Some(HandoffReply {
            body: plaintext,
            content_type: content_type(message_format),
        });
    }
    let credentials = app.credentials.as_ref()?;
    let receive_id = match &credentials.receive_id {
        ReceiveIdRule::Exact(id) => id.as_str(),
        ReceiveIdRule::Report => app.app_id.as_str(),
    };
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).ok()?;
    // Sealed with the Token and key the push came with: during a rotation the platform may
    // still hold the previous ones.
    let seal = ReplySeal {
        token: credentials.token(push.token_slot).expose(),
        key: credentials.key(push.key_slot.unwrap_or(KeySlot::Current)),
        receive_id,
    };
    Some(HandoffReply {
        body: seal.seal(push.format, &plaintext, now_secs, &push.nonce, &random),
        content_type: content_type(push.format),
    })
}

fn content_type(format: DataFormat) -> &'static str {
    match format {
        DataFormat::Json => "application/json; charset=utf-8",
        DataFormat::Xml => "application/xml; charset=utf-8",
    }
}
