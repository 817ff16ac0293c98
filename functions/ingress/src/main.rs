//! Cold start of the ingress Lambda: configuration from the environment, then [`ingress::App::build`].

use ingress::{App, Config};
use shared::config::Env;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let config = Config::from_env(&Env::process())?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let app = App::build(config, &sdk).await?;
    lambda_http::run(lambda_http::service_fn(|req| ingress::handle(&app, req))).await
}
