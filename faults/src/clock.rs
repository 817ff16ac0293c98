//! The simulation's virtual clock, shared by every handler and the simulated platform: time moves
//! only when the simulation advances it, so a run does not depend on how fast the machine is.
//! Not here: HTTP timeouts to the fake platform, which stay in real time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use shared::clock::Clock;

/// A shared virtual clock (milliseconds since the Unix epoch).
#[derive(Debug, Clone)]
pub struct SimClock(Arc<AtomicU64>);

impl SimClock {
    /// A clock reading `secs`.
    pub fn at_secs(secs: u64) -> Self {
        Self(Arc::new(AtomicU64::new(secs * 1000)))
    }

    /// Moves the clock `secs` forward.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
