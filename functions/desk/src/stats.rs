//! The desk's share of the statistics (counted where it happens, best effort: a counter that
//! cannot be written is logged, never a failed request): conversations accepted, per app and
//! agent, and the response time of a reply that answered a waiting user — from the user's first
//! message after the last reply (auto replies are not replies) to the reply.
//!
//! Also the statistics' reading: the counters of `shared::desk::stats` and the windows closed
//! unanswered, counted from the app's conversations (its waiting and closed lists and its agents'
//! lists: every conversation is on exactly one).

use std::collections::BTreeMap;

use shared::clock::Clock;
use shared::desk::DeskList;
use shared::desk::stats::{self, Counter, Day};
use shared::ids::{ConversationKey, Platform};
use shared::ports::StoreError;
use shared::ports::desk::DeskStore;
use shared::ports::desk_notes::Page;
use shared::ports::desk_stats::StatsStore;
use shared::records::{Conversation, Direction};
use tracing::warn;

use crate::{App, Store};

/// The most days one statistics request spans.
pub const MAX_DAYS: u32 = 31;

async fn add<S: Store, C: Clock>(
    app: &App<S, C>,
    key: &ConversationKey,
    agent: &str,
    counter: Counter,
) {
    let app_key = format!("{}#{}", key.platform, key.app_id);
    let day = stats::day_of(app.clock.now_secs());
    if let Err(e) = app
        .store
        .add(&app_key, &day, Some(agent), &[(counter, 1)])
        .await
    {
        warn!(error.message = %e, "statistics not counted");
    }
}

/// Counts an accepted conversation.
pub(crate) async fn accepted<S: Store, C: Clock>(
    app: &App<S, C>,
    key: &ConversationKey,
    agent: &str,
) {
    add(app, key, agent, Counter::Conversations).await;
}

/// Counts the response time of `agent`'s reply to `c` (as read before the reply), when the user
/// was waiting for one.
pub(crate) async fn answered<S: Store, C: Clock>(app: &App<S, C>, c: &Conversation, agent: &str) {
    let (Some(key), Some(last_in)) = (&c.key, c.last_in_at) else {
        return;
    };
    // Auto replies do not answer a user: measured from the last reply.
    let since = c.last_reply_at.unwrap_or(0);
    if last_in < since {
        return;
    }
    let floor = format!("{since:010}");
    let first_in = match app.store.page(key, Page::From(&floor, 100)).await {
        Ok((messages, _)) => messages
            .iter()
            .find(|m| m.direction == Direction::In && m.msg_type != "event")
            .map(|m| m.create_time),
        Err(e) => {
            warn!(error.message = %e, "response time not counted");
            return;
        }
    };
    if let Some(t) = first_in {
        let secs = app.clock.now_secs().saturating_sub(t);
        add(app, key, agent, Counter::response(secs)).await;
    }
}

/// The app's last `days` days at `now` (the route and `kefu stats`).
pub async fn read<S: DeskStore + StatsStore>(
    store: &S,
    platform: Platform,
    app_id: &str,
    days: u32,
    now: u64,
) -> Result<Vec<Day>, StoreError> {
    let app_key = format!("{platform}#{app_id}");
    let dates = stats::last_days(now, days.clamp(1, MAX_DAYS));
    let (first, last) = (dates[0].clone(), dates[dates.len() - 1].clone());
    let rows = store.rows(&app_key, &first, &last).await?;
    let mut lists = vec![
        shared::desk::waiting_list_of(platform, app_id),
        shared::desk::closed_list_of(platform, app_id),
    ];
    for agent in store.members(&app_key).await? {
        lists.push(DeskList::Agent(&agent.id).value());
    }
    let mut unanswered: BTreeMap<String, u64> = BTreeMap::new();
    for list in lists {
        for c in store.list(&list, 1000).await? {
            let mine = c
                .key
                .as_ref()
                .is_some_and(|k| k.platform == platform && k.app_id == app_id);
            let end = c.window.expires_at;
            let waiting = c
                .last_in_at
                .is_some_and(|t| t >= c.last_out_at.unwrap_or(0));
            if mine && waiting && end > 0 && end <= now {
                let day = stats::day_of(end);
                if day >= first && day <= last {
                    *unanswered.entry(day).or_default() += 1;
                }
            }
        }
    }
    Ok(stats::assemble(&dates, &rows, &unanswered))
}
