//! The local server behind `kefu serve`: the ingress and sender routes on 127.0.0.1, calling the
//! same handler functions the Lambdas run (requests converted to `lambda_http` types), and a
//! poller that feeds the inbound queue to the processor handler the way Lambda's event source
//! mapping does.
//!
//! Not the command line (flags, reading the environment into [`Settings`]): `commands::serve`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use shared::adapters::dynamodb::DynamoDbStore;
use shared::adapters::sqs::SqsQueue;
use shared::clock::SystemClock;
use subtle::ConstantTimeEq;
use testkit::esm;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::Error;

/// Largest request body read (API Gateway's own payload limit); ingress applies its smaller
/// `MAX_BODY_BYTES` itself.
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// How often `kefu serve` runs the desk's idle sweep (the stack's schedule: once a minute).
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// After a record is reported as failed, it becomes visible again after this long (Lambda would
/// wait for the queue's visibility timeout; locally a short retry keeps the loop lively).
const RETRY_VISIBILITY_SECS: i32 = 5;

/// Everything `kefu serve` needs, resolved (from the environment by the command, directly by tests):
/// each function's own configuration, read exactly as the Lambdas read theirs.
pub struct Settings {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// AWS SDK configuration (endpoint override for the emulator).
    pub sdk: SdkConfig,
    /// The ingress function's configuration (queue, verify registry, limits).
    pub ingress: ingress::Config,
    /// The processor's configuration (tables, grants).
    pub processor: processor::Config,
    /// The sender's configuration (tables, send registry, platform origins).
    pub sender: sender::Config,
    /// The desk's configuration (tables, user pool), when the environment names a user pool;
    /// without it the desk routes answer 404.
    pub desk: Option<desk::Config>,
    /// Bearer token required on `POST /messages` and `POST /typing`.
    pub local_token: String,
    /// Long-poll wait of the queue poller, seconds (1–20).
    pub poll_wait_secs: i32,
}

type IngressApp = ingress::App<SqsQueue, SystemClock>;
type SenderApp = sender::App<DynamoDbStore, DynamoDbStore, DynamoDbStore, SystemClock>;
type ProcessorApp = processor::App<DynamoDbStore>;
type DeskApp = desk::App<DynamoDbStore, SystemClock>;

struct Apps {
    ingress: IngressApp,
    sender: SenderApp,
    desk: Option<DeskApp>,
    token: String,
}

/// A running server: its address, and the handle to stop it.
pub struct Running {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight and the current queue batch finish, and waits.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Binds 127.0.0.1, starts serving and polling in spawned tasks. Must run inside a tokio runtime.
pub async fn start(settings: Settings) -> Result<Running, Error> {
    let listener = TcpListener::bind(("127.0.0.1", settings.port))
        .await
        .map_err(|e| format!("cannot bind 127.0.0.1:{}: {e}", settings.port))?;
    let addr = listener.local_addr()?;

    // Against an emulator, DynamoDB requests of the processor and the sender share one gate
    // (moto does not isolate concurrent transactions); SQS and Secrets Manager do not need it.
    let dynamodb_sdk = crate::dynamodb_sdk(&settings.sdk);
    let inbound_queue_url = settings.ingress.queue_url.clone();
    let apps = Arc::new(Apps {
        ingress: ingress::App::build(settings.ingress, &settings.sdk).await?,
        sender: sender::App::build(settings.sender, &dynamodb_sdk).await?,
        desk: match settings.desk {
            Some(config) => Some(desk::App::build(config, &dynamodb_sdk).await?),
            None => None,
        },
        token: settings.local_token,
    });
    let outbound_queue_url = settings
        .processor
        .follow_ups
        .as_ref()
        .map(|(q, _)| q.clone());
    let processor = processor::App::build(settings.processor, &dynamodb_sdk);
    let sqs = aws_sdk_sqs::Client::new(&settings.sdk);

    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    if apps.desk.is_some() {
        tasks.spawn(sweep_loop(apps.clone(), stopped.clone()));
    }
    if let (Some(url), Some(_)) = (outbound_queue_url, &apps.sender.desk) {
        tasks.spawn(poll_loop(
            sqs.clone(),
            url,
            Consumer::Notices(apps.clone()),
            settings.poll_wait_secs.clamp(1, 20),
            stopped.clone(),
        ));
    }
    tasks.spawn(accept_loop(listener, apps, stopped.clone()));
    tasks.spawn(poll_loop(
        sqs,
        inbound_queue_url,
        Consumer::Processor(Box::new(processor)),
        settings.poll_wait_secs.clamp(1, 20),
        stopped,
    ));
    Ok(Running { addr, stop, tasks })
}

async fn accept_loop(listener: TcpListener, apps: Arc<Apps>, mut stopped: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = stopped.changed() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let apps = Arc::clone(&apps);
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| {
                let apps = Arc::clone(&apps);
                async move { Ok::<_, Infallible>(route(&apps, req).await) }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopped.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

fn text(status: StatusCode, body: &str) -> hyper::Response<Full<Bytes>> {
    let mut resp = hyper::Response::new(Full::new(Bytes::from(body.to_owned())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn authorized(token: &str, req: &hyper::Request<Incoming>) -> bool {
    let Some(value) = req.headers().get(hyper::header::AUTHORIZATION) else {
        return false;
    };
    let want = format!("Bearer {token}");
    bool::from(value.as_bytes().ct_eq(want.as_bytes()))
}

/// Routes one request: health check, sender routes (bearer token), the desk's routes (its own
/// token checks), everything else to ingress (which answers `unknown_route` itself).
async fn route(apps: &Apps, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    if req.method() == Method::GET && path == "/healthz" {
        return text(StatusCode::OK, "ok");
    }
    let send_route = matches!(path.as_str(), "/messages" | "/typing");
    if send_route && !authorized(&apps.token, &req) {
        let mut resp = text(StatusCode::UNAUTHORIZED, "unauthorized");
        resp.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
        return resp;
    }
    let req = match to_lambda(req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let result = if send_route {
        sender::handle(&apps.sender, req).await
    } else if path == "/desk" || path.starts_with("/desk/") {
        match &apps.desk {
            Some(desk) => desk::handle(desk, req).await,
            None => return text(StatusCode::NOT_FOUND, "desk_not_configured"),
        }
    } else {
        ingress::handle(&apps.ingress, req).await
    };
    match result {
        Ok(resp) => from_lambda(resp),
        Err(e) => {
            warn!(error.message = %e, "handler error");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
        }
    }
}

/// A hyper request as the `lambda_http` request API Gateway would deliver (text bodies as text).
async fn to_lambda(
    req: hyper::Request<Incoming>,
) -> Result<lambda_http::Request, hyper::Response<Full<Bytes>>> {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return Err(text(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")),
    };
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(s) => lambda_http::Body::Text(s),
            Err(e) => lambda_http::Body::Binary(e.into_bytes()),
        }
    };
    Ok(lambda_http::http::Request::from_parts(parts, body))
}

fn from_lambda(resp: lambda_http::Response<lambda_http::Body>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = resp.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(s) => Bytes::from(s),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

/// The event source mapping: long-poll up to 10 records, hand them to the processor, delete the
/// ones not reported as failures (failures come back after [`RETRY_VISIBILITY_SECS`]; the queue's
/// redrive policy moves poison records to the DLQ).
/// The desk's idle sweep once a minute, as the stack's schedule runs it.
async fn sweep_loop(apps: Arc<Apps>, mut stopped: watch::Receiver<bool>) {
    let Some(desk) = &apps.desk else { return };
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            () = tokio::time::sleep(SWEEP_EVERY) => {}
        }
        if let Err(e) = desk::sweep::sweep(&desk.store, &desk.clock).await {
            warn!(error.message = %e, "idle sweep failed; next in a minute");
        }
    }
}

/// What a queue poller hands its batches to, as Lambda's event source mappings do deployed.
enum Consumer {
    /// The inbound queue: the processor.
    Processor(Box<ProcessorApp>),
    /// The outbound queue: the sender's auto replies.
    Notices(Arc<Apps>),
}

async fn poll_loop(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    app: Consumer,
    wait_secs: i32,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let receive = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send();
        let received = tokio::select! {
            _ = stopped.changed() => break,
            r = receive => r,
        };
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                warn!(error.message = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receive failed; retrying in 1 s");
                tokio::select! {
                    _ = stopped.changed() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        if messages.is_empty() {
            continue;
        }
        // The batch is finished even when a stop arrives meanwhile.
        process_batch(&sqs, &queue_url, &app, &messages).await;
    }
    info!("queue poller stopped");
}

async fn process_batch(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    app: &Consumer,
    messages: &[aws_sdk_sqs::types::Message],
) {
    let outcome = match app {
        Consumer::Processor(app) => {
            esm::run_batch(sqs, queue_url, messages, RETRY_VISIBILITY_SECS, |event| {
                processor::handle(app, event)
            })
            .await
        }
        Consumer::Notices(apps) => {
            esm::run_batch(
                sqs,
                queue_url,
                messages,
                RETRY_VISIBILITY_SECS,
                |event| async move {
                    match &apps.sender.desk {
                        Some(desk) => Ok(apps
                            .sender
                            .consume_notices(desk, &event.payload, None)
                            .await),
                        None => Err("the sender has no desk table"),
                    }
                },
            )
            .await
        }
    };
    if let Some(e) = &outcome.batch_error {
        warn!(error.message = %e, "the consumer failed the whole batch");
    }
    for (id, e) in &outcome.unsettled {
        warn!(sqs_message_id = %id, error.message = %e, "could not settle the record; it will be redelivered");
    }
}
