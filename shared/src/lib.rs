//! kefu's common crate: everything the ingress, processor and sender functions share.
//!
//! Layers, dependencies pointing inward only:
//! 1. pure core — [`protocol`] (signatures, cipher, per-platform request rules), [`message`]
//!    (typed inbound model, dedupe key, queue envelope), [`quota`] (the send-window rule) and
//!    [`registry`] (the app registry document);
//! 2. ports and adapters arrive with the functions that use them, behind cargo features.
//!
//! Not here: anything that knows about Lambda event types.
#![warn(missing_docs)]

pub mod message;
pub mod protocol;
pub mod quota;
pub mod registry;
pub mod secret;
mod xml;

pub use protocol::Platform;
