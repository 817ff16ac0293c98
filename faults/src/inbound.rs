//! The platforms' side of inbound traffic: the simulated apps and users, each user action (the
//! platform opens its own quota window at once, then pushes), the push as the platform signs and
//! encrypts it, its retries (up to four attempts, same or new nonce, repeated after a lost
//! `success`) and skewed `CreateTime`s; records what the platform sent and what kefu answered.
//! A Baidu app's `app_key` is its AppID, so the fake platform (which knows apps by token owner)
//! keys windows the same way. Not here: hostile pushes (`inbound::forge`).

use std::collections::{HashMap, HashSet};

use lambda_http::http::{self, StatusCode};
use lambda_http::{Body, Request};
use serde_json::Map;
use shared::clock::Clock;
use shared::ids::{MsgId, Platform};
use shared::message::{InboundMessage, MessageBody, render};
use shared::protocol::simulate::{AppKeys, PushSpec, SimulatedRequest, push_request};
use shared::protocol::{AesKey, DataFormat, KeyError, Mode};
use testkit::fake_platform::FakePlatform;

use crate::clock::SimClock;
use crate::inject::{Kind, Shared};
use crate::rng::Rng;
use crate::sqs::SimQueue;

mod forge;

/// The ingress handler as the simulation runs it.
pub type Ingress = ingress::App<SimQueue, SimClock>;

const KEY: &str = "kefuFaultSimKey0000000000000000000000000001";
const P_SKEW: f64 = 0.004;
const P_REPEAT: f64 = 0.003;
/// Seconds between a platform's push attempts.
const RETRY_SECS: u64 = 5;
/// Attempts per push (the first and three retries).
const ATTEMPTS: u32 = 4;
const H48: u64 = 48 * 3600;

/// One simulated mini program.
#[derive(Debug, Clone)]
pub struct SimApp {
    /// Its platform.
    pub platform: Platform,
    /// Its AppID (the route).
    pub app_id: &'static str,
    /// Its console's message mode.
    pub mode: Mode,
    format: DataFormat,
    to_user: &'static str,
    token: &'static str,
}

/// The simulated apps: WeChat safe mode (JSON), WeChat plaintext mode (XML), Baidu safe mode.
pub fn apps() -> Vec<SimApp> {
    vec![
        SimApp {
            platform: Platform::Wechat,
            app_id: "wxsimsafe0000001",
            mode: Mode::Safe,
            format: DataFormat::Json,
            to_user: "gh_simsafe00001",
            token: "simTokenSafe",
        },
        SimApp {
            platform: Platform::Wechat,
            app_id: "wxsimplain000001",
            mode: Mode::Plaintext,
            format: DataFormat::Xml,
            to_user: "gh_simplain0001",
            token: "simTokenPlain",
        },
        SimApp {
            platform: Platform::Baidu,
            app_id: "20000001",
            mode: Mode::Safe,
            format: DataFormat::Json,
            to_user: "20000001",
            token: "simTokenBaidu",
        },
    ]
}

/// The registry the handlers load, for [`apps`].
pub fn registry_json() -> String {
    let entries: Vec<String> = apps()
        .iter()
        .map(|a| match a.platform {
            Platform::Wechat => format!(
                r#"{{"platform":"wechat","app_id":"{}","original_id":"{}","mode":"{}","token":"{}","encoding_aes_key":"{KEY}","app_secret":"sim-secret"}}"#,
                a.app_id,
                a.to_user,
                mode_name(a.mode),
                a.token
            ),
            Platform::Baidu => format!(
                r#"{{"platform":"baidu","app_id":"{}","mode":"{}","token":"{}","encoding_aes_key":"{KEY}","app_key":"{}","app_secret":"sim-secret","default_user_type":2}}"#,
                a.app_id,
                mode_name(a.mode),
                a.token,
                a.app_id
            ),
        })
        .collect();
    format!(r#"{{"apps":[{}]}}"#, entries.join(","))
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Plaintext => "plaintext",
        Mode::Compatible => "compatible",
        Mode::Safe => "safe",
    }
}

/// How a stored inbound message is recognised: (conversation partition key, MsgId or
/// `event@CreateTime`).
pub type Ident = (String, String);

/// A push kefu answered `success`, to be found stored exactly once.
#[derive(Debug, Clone)]
pub struct Acked {
    /// Its identity.
    pub ident: Ident,
    /// The app index and user.
    pub user: (usize, String),
}

struct Push {
    app: usize,
    open_id: String,
    message: InboundMessage<'static>,
    attempts: u32,
    next_at: u64,
    request: Option<SimulatedRequest>,
    acked: bool,
}

/// The platforms' inbound side.
pub struct Inbound {
    apps: Vec<SimApp>,
    keys: Vec<AppKeys>,
    rng: Rng,
    faults: Shared,
    clock: SimClock,
    users_per_app: usize,
    next_msg_id: u64,
    last_event_at: HashMap<String, u64>,
    pending: Vec<Push>,
    /// Everything the platforms pushed, with its exact content (`None` for events).
    pub genuine: HashMap<Ident, Option<String>>,
    /// Pushes answered `success`.
    pub acked: Vec<Acked>,
    acked_set: HashSet<Ident>,
    /// Hostile pushes sent: each must never be stored.
    pub forged: Vec<Ident>,
    /// Hostile pushes ingress answered `success` (accepted for queueing, to be refused later).
    pub forged_answered_success: u64,
    /// Pushes the platform gave up on after its last attempt (never answered `success`).
    pub given_up: u64,
    recent_plaintext: Vec<(usize, String, SimulatedRequest, String)>,
    /// Failures of the simulation's own expectations about answers (a forged signature accepted).
    pub violations: Vec<String>,
    trace: bool,
}

impl Inbound {
    /// The inbound side for `users_per_app` users per app, drawing from `rng`.
    pub fn new(
        rng: Rng,
        faults: Shared,
        clock: SimClock,
        users_per_app: usize,
    ) -> Result<Self, KeyError> {
        let apps = apps();
        let key = AesKey::from_encoding_aes_key(KEY)?;
        let keys = apps
            .iter()
            .map(|a| AppKeys {
                token: a.token.into(),
                key: key.clone(),
                receive_id: a.app_id.into(),
            })
            .collect();
        Ok(Self {
            apps,
            keys,
            rng,
            faults,
            clock,
            users_per_app,
            next_msg_id: 0,
            last_event_at: HashMap::new(),
            pending: Vec::new(),
            genuine: HashMap::new(),
            acked: Vec::new(),
            acked_set: HashSet::new(),
            forged: Vec::new(),
            forged_answered_success: 0,
            given_up: 0,
            recent_plaintext: Vec::new(),
            violations: Vec::new(),
            trace: std::env::var_os("FAULTS_TRACE").is_some(),
        })
    }

    /// The simulated apps.
    pub fn apps(&self) -> &[SimApp] {
        &self.apps
    }

    /// Open id of user `i` of app `app`.
    pub fn open_id(&self, app: usize, i: usize) -> String {
        format!("o{app}sim{i:05}")
    }

    /// Users per app.
    pub fn users_per_app(&self) -> usize {
        self.users_per_app
    }

    /// The time of the next due attempt.
    pub fn next_attempt_at(&self) -> Option<u64> {
        self.pending.iter().map(|p| p.next_at).min()
    }

    /// A user acts now: the platform applies its grant to its own window and queues the push.
    /// Returns (app index, open id).
    pub fn user_acts(&mut self, fake: &FakePlatform) -> (usize, String) {
        let now = self.clock.now_secs();
        let app = self.rng.below(self.apps.len() as u64) as usize;
        let user = self.rng.below(self.users_per_app as u64) as usize;
        let open_id = self.open_id(app, user);
        let a = self.apps[app].clone();
        let roll = self.rng.below(100);
        let event_key = format!("{app}/{open_id}");
        // Events are deduplicated by (user, CreateTime): one per user per second.
        let event_ok = self.last_event_at.get(&event_key).is_none_or(|t| *t < now);
        let (body, grant) = match (a.platform, roll) {
            (Platform::Wechat, 0..15) if event_ok => (
                MessageBody::UserEnterTempSession {
                    session_from: "sim".into(),
                },
                Some((1, 60)),
            ),
            (Platform::Baidu, 0..10) if event_ok => (
                MessageBody::Event {
                    event: "debug_demo".into(),
                    fields: Map::new(),
                },
                None,
            ),
            _ => {
                self.next_msg_id += 1;
                let content = format!("hello {} from {open_id}", self.next_msg_id);
                (
                    MessageBody::Text {
                        content: content.into(),
                    },
                    Some((5, H48)),
                )
            }
        };
        let is_text = matches!(body, MessageBody::Text { .. });
        let msg_id = is_text.then(|| MsgId(format!("{}", 7_000_000_000 + self.next_msg_id)));
        let mut create_time = now;
        if is_text && self.faults.roll(Kind::ClockSkew, P_SKEW) {
            let skew = self.faults.below(600) + 1;
            create_time = if self.faults.below(2) == 0 {
                now - skew
            } else {
                now + skew
            };
        }
        if !is_text {
            self.last_event_at.insert(event_key, now);
        }
        if let Some((n, secs)) = grant {
            fake.user_acted(a.app_id, &open_id, n, secs);
        }
        if self.trace {
            eprintln!(
                "user {open_id} acts at {now}: CreateTime {create_time}, grant {grant:?}, platform now {}",
                fake.remaining_now(a.app_id, &open_id)
            );
        }
        let message = InboundMessage {
            to_user_name: Some(a.to_user.into()),
            from_user_name: open_id.clone().into(),
            create_time,
            msg_id,
            body,
        };
        let ident = ident_of(&a, &message);
        let content = match &message.body {
            MessageBody::Text { content } => Some(content.to_string()),
            _ => None,
        };
        self.genuine.insert(ident, content);
        self.pending.push(Push {
            app,
            open_id: open_id.clone(),
            message,
            attempts: 0,
            next_at: now,
            request: None,
            acked: false,
        });
        (app, open_id)
    }

    fn sign(&mut self, app: usize, message: &InboundMessage<'_>) -> SimulatedRequest {
        let a = &self.apps[app];
        let nonce = format!("{}", self.rng.next_u64() % 10_000_000_000);
        let spec = PushSpec {
            platform: a.platform,
            mode: a.mode,
            format: a.format,
            timestamp: self.clock.now_secs(),
            nonce: &nonce,
            random: self.rng.bytes16(),
            body_signature: false,
            to_user_name: Some(a.to_user),
        };
        push_request(&self.keys[app], &spec, &render(message, a.format))
    }

    /// Makes every attempt that is due, through the real ingress handler.
    pub async fn deliver_due(&mut self, ingress: &Ingress) {
        let now = self.clock.now_secs();
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].next_at > now {
                i += 1;
                continue;
            }
            let mut push = self.pending.swap_remove(i);
            let request = match push.request.take() {
                None => self.sign(push.app, &push.message),
                Some(previous) if self.rng.below(2) == 0 => {
                    self.faults.count(Kind::PushRetrySameNonce);
                    previous
                }
                Some(_) => {
                    self.faults.count(Kind::PushRetryNewNonce);
                    self.sign(push.app, &push.message)
                }
            };
            push.attempts += 1;
            let a = self.apps[push.app].clone();
            let (status, body) = call(ingress, &a, &request).await;
            let success = status == StatusCode::OK && body == "success";
            if success && !push.acked {
                push.acked = true;
                let ident = ident_of(&a, &push.message);
                if self.acked_set.insert(ident.clone()) {
                    self.acked.push(Acked {
                        ident,
                        user: (push.app, push.open_id.clone()),
                    });
                }
                if a.mode == Mode::Plaintext
                    && let Some(id) = &push.message.msg_id
                {
                    self.recent_plaintext.push((
                        push.app,
                        push.open_id.clone(),
                        request.clone(),
                        id.0.clone(),
                    ));
                    if self.recent_plaintext.len() > 64 {
                        self.recent_plaintext.remove(0);
                    }
                }
            }
            let again = if success {
                push.attempts < ATTEMPTS && self.faults.roll(Kind::PushRepeatAfterSuccess, P_REPEAT)
            } else {
                push.attempts < ATTEMPTS
            };
            if again {
                push.request = Some(request);
                push.next_at = now + RETRY_SECS;
                self.pending.push(push);
            } else if !push.acked {
                self.given_up += 1;
            }
        }
    }
}

/// The conversation key of (`app`, `open_id`).
pub fn conversation_key(app: &SimApp, open_id: &str) -> shared::ids::ConversationKey {
    shared::ids::ConversationKey {
        platform: app.platform,
        app_id: app.app_id.into(),
        open_id: open_id.into(),
    }
}

/// How a message is recognised once stored.
pub fn ident_of(app: &SimApp, message: &InboundMessage<'_>) -> Ident {
    let pk = conversation_key(app, &message.from_user_name).to_string();
    let id = match &message.msg_id {
        Some(id) => id.0.clone(),
        None => format!("event@{}", message.create_time),
    };
    (pk, id)
}

fn query_value<'q>(query: &'q str, name: &str) -> &'q str {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or("")
}

async fn call(ingress: &Ingress, app: &SimApp, sim: &SimulatedRequest) -> (StatusCode, String) {
    let platform = match app.platform {
        Platform::Wechat => "wechat",
        Platform::Baidu => "baidu",
    };
    let uri = format!("/{platform}/{}?{}", app.app_id, sim.query);
    let Ok(req): Result<Request, _> = http::Request::builder()
        .method(sim.method)
        .uri(uri)
        .header("content-type", sim.content_type)
        .body(Body::from(sim.body.clone()))
    else {
        return (StatusCode::BAD_REQUEST, String::new());
    };
    match ingress::handle(ingress, req).await {
        Ok(resp) => (
            resp.status(),
            String::from_utf8_lossy(resp.body().as_ref()).into_owned(),
        ),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
    }
}
