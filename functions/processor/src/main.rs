//! Cold start of the processor Lambda: configuration from the environment, then [`processor::App::build`].

use processor::{App, Config};
use shared::config::Env;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = Config::from_env(&Env::process())?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let app = App::build(config, &sdk);
    lambda_runtime::run(lambda_runtime::service_fn(|event| {
        processor::handle(&app, event)
    }))
    .await
}
