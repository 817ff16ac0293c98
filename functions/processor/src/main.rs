//! Cold start wiring for the processor Lambda: quota policy and the DynamoDB store.

use processor::App;
use shared::adapters::dynamodb::{DynamoDbStore, Tables};
use shared::config::{self, Env};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let env = Env::process();
    let policy = config::quota_policy(&env)?;
    let tables = Tables::from_env(&env)?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&sdk), tables)
        .with_message_retention_days(env.parsed(config::MESSAGE_RETENTION_DAYS, 0)?);
    let app = App::new(store, policy);
    lambda_runtime::run(lambda_runtime::service_fn(|event| {
        processor::handle(&app, event)
    }))
    .await
}
