//! Cold start of the sender Lambda: configuration from the environment, then [`sender::App::build`].

use sender::{App, Config};
use shared::config::Env;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let config = Config::from_env(&Env::process())?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let app = App::build(config, &sdk).await?;
    lambda_http::run(lambda_http::service_fn(|req| sender::handle(&app, req))).await
}
