//! [`DeskNotes`] on DynamoDB. In the desk table: quick replies under `quick#<app>` (one item per
//! reply, sort key its id), auto replies as one item `settings#<app>` / `auto_replies`, and the
//! tag lists `tag#<app>#<tag>` (one item per conversation, sort key the open id) — written in one
//! transaction with the conversation's `tags`, conditioned on the tags as read.
//!
//! Not here: the rules (`desk::notes`).

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::items::{self, Item, ItemReader, n, s};
use super::{DynamoDbStore, unavailable};
use crate::desk::notes::{AutoReplies, AutoReply, QuickReply};
use crate::ids::ConversationKey;
use crate::ports::StoreError;
use crate::ports::desk_notes::{DeskNotes, Page, RECENT_OVERLAP_SECS};
use crate::records::StoredMessage;

const SK_AUTO_REPLIES: &str = "auto_replies";

fn quick_pk(app: &str) -> String {
    format!("quick#{app}")
}

fn settings_pk(app: &str) -> String {
    format!("settings#{app}")
}

fn tag_pk(app: &str, tag: &str) -> String {
    format!("tag#{app}#{tag}")
}

fn app_of(key: &ConversationKey) -> String {
    format!("{}#{}", key.platform, key.app_id)
}

fn ss(v: &[String]) -> AttributeValue {
    AttributeValue::Ss(v.to_vec())
}

fn auto_reply(r: &ItemReader<'_>, enabled: &str, text: &str) -> Result<AutoReply, StoreError> {
    Ok(AutoReply {
        enabled: r.opt_bool(enabled)?.unwrap_or(false),
        text: r.opt_s(text)?.unwrap_or_default().to_owned(),
    })
}

/// The lowest position a poll from `position` reads: [`RECENT_OVERLAP_SECS`] before its time
/// (positions start with the zero-padded seconds of `message::sort_time`).
fn recent_floor(position: &str) -> String {
    let secs: u64 = position.get(..10).and_then(|t| t.parse().ok()).unwrap_or(0);
    format!("{:010}", secs.saturating_sub(RECENT_OVERLAP_SECS))
}

#[async_trait]
impl DeskNotes for DynamoDbStore {
    async fn page(
        &self,
        key: &ConversationKey,
        page: Page<'_>,
    ) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        let floor;
        let (forward, bound, n) = match page {
            Page::Latest(n) => (false, None, n),
            // Newest first down to the floor, so a burst never hides the newest.
            Page::Recent(p, n) => {
                floor = recent_floor(p);
                (false, Some(("#sk >= :at", floor.as_str())), n)
            }
            Page::From(p, n) => (true, Some(("#sk >= :at", p)), n),
            Page::Before(p, n) => (false, Some(("#sk < :at", p)), n),
        };
        let n = n.clamp(1, 500);
        let mut query = self
            .client
            .query()
            .table_name(&self.tables.messages)
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_values(":pk", s(key.to_string()))
            .scan_index_forward(forward)
            .consistent_read(true)
            .limit(n as i32 + 1);
        query = match bound {
            None => query.key_condition_expression("#pk = :pk"),
            Some((cond, at)) => query
                .key_condition_expression(format!("#pk = :pk AND {cond}"))
                .expression_attribute_names("#sk", items::SK)
                .expression_attribute_values(":at", s(at)),
        };
        let output = query.send().await.map_err(unavailable)?;
        let mut messages = output
            .items()
            .iter()
            .map(items::stored_message_from_item)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let more = messages.len() > n;
        messages.truncate(n);
        if !forward {
            messages.reverse();
        }
        Ok((messages, more))
    }

    async fn set_auto_accept(&self, agent: &str, on: bool) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(self.desk_table()?)
            .key(items::PK, s(format!("agent#{agent}")))
            .key(items::DESK_SK, s(items::SK_PROFILE))
            .update_expression("SET #auto = :on")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#auto", items::AUTO_ACCEPT)
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_values(":on", AttributeValue::Bool(on))
            .send()
            .await;
        if super::conditional::applied(result)? {
            Ok(())
        } else {
            Err(StoreError::Contention("no such agent".into()))
        }
    }

    async fn mark_read(&self, key: &ConversationKey) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.conversations)
            .key(items::PK, s(key.to_string()))
            .update_expression("SET #unread = :zero")
            .condition_expression("attribute_exists(#pk) AND #unread > :zero")
            .expression_attribute_names("#unread", items::UNREAD)
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        super::conditional::applied(result).map(|_| ())
    }

    async fn set_tags(
        &self,
        key: &ConversationKey,
        old: &[String],
        new: &[String],
    ) -> Result<bool, StoreError> {
        let desk = self.desk_table()?;
        let app = app_of(key);
        let mut update = Update::builder()
            .table_name(&self.tables.conversations)
            .key(items::PK, s(key.to_string()))
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_names("#tags", items::TAGS);
        update = if old.is_empty() {
            update.condition_expression("attribute_exists(#pk) AND attribute_not_exists(#tags)")
        } else {
            update
                .condition_expression("attribute_exists(#pk) AND #tags = :old")
                .expression_attribute_values(":old", ss(old))
        };
        update = if new.is_empty() {
            update.update_expression("REMOVE #tags")
        } else {
            update
                .update_expression("SET #tags = :new")
                .expression_attribute_values(":new", ss(new))
        };
        let mut writes = vec![
            TransactWriteItem::builder()
                .update(update.build().map_err(unavailable)?)
                .build(),
        ];
        for gone in old.iter().filter(|t| !new.contains(t)) {
            let delete = Delete::builder()
                .table_name(desk)
                .key(items::PK, s(tag_pk(&app, gone)))
                .key(items::DESK_SK, s(&key.open_id))
                .build()
                .map_err(unavailable)?;
            writes.push(TransactWriteItem::builder().delete(delete).build());
        }
        for added in new.iter().filter(|t| !old.contains(t)) {
            let put = Put::builder()
                .table_name(desk)
                .item(items::PK, s(tag_pk(&app, added)))
                .item(items::DESK_SK, s(&key.open_id))
                .build()
                .map_err(unavailable)?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c))
                    if c.cancellation_reasons().iter().any(|r| {
                        matches!(
                            r.code(),
                            Some("ConditionalCheckFailed" | "TransactionConflict")
                        )
                    }) =>
                {
                    Ok(false)
                }
                _ => Err(unavailable(e)),
            },
        }
    }

    async fn tagged(&self, app: &str, tag: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(self.desk_table()?)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_values(":pk", s(tag_pk(app, tag)))
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .items()
            .iter()
            .map(|item| {
                let r = ItemReader::new(item, "tag");
                r.req_s(items::DESK_SK).map(str::to_owned)
            })
            .collect()
    }

    async fn quick_replies(&self, app: &str) -> Result<Vec<QuickReply>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(self.desk_table()?)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_values(":pk", s(quick_pk(app)))
            .limit(crate::desk::notes::MAX_QUICK_REPLIES as i32)
            .send()
            .await
            .map_err(unavailable)?;
        let mut replies = output
            .items()
            .iter()
            .map(|item| {
                let r = ItemReader::new(item, "quick reply");
                Ok(QuickReply {
                    id: r.req_s(items::DESK_SK)?.to_owned(),
                    shortcut: r.req_s(items::SHORTCUT)?.to_owned(),
                    text: r.req_s(items::CONTENT)?.to_owned(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        replies.sort_by(|a, b| a.shortcut.cmp(&b.shortcut));
        Ok(replies)
    }

    async fn put_quick_reply(&self, app: &str, reply: &QuickReply) -> Result<(), StoreError> {
        let item: Item = [
            (items::PK, s(quick_pk(app))),
            (items::DESK_SK, s(&reply.id)),
            (items::SHORTCUT, s(&reply.shortcut)),
            (items::CONTENT, s(&reply.text)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        self.client
            .put_item()
            .table_name(self.desk_table()?)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_quick_reply(&self, app: &str, id: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(self.desk_table()?)
            .key(items::PK, s(quick_pk(app)))
            .key(items::DESK_SK, s(id))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", items::PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn auto_replies(&self, app: &str) -> Result<AutoReplies, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(self.desk_table()?)
            .key(items::PK, s(settings_pk(app)))
            .key(items::DESK_SK, s(SK_AUTO_REPLIES))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = output.item() else {
            return Ok(AutoReplies::default());
        };
        let r = ItemReader::new(item, "auto replies");
        Ok(AutoReplies {
            greeting: auto_reply(&r, items::GREETING_ON, items::GREETING_TEXT)?,
            away: auto_reply(&r, items::AWAY_ON, items::AWAY_TEXT)?,
        })
    }

    async fn put_auto_replies(&self, app: &str, replies: &AutoReplies) -> Result<(), StoreError> {
        let item: Item = [
            (items::PK, s(settings_pk(app))),
            (items::DESK_SK, s(SK_AUTO_REPLIES)),
            (
                items::GREETING_ON,
                AttributeValue::Bool(replies.greeting.enabled),
            ),
            (items::GREETING_TEXT, s(&replies.greeting.text)),
            (items::AWAY_ON, AttributeValue::Bool(replies.away.enabled)),
            (items::AWAY_TEXT, s(&replies.away.text)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        self.client
            .put_item()
            .table_name(self.desk_table()?)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_reaches_back_ten_minutes_from_the_newest_position() {
        assert_eq!(recent_floor("1796411183#~d#1-a"), "1796410583");
        assert_eq!(recent_floor("0000000100#o#x"), "0000000000");
        assert_eq!(recent_floor("junk"), "0000000000");
    }
}
