//! The desk function: the agents' API under `/desk/api/` — sign-in against the stack's user pool,
//! who the agent is and which apps they serve, status, the waiting list and their own
//! conversations, a conversation with its messages and whether a reply would go out, accept,
//! release and close, and (for an app's admins) its agents.
//!
//! Every route but sign-in checks the bearer token ([`auth`]) and then the agent's membership of
//! the app concerned, on every request: an app the agent does not serve is answered 404, as if it
//! did not exist. The store keeps the rules atomic (`shared::ports::desk`). Not here: the page.

pub mod auth;
pub mod config;
pub mod error;
pub mod page;
pub mod reply;
mod routes;
pub mod signin;
pub mod stats;
pub mod sweep;
mod views;

use std::sync::Arc;

use lambda_http::{Body, Request, RequestExt, Response};
use shared::clock::Clock;
use shared::desk::{Agent, Role};
use shared::ports::MessageStore;
use shared::ports::desk::{DeskStore, DeskSweep};
use shared::ports::desk_notes::DeskNotes;
use shared::ports::desk_stats::StatsStore;
use tracing::{error, info, warn};

pub use config::{BuildError, Config};
pub use error::DeskError;

use auth::jwks::Verifier;
use auth::jwt::Claims;
use reply::Replier;
use signin::SignIn;

/// The ports the desk uses, as one bound.
pub trait Store: DeskStore + DeskNotes + DeskSweep + StatsStore + MessageStore {}

impl<T: DeskStore + DeskNotes + DeskSweep + StatsStore + MessageStore> Store for T {}

/// Everything a request needs, built once per cold start.
pub struct App<S, C> {
    /// Agents, conversations and their messages.
    pub store: S,
    /// The sender's code, for replies and for which apps may send.
    pub sender: Arc<dyn Replier>,
    /// The media bucket kept images are read from through signed URLs (none: not kept).
    pub images: Option<Arc<dyn shared::ports::media_store::MediaStore>>,
    /// Checks bearer tokens.
    pub verifier: Verifier,
    /// Signs agents in.
    pub signin: Arc<dyn SignIn>,
    /// The clock.
    pub clock: C,
}

/// The agent behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's claims.
    pub claims: Claims,
    /// The agent, as stored.
    pub agent: Agent,
}

impl Caller {
    /// The agent's role in `app`; an app they do not serve is [`DeskError::NotFound`].
    pub fn member(&self, app: &str) -> Result<Role, DeskError> {
        self.agent.role_in(app).ok_or(DeskError::NotFound)
    }

    /// Passes for an admin of `app`.
    pub fn admin(&self, app: &str) -> Result<(), DeskError> {
        match self.member(app)? {
            Role::Admin => Ok(()),
            Role::Agent => Err(DeskError::AdminOnly),
        }
    }
}

impl<S: Store, C: Clock> App<S, C> {
    /// The agent behind the request's bearer token.
    pub async fn caller(&self, req: &Request) -> Result<Caller, DeskError> {
        let header = req
            .headers()
            .get(lambda_http::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let claims = self
            .verifier
            .verify_header(header, self.clock.now_secs())
            .await
            .map_err(DeskError::Unauthenticated)?;
        let agent = self
            .store
            .agent(&claims.sub)
            .await?
            .ok_or(DeskError::NotAnAgent)?;
        Ok(Caller { claims, agent })
    }
}

/// A direct invocation: the idle sweep. Anything else, and a sweep that failed anywhere, is an
/// error to the runtime, so it counts in the function's `Errors` (and its alarm).
async fn invoked<S: Store, C: Clock>(
    app: &App<S, C>,
    body: &[u8],
) -> Result<Response<Body>, lambda_http::Error> {
    let event: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    if event["kind"] != "idle_sweep" {
        warn!("direct invocation refused: not an idle sweep");
        return Err("a direct invocation that is not the idle sweep".into());
    }
    let s = sweep::sweep(&app.store, &app.clock).await.map_err(|e| {
        error!(error.message = %e, "idle sweep failed");
        format!("idle sweep failed: {e}")
    })?;
    if s.failed > 0 {
        return Err(format!("idle sweep: {} of its steps failed", s.failed).into());
    }
    Ok(error::json(
        lambda_http::http::StatusCode::OK,
        &serde_json::json!({ "agents": s.agents, "held": s.held, "released": s.released }),
    ))
}

/// The Lambda handler: one call into the route, one JSON response, one log line. Outcomes never
/// become `Err`; an `Err` to the runtime would mean a bug.
pub async fn handle<S: Store, C: Clock>(
    app: &App<S, C>,
    req: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    // A direct invocation (the stack's schedule), never a request through the HTTP API.
    if matches!(
        req.request_context_ref(),
        Some(lambda_http::request::RequestContext::PassThrough)
    ) {
        return invoked(app, req.body().as_ref()).await;
    }
    if method == lambda_http::http::Method::GET
        && let Some(page) = page::serve(&path)
    {
        return Ok(page);
    }
    let route = routes::route_name(&method, &path);
    let outcome = routes::dispatch(app, &method, &path, req).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(match outcome {
        Ok(response) => {
            info!(
                route,
                status = response.status().as_u16(),
                elapsed_ms,
                "desk request"
            );
            response
        }
        Err(DeskError::Unavailable(cause)) => {
            error!(route, outcome = "unavailable", error.message = %cause, elapsed_ms, "desk request failed");
            DeskError::Unavailable(cause).into_response()
        }
        Err(e) => {
            warn!(
                route,
                outcome = e.reason(),
                status = e.status().as_u16(),
                elapsed_ms,
                "desk request refused"
            );
            e.into_response()
        }
    })
}
