//! A local fake of both platforms' HTTP APIs, for tests and the local
//! dev loop: plain hyper 1 HTTP/1.1 on `127.0.0.1` with a free port.
//!
//! It serves the paths the `shared::api` clients call — WeChat `/cgi-bin/token`,
//! `/cgi-bin/stable_token`, `/cgi-bin/message/custom/send`,
//! `/cgi-bin/message/custom/business/typing`, `/cgi-bin/media/upload`, `/cgi-bin/media/get` (`media`);
//! Baidu `/oauth/2.0/token`,
//! `/rest/2.0/smartapp/message/custom/send` and `…/sendbytp` — and behaves like the platforms
//! where the clients care:
//! - issues tokens `fake-token-N` (`expires_in` 7200 WeChat, 2592000 Baidu), counts token requests
//!   per app, and checks the `access_token` of every other call (unknown → WeChat 40001, Baidu
//!   gateway 110);
//! - enforces the send quota per (app, open_id): [`grant`](FakePlatform::grant) opens a window of
//!   `n` messages; users never granted get the default grant (5, see
//!   [`set_default_grant`](FakePlatform::set_default_grant)); beyond it WeChat answers 45047 and
//!   Baidu 90001; [`expire_window`](FakePlatform::expire_window) makes WeChat answer 45015; with
//!   a clock ([`set_now`](FakePlatform::set_now)), [`user_acted`](FakePlatform::user_acted) opens
//!   windows by the published rule and they close on time; own refusals are counted apart from
//!   injected ones;
//! - records every accepted call in order (never the token or a secret);
//! - injects faults: [`fail_next`](FakePlatform::fail_next),
//!   [`delay_next`](FakePlatform::delay_next), [`invalidate_tokens`](FakePlatform::invalidate_tokens).
//!
//! Request validation is deliberately loose beyond that: it checks what a client could get wrong
//! (field names, encodings, multipart part name), not every platform rule.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use shared::ids::Platform;

pub mod media;

/// `expires_in` of a fake WeChat token.
pub const WECHAT_EXPIRES_IN: u64 = 7200;
/// `expires_in` of a fake Baidu token.
pub const BAIDU_EXPIRES_IN: u64 = 2_592_000;
/// Messages granted to a user the test never called [`FakePlatform::grant`] for.
pub const DEFAULT_GRANT: u32 = 5;

/// One call the fake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCall {
    /// Which platform's API was called.
    pub platform: Platform,
    /// The request path, without the query string.
    pub path: String,
    /// The app the call belongs to (from the token, or the token request's app id).
    pub app_id: Option<String>,
    /// The recipient, for sends and typing.
    pub open_id: Option<String>,
    /// The parsed body: WeChat JSON as received; Baidu form fields as a JSON object of strings;
    /// uploads as `{"field","filename","content_type","size","media_id"}`; token requests as
    /// `{"appid"}` / `{"client_id"}` (never the secret).
    pub body: Value,
    /// The raw body for sends and typing (to check the exact encoding); empty for token calls
    /// (it would hold the secret) and uploads (binary).
    pub raw: String,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    remaining: u32,
    expired: bool,
    /// Unix seconds the window closes at, for windows opened by [`FakePlatform::user_acted`].
    expires_at: Option<u64>,
}

#[derive(Debug)]
struct Fault {
    suffix: String,
    errcode: i64,
    times: u32,
}

#[derive(Debug)]
struct State {
    next_id: u64,
    tokens: HashMap<String, (Platform, String)>,
    stable_tokens: HashMap<String, String>,
    token_requests: HashMap<String, usize>,
    media: HashMap<String, String>,
    windows: HashMap<(String, String), Window>,
    default_grant: u32,
    faults: Vec<Fault>,
    delays: Vec<(String, Duration)>,
    calls: Vec<RecordedCall>,
    /// The platform's clock (Unix seconds), once a test sets it.
    now: Option<u64>,
    quota_refusals: usize,
    injected: usize,
    delayed: usize,
}

impl State {
    fn new() -> Self {
        Self {
            next_id: 0,
            tokens: HashMap::new(),
            stable_tokens: HashMap::new(),
            token_requests: HashMap::new(),
            media: HashMap::new(),
            windows: HashMap::new(),
            default_grant: DEFAULT_GRANT,
            faults: Vec::new(),
            delays: Vec::new(),
            calls: Vec::new(),
            now: None,
            quota_refusals: 0,
            injected: 0,
            delayed: 0,
        }
    }
}

/// The running fake. Stops serving when dropped or on [`shutdown`](Self::shutdown).
#[derive(Debug)]
pub struct FakePlatform {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: JoinHandle<()>,
}

impl Drop for FakePlatform {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakePlatform {
    /// Binds `127.0.0.1:0` and serves in a spawned task. Must be called inside a tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::new()));
        let shared = Arc::clone(&state);
        let server = tokio::spawn(async move {
            // Connection tasks live in the set, so aborting the server aborts them too.
            let mut connections = JoinSet::new();
            loop {
                while connections.try_join_next().is_some() {}
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&shared);
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(Arc::clone(&state), req));
                    // A client hanging up mid-request is normal in timeout tests.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            state,
            server,
        })
    }

    /// Stops serving now (also done on drop). Calls in flight are cut off.
    pub fn shutdown(&self) {
        self.server.abort();
    }

    /// `http://127.0.0.1:PORT`, the base URL for both platforms' clients.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Every accepted call, in arrival order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.lock().calls.clone()
    }

    /// Bodies of the accepted sends (both platforms, `custom/send` and `sendbytp`) to `open_id`,
    /// in order.
    pub fn sent_messages(&self, open_id: &str) -> Vec<Value> {
        self.lock()
            .calls
            .iter()
            .filter(|c| is_send_path(&c.path) && c.open_id.as_deref() == Some(open_id))
            .map(|c| c.body.clone())
            .collect()
    }

    /// How many token requests (accepted or not, faults excluded) named `app_id`
    /// (WeChat `appid`, Baidu `client_id`).
    pub fn token_requests(&self, app_id: &str) -> usize {
        self.lock().token_requests.get(app_id).copied().unwrap_or(0)
    }

    /// Opens a fresh window of `n` messages for (`app_id`, `open_id`), replacing any earlier one
    /// (grants do not accumulate).
    pub fn grant(&self, app_id: &str, open_id: &str, n: u32) {
        self.lock().windows.insert(
            (app_id.to_owned(), open_id.to_owned()),
            Window {
                remaining: n,
                expired: false,
                expires_at: None,
            },
        );
    }

    /// Sets the platform's clock (Unix seconds): windows opened by [`user_acted`](Self::user_acted)
    /// close by it.
    pub fn set_now(&self, secs: u64) {
        self.lock().now = Some(secs);
    }

    /// The user of (`app_id`, `open_id`) acted now (see [`set_now`](Self::set_now)), earning `n`
    /// messages for `window_secs`, by the strictest reading of the platforms' rule (grants do not
    /// accumulate): when `n` is more than an open window has left, the window becomes `n` until
    /// now + `window_secs`; else what is left stays, until the later deadline.
    pub fn user_acted(&self, app_id: &str, open_id: &str, n: u32, window_secs: u64) {
        let mut state = self.lock();
        let now = state.now.unwrap_or(0);
        let key = (app_id.to_owned(), open_id.to_owned());
        let open = state
            .windows
            .get(&key)
            .filter(|w| !w.expired && w.expires_at.is_some_and(|e| e > now));
        let (left, until) = open.map_or((0, 0), |w| (w.remaining, w.expires_at.unwrap_or(0)));
        let (remaining, expires_at) = if n > left {
            (n, now + window_secs)
        } else {
            (left, until.max(now + window_secs))
        };
        state.windows.insert(
            key,
            Window {
                remaining,
                expired: false,
                expires_at: Some(expires_at),
            },
        );
    }

    /// How many sends the fake refused by its own quota (WeChat 45047 / 45015, Baidu 90001), not
    /// counting [`fail_next`](Self::fail_next) injections.
    pub fn quota_refusals(&self) -> usize {
        self.lock().quota_refusals
    }

    /// How many answers were [`fail_next`](Self::fail_next) injections.
    pub fn injected_faults(&self) -> usize {
        self.lock().injected
    }

    /// How many answers [`delay_next`](Self::delay_next) held back.
    pub fn delayed_answers(&self) -> usize {
        self.lock().delayed
    }

    /// Drops every armed [`fail_next`](Self::fail_next) and [`delay_next`](Self::delay_next) not
    /// yet used.
    pub fn clear_injections(&self) {
        let mut state = self.lock();
        state.faults.clear();
        state.delays.clear();
    }

    /// Messages the window of (`app_id`, `open_id`) still allows by the fake's clock (0 once it
    /// closed or when never opened).
    pub fn remaining_now(&self, app_id: &str, open_id: &str) -> u32 {
        let state = self.lock();
        let now = state.now.unwrap_or(0);
        state
            .windows
            .get(&(app_id.to_owned(), open_id.to_owned()))
            .filter(|w| !w.expired && w.expires_at.is_none_or(|e| e > now))
            .map_or(0, |w| w.remaining)
    }

    /// Closes the window of (`app_id`, `open_id`): WeChat sends get 45015, Baidu sends 90001.
    pub fn expire_window(&self, app_id: &str, open_id: &str) {
        self.lock().windows.insert(
            (app_id.to_owned(), open_id.to_owned()),
            Window {
                remaining: 0,
                expired: true,
                expires_at: None,
            },
        );
    }

    /// Messages left in the window of (`app_id`, `open_id`); `None` if it was never granted nor
    /// sent to.
    pub fn remaining(&self, app_id: &str, open_id: &str) -> Option<u32> {
        self.lock()
            .windows
            .get(&(app_id.to_owned(), open_id.to_owned()))
            .map(|w| w.remaining)
    }

    /// Sets the grant a user gets on first send when the test never called
    /// [`grant`](Self::grant) (default [`DEFAULT_GRANT`]).
    pub fn set_default_grant(&self, n: u32) {
        self.lock().default_grant = n;
    }

    /// The next `times` requests whose path ends with `path_suffix` fail with `errcode`, in the
    /// platform's own error format, before any other check (so they are not recorded). Baidu
    /// gateway codes (4, 6, 17, 18, 19, 100, 110, 111) come as `error_code`, others as `errno`
    /// (`sendbytp` wraps them in `data`); on the Baidu token path as an OAuth `error`.
    pub fn fail_next(&self, path_suffix: &str, errcode: i64, times: u32) {
        self.lock().faults.push(Fault {
            suffix: path_suffix.to_owned(),
            errcode,
            times,
        });
    }

    /// The next request whose path ends with `path_suffix` is processed and recorded at once, as a
    /// real platform would, and answered only after `delay` (a client that gives up first has
    /// still delivered).
    pub fn delay_next(&self, path_suffix: &str, delay: Duration) {
        self.lock().delays.push((path_suffix.to_owned(), delay));
    }

    /// Forgets every issued token: the next call with any of them gets 40001 / 110.
    pub fn invalidate_tokens(&self) {
        let mut state = self.lock();
        state.tokens.clear();
        state.stable_tokens.clear();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn is_send_path(path: &str) -> bool {
    path.ends_with("/message/custom/send") || path.ends_with("/message/custom/sendbytp")
}

const BAIDU_GATEWAY_CODES: [i64; 8] = [4, 6, 17, 18, 19, 100, 110, 111];

/// One parsed request.
struct Req {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    content_type: String,
    body: Bytes,
}

impl Req {
    fn platform(&self) -> Platform {
        if self.path.starts_with("/cgi-bin/") {
            Platform::Wechat
        } else {
            Platform::Baidu
        }
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = parse_pairs(req.uri().query().unwrap_or(""));
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(respond(
                StatusCode::BAD_REQUEST,
                &json!({"error": "bad body"}),
            ));
        }
    };
    let req = Req {
        method,
        path,
        query,
        content_type,
        body,
    };
    let delay = {
        let mut state = lock(&state);
        let at = state
            .delays
            .iter()
            .position(|(suffix, _)| req.path.ends_with(suffix.as_str()));
        let delay = at.map(|i| state.delays.remove(i).1);
        state.delayed += usize::from(delay.is_some());
        delay
    };
    if req.path == media::MEDIA_GET {
        let file = {
            let mut state = lock(&state);
            match injected_fault(&mut state, &req) {
                Some(answer) => Err(answer),
                None => media::get(&mut state, &req),
            }
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        return Ok(match file {
            Ok(bytes) => {
                let mut resp = Response::new(Full::new(Bytes::from(bytes)));
                resp.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("image/png"));
                resp
            }
            Err(answer) => respond(StatusCode::OK, &answer),
        });
    }
    let (status, answer) = route(&mut lock(&state), &req);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    Ok(respond(status, &answer))
}

fn respond(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

fn wx_error(errcode: i64, errmsg: &str) -> Value {
    json!({ "errcode": errcode, "errmsg": errmsg })
}

fn bd_gateway(code: i64, msg: &str) -> Value {
    json!({ "error_code": code, "error_msg": msg })
}

fn bd_errno(path: &str, errno: i64, msg: &str) -> Value {
    if path.ends_with("/sendbytp") {
        json!({ "errno": 0, "msg": "success", "data": { "errno": errno, "msg": msg } })
    } else {
        json!({ "errno": errno, "msg": msg })
    }
}

fn route(state: &mut State, req: &Req) -> (StatusCode, Value) {
    if let Some(answer) = injected_fault(state, req) {
        return (StatusCode::OK, answer);
    }
    let path = req.path.as_str();
    let answer = match path {
        "/cgi-bin/token" => wechat_token(state, req),
        "/cgi-bin/stable_token" => wechat_stable_token(state, req),
        "/cgi-bin/message/custom/send" => wechat_send(state, req),
        "/cgi-bin/message/custom/business/typing" => wechat_typing(state, req),
        "/cgi-bin/media/upload" => wechat_upload(state, req),
        "/oauth/2.0/token" => baidu_token(state, req),
        "/rest/2.0/smartapp/message/custom/send" | "/rest/2.0/smartapp/message/custom/sendbytp" => {
            baidu_send(state, req)
        }
        _ => return (StatusCode::NOT_FOUND, json!({ "error": "no such path" })),
    };
    (StatusCode::OK, answer)
}

fn injected_fault(state: &mut State, req: &Req) -> Option<Value> {
    let fault = state
        .faults
        .iter_mut()
        .find(|f| f.times > 0 && req.path.ends_with(f.suffix.as_str()))?;
    fault.times -= 1;
    let code = fault.errcode;
    state.faults.retain(|f| f.times > 0);
    state.injected += 1;
    let msg = "injected fault";
    Some(match req.platform() {
        Platform::Wechat => wx_error(code, msg),
        Platform::Baidu if BAIDU_GATEWAY_CODES.contains(&code) => bd_gateway(code, msg),
        Platform::Baidu if req.path == "/oauth/2.0/token" => json!({
            "error": "invalid_client",
            "error_description": format!("{msg} {code}"),
        }),
        Platform::Baidu => bd_errno(&req.path, code, msg),
    })
}

impl State {
    fn issue_token(&mut self, platform: Platform, app_id: &str) -> String {
        self.next_id += 1;
        let token = format!("fake-token-{}", self.next_id);
        self.tokens
            .insert(token.clone(), (platform, app_id.to_owned()));
        token
    }

    fn count_token_request(&mut self, app_id: &str) {
        *self.token_requests.entry(app_id.to_owned()).or_default() += 1;
    }

    /// The app owning the request's `access_token`, if it is a live token of this platform.
    fn authorize(&self, req: &Req) -> Option<String> {
        let token = req.query.get("access_token")?;
        match self.tokens.get(token) {
            Some((platform, app)) if *platform == req.platform() => Some(app.clone()),
            _ => None,
        }
    }

    /// Takes one message from the user's window; `Err(true)` = window expired, `Err(false)` =
    /// quota used up.
    fn consume(&mut self, app_id: &str, open_id: &str) -> Result<(), bool> {
        let default = Window {
            remaining: self.default_grant,
            expired: false,
            expires_at: None,
        };
        let now = self.now.unwrap_or(0);
        let window = self
            .windows
            .entry((app_id.to_owned(), open_id.to_owned()))
            .or_insert(default);
        if window.expired || window.expires_at.is_some_and(|e| e <= now) {
            self.quota_refusals += 1;
            return Err(true);
        }
        if window.remaining == 0 {
            self.quota_refusals += 1;
            return Err(false);
        }
        window.remaining -= 1;
        Ok(())
    }

    fn record(&mut self, req: &Req, app_id: &str, open_id: Option<&str>, body: Value) {
        let raw = if open_id.is_some() {
            String::from_utf8_lossy(&req.body).into_owned()
        } else {
            String::new()
        };
        self.calls.push(RecordedCall {
            raw,
            platform: req.platform(),
            path: req.path.clone(),
            app_id: Some(app_id.to_owned()),
            open_id: open_id.map(str::to_owned),
            body,
        });
    }
}

fn wechat_token(state: &mut State, req: &Req) -> Value {
    if req.method != Method::GET {
        return wx_error(43001, "require GET method");
    }
    let get = |k: &str| req.query.get(k).map(String::as_str).unwrap_or("");
    if get("grant_type") != "client_credential" {
        return wx_error(40002, "invalid grant_type");
    }
    let app_id = get("appid");
    if app_id.is_empty() {
        return wx_error(41002, "appid missing");
    }
    state.count_token_request(app_id);
    if get("secret").is_empty() {
        return wx_error(41004, "appsecret missing");
    }
    let token = state.issue_token(Platform::Wechat, app_id);
    state.record(req, app_id, None, json!({ "appid": app_id }));
    json!({ "access_token": token, "expires_in": WECHAT_EXPIRES_IN })
}

fn wechat_stable_token(state: &mut State, req: &Req) -> Value {
    if req.method != Method::POST {
        return wx_error(43002, "require POST method");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return wx_error(47001, "data format error");
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
    if field("grant_type") != "client_credential" {
        return wx_error(40002, "invalid grant_type");
    }
    let app_id = field("appid");
    if app_id.is_empty() {
        return wx_error(41002, "appid missing");
    }
    state.count_token_request(app_id);
    if field("secret").is_empty() {
        return wx_error(41004, "appsecret missing");
    }
    let force = body
        .get("force_refresh")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let current = state
        .stable_tokens
        .get(app_id)
        .filter(|t| state.tokens.contains_key(*t))
        .cloned();
    let token = match current {
        Some(token) if !force => token,
        previous => {
            if let Some(old) = previous {
                state.tokens.remove(&old);
            }
            let token = state.issue_token(Platform::Wechat, app_id);
            state.stable_tokens.insert(app_id.to_owned(), token.clone());
            token
        }
    };
    state.record(
        req,
        app_id,
        None,
        json!({ "appid": app_id, "force_refresh": force }),
    );
    json!({ "access_token": token, "expires_in": WECHAT_EXPIRES_IN })
}

/// Common front of WeChat token-protected POST JSON calls: `(app, body)` or the error answer.
fn wechat_json_call(state: &State, req: &Req) -> Result<(String, Value), Value> {
    if req.method != Method::POST {
        return Err(wx_error(43002, "require POST method"));
    }
    if !req.query.contains_key("access_token") {
        return Err(wx_error(41001, "access_token missing"));
    }
    let Some(app_id) = state.authorize(req) else {
        return Err(wx_error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        ));
    };
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Err(wx_error(47001, "data format error"));
    };
    Ok((app_id, body))
}

fn nonempty(value: &Value, pointer: &str) -> bool {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

fn wechat_send(state: &mut State, req: &Req) -> Value {
    let (app_id, body) = match wechat_json_call(state, req) {
        Ok(ok) => ok,
        Err(answer) => return answer,
    };
    let open_id = body
        .get("touser")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if open_id.is_empty() {
        return wx_error(40003, "invalid openid");
    }
    let valid = match body.get("msgtype").and_then(Value::as_str).unwrap_or("") {
        "text" => {
            if !nonempty(&body, "/text/content") {
                return wx_error(44004, "empty content");
            }
            true
        }
        "image" => {
            let id = body.pointer("/image/media_id").and_then(Value::as_str);
            if !id.is_some_and(|id| state.media.contains_key(id)) {
                return wx_error(40007, "invalid media_id");
            }
            true
        }
        "link" => ["title", "description", "url", "thumb_url"]
            .iter()
            .all(|k| {
                body.pointer(&format!("/link/{k}"))
                    .is_some_and(Value::is_string)
            }),
        "miniprogrampage" => ["title", "pagepath", "thumb_media_id"].iter().all(|k| {
            body.pointer(&format!("/miniprogrampage/{k}"))
                .is_some_and(Value::is_string)
        }),
        _ => return wx_error(40008, "invalid message type"),
    };
    if !valid {
        return wx_error(47001, "data format error");
    }
    match state.consume(&app_id, &open_id) {
        Err(true) => {
            return wx_error(
                45015,
                "response out of time limit or subscription is canceled",
            );
        }
        Err(false) => return wx_error(45047, "out of response count limit"),
        Ok(()) => {}
    }
    state.record(req, &app_id, Some(&open_id), body);
    wx_error(0, "ok")
}

fn wechat_typing(state: &mut State, req: &Req) -> Value {
    let (app_id, body) = match wechat_json_call(state, req) {
        Ok(ok) => ok,
        Err(answer) => return answer,
    };
    let open_id = body
        .get("touser")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if open_id.is_empty() {
        return wx_error(40003, "invalid openid");
    }
    match body.get("command").and_then(Value::as_str) {
        Some("Typing" | "CancelTyping") => {}
        _ => return wx_error(45072, "command field error"),
    }
    state.record(req, &app_id, Some(&open_id), body);
    wx_error(0, "ok")
}

fn wechat_upload(state: &mut State, req: &Req) -> Value {
    if req.method != Method::POST {
        return wx_error(43002, "require POST method");
    }
    if !req.query.contains_key("access_token") {
        return wx_error(41001, "access_token missing");
    }
    let Some(app_id) = state.authorize(req) else {
        return wx_error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        );
    };
    if req.query.get("type").map(String::as_str) != Some("image") {
        return wx_error(40004, "invalid media type");
    }
    let parts = parse_multipart(&req.content_type, &req.body);
    let Some(part) = parts.into_iter().find(|p| p.name == "media") else {
        return wx_error(41005, "media data missing");
    };
    if part.data.is_empty() {
        return wx_error(40005, "invalid file type");
    }
    state.next_id += 1;
    let media_id = format!("fake-media-{}", state.next_id);
    state.media.insert(media_id.clone(), app_id.clone());
    state.record(
        req,
        &app_id,
        None,
        json!({
            "field": part.name,
            "filename": part.filename,
            "content_type": part.content_type,
            "size": part.data.len(),
            "media_id": media_id,
        }),
    );
    let created_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    json!({ "type": "image", "media_id": media_id, "created_at": created_at })
}

fn baidu_token(state: &mut State, req: &Req) -> Value {
    // Parameters may come in the query (SDK, GET) or a form body (docs, POST).
    let mut params = req.query.clone();
    if req.method == Method::POST {
        params.extend(parse_pairs(&String::from_utf8_lossy(&req.body)));
    }
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    if get("grant_type") != "client_credentials" {
        return json!({ "error": "unsupported_grant_type", "error_description": "grant_type" });
    }
    let client_id = get("client_id");
    if client_id.is_empty() {
        return json!({ "error": "invalid_client", "error_description": "unknown client id" });
    }
    state.count_token_request(client_id);
    if get("client_secret").is_empty() {
        return json!({ "error": "invalid_client", "error_description": "Client authentication failed" });
    }
    let scope = get("scope").to_owned();
    let token = state.issue_token(Platform::Baidu, client_id);
    state.next_id += 1;
    let refresh = format!("fake-refresh-{}", state.next_id);
    state.record(req, client_id, None, json!({ "client_id": client_id }));
    json!({
        "access_token": token,
        "expires_in": BAIDU_EXPIRES_IN,
        "refresh_token": refresh,
        "scope": scope,
        "session_key": "",
        "session_secret": "",
    })
}

fn baidu_send(state: &mut State, req: &Req) -> Value {
    if req.method != Method::POST {
        return bd_gateway(3, "Unsupported openapi method");
    }
    let Some(app_id) = state.authorize(req) else {
        return bd_gateway(110, "Access token invalid or no longer valid");
    };
    if !req
        .content_type
        .starts_with("application/x-www-form-urlencoded")
    {
        return bd_errno(&req.path, 3001, "请求参数有误 (form body expected)");
    }
    let form = parse_pairs(&String::from_utf8_lossy(&req.body));
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let open_id = get("open_id").to_owned();
    let valid = matches!(get("user_type"), "1" | "2")
        && !open_id.is_empty()
        && match get("msg_type") {
            "text" => !get("content").is_empty(),
            "image" => !get("pic_url").is_empty(),
            _ => false,
        };
    if !valid {
        return bd_errno(&req.path, 3001, "请求参数有误");
    }
    if state.consume(&app_id, &open_id).is_err() {
        return bd_errno(&req.path, 90001, "客服接口下行条数超过上限");
    }
    let body: serde_json::Map<String, Value> =
        ["user_type", "open_id", "msg_type", "content", "pic_url"]
            .iter()
            .filter(|k| form.contains_key(**k))
            .map(|k| ((*k).to_owned(), json!(get(k))))
            .collect();
    state.record(req, &app_id, Some(&open_id), Value::Object(body));
    bd_errno(&req.path, 0, "success")
}

/// Decodes `a=1&b=x%20y` (also `+` as space); the last value of a repeated key wins.
fn parse_pairs(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..=i + 2]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One part of a `multipart/form-data` body.
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() || needle.is_empty() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Value of `key=` in a `; `-separated header (quotes stripped).
fn header_param(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|param| {
        let (k, v) = param.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// A minimal RFC 7578 reader: enough for one client's well-formed bodies.
fn parse_multipart(content_type: &str, body: &[u8]) -> Vec<Part> {
    let mut parts = Vec::new();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return parts;
    }
    let Some(boundary) = header_param(content_type, "boundary") else {
        return parts;
    };
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let Some(mut at) = find(body, delimiter, 0) else {
        return parts;
    };
    loop {
        let start = at + delimiter.len();
        if body[start..].starts_with(b"--") {
            break;
        }
        let Some(next) = find(body, delimiter, start) else {
            break;
        };
        let segment = body[start..next]
            .strip_prefix(b"\r\n")
            .unwrap_or(&body[start..next]);
        let segment = segment.strip_suffix(b"\r\n").unwrap_or(segment);
        if let Some(split) = find(segment, b"\r\n\r\n", 0) {
            let headers = String::from_utf8_lossy(&segment[..split]);
            let data = segment[split + 4..].to_vec();
            let mut part = Part {
                name: String::new(),
                filename: None,
                content_type: None,
                data,
            };
            for line in headers.split("\r\n") {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("content-disposition") {
                    part.name = header_param(value, "name").unwrap_or_default();
                    part.filename = header_param(value, "filename");
                } else if name.trim().eq_ignore_ascii_case("content-type") {
                    part.content_type = Some(value.trim().to_owned());
                }
            }
            parts.push(part);
        }
        at = next;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%E4%BD%A0"), "你");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        let pairs = parse_pairs("x=1&y=&z");
        assert_eq!(pairs.get("x").map(String::as_str), Some("1"));
        assert_eq!(pairs.get("y").map(String::as_str), Some(""));
        assert_eq!(pairs.get("z").map(String::as_str), Some(""));
    }

    #[test]
    fn multipart_reader() {
        let body = b"--XYZ\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x00\x01\r\n--XYZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n--XYZ--\r\n";
        let parts = parse_multipart("multipart/form-data; boundary=XYZ", body);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "media");
        assert_eq!(parts[0].filename.as_deref(), Some("a.png"));
        assert_eq!(parts[0].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[0].data, b"\x89PNG\r\n\x00\x01");
        assert_eq!(parts[1].name, "other");
        assert_eq!(parts[1].data, b"v");
    }
}
