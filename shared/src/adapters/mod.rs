//! Adapters implementing [`crate::ports`] against AWS, each behind its own cargo feature (the
//! in-memory fakes live in the `testkit` crate).

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sqs")]
pub mod sqs;
