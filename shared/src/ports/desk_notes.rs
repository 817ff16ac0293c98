//! The port for what agents keep beside the conversations: read marks, tags (and the list of an
//! app's conversations with a tag), quick replies and auto-reply settings per app.
//!
//! Contracts only; the DynamoDB adapter is `adapters::dynamodb::desk_notes`. The rules a value
//! must meet are `crate::desk::notes`.

use async_trait::async_trait;

use super::StoreError;
use crate::desk::notes::{AutoReplies, QuickReply};
use crate::ids::ConversationKey;
use crate::records::StoredMessage;

/// How far before the newest position a poll reaches back.
pub const RECENT_OVERLAP_SECS: u64 = 600;

/// Which messages of a conversation a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page<'a> {
    /// The newest `n`.
    Latest(usize),
    /// The newest `n` from [`RECENT_OVERLAP_SECS`] before this position's time on (what a poll
    /// asks for: the page merges by position, so a message stored after a later one — a user's
    /// message that waited in the queue, a reply recorded after the page's last poll — still
    /// appears); "more" then says older ones of that span were left out.
    Recent(&'a str, usize),
    /// Up to `n` from this position on, oldest first (the messages since a point in time).
    From(&'a str, usize),
    /// Up to `n` right before this position (scrolling back).
    Before(&'a str, usize),
}

/// The desk's notes.
#[async_trait]
pub trait DeskNotes: Send + Sync {
    /// One page of the conversation's messages, oldest first, and whether there are more beyond
    /// it (older ones: for [`Page::Recent`], older ones since its floor).
    async fn page(
        &self,
        key: &ConversationKey,
        page: Page<'_>,
    ) -> Result<(Vec<StoredMessage>, bool), StoreError>;

    /// The agent's own auto-accept choice.
    async fn set_auto_accept(&self, agent: &str, on: bool) -> Result<(), StoreError>;

    /// The conversation's unread count back to 0 (its assignee opened it).
    async fn mark_read(&self, key: &ConversationKey) -> Result<(), StoreError>;

    /// Replaces the conversation's tags `old` (as read) with `new`, and its entries in the
    /// app's tag lists with them, atomically; `false` when the tags are no longer `old` (or the
    /// conversation is gone).
    async fn set_tags(
        &self,
        key: &ConversationKey,
        old: &[String],
        new: &[String],
    ) -> Result<bool, StoreError>;

    /// The open ids of `app`'s (`platform#app_id`) conversations tagged `tag`, at most `limit`.
    async fn tagged(&self, app: &str, tag: &str, limit: u32) -> Result<Vec<String>, StoreError>;

    /// The app's quick replies, by shortcut.
    async fn quick_replies(&self, app: &str) -> Result<Vec<QuickReply>, StoreError>;

    /// Creates or replaces one quick reply.
    async fn put_quick_reply(&self, app: &str, reply: &QuickReply) -> Result<(), StoreError>;

    /// Deletes one; `false` when there was none.
    async fn delete_quick_reply(&self, app: &str, id: &str) -> Result<bool, StoreError>;

    /// The app's auto replies (all off when never set).
    async fn auto_replies(&self, app: &str) -> Result<AutoReplies, StoreError>;

    /// Replaces the app's auto replies.
    async fn put_auto_replies(&self, app: &str, replies: &AutoReplies) -> Result<(), StoreError>;
}
