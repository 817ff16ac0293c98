//! The invariants checked at the end of a run, and the report: faults injected per kind,
//! invariants checked with their counts and first violations, and what the run came to.
//! Not here: the checks made during the run (the window after every ledger write and every
//! send, in `store` and `outbound`), which this only collects. It reads the conversations of the
//! simulated users, so a message stored under a key no simulated user has would go unseen.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use shared::ports::MessageStore;
use shared::records::{Direction, StoredMessage};
use testkit::fake_platform::FakePlatform;

use crate::Config;
use crate::inbound::{Ident, Inbound, conversation_key};
use crate::inject::Kind;
use crate::outbound::{Outbound, double_deliveries};
use crate::sqs::SimQueue;
use crate::store::SimStore;

/// Violations kept per invariant in the report.
const SHOWN: usize = 5;

/// One invariant's result.
#[derive(Debug, Clone)]
pub struct Check {
    /// What must hold.
    pub name: &'static str,
    /// How many cases were checked.
    pub checked: u64,
    /// Cases where it did not hold.
    pub violations: Vec<String>,
}

/// A run's outcome.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was run.
    pub config: Config,
    /// Faults injected, per kind.
    pub injected: BTreeMap<Kind, u64>,
    /// The invariants.
    pub checks: Vec<Check>,
    /// Figures: messages stored, sends per outcome, records dead-lettered…
    pub figures: Vec<(String, u64)>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Report {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.violations.is_empty())
    }

    /// Kinds injected fewer than `min` times.
    pub fn under_injected(&self, min: u64) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| self.injected.get(k).copied().unwrap_or(0) < min)
            .collect()
    }
}

/// Checks every invariant against the store, the platform's record and the run's own logs.
pub async fn check(
    store: &SimStore,
    fake: &FakePlatform,
    inbound: &Inbound,
    outbound: &Outbound,
    queue: &SimQueue,
) -> Report {
    let mut stored: HashMap<String, Vec<StoredMessage>> = HashMap::new();
    for (app_index, app) in inbound.apps().iter().enumerate() {
        for i in 0..inbound.users_per_app() {
            let key = conversation_key(app, &inbound.open_id(app_index, i));
            let messages = store.inner.messages(&key, None).await.unwrap_or_default();
            if !messages.is_empty() {
                stored.insert(key.to_string(), messages);
            }
        }
    }
    let ident = |pk: &str, m: &StoredMessage| -> Ident {
        let id = match &m.msg_id {
            Some(id) => id.clone(),
            None => format!("event@{}", m.create_time),
        };
        (pk.to_owned(), id)
    };
    let mut counts: HashMap<Ident, u64> = HashMap::new();
    let mut inbound_stored = 0;
    for (pk, messages) in &stored {
        for m in messages.iter().filter(|m| m.direction == Direction::In) {
            inbound_stored += 1;
            *counts.entry(ident(pk, m)).or_default() += 1;
        }
    }

    let mut once = Check {
        name: "every push answered success is stored exactly once",
        checked: 0,
        violations: Vec::new(),
    };
    for acked in &inbound.acked {
        once.checked += 1;
        let n = counts.get(&acked.ident).copied().unwrap_or(0);
        if n != 1 {
            once.violations.push(format!(
                "{} {}: stored {n} times",
                acked.ident.0, acked.ident.1
            ));
        }
    }

    let mut genuine = Check {
        name: "nothing is stored that the platform did not send",
        checked: 0,
        violations: inbound.violations.clone(),
    };
    for (pk, messages) in &stored {
        for m in messages.iter().filter(|m| m.direction == Direction::In) {
            genuine.checked += 1;
            let id = ident(pk, m);
            match inbound.genuine.get(&id) {
                Some(content) if content.is_none() || *content == m.content => {}
                Some(_) => genuine
                    .violations
                    .push(format!("{pk} {}: stored with other content", id.1)),
                None => genuine
                    .violations
                    .push(format!("{pk} {}: never sent by the platform", id.1)),
            }
        }
    }

    let (send_calls, doubled) = double_deliveries(fake);
    let quota = Check {
        name: "the platform never refuses for quota a send kefu allowed",
        checked: send_calls,
        violations: match fake.quota_refusals() {
            0 => Vec::new(),
            n => vec![format!("{n} sends refused by the platform's own quota")],
        },
    };
    let single = Check {
        name: "no client_msg_id is delivered twice",
        checked: outbound.requests,
        violations: doubled,
    };
    let (mut windows, writes) = store.window_report();
    windows.extend(outbound.violations.iter().cloned());
    once.violations.sort();
    genuine.violations.sort();
    let grant = Check {
        name: "no window exceeds its grant (nor the platform's)",
        checked: writes + outbound.window_checks,
        violations: windows,
    };

    let mut figures = vec![
        (
            "pushes answered success".to_owned(),
            inbound.acked.len() as u64,
        ),
        ("inbound messages stored".to_owned(), inbound_stored),
        (
            "hostile pushes sent".to_owned(),
            inbound.forged.len() as u64,
        ),
        (
            "hostile pushes queued (then refused)".to_owned(),
            inbound.forged_answered_success,
        ),
        (
            "pushes the platform gave up on".to_owned(),
            inbound.given_up,
        ),
        (
            "records dead-lettered, then redriven".to_owned(),
            queue.dead_lettered(),
        ),
        ("send requests".to_owned(), outbound.requests),
        ("platform send calls".to_owned(), send_calls),
    ];
    for (label, n) in outbound.outcomes() {
        figures.push((format!("send answers: {label}"), n));
    }
    Report {
        config: Config::new(0, 0, 0),
        injected: BTreeMap::new(),
        checks: vec![once, genuine, quota, single, grant],
        figures,
        elapsed: Duration::ZERO,
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "faults: seed {} · {} pushes · {} sends · {} users per app{}",
            c.seed,
            c.pushes,
            c.sends,
            c.users_per_app,
            c.sabotage
                .map_or(String::new(), |s| format!(" · sabotage {s:?}"))
        )?;
        writeln!(f, "\nfaults injected")?;
        for kind in Kind::ALL {
            let n = self.injected.get(&kind).copied().unwrap_or(0);
            writeln!(f, "  {:<40} {n:>8}", kind.name())?;
        }
        writeln!(f, "\ninvariants")?;
        for check in &self.checks {
            let verdict = if check.violations.is_empty() {
                "ok".to_owned()
            } else {
                format!("FAILED ({})", check.violations.len())
            };
            writeln!(
                f,
                "  {:<58} {:>9} checked  {verdict}",
                check.name, check.checked
            )?;
            for v in check.violations.iter().take(SHOWN) {
                writeln!(f, "      {v}")?;
            }
        }
        writeln!(f, "\nfigures")?;
        for (label, n) in &self.figures {
            writeln!(f, "  {label:<40} {n:>8}")?;
        }
        write!(f, "\nwall time {:.1} s", self.elapsed.as_secs_f64())
    }
}
