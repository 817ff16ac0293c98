//! Items of the conversations table: [`ConversationState`] (what the inbound compare-and-set and the
//! ledger read) and the mapping of a conversation item to [`Conversation`].
//!
//! Not here: the attribute names and the table's schema ([`super`]), or the writes (the conversation
//! update is built in `expressions`, from the state read here).

use aws_sdk_dynamodb::types::AttributeValue;

use super::reader::ItemReader;
use super::*;
use crate::ports::StoreError;
use crate::quota::{Ledger, Window};
use crate::records::Conversation;

/// The parts of a conversation item the store's compare-and-set reads: `None` where absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConversationState {
    /// `remaining`.
    pub remaining: Option<u32>,
    /// `expires_at`.
    pub expires_at: Option<u64>,
    /// `last_in_at`.
    pub last_in_at: Option<u64>,
    /// `grant_at`.
    pub grant_at: Option<u64>,
    /// `grant_gen`.
    pub generation: Option<u64>,
    /// `spent`.
    pub spent: Option<u32>,
    /// `spent_at`.
    pub spent_at: Option<u64>,
    /// Whether the desk closed it (`status` = `closed`): the next message reopens it.
    pub closed: bool,
}

impl ConversationState {
    /// Reads the state from a conversation item (`pk` names it in errors).
    pub fn from_item(item: &Item, pk: &str) -> Result<Self, StoreError> {
        let r = ItemReader::new(item, pk);
        Ok(Self {
            remaining: r.opt_n(REMAINING)?,
            expires_at: r.opt_n(EXPIRES_AT)?,
            last_in_at: r.opt_n(LAST_IN_AT)?,
            grant_at: r.opt_n(GRANT_AT)?,
            generation: r.opt_n(GENERATION)?,
            spent: r.opt_n(SPENT)?,
            spent_at: r.opt_n(SPENT_AT)?,
            closed: r.opt_s(STATUS)? == Some(STATUS_CLOSED),
        })
    }

    /// The ledger as stored (a missing window counts as 0, a missing generation as 0).
    pub fn ledger(&self) -> Option<Ledger> {
        (self.window().is_some() || self.grant_at.is_some()).then(|| Ledger {
            window: self.window().unwrap_or_default(),
            grant_at: self.grant_at,
            generation: self.generation.unwrap_or(0),
            spent: self.spent.unwrap_or(0),
            spent_at: self.spent_at,
        })
    }

    /// The send window, if the item has one (a missing half counts as 0).
    pub fn window(&self) -> Option<Window> {
        (self.remaining.is_some() || self.expires_at.is_some()).then(|| Window {
            remaining: self.remaining.unwrap_or(0),
            expires_at: self.expires_at.unwrap_or(0),
        })
    }
}

/// Maps a conversation item; a missing window counts as 0, a missing status as `open`.
pub fn conversation_from_item(item: &Item) -> Result<Conversation, StoreError> {
    let pk = match item.get(PK) {
        Some(AttributeValue::S(pk)) => pk.as_str(),
        _ => "<conversation without pk>",
    };
    let r = ItemReader::new(item, pk);
    let pk = r.req_s(PK)?;
    let state = ConversationState::from_item(item, pk)?;
    Ok(Conversation {
        key: pk.parse().ok(),
        window: state.window().unwrap_or_default(),
        grant_at: state.grant_at,
        generation: state.generation.unwrap_or(0),
        spent: state.spent.unwrap_or(0),
        spent_at: state.spent_at,
        last_in_at: state.last_in_at,
        last_out_at: r.opt_n(LAST_OUT_AT)?,
        last_reply_at: r.opt_n(LAST_REPLY_AT)?,
        last_in_preview: r.opt_s(LAST_IN_PREVIEW)?.map(str::to_owned),
        status: crate::desk::DeskState::from_status(r.opt_s(STATUS)?.unwrap_or(STATUS_WAITING))
            .unwrap_or(crate::desk::DeskState::Waiting)
            .as_str()
            .to_owned(),
        assignee: r.opt_s(ASSIGNEE)?.map(str::to_owned),
        list_at: r.opt_n(LIST_AT)?,
        active_at: r.opt_n(ACTIVE_AT)?,
        tags: {
            // A string set has no order: sorted, as `Conversation::tags` promises.
            let mut tags = r.opt_ss(TAGS)?;
            tags.sort();
            tags
        },
        unread: r.opt_n(UNREAD)?.unwrap_or(0),
        inbound_count: r.opt_n(INBOUND_COUNT)?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConversationKey, Platform};

    #[test]
    fn conversation_item_maps_window_and_defaults() {
        let full: Item = [
            (PK, s("wechat#wx1#oUser")),
            (REMAINING, n(3)),
            (EXPIRES_AT, n(1_700_172_800u64)),
            (LAST_IN_AT, n(1_700_000_000u64)),
            (LAST_IN_PREVIEW, s("hi")),
            (STATUS, s("closed")),
            (ASSIGNEE, s("agent-7")),
            (UNREAD, n(2)),
            (INBOUND_COUNT, n(9)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let c = conversation_from_item(&full).unwrap();
        assert_eq!(
            c.key,
            Some(ConversationKey {
                platform: Platform::Wechat,
                app_id: "wx1".into(),
                open_id: "oUser".into()
            })
        );
        assert_eq!(
            c.window,
            Window {
                remaining: 3,
                expires_at: 1_700_172_800
            }
        );
        assert_eq!(c.last_in_at, Some(1_700_000_000));
        assert_eq!(c.last_in_preview.as_deref(), Some("hi"));
        assert_eq!(
            (c.status.as_str(), c.assignee.as_deref()),
            ("closed", Some("agent-7"))
        );
        assert_eq!((c.unread, c.inbound_count), (2, 9));

        let bare: Item = [(PK.to_owned(), s("baidu#b1#o1"))].into_iter().collect();
        let c = conversation_from_item(&bare).unwrap();
        assert_eq!(c.window, Window::default());
        assert_eq!(
            (c.last_in_at, c.status.as_str(), c.unread),
            (None, "waiting", 0)
        );
        assert_eq!(
            ConversationState::from_item(&bare, "k").unwrap().window(),
            None
        );
    }

    #[test]
    fn wrong_attribute_types_are_corrupt_and_named() {
        let mut item: Item = [(PK.to_owned(), s("wechat#wx1#oUser"))]
            .into_iter()
            .collect();
        item.insert(REMAINING.into(), s("three"));
        let err = conversation_from_item(&item).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { key, reason } if key.starts_with("wechat#wx1#~") && !key.contains("oUser") && reason.contains(REMAINING)),
            "{err}"
        );
        item.insert(REMAINING.into(), n(-1));
        assert!(
            conversation_from_item(&item)
                .unwrap_err()
                .to_string()
                .contains(REMAINING)
        );
        item.insert(REMAINING.into(), n(1));
        item.insert(LAST_IN_PREVIEW.into(), AttributeValue::Bool(true));
        assert!(
            conversation_from_item(&item)
                .unwrap_err()
                .to_string()
                .contains(LAST_IN_PREVIEW)
        );
    }
}
