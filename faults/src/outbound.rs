//! The callers' side of outbound traffic: sends through the real sender use case to the fake
//! platform over HTTP, with one platform fault armed per send (a timeout after delivery, −1,
//! 45047, 45015, 90001, revoked tokens), a second sender acting inside the first one's
//! reservation, and callers retrying under the same `client_msg_id`. Each text carries its
//! `client_msg_id` at both ends (`*cm.ID*` … `*end.ID*`, unchanged by form encoding), so the
//! platform's record shows every delivery of every part. `FAULTS_TRACE=1` prints every attempt
//! to stderr, to follow a failing seed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use shared::api::baidu::BaiduClient;
use shared::api::wechat::WechatClient;
use shared::api::{RetryPolicy, http_client};
use shared::clock::Clock;
use shared::ids::Platform;
use shared::ports::MessageStore;
use shared::registry::AppRegistry;
use testkit::fake_platform::FakePlatform;
use testkit::memory::{InMemoryMediaIds, InMemoryTokens};

use crate::clock::SimClock;
use crate::inbound::{SimApp, conversation_key};
use crate::inject::{Kind, Shared};
use crate::rng::Rng;
use crate::store::SimStore;

/// The sender as the simulation runs it.
pub type Sender = sender::App<SimStore, InMemoryTokens, InMemoryMediaIds, SimClock>;

/// The sender's platform timeout; an injected stall is well past it.
/// (Real time: both are far from a loopback call's few milliseconds, so a loaded machine does not
/// turn an ordinary call into a timeout and change the run.)
const PLATFORM_TIMEOUT: Duration = Duration::from_millis(500);
const STALL: Duration = Duration::from_millis(1500);
const P_TOKEN: f64 = 0.02;
const P_TIMEOUT: f64 = 0.018;
const P_BUSY: f64 = 0.03;
const P_45047: f64 = 0.025;
const P_45015: f64 = 0.025;
const P_90001: f64 = 0.05;
const P_CONCURRENT: f64 = 0.03;
const P_LOST_ANSWER: f64 = 0.03;
/// Attempts a caller makes for one request (the first and its retries).
const CLIENT_ATTEMPTS: u32 = 4;

/// The sender, assembled as deployed but with the simulation's store, clock and platform.
pub fn sender(
    fake: &FakePlatform,
    registry: AppRegistry,
    store: SimStore,
    clock: SimClock,
) -> Result<Sender, String> {
    let http =
        http_client(Duration::from_millis(500), PLATFORM_TIMEOUT).map_err(|e| e.to_string())?;
    let fast = RetryPolicy {
        backoff: vec![Duration::from_millis(1), Duration::from_millis(1)],
    };
    let policy = sender::fetch::FetchPolicy::local();
    let images =
        sender::fetch::image_client(&policy, PLATFORM_TIMEOUT).map_err(|e| e.to_string())?;
    Ok(sender::App::new(
        sender::Settings {
            platform_timeout: PLATFORM_TIMEOUT,
            image_fetch: policy,
            ..sender::Settings::default()
        },
        registry,
        store,
        InMemoryTokens::new(),
        InMemoryMediaIds::new(),
        sender::Clients {
            wechat: WechatClient::new(http.clone(), fake.base_url()).with_retry(fast.clone()),
            baidu: BaiduClient::new(http, fake.base_url()).with_retry(fast),
            images,
        },
        clock,
    ))
}

/// How each answer was labelled, shared with the concurrent sends.
type Outcomes = Arc<Mutex<BTreeMap<String, u64>>>;

/// The callers.
pub struct Outbound {
    app: Arc<Sender>,
    store: SimStore,
    faults: Shared,
    rng: Rng,
    clock: SimClock,
    next_id: u64,
    fresh_ids_on_retry: bool,
    trace: bool,
    outcomes: Outcomes,
    /// Requests made (first attempts, concurrent ones included).
    pub requests: u64,
    /// Windows checked against the platform's after a send.
    pub window_checks: u64,
    /// kefu's window above the platform's after a send.
    pub violations: Vec<String>,
}

impl Outbound {
    /// Callers of `app`. `fresh_ids_on_retry` breaks the callers on purpose (a retry under a new
    /// `client_msg_id`), to show the delivery check fails.
    pub fn new(
        app: Sender,
        store: SimStore,
        faults: Shared,
        rng: Rng,
        clock: SimClock,
        fresh_ids_on_retry: bool,
    ) -> Self {
        Self {
            app: Arc::new(app),
            store,
            faults,
            rng,
            clock,
            next_id: 0,
            fresh_ids_on_retry,
            trace: std::env::var_os("FAULTS_TRACE").is_some(),
            outcomes: Arc::default(),
            requests: 0,
            window_checks: 0,
            violations: Vec::new(),
        }
    }

    /// Answers by label (`sent`, `partial`, `unknown`, or the error label).
    pub fn outcomes(&self) -> BTreeMap<String, u64> {
        self.outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn request(&mut self, app: &SimApp, open_id: &str) -> (String, Value) {
        self.next_id += 1;
        let id = format!("sim-{}", self.next_id);
        let filler = if self.rng.below(5) == 0 {
            "x".repeat(2500)
        } else {
            format!("reply {}", self.next_id)
        };
        let body = json!({
            "app_id": app.app_id,
            "platform": match app.platform { Platform::Wechat => "wechat", Platform::Baidu => "baidu" },
            "open_id": open_id,
            "msg_type": "text",
            "content": format!("*cm.{id}* {filler} *end.{id}*"),
            "client_msg_id": id,
        });
        (id, body)
    }

    /// Arms at most one platform fault for the next call to `app`'s send path.
    fn arm(&self, fake: &FakePlatform, app: &SimApp) -> Option<Kind> {
        if self.faults.roll(Kind::TokenExpired, P_TOKEN) {
            fake.invalidate_tokens();
        }
        let path = match app.platform {
            Platform::Wechat => "/cgi-bin/message/custom/send",
            Platform::Baidu => "/rest/2.0/smartapp/message/custom/send",
        };
        if self
            .faults
            .roll(Kind::PlatformTimeoutAfterDelivery, P_TIMEOUT)
        {
            fake.delay_next(path, STALL);
            return Some(Kind::PlatformTimeoutAfterDelivery);
        }
        let (kind, code, times) = match app.platform {
            Platform::Wechat if self.faults.roll(Kind::PlatformBusy, P_BUSY) => {
                (Kind::PlatformBusy, -1, 1 + self.faults.below(3) as u32)
            }
            Platform::Wechat if self.faults.roll(Kind::Injected45047, P_45047) => {
                (Kind::Injected45047, 45047, 1)
            }
            Platform::Wechat if self.faults.roll(Kind::Injected45015, P_45015) => {
                (Kind::Injected45015, 45015, 1)
            }
            Platform::Baidu if self.faults.roll(Kind::Injected90001, P_90001) => {
                (Kind::Injected90001, 90001, 1)
            }
            _ => return None,
        };
        fake.fail_next(path, code, times);
        Some(kind)
    }

    /// One caller's request to (`app`, `open_id`), retried as a caller would, with whatever
    /// fault is armed; then kefu's window is checked against the platform's.
    pub async fn send(&mut self, fake: &FakePlatform, app: &SimApp, open_id: &str) {
        let (before_injected, before_delayed) = (fake.injected_faults(), fake.delayed_answers());
        let armed = self.arm(fake, app);
        if self.faults.roll(Kind::ConcurrentSend, P_CONCURRENT) {
            let (id, body) = self.request(app, open_id);
            self.requests += 1;
            let sender = Arc::clone(&self.app);
            let outcomes = Arc::clone(&self.outcomes);
            let trace = self.trace;
            self.store.run_inside_next_reservation(Box::pin(async move {
                let (status, label) = attempt(&sender, &body).await;
                if trace {
                    eprintln!("send {id} (concurrent): answered {status} {label}");
                }
                count(&outcomes, &label);
            }));
        }
        let (mut id, mut body) = self.request(app, open_id);
        self.requests += 1;
        let mut first_label = None;
        for n in 0..CLIENT_ATTEMPTS {
            let (status, label) = attempt(&self.app, &body).await;
            if self.trace {
                eprintln!(
                    "send {id} to {open_id} at {} attempt {n}: armed {armed:?}, answered {status} {label}",
                    self.clock.now_secs()
                );
            }
            if first_label.is_none() {
                count(&self.outcomes, &label);
                first_label = Some(label);
            }
            // 502 and 504 are final answers (a repeat replays them); 409 and 5xx before a send are not.
            let retryable = matches!(status, 409 | 500 | 503);
            if n + 1 == CLIENT_ATTEMPTS {
                break;
            }
            let lost = !retryable && self.faults.roll(Kind::ClientRetry, P_LOST_ANSWER);
            if !(retryable || lost) {
                break;
            }
            if retryable {
                self.faults.count(Kind::ClientRetry);
                // Past the idempotency lease of an attempt that died before sending.
                self.clock.advance(60);
                fake.set_now(self.clock.now_secs());
            }
            if self.fresh_ids_on_retry {
                let fresh = format!("{id}-again");
                body["client_msg_id"] = json!(fresh);
                let content = body["content"]
                    .as_str()
                    .unwrap_or_default()
                    .replace(&format!("*end.{id}*"), &format!("*end.{id}* *end.{fresh}*"));
                body["content"] = json!(content);
                id = fresh;
            }
        }
        if self.store.take_unrun() {
            self.faults.uncount(Kind::ConcurrentSend);
            self.requests -= 1;
        }
        if let Some(kind) = armed {
            let used = match kind {
                Kind::PlatformTimeoutAfterDelivery => fake.delayed_answers() > before_delayed,
                _ => fake.injected_faults() > before_injected,
            };
            if !used {
                self.faults.uncount(kind);
            }
        }
        fake.clear_injections();
        self.check_window(fake, app, open_id).await;
    }

    async fn check_window(&mut self, fake: &FakePlatform, app: &SimApp, open_id: &str) {
        let now = self.clock.now_secs();
        let key = conversation_key(app, open_id);
        let Ok(Some(c)) = self.store.inner.conversation(&key).await else {
            return;
        };
        self.window_checks += 1;
        let kefu = c.window.remaining_at(now);
        let platform = fake.remaining_now(app.app_id, open_id);
        if self.trace {
            eprintln!(
                "window of {open_id} at {now}: kefu {kefu} {:?}, platform {platform}",
                c.window
            );
        }
        if kefu > platform {
            self.violations.push(format!(
                "{} at {now}: kefu allows {kefu}, the platform {platform} (window {:?})",
                key, c.window
            ));
        }
    }
}

fn count(outcomes: &Outcomes, label: &str) {
    *outcomes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(label.to_owned())
        .or_default() += 1;
}

/// One HTTP-equivalent call of the send use case: (status, label).
async fn attempt(app: &Sender, body: &Value) -> (u16, String) {
    let bytes = body.to_string();
    let request = match sender::SendRequest::from_json(bytes.as_bytes()) {
        Ok(r) => r,
        Err(e) => return (e.status().as_u16(), label_of(&e.body())),
    };
    let deadline = app.local_deadline();
    match app.send(&request, &deadline).await {
        Ok(answer) => {
            let label = answer.body["status"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| label_of(&answer.body));
            (answer.status.as_u16(), label)
        }
        Err(e) => (e.status().as_u16(), label_of(&e.body())),
    }
}

fn label_of(body: &Value) -> String {
    body["error"].as_str().unwrap_or("other").to_owned()
}

/// The `client_msg_id`s delivered more than once, from the platform's record of every send call.
pub fn double_deliveries(fake: &FakePlatform) -> (u64, Vec<String>) {
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    let mut calls = 0;
    for call in fake.calls() {
        if !call.path.ends_with("/custom/send") {
            continue;
        }
        calls += 1;
        for marker in ["*cm.", "*end."] {
            let mut rest = call.raw.as_str();
            while let Some(at) = rest.find(marker) {
                rest = &rest[at + marker.len()..];
                let id = rest.split('*').next().unwrap_or_default();
                *seen.entry(format!("{marker}{id}")).or_default() += 1;
            }
        }
    }
    let doubled = seen
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(m, n)| format!("{m} delivered {n} times"))
        .collect();
    (calls, doubled)
}
