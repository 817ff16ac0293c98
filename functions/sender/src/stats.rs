//! The sender's share of the desk's statistics: sends that reached the platform (per app, and per
//! agent for an agent's reply) and sends refused for quota. Best effort: a counter that cannot be
//! written is logged, never a failed send. Only with the desk's store (`App::desk`).

use shared::clock::Clock;
use shared::desk::auto_reply::reserved_agent_id;
use shared::desk::stats::{Counter, day_of};
use shared::ids::ConversationKey;
use shared::ports::{AccessTokenCache, MediaIdCache, OutboundStore, QuotaLedger};
use tracing::warn;

use crate::App;

impl<S, T, M, C> App<S, T, M, C>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    M: MediaIdCache,
    C: Clock,
{
    /// Counts `counter` for `key`'s app today, and for `agent` when it is an agent's.
    pub(crate) async fn count(&self, key: &ConversationKey, agent: Option<&str>, counter: Counter) {
        let Some(desk) = &self.desk else { return };
        let app = format!("{}#{}", key.platform, key.app_id);
        let agent = agent.filter(|a| !reserved_agent_id(a));
        let day = day_of(self.clock.now_secs());
        if let Err(e) = desk.add(&app, &day, agent, &[(counter, 1)]).await {
            warn!(error.message = %e, "statistics not counted");
        }
    }
}
