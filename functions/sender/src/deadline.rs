//! The time a request may use: the Lambda invocation's deadline (or, without one, a fixed budget
//! from the start), minus a reserve kept for recording the outcome. No platform call starts
//! unless its whole timeout fits, so the function is never killed in the middle of one.

use std::time::Duration;

use tokio::time::Instant;

/// When the request must be done, and how much of that is kept for recording.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    end: Instant,
    reserve: Duration,
    end_unix_secs: u64,
}

impl Deadline {
    /// From the invocation's deadline (`deadline_ms`, Unix milliseconds) when there is one, else
    /// `max` from now; `now_ms` is the wall clock.
    pub fn new(deadline_ms: Option<u64>, now_ms: u64, max: Duration, reserve: Duration) -> Self {
        let left = match deadline_ms {
            Some(at) => Duration::from_millis(at.saturating_sub(now_ms)),
            None => max,
        };
        Self {
            end: Instant::now() + left,
            reserve,
            end_unix_secs: (now_ms + left.as_millis() as u64).div_ceil(1000),
        }
    }

    /// Time left for platform calls (the reserve excluded).
    pub fn budget(&self) -> Duration {
        self.end
            .saturating_duration_since(Instant::now())
            .saturating_sub(self.reserve)
    }

    /// Whether a call that may take `call` can start now and still leave the reserve.
    pub fn allows(&self, call: Duration) -> bool {
        self.budget() >= call
    }

    /// The end as Unix seconds (what idempotency leases are measured from).
    pub fn end_unix_secs(&self) -> u64 {
        self.end_unix_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_starts_only_if_it_fits_before_the_reserve() {
        let d = Deadline::new(
            Some(1_000_010_000),
            1_000_000_000,
            Duration::from_secs(25),
            Duration::from_secs(3),
        );
        assert!(d.allows(Duration::from_secs(5)));
        assert!(!d.allows(Duration::from_secs(8)));
        assert_eq!(d.end_unix_secs(), 1_000_010);
        let local = Deadline::new(None, 0, Duration::from_secs(25), Duration::from_secs(3));
        assert!(local.allows(Duration::from_secs(20)) && !local.allows(Duration::from_secs(23)));
        let spent = Deadline::new(Some(5), 10, Duration::from_secs(25), Duration::from_secs(3));
        assert!(!spent.allows(Duration::from_millis(1)));
    }
}
