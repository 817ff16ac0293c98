//! Fault simulation: a seeded, deterministic, in-process run of the real ingress, processor and
//! sender handlers through fault-injecting ports — SQS ([`sqs`]), DynamoDB ([`store`]), the
//! platforms' pushes ([`inbound`]) and send APIs ([`outbound`], over HTTP to `testkit`'s fake
//! platform, which enforces the quota itself) — on a virtual clock. At the end [`check`] proves the
//! invariants: every push answered `success` stored exactly once, nothing stored that the platform
//! did not send, no send kefu allowed refused by the platform for quota, one delivery per
//! `client_msg_id`, no window above its grant.
//!
//! Steps run one at a time, in an order drawn from the seed, so a failing seed replays the same
//! run. Not here: real AWS, real time, or concurrency beyond what the hooks interleave.

pub mod check;
pub mod clock;
pub mod inbound;
pub mod inject;
pub mod outbound;
pub mod rng;
pub mod sqs;
pub mod store;

use shared::clock::Clock;
use shared::quota::QuotaPolicy;
use shared::registry::AppRegistry;
use testkit::fake_platform::FakePlatform;

pub use check::Report;
use clock::SimClock;
use inbound::Inbound;
use inject::Shared;
use outbound::Outbound;
use rng::Rng;
use sqs::SimQueue;
use store::SimStore;

/// The run's virtual start (2026-01-01T00:00:00Z).
pub const T0: u64 = 1_767_225_600;

/// A deliberate defect, to show the checks catch what they claim to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    /// The queue answers `Ok` for every 50th message and drops it.
    DropQueuedMessages,
    /// Callers retry under a new `client_msg_id`.
    FreshClientMsgIdOnRetry,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The seed: the same seed replays the same run.
    pub seed: u64,
    /// User actions the platforms push (retries and hostile pushes come on top).
    pub pushes: u64,
    /// Caller requests to the sender (retries and concurrent ones come on top).
    pub sends: u64,
    /// Users per simulated app (three apps).
    pub users_per_app: usize,
    /// A deliberate defect, if any.
    pub sabotage: Option<Sabotage>,
}

impl Config {
    /// `pushes` and `sends` under `seed`, 400 users per app, nothing sabotaged.
    pub fn new(seed: u64, pushes: u64, sends: u64) -> Self {
        Self {
            seed,
            pushes,
            sends,
            users_per_app: 400,
            sabotage: None,
        }
    }
}

/// Runs the simulation and checks it. `Err` only when the simulation could not be set up.
pub async fn run(config: &Config) -> Result<Report, String> {
    let started = std::time::Instant::now();
    shared::metrics::silence();
    let mut rng = Rng::new(config.seed);
    let mut world = rng.fork(1);
    let faults = Shared::new(rng.fork(2));
    let clock = SimClock::at_secs(T0);
    let fake = FakePlatform::start().await.map_err(|e| e.to_string())?;
    fake.set_default_grant(0);
    fake.set_now(T0);
    let registry =
        AppRegistry::parse(&inbound::registry_json()).map_err(|e| format!("registry: {e}"))?;
    let store = SimStore::new(faults.clone());
    let mut queue = SimQueue::new(faults.clone(), clock.clone());
    if config.sabotage == Some(Sabotage::DropQueuedMessages) {
        queue = queue.losing_every(50);
    }
    let ingress = ingress::App::new(
        ingress::Limits::default(),
        registry.clone(),
        queue.clone(),
        clock.clone(),
    );
    let processor = processor::App::new(store.clone(), QuotaPolicy::default());
    let sender = outbound::sender(&fake, registry, store.clone(), clock.clone())?;
    let mut inbound = Inbound::new(
        rng.fork(3),
        faults.clone(),
        clock.clone(),
        config.users_per_app,
    )
    .map_err(|e| e.to_string())?;
    let mut outbound = Outbound::new(
        sender,
        store.clone(),
        faults.clone(),
        rng.fork(4),
        clock.clone(),
        config.sabotage == Some(Sabotage::FreshClientMsgIdOnRetry),
    );
    let apps = inbound.apps().to_vec();
    let mut recent: Vec<(usize, String)> = Vec::new();
    let (mut pushes, mut sends) = (0u64, 0u64);
    while pushes < config.pushes || sends < config.sends {
        // Mostly seconds apart; now and then two days pass and every window closes.
        let step = if world.below(5000) == 0 {
            49 * 3600
        } else {
            world.range(1, 6)
        };
        clock.advance(step);
        fake.set_now(clock.now_secs());
        if pushes < config.pushes {
            recent.push(inbound.user_acts(&fake));
            if recent.len() > 40 {
                recent.remove(0);
            }
            pushes += 1;
        }
        inbound.deliver_due(&ingress).await;
        inbound.maybe_forge(&ingress, &store).await;
        if world.below(4) == 0 {
            while queue.poll(&processor).await > 0 {}
        }
        let due = pushes >= config.pushes || sends * config.pushes <= pushes * config.sends;
        if sends < config.sends && due {
            let (app, open_id) = match recent.get(world.below(recent.len() as u64 + 8) as usize) {
                Some(target) => target.clone(),
                _ => {
                    let app = world.below(apps.len() as u64) as usize;
                    (
                        app,
                        inbound.open_id(app, world.below(config.users_per_app as u64) as usize),
                    )
                }
            };
            for _ in 0..world.range(1, 3) {
                if sends < config.sends {
                    outbound.send(&fake, &apps[app], &open_id).await;
                    sends += 1;
                }
            }
        }
    }
    drain(
        &faults,
        &clock,
        &fake,
        &mut inbound,
        &ingress,
        &queue,
        &processor,
    )
    .await;
    let mut report = check::check(&store, &fake, &inbound, &outbound, &queue).await;
    report.config = config.clone();
    report.injected = faults.counts();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Faults off: the platforms finish their retries, the queue empties, the DLQ is redriven.
async fn drain(
    faults: &Shared,
    clock: &SimClock,
    fake: &FakePlatform,
    inbound: &mut Inbound,
    ingress: &inbound::Ingress,
    queue: &SimQueue,
    processor: &processor::App<SimStore>,
) {
    faults.set_enabled(false);
    for redriven in [false, true] {
        if redriven {
            queue.redrive();
        }
        loop {
            inbound.deliver_due(ingress).await;
            while queue.poll(processor).await > 0 {}
            let next = [inbound.next_attempt_at(), queue.next_visible_at()]
                .into_iter()
                .flatten()
                .min();
            let Some(at) = next else { break };
            let now = clock.now_secs();
            clock.advance(at.saturating_sub(now).max(1));
            fake.set_now(clock.now_secs());
        }
    }
}
