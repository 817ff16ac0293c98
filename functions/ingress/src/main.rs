//! Cold start wiring for the ingress Lambda: config, registry, SQS client with its time budget.

use ingress::{App, Config};
use shared::adapters::sqs::SqsQueue;
use shared::clock::SystemClock;
use shared::config::{self, Env, INBOUND_QUEUE_URL};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let env = Env::process();
    let config = Config::from_env(&env)?;
    let registry = config::load_registry(&env)?;
    let queue_url = env.required(INBOUND_QUEUE_URL)?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let queue = SqsQueue::new(
        SqsQueue::client_with_budget(&sdk, config.enqueue_budget),
        queue_url,
    );
    let app = App::new(config, registry, queue, SystemClock);
    lambda_http::run(lambda_http::service_fn(|req| ingress::handle(&app, req))).await
}
