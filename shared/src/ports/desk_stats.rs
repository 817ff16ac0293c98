//! The port for the desk's daily counters (the rules are `crate::desk::stats`). Contracts only;
//! the DynamoDB adapter is `adapters::dynamodb::desk_stats`.

use async_trait::async_trait;

use super::StoreError;
use crate::desk::stats::{Counter, Counts};

/// The counters.
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// Adds `by` to each counter of `app`'s (`platform#app_id`) `day` — the app's own row, and
    /// the agent's when `agent` is given — without reading.
    async fn add(
        &self,
        app: &str,
        day: &str,
        agent: Option<&str>,
        by: &[(Counter, u64)],
    ) -> Result<(), StoreError>;

    /// The rows of `app` from `first` to `last` (days, inclusive): `(day, agent or None, counts)`.
    async fn rows(
        &self,
        app: &str,
        first: &str,
        last: &str,
    ) -> Result<Vec<(String, Option<String>, Counts)>, StoreError>;
}
