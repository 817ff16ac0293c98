//! Adapters implementing [`crate::ports`], each behind its own cargo feature.

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "emulator")]
pub mod emulator;
#[cfg(feature = "test-util")]
pub mod memory;
#[cfg(feature = "sqs")]
pub mod sqs;
