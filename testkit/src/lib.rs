//! What only kefu's tests and the local loop use, kept out of the production crates so no
//! deployed function compiles it:
//! - [`memory`] — in-memory fakes of every port in `shared::ports`, held to the same contracts as
//!   the DynamoDB and SQS adapters by `tests/ledger_contract.rs` and `tests/store_contract.rs`;
//! - [`fake_platform`] — a local HTTP fake of the WeChat and Baidu APIs the sender calls;
//! - [`emulator`] — the SDK HTTP client that serialises requests to moto;
//! - [`esm`] — the SQS event-source-mapping emulation `kefu serve` and the tests share.
//!
//! Not here: anything a deployed function runs.
#![warn(missing_docs)]

pub mod emulator;
pub mod esm;
pub mod fake_platform;
pub mod memory;
