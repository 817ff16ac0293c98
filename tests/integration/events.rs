//! The committed fixtures under `events/` still verify: every ingress event gets the answer in
//! its manifest, and the processor events give the documented batch results. Regenerate them
//! with `cargo run -p integration-tests --bin gen-events`.

use std::path::PathBuf;

use serde_json::Value;
use shared::clock::FixedClock;
use shared::quota::QuotaPolicy;
use testkit::memory::{InMemoryQueue, InMemoryStore};

use crate::helpers::TestEnv;

/// The timestamp the generator signs fixtures with.
const FIXTURE_TIME: u64 = 1_763_770_123;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

#[tokio::test]
async fn ingress_fixtures_get_their_manifest_answers() {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(events_dir().join("ingress/manifest.json")).unwrap(),
    )
    .unwrap();
    let manifest = manifest.as_object().unwrap();
    assert!(
        manifest.len() >= 15,
        "manifest lists {} events",
        manifest.len()
    );
    for (name, expected) in manifest {
        let text =
            std::fs::read_to_string(events_dir().join(format!("ingress/{name}.json"))).unwrap();
        let req = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let app = ingress::App::new(
            ingress::Limits::default(),
            TestEnv::registry(),
            InMemoryQueue::new(),
            FixedClock::at_secs(FIXTURE_TIME),
        );
        let resp = ingress::handle(&app, req).await.unwrap();
        assert_eq!(
            u64::from(resp.status().as_u16()),
            expected["status"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            resp.body().as_ref(),
            expected["body"].as_str().unwrap().as_bytes(),
            "{name}"
        );
        let queued = app.queue.bodies().len();
        assert_eq!(
            queued,
            usize::from(expected["body"] == "success"),
            "{name}: queued {queued}"
        );
    }
}

#[tokio::test]
async fn processor_fixtures_give_the_documented_batch_results() {
    for (file, failures, stored) in [
        ("sqs_two_messages.json", vec![], 2),
        ("sqs_duplicate_message.json", vec![], 1),
        ("sqs_poison_message.json", vec!["fixture-poison"], 1),
    ] {
        let text = std::fs::read_to_string(events_dir().join("processor").join(file)).unwrap();
        let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&text).unwrap();
        let app = processor::App::new(InMemoryStore::new(), QuotaPolicy::default());
        let resp = processor::handle(
            &app,
            lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
        )
        .await
        .unwrap();
        let ids: Vec<&str> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, failures, "{file}");
        assert_eq!(app.store.writes(), stored, "{file}");
    }
}
