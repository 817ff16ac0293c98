//! Test environment: emulator-backed clients, per-test tables and queues (unique prefix, created
//! from `infra/local/resources.json`), a DynamoDB request counter, and an in-process SQS poller
//! that feeds the processor like Lambda's event source mapping.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_sqs::types::QueueAttributeName;
use shared::adapters::dynamodb::{DynamoDbStore, Tables, provision};
use shared::adapters::sqs::{QueueUrls, SqsQueue, create_queues};
use shared::api::BaseUrls;
use shared::clock::FixedClock;
use shared::quota::QuotaPolicy;
use shared::registry::{AppRegistry, Refresh, RegistryLocation};
use testkit::emulator::OneAtATime;
use testkit::esm;

pub const RESOURCES: &str = include_str!("../../infra/local/resources.json");
pub const APPS: &str = include_str!("../../infra/local/apps.json");

/// Counts DynamoDB operations sent through a client.
#[derive(Debug, Clone, Default)]
pub struct Counter(pub Arc<AtomicUsize>);

impl Counter {
    pub fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "Counter"
    }
    fn read_before_execution(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

pub struct TestEnv {
    pub sdk: aws_config::SdkConfig,
    pub sqs: aws_sdk_sqs::Client,
    pub queues: QueueUrls,
    pub store: Arc<DynamoDbStore>,
    pub ddb_requests: Counter,
    /// The media bucket (inbound images kept for the desk).
    pub media_bucket: String,
}

fn unique_prefix() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("it{}x{}-", nanos, N.fetch_add(1, Ordering::SeqCst))
}

impl TestEnv {
    /// A fresh environment, or `None` (test skipped) without an emulator.
    pub async fn new() -> Option<TestEnv> {
        if std::env::var("AWS_ENDPOINT_URL").is_err() {
            println!("skipped: AWS_ENDPOINT_URL not set (run through make test)");
            return None;
        }
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let prefix = unique_prefix();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queues = create_queues(&sqs, RESOURCES, &prefix).await.unwrap();
        let counter = Counter::default();
        // moto does not isolate concurrent transactions; DynamoDB does (see adapters::emulator).
        let ddb_conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(counter.clone())
            .http_client(OneAtATime::new())
            .build();
        let ddb = aws_sdk_dynamodb::Client::from_conf(ddb_conf);
        let tables = provision::create_tables(&ddb, RESOURCES, &prefix)
            .await
            .unwrap();
        counter.take();
        let store = Arc::new(DynamoDbStore::new(ddb, tables));
        let media_bucket = format!("{}media", prefix.to_lowercase());
        shared::adapters::s3::MediaBucket::client(&sdk)
            .create_bucket()
            .bucket(&media_bucket)
            .send()
            .await
            .unwrap();
        Some(TestEnv {
            sdk,
            sqs,
            queues,
            store,
            ddb_requests: counter,
            media_bucket,
        })
    }

    pub fn registry() -> AppRegistry {
        AppRegistry::parse(APPS).unwrap()
    }

    /// Ingress's configuration for this environment (registry inline), as `Config::from_env`
    /// would read it.
    pub fn ingress_config(&self) -> ingress::Config {
        ingress::Config {
            service: "kefu-test".into(),
            log_hash_key_secret: None,
            queue_url: self.queues.inbound.clone(),
            registry: RegistryLocation::Inline(APPS.into()),
            refresh: Refresh::default(),
            limits: ingress::Limits::default(),
        }
    }

    /// The processor's configuration for this environment's tables.
    pub fn processor_config(&self) -> processor::Config {
        processor::Config {
            service: "kefu-test".into(),
            tables: Tables {
                tokens: None,
                desk: None,
                ..self.store.tables().clone()
            },
            policy: QuotaPolicy::default(),
            retention_days: 0,
            follow_ups: self
                .queues
                .outbound
                .clone()
                .zip(self.store.tables().desk.clone()),
        }
    }

    /// The sender's configuration for this environment, sending to `platform_base`.
    pub fn sender_config(&self, platform_base: &str) -> sender::Config {
        sender::Config {
            service: "kefu-test".into(),
            log_hash_key_secret: None,
            tables: self.store.tables().clone(),
            registry: RegistryLocation::Inline(APPS.into()),
            refresh: Refresh::default(),
            base_urls: BaseUrls {
                wechat: platform_base.into(),
                baidu: platform_base.into(),
            },
            retention_days: 0,
            settings: sender::Settings::default(),
            media_bucket: Some(self.media_bucket.clone()),
        }
    }

    /// An ingress app on the real inbound queue, clock pinned at `now` (a pinned clock needs the
    /// in-process constructor; `ingress::App::build` always runs on the system clock).
    pub fn ingress(&self, now: u64) -> ingress::App<SqsQueue, FixedClock> {
        let limits = ingress::Limits::default();
        let client = SqsQueue::client_with_budget(&self.sdk, limits.enqueue_budget);
        ingress::App::new(
            limits,
            Self::registry(),
            SqsQueue::new(client, &self.queues.inbound),
            FixedClock::at_secs(now),
        )
    }

    pub fn processor(&self) -> processor::App<Arc<DynamoDbStore>> {
        processor::App::new(self.store.clone(), QuotaPolicy::default())
    }

    /// Receives up to 10 messages (short poll).
    pub async fn receive(
        &self,
        queue_url: &str,
        wait_secs: i32,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        self.sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_secs)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    }

    /// Polls the inbound queue into the processor until it is empty, deleting only records not
    /// reported as failures; returns (records handled, failed ids).
    pub async fn drain(&self, app: &processor::App<Arc<DynamoDbStore>>) -> (usize, Vec<String>) {
        let (mut handled, mut failed) = (0, Vec::new());
        let mut empty_polls = 0;
        while empty_polls < 2 {
            let batch = self.receive(&self.queues.inbound, 0).await;
            if batch.is_empty() {
                empty_polls += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            empty_polls = 0;
            handled += batch.len();
            // Failures become visible again at once, as a timed-out visibility would.
            let outcome = esm::run_batch(&self.sqs, &self.queues.inbound, &batch, 0, |event| {
                processor::handle(app, event)
            })
            .await;
            assert!(outcome.batch_error.is_none(), "{:?}", outcome.batch_error);
            assert!(outcome.unsettled.is_empty(), "{:?}", outcome.unsettled);
            let failures = outcome.failed;
            failed.extend(failures);
            if !failed.is_empty() {
                break;
            }
        }
        (handled, failed)
    }

    /// Messages visible plus in flight.
    pub async fn depth(&self, queue_url: &str) -> usize {
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let map = attrs.attributes.unwrap_or_default();
        let get = |k: &QueueAttributeName| {
            map.get(k)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
        };
        get(&QueueAttributeName::ApproximateNumberOfMessages)
            + get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    }
}
