//! Cold start of the desk Lambda: configuration from the environment, then [`desk::App::build`].

use desk::{App, Config};
use shared::config::Env;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let config = Config::from_env(&Env::process())?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let app = App::build(config, &sdk).await?;
    lambda_http::run(lambda_http::service_fn(|req| desk::handle(&app, req))).await
}
