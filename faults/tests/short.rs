//! A short seeded run of the fault simulation, part of `make test`: every invariant holds, every
//! fault kind is injected, a seed replays exactly, and two deliberate defects — a queue that loses
//! acknowledged pushes, callers that retry under a new id — are caught by the checks that claim
//! to catch them (so those checks can fail; the ledger checks are shown failing by the contract
//! tests' scenarios, which the simulation found).

use faults::inject::Kind;
use faults::{Config, Report, Sabotage, run};

async fn short(seed: u64, sabotage: Option<Sabotage>) -> Report {
    let mut config = Config::new(seed, 8_000, 1_500);
    config.users_per_app = 150;
    config.sabotage = sabotage;
    run(&config).await.unwrap_or_else(|e| panic!("setup: {e}"))
}

fn failed(report: &Report) -> Vec<&'static str> {
    report
        .checks
        .iter()
        .filter(|c| !c.violations.is_empty())
        .map(|c| c.name)
        .collect()
}

#[tokio::test]
async fn a_short_run_holds_every_invariant_with_every_fault_injected() {
    let report = short(20261203, None).await;
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(report.under_injected(1), Vec::<Kind>::new(), "{report}");
    assert!(report.checks.iter().all(|c| c.checked > 0), "{report}");
}

#[tokio::test]
async fn a_seed_replays_the_same_run() {
    let (a, b) = (short(7, None).await, short(7, None).await);
    assert_eq!(a.injected, b.injected);
    assert_eq!(a.figures, b.figures);
    let other = short(8, None).await;
    assert_ne!(a.injected, other.injected);
}

#[tokio::test]
async fn a_queue_that_drops_acknowledged_pushes_is_caught() {
    let report = short(3, Some(Sabotage::DropQueuedMessages)).await;
    assert_eq!(
        failed(&report),
        ["every push answered success is stored exactly once"],
        "{report}"
    );
}

#[tokio::test]
async fn callers_retrying_under_a_new_id_are_caught_as_double_deliveries() {
    let report = short(3, Some(Sabotage::FreshClientMsgIdOnRetry)).await;
    assert!(
        failed(&report).contains(&"no client_msg_id is delivered twice"),
        "{report}"
    );
}
