//! The idle sweep: every conversation an agent has held for 30 minutes without a message in or
//! out goes back to its app's waiting list (as WeChat's desk re-offers it), recorded in its
//! timeline as `idle_released` by `system`. Run once a minute by the stack's schedule (a direct
//! invocation, never an HTTP route) and by `kefu serve` locally.
//!
//! Not here: the release's atomicity (`DeskStore::release`, conditioned on still being idle).

use shared::clock::Clock;
use shared::desk::{DeskEvent, DeskList, is_idle};
use shared::ports::StoreError;
use shared::ports::desk::{Actor, DeskStore, DeskSweep};
use tracing::{info, warn};

/// The direct invocation's body that runs the sweep (the schedule's input).
pub const SWEEP_EVENT: &str = r#"{"kind":"idle_sweep"}"#;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Agents holding conversations.
    pub agents: usize,
    /// Conversations looked at.
    pub held: usize,
    /// Conversations handed back.
    pub released: usize,
    /// Agents or conversations the store failed on (each one skipped; the rest still swept).
    pub failed: usize,
}

/// Hands back every idle conversation. A failure on one agent or conversation is logged and
/// counted, and the sweep goes on with the rest; only the scan itself failing is an error.
pub async fn sweep<S: DeskStore + DeskSweep, C: Clock>(
    store: &S,
    clock: &C,
) -> Result<Swept, StoreError> {
    let now_ms = clock.now_ms();
    let now = now_ms / 1000;
    let by = Actor {
        agent: "system",
        now_ms,
    };
    let mut swept = Swept::default();
    for agent in store.agents_holding().await? {
        swept.agents += 1;
        let held = match store.list(&DeskList::Agent(&agent).value(), 1000).await {
            Ok(held) => held,
            Err(e) => {
                swept.failed += 1;
                warn!(error.message = %e, "idle sweep: an agent's list unreadable; skipped");
                continue;
            }
        };
        for c in held {
            swept.held += 1;
            let (Some(key), Some(active_at)) = (&c.key, c.active_at) else {
                continue;
            };
            if !is_idle(active_at, now) {
                continue;
            }
            match store
                .release(key, &agent, DeskEvent::IdleReleased, by)
                .await
            {
                Ok(true) => swept.released += 1,
                Ok(false) => {}
                Err(e) => {
                    swept.failed += 1;
                    warn!(error.message = %e, "idle sweep: a release failed; next sweep retries");
                }
            }
        }
    }
    info!(
        agents = swept.agents,
        held = swept.held,
        released = swept.released,
        failed = swept.failed,
        "idle sweep"
    );
    Ok(swept)
}
