//! Cold start wiring for the sender Lambda: registry, DynamoDB store (ledger, tokens, records),
//! platform clients with connect and total timeouts.

use std::time::Duration;

use sender::{App, Clients, Config};
use shared::adapters::dynamodb::{DynamoDbStore, Tables};
use shared::clock::SystemClock;
use shared::config::{self, BAIDU_API_BASE, Env, PLATFORM_TIMEOUT_MS, WECHAT_API_BASE};
use shared::platform::{BaseUrls, baidu::BaiduClient, http_client, wechat::WechatClient};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let env = Env::process();
    let registry = config::load_registry(&env)?;
    let tables = Tables::from_env(&env)?;
    let config = Config::from_env(&env)?;
    let defaults = BaseUrls::default();
    let wechat_base = env.optional(WECHAT_API_BASE).unwrap_or(defaults.wechat);
    let baidu_base = env.optional(BAIDU_API_BASE).unwrap_or(defaults.baidu);
    let timeout: u64 = env.parsed(PLATFORM_TIMEOUT_MS, 5000)?;
    let http = http_client(Duration::from_secs(2), Duration::from_millis(timeout))?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&sdk), tables)
        .with_message_retention_days(env.parsed(config::MESSAGE_RETENTION_DAYS, 0)?);
    let app = App::new(
        config,
        registry,
        store.clone(),
        store,
        Clients {
            wechat: WechatClient::new(http.clone(), wechat_base),
            baidu: BaiduClient::new(http.clone(), baidu_base),
            http,
        },
        SystemClock,
    );
    lambda_http::run(lambda_http::service_fn(|req| sender::handle(&app, req))).await
}
