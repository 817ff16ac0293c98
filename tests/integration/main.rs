//! The integration binary: committed event fixtures replayed through the real handlers, and the
//! whole pipeline (ingress → SQS → processor → DynamoDB) against the moto emulator.
//!
//! Emulator tests skip themselves when `AWS_ENDPOINT_URL` is unset; `make test` runs them with a
//! private moto (`infra/local/with-moto.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod desk;
mod desk_auto;
mod desk_idle;
mod desk_stats;
mod desk_work;
mod e2e;
mod events;
mod helpers;
mod ops;
mod pipeline;
mod registry;
mod sender;
mod sender_events;
mod sender_faults;
mod variables;
