//! After a user's action is stored: a notice on the outbound queue, which the sender consumes (the
//! processor itself never calls a platform), when its app has an auto reply on or when it is an
//! image (copied to the media bucket there, off the processor's path). Whether an app has an auto
//! reply on is read from the desk table and kept for a minute per app, so a text costs nothing for
//! apps without auto replies.
//!
//! Not here: which reply is due and sending it, copying the image (the sender's `auto_reply`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shared::desk::auto_reply::{ImageRef, Notice};
use shared::desk::stats::Counter;
use shared::message::{MessageBody, QueueEnvelope};
use shared::ports::MessageQueue;
use shared::ports::desk_notes::DeskNotes;
use shared::ports::desk_stats::StatsStore;
use tracing::warn;

use crate::error::RecordError;

/// How long an app's "auto replies on" is trusted.
pub const SETTINGS_TTL_SECS: u64 = 60;

/// What the desk reads and counts there.
pub trait DeskSide: DeskNotes + StatsStore {}

impl<T: DeskNotes + StatsStore> DeskSide for T {}

/// The outbound queue, the settings it is gated on, and the desk's daily counters.
pub struct FollowUps {
    queue: Arc<dyn MessageQueue>,
    desk: Arc<dyn DeskSide>,
    known: Mutex<HashMap<String, (u64, bool)>>,
}

impl FollowUps {
    /// Notices go to `queue` for apps whose auto replies `desk` has on.
    pub fn new(queue: Arc<dyn MessageQueue>, desk: Arc<dyn DeskSide>) -> Self {
        Self {
            queue,
            desk,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Adds a batch's stored user messages to the desk's daily counters, per (app, day): one
    /// write per app and day, not per message. Best effort: logged, never a failed record.
    pub async fn count_in(&self, stored: HashMap<(String, String), u64>) {
        for ((app, day), n) in stored {
            if let Err(e) = self
                .desk
                .add(&app, &day, None, &[(Counter::MessagesIn, n)])
                .await
            {
                warn!(error.message = %e, "statistics not counted");
            }
        }
    }

    /// Whether the app has an auto reply on, as read at most [`SETTINGS_TTL_SECS`] ago. A failed
    /// read keeps the last answer (or "off"): an auto reply is never worth failing a record.
    async fn on(&self, app: &str, now: u64) -> bool {
        let cached = self.known.lock().ok().and_then(|k| k.get(app).copied());
        if let Some((at, on)) = cached
            && now.saturating_sub(at) < SETTINGS_TTL_SECS
        {
            return on;
        }
        let on = match self.desk.auto_replies(app).await {
            Ok(r) => r.greeting.enabled || r.away.enabled,
            Err(e) => {
                warn!(error.message = %e, "auto-reply settings unreadable; keeping the last answer");
                return cached.is_some_and(|(_, on)| on);
            }
        };
        if let Ok(mut k) = self.known.lock() {
            k.insert(app.to_owned(), (now, on));
        }
        on
    }

    /// Queues the notice of a stored (or already stored) action: one that `granted` a window of an
    /// app with an auto reply on, or an image. A queue failure fails the record, so SQS delivers it
    /// again (the store then finds a duplicate and the notice is queued again; the sender sends
    /// each reply once per window and keeps each image under one key whatever the count).
    pub async fn after_store(
        &self,
        envelope: &QueueEnvelope<'_>,
        t: u64,
        granted: bool,
    ) -> Result<(), RecordError> {
        let image = match &envelope.message.body {
            MessageBody::Image { pic_url, media_id } => Some(ImageRef {
                position: envelope.position.clone(),
                media_id: media_id.as_deref().map(str::to_owned),
                pic_url: pic_url.as_deref().map(str::to_owned),
            }),
            _ => None,
        };
        let app = format!("{}#{}", envelope.platform, envelope.app_id);
        // The cache's age by the wall clock (not the message's time: a backlog is old).
        let now = shared::clock::Clock::now_secs(&shared::clock::SystemClock);
        let auto = granted && self.on(&app, now).await;
        if !auto && image.is_none() {
            return Ok(());
        }
        let notice = Notice {
            platform: envelope.platform,
            app_id: envelope.app_id.to_string(),
            open_id: envelope.message.from_user_name.to_string(),
            t,
            granted: auto,
            image,
        };
        let body = serde_json::to_string(&notice).unwrap_or_default();
        self.queue
            .enqueue(&body)
            .await
            .map(|_| ())
            .map_err(RecordError::FollowUp)
    }
}
