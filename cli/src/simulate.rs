//! What `kefu simulate` sends: the URL verification requests and pushes WeChat or Baidu would
//! send, signed and encrypted with the app's keys from the registry by
//! `shared::protocol::simulate`, and each delivery's status, body and latency.
//!
//! Not the command line (flags, printing, exit status): `commands::simulate`.

use std::time::{Duration, Instant};

use shared::ids::{MsgId, Platform};
use shared::message::{InboundMessage, MessageBody, render};
use shared::protocol::reply::{ReplySeal, TRANSFER_CUSTOMER_SERVICE, open_reply};
use shared::protocol::simulate::{
    AppKeys, PushSpec, SimulatedRequest, VerifyVia, push_request, verify_request,
};
use shared::protocol::{DataFormat, Mode, ReceiveIdRule};
use shared::registry::{AppConfig, AppRegistry};

use crate::Error;

/// The open id `--from` defaults to.
pub const DEFAULT_FROM: &str = "oKefuLocalUser0001";

/// What the simulated user sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A text message.
    Text(String),
    /// An image message with this picture URL.
    Image(String),
    /// A mini program card: title and page path.
    MiniProgram {
        /// Card title.
        title: String,
        /// Page path.
        path: String,
    },
    /// The `user_enter_tempsession` event with this `SessionFrom`.
    EnterSession(String),
}

/// One push to simulate.
#[derive(Debug, Clone)]
pub struct Push {
    /// Platform.
    pub platform: Platform,
    /// App id (`{app}` in the route).
    pub app_id: String,
    /// Base URL of `kefu serve` or the deployed API.
    pub url: String,
    /// Plaintext, compatible or safe.
    pub mode: Mode,
    /// JSON or XML.
    pub format: DataFormat,
    /// The message.
    pub content: Content,
    /// The user's open id.
    pub from: String,
    /// How many times the identical request is delivered (a platform retry).
    pub repeat: u32,
}

/// One delivery's outcome.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// HTTP status.
    pub status: u16,
    /// Response body.
    pub body: String,
    /// Time to the full response.
    pub latency: Duration,
    /// A reply other than `success`, opened as the platform opens it: its plaintext, or why it
    /// could not be opened (a bad signature, nonce, key or receive id).
    pub reply: Option<Result<String, String>>,
}

impl Delivery {
    /// Whether the platform would take this answer: `success`, or a reply it can open that
    /// hands the message to WeChat's tool.
    pub fn acknowledged(&self) -> bool {
        self.status == 200
            && (self.body == "success"
                || matches!(&self.reply, Some(Ok(p)) if p.contains(TRANSFER_CUSTOMER_SERVICE)))
    }
}

/// What was pushed and how each delivery went.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The message as the platform rendered it.
    pub message: InboundMessage<'static>,
    /// One entry per delivery.
    pub deliveries: Vec<Delivery>,
}

fn app<'a>(
    registry: &'a AppRegistry,
    platform: Platform,
    app_id: &str,
) -> Result<&'a AppConfig, Error> {
    registry.app(platform, app_id).ok_or_else(|| {
        let known: Vec<String> = registry
            .apps()
            .filter(|a| a.platform == platform)
            .map(|a| a.app_id.clone())
            .collect();
        format!(
            "no {platform} app {app_id} in the registry (known: {})",
            known.join(", ")
        )
        .into()
    })
}

/// The app's verification material, or an error for a registry without it (a send part).
fn credentials(app: &AppConfig) -> Result<&shared::protocol::Credentials, Error> {
    app.credentials.as_ref().ok_or_else(|| {
        format!(
            "the registry has no Token or EncodingAESKey for {} app {}",
            app.platform, app.app_id
        )
        .into()
    })
}

/// The app's keys as the platform console shows them.
pub fn keys(app: &AppConfig) -> Result<AppKeys, Error> {
    let creds = credentials(app)?;
    Ok(AppKeys {
        token: creds.token.expose().to_owned(),
        key: creds.key.clone(),
        receive_id: match &creds.receive_id {
            ReceiveIdRule::Exact(id) => id.clone(),
            ReceiveIdRule::Report => app.app_id.clone(),
        },
    })
}

fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| format!("no randomness: {e}"))?;
    Ok(buf)
}

/// The message the platform would push for `push`, created now with a fresh 63-bit `MsgId`.
pub fn message(push: &Push, app: &AppConfig, now: u64) -> Result<InboundMessage<'static>, Error> {
    let msg_id = || -> Result<Option<MsgId>, Error> {
        let n = u64::from_be_bytes(random_bytes::<8>()?) >> 1;
        Ok(Some(MsgId(n.to_string())))
    };
    let (body, msg_id) = match &push.content {
        Content::Text(t) => (
            MessageBody::Text {
                content: t.clone().into(),
            },
            msg_id()?,
        ),
        Content::Image(url) => (
            MessageBody::Image {
                pic_url: Some(url.clone().into()),
                media_id: (push.platform == Platform::Wechat)
                    .then(|| format!("simulated-media-{now}"))
                    .map(Into::into),
            },
            msg_id()?,
        ),
        Content::MiniProgram { title, path } => (
            MessageBody::MiniProgramPage {
                title: title.clone().into(),
                app_id: app.app_id.clone().into(),
                page_path: path.clone().into(),
                thumb_url: String::new().into(),
                thumb_media_id: format!("simulated-thumb-{now}").into(),
            },
            msg_id()?,
        ),
        Content::EnterSession(from) => (
            MessageBody::UserEnterTempSession {
                session_from: from.clone().into(),
            },
            None,
        ),
    };
    Ok(InboundMessage {
        to_user_name: Some(
            app.original_id
                .clone()
                .unwrap_or_else(|| app.app_id.clone())
                .into(),
        ),
        from_user_name: push.from.clone().into(),
        create_time: now,
        msg_id,
        body,
    })
}

/// The signed (and, outside plaintext mode, encrypted) request for `message`. Baidu safe mode
/// carries its signature in the body, as Baidu does.
pub fn request(
    push: &Push,
    app: &AppConfig,
    message: &InboundMessage<'_>,
    nonce: &str,
) -> Result<SimulatedRequest, Error> {
    let spec = PushSpec {
        platform: push.platform,
        mode: push.mode,
        format: push.format,
        timestamp: message.create_time,
        nonce,
        random: random_bytes::<16>()?,
        body_signature: push.platform == Platform::Baidu && push.mode == Mode::Safe,
        to_user_name: app.original_id.as_deref(),
    };
    Ok(push_request(
        &keys(app)?,
        &spec,
        &render(message, push.format),
    ))
}

fn target(base: &str, platform: Platform, app_id: &str, query: &str) -> String {
    let base = base.trim_end_matches('/');
    if query.is_empty() {
        format!("{base}/{platform}/{app_id}")
    } else {
        format!("{base}/{platform}/{app_id}?{query}")
    }
}

/// Delivers `sim` once.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
    sim: &SimulatedRequest,
) -> Result<Delivery, Error> {
    let started = Instant::now();
    let builder = match sim.method {
        "GET" => client.get(url),
        _ => client.post(url).body(sim.body.clone()),
    };
    let resp = builder
        .header(reqwest::header::CONTENT_TYPE, sim.content_type)
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e} (is `kefu serve` running?)"))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    Ok(Delivery {
        status,
        body,
        latency: started.elapsed(),
        reply: None,
    })
}

/// What the platform reads out of a reply to a push in `mode`, when it is not `success`.
fn open(keys: &AppKeys, mode: Mode, body: &str, nonce: &str) -> Option<Result<String, String>> {
    if body == "success" || body.is_empty() {
        return None;
    }
    if mode == Mode::Plaintext {
        return Some(Ok(body.to_owned()));
    }
    let seal = ReplySeal {
        token: &keys.token,
        key: &keys.key,
        receive_id: &keys.receive_id,
    };
    Some(
        open_reply(&seal, body.as_bytes(), nonce)
            .map(|(_, plaintext)| plaintext)
            .map_err(|e| e.to_string()),
    )
}

fn client() -> Result<reqwest::Client, Error> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// Builds the push and delivers the identical request `push.repeat` times (at least once).
pub async fn push(registry: &AppRegistry, push: &Push) -> Result<Pushed, Error> {
    let app = app(registry, push.platform, &push.app_id)?;
    let message = message(push, app, crate::unix_now())?;
    let nonce = u32::from_be_bytes(random_bytes::<4>()?).to_string();
    let sim = request(push, app, &message, &nonce)?;
    let url = target(&push.url, push.platform, &push.app_id, &sim.query);
    let client = client()?;
    let keys = keys(app)?;
    let mut deliveries = Vec::new();
    for _ in 0..push.repeat.max(1) {
        let mut delivery = deliver(&client, &url, &sim).await?;
        if delivery.status == 200 {
            delivery.reply = open(&keys, push.mode, &delivery.body, &nonce);
        }
        deliveries.push(delivery);
    }
    Ok(Pushed {
        message,
        deliveries,
    })
}

/// Sends the URL verification request and returns the delivery and the echo string expected back.
pub async fn verify(
    registry: &AppRegistry,
    platform: Platform,
    app_id: &str,
    base: &str,
    via: VerifyVia,
) -> Result<(Delivery, String), Error> {
    let app = app(registry, platform, app_id)?;
    let echo = format!("kefu-echo-{}", crate::random_hex(8)?);
    let nonce = u32::from_be_bytes(random_bytes::<4>()?).to_string();
    let sim = verify_request(
        credentials(app)?.token.expose(),
        crate::unix_now(),
        &nonce,
        &echo,
        platform,
        via,
    );
    let url = target(base, platform, app_id, &sim.query);
    let delivery = deliver(&client()?, &url, &sim).await?;
    Ok((delivery, echo))
}
