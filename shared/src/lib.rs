//! kefu's common crate: everything the ingress, processor and sender functions share.
//!
//! Layers, dependencies pointing inward only:
//! 1. pure core — [`protocol`] (signatures, cipher, per-platform request rules), [`message`]
//!    (typed inbound model, dedupe key, queue envelope), [`quota`] (the send-window rule) and
//!    [`registry`] (the app registry document), [`desk`] (the agents' desk: states, agents, send
//!    readiness);
//! 2. [`ports`] — the traits the functions depend on, moving the read models of [`records`];
//! 3. [`adapters`] — SQS and DynamoDB, and (feature `platform-http`) `api`, the platforms' HTTP
//!    clients, each behind a cargo feature so a function links only what it uses; plus
//!    [`config`], [`clock`] and (feature `telemetry`) `telemetry`.
//!
//! Not here: anything that knows about Lambda event types, and test machinery (in-memory fakes,
//! the fake platform, emulator helpers: the `testkit` crate).
#![warn(missing_docs)]

pub mod adapters;
#[cfg(feature = "platform-http")]
pub mod api;
pub mod clock;
pub mod config;
pub mod desk;
mod flat_json;
pub mod ids;
#[cfg(feature = "secrets")]
pub mod log_key;
pub mod message;
pub mod metrics;
pub mod ports;
pub mod protocol;
pub mod quota;
pub mod records;
pub mod registry;
#[cfg(feature = "secrets")]
pub mod registry_source;
mod scan;
pub mod secret;
#[cfg(feature = "telemetry")]
pub mod telemetry;
mod xml;
