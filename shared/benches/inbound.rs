//! Benchmark of the inbound pure path on `tests/data/bench_fixture.json` (the ~100-byte text
//! message in JSON and XML safe mode): verify `msg_signature`, decrypt, parse the typed message and
//! build the queue envelope JSON — everything ingress does before the SQS call.
//!
//! Run: `cargo bench -p shared --bench inbound`. Measures thread CPU time over at least 2 s of
//! work per format and prints the median of 15 samples; the output ends with exactly two lines
//! `inbound <case> <µs> us/msg`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use cpu_time::ThreadTime;
use serde_json::Value;
use shared::ids::Platform;
use shared::message::{self, InboundMessage, QueueEnvelope};
use shared::protocol::{
    self, AesKey, Callback, CallbackRequest, Credentials, DataFormat, Method, Mode, Params, Push,
    ReceiveIdRule,
};
use shared::secret::Secret;

const SAMPLES: usize = 15;
const SAMPLE_TIME: Duration = Duration::from_millis(150);

fn inbound(creds: &Credentials, query: &str, body: &[u8]) -> String {
    let push = read(creds, query, body);
    let (format, msg) = message::parse(&push.plaintext).expect("fixture parses");
    envelope_json(push.mode, format, msg)
}

/// The last stage: the queue envelope and its JSON, fitted to SQS's limit as ingress sends it.
fn envelope_json(mode: Mode, format: DataFormat, msg: InboundMessage<'_>) -> String {
    QueueEnvelope::new(
        Platform::Wechat,
        "wxb1ad2c3d4e5f6a7b",
        1_763_770_123_000,
        mode,
        format,
        msg,
    )
    .to_fitted_json()
}

/// The first stage: query, sealed body, signature, decryption.
fn read(creds: &Credentials, query: &str, body: &[u8]) -> Push {
    let params = Params::parse_query(query);
    let req = CallbackRequest {
        method: Method::Post,
        query: &params,
        body,
    };
    match protocol::wechat::read_callback(&req, creds) {
        Ok(Callback::Push(push)) => push,
        _ => panic!("fixture did not verify"),
    }
}

/// The median of [`SAMPLES`] samples of `work`, in µs per call (thread CPU time).
fn measure<R>(mut work: impl FnMut() -> R) -> f64 {
    // Calibrate: iterations per sample so that one sample takes about SAMPLE_TIME.
    let mut iters = 1u64;
    loop {
        let start = ThreadTime::now();
        for _ in 0..iters {
            black_box(work());
        }
        if start.elapsed() >= SAMPLE_TIME / 4 {
            let per = start.elapsed().as_secs_f64() / iters as f64;
            iters = (SAMPLE_TIME.as_secs_f64() / per).ceil() as u64;
            break;
        }
        iters *= 2;
    }
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let start = ThreadTime::now();
            for _ in 0..iters {
                black_box(work());
            }
            start.elapsed().as_secs_f64() * 1e6 / iters as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    eprintln!(
        "  {iters} iterations x {SAMPLES} samples; min {:.3} / median {:.3} / max {:.3} us",
        samples[0],
        samples[SAMPLES / 2],
        samples[SAMPLES - 1]
    );
    samples[SAMPLES / 2]
}

/// Times the three stages of [`inbound`] separately (stderr): reading the callback (query,
/// signature, decryption), parsing the plaintext, and building plus serialising the envelope.
fn stages(creds: &Credentials, query: &str, body: &[u8]) {
    let push = read(creds, query, body);
    let read_us = measure(|| read(creds, black_box(query), black_box(body)));
    let query_us = measure(|| Params::parse_query(black_box(query)));
    let sealed_us = measure(|| protocol::sealed::parse_sealed_body(black_box(body)).is_ok());
    let (_, sealed) = protocol::sealed::parse_sealed_body(body).expect("sealed");
    let encrypt = sealed.encrypt.clone().expect("encrypt");
    let params = Params::parse_query(query);
    let (ts, nonce, sig) = (
        params.get("timestamp").expect("ts"),
        params.get("nonce").expect("nonce"),
        params.get("msg_signature").expect("sig"),
    );
    let open_us =
        measure(|| protocol::open_signed(creds, ts, nonce, sig, black_box(&encrypt)).is_ok());
    eprintln!(
        "  read: query {query_us:.3} / sealed body {sealed_us:.3} / signature+decrypt {open_us:.3} us"
    );
    let parse_us = measure(|| message::parse(black_box(&push.plaintext)).expect("parses"));
    let (format, msg) = message::parse(&push.plaintext).expect("parses");
    let envelope_us = measure(|| envelope_json(push.mode, format, black_box(msg.clone())));
    let clone_us = measure(|| black_box(msg.clone()));
    eprintln!(
        "  stages: read {read_us:.3} / parse {parse_us:.3} / envelope {:.3} us",
        envelope_us - clone_us
    );
}

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bench_fixture.json");
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    let creds = Credentials {
        token: Secret::new(fixture["token"].as_str().expect("token")),
        key: AesKey::from_encoding_aes_key(fixture["encoding_aes_key"].as_str().expect("key"))
            .expect("key"),
        previous_key: None,
        previous_token: None,
        receive_id: ReceiveIdRule::Exact(fixture["appid"].as_str().expect("appid").to_owned()),
    };
    let mut lines = Vec::new();
    for (case, format) in [("json_safe_text", "json"), ("xml_safe_text", "xml")] {
        if std::env::var("INBOUND_CASE").is_ok_and(|c| c != format) {
            continue;
        }
        let f = &fixture[format];
        let query = format!(
            "timestamp={}&nonce={}&encrypt_type=aes&msg_signature={}",
            f["timestamp"].as_str().expect("ts"),
            f["nonce"].as_str().expect("nonce"),
            f["msg_signature"].as_str().expect("sig")
        );
        let body = f["body"].as_str().expect("body").as_bytes();
        if let Some(n) = std::env::var("INBOUND_FIXED_ITERATIONS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            // For instruction counting (valgrind --tool=callgrind): fixed work, no timing.
            for _ in 0..n {
                black_box(inbound(&creds, black_box(&query), black_box(body)));
            }
            continue;
        }
        eprintln!("inbound {case}: {} body bytes", body.len());
        let us = measure(|| inbound(&creds, black_box(&query), black_box(body)));
        if std::env::var("INBOUND_STAGES").is_ok() {
            stages(&creds, &query, body);
        }
        lines.push(format!("inbound {case} {us:.2} us/msg"));
    }
    for line in lines {
        println!("{line}");
    }
}
