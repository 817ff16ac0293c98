//! How the store reads the answer to a conditional `UpdateItem` (or `PutItem`): applied, or its
//! condition failed (an outcome, not an error). Shared by the message-store, ledger, token and
//! outbound adapters.
//!
//! Not here: the conditions themselves (`expressions`) or what a failed one means for a port (each
//! adapter decides: a duplicate, a refusal, a lease held by another instance).

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

use super::unavailable;
use crate::ports::StoreError;

pub(super) fn is_condition_failed<R>(err: &SdkError<UpdateItemError, R>) -> bool {
    matches!(
        err.as_service_error(),
        Some(UpdateItemError::ConditionalCheckFailedException(_))
    )
}

/// Whether a conditional `PutItem` failed on its condition.
pub(super) fn is_put_condition_failed<R>(err: &SdkError<PutItemError, R>) -> bool {
    matches!(
        err.as_service_error(),
        Some(PutItemError::ConditionalCheckFailedException(_))
    )
}

/// Whether a conditional update was applied: `false` when its condition failed, `Err` otherwise.
pub(super) fn applied<O, R>(
    result: Result<O, SdkError<UpdateItemError, R>>,
) -> Result<bool, StoreError>
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_condition_failed(&err) => Ok(false),
        Err(err) => Err(unavailable(err)),
    }
}
