//! Property tests: seal → open round trips for random keys, messages (0..5000 bytes, including
//! multiples of 32) and receive ids; opening and parsing arbitrary input never panics; every
//! authenticated plaintext is kept (parsed or raw) in an envelope that fits the queue.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use shared::ids::Platform;
use shared::message::{self, MessageBody, QueueEnvelope};
use shared::protocol::{
    self, AesKey, CallbackRequest, Credentials, DataFormat, Method, Mode, Params, ReceiveIdRule,
    Signature, cipher,
};
use shared::secret::Secret;

const ALNUM: &str = "[A-Za-z0-9]";

fn key_string() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{ALNUM}{{43}}")).unwrap()
}

fn message_len() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..5000, (0usize..157).prop_map(|k| k * 32)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn seal_then_open_round_trips(
        key in key_string(),
        random in any::<[u8; 16]>(),
        msg in message_len().prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n)),
        receive_id in proptest::string::string_regex(&format!("{ALNUM}{{0,40}}")).unwrap(),
    ) {
        let key = AesKey::from_encoding_aes_key(&key).unwrap();
        let sealed = cipher::seal(&key, &random, &msg, &receive_id);
        let raw = STANDARD.decode(&sealed).unwrap();
        prop_assert_eq!(raw.len() % 32, 0);
        let frame = cipher::open(&key, &sealed).unwrap();
        prop_assert_eq!(frame.random(), &random[..]);
        prop_assert_eq!(frame.message_bytes(), &msg[..]);
        prop_assert_eq!(frame.receive_id(), receive_id.as_bytes());
    }

    #[test]
    fn signed_utf8_messages_pass_the_wechat_rules(
        key in key_string(),
        text in "\\PC{0,300}",
        ts in 0u64..4_000_000_000,
        nonce in "[0-9]{1,10}",
    ) {
        let aes = AesKey::from_encoding_aes_key(&key).unwrap();
        let encrypt = cipher::seal(&aes, b"0123456789abcdef", text.as_bytes(), "wx1");
        let ts = ts.to_string();
        let sig = Signature::message("tok", &ts, &nonce, &encrypt);
        let body = format!("<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
        let q = format!("timestamp={ts}&nonce={nonce}&msg_signature={sig}&encrypt_type=aes");
        let query = Params::parse_query(&q);
        let creds = Credentials { token: Secret::new("tok"), key: aes, previous_key: None,
            previous_token: None, receive_id: ReceiveIdRule::Exact("wx1".into()) };
        let req = CallbackRequest { method: Method::Post, query: &query, body: body.as_bytes() };
        match protocol::wechat::read_callback(&req, &creds) {
            Ok(protocol::Callback::Push(push)) => prop_assert_eq!(push.plaintext, text),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn open_never_panics_on_random_ciphertexts(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..600),
            (1usize..40).prop_flat_map(|k| proptest::collection::vec(any::<u8>(), k * 16)),
        ],
    ) {
        let key = AesKey::from_encoding_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").unwrap();
        if let Ok(frame) = cipher::open(&key, &STANDARD.encode(&bytes)) {
            // Whatever opens must be internally consistent.
            prop_assert!(frame.message_bytes().len() + 20 <= bytes.len());
        }
    }

    #[test]
    fn open_never_panics_on_random_strings(s in "\\PC{0,200}") {
        let key = AesKey::from_encoding_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").unwrap();
        let _ = cipher::open(&key, &s);
    }

    #[test]
    fn rules_and_parser_never_panic_on_random_bodies(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        query in "[a-z_=&%0-9A-F]{0,80}",
        post in any::<bool>(),
    ) {
        let creds = Credentials {
            token: Secret::new("tok"),
            key: AesKey::from_encoding_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").unwrap(),
            previous_key: None,
            previous_token: None,
            receive_id: ReceiveIdRule::Report,
        };
        let query = Params::parse_query(&query);
        let method = if post { Method::Post } else { Method::Get };
        let req = CallbackRequest { method, query: &query, body: &body };
        let _ = protocol::wechat::read_callback(&req, &creds);
        let _ = protocol::baidu::read_callback(&req, &creds);
        let _ = message::parse(&String::from_utf8_lossy(&body));
    }
}

proptest! {
    // Large inputs: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_plaintext_is_kept_and_fits_the_queue(
        unit in prop_oneof![
            "\\PC{0,40}".boxed(),
            "[<>{}\\x00-\\x1f\"\\\\a-z:,\u{fffe}\u{ffff}]{1,40}".boxed(),
            Just(r#"{"FromUserName":"o","CreateTime":1,"MsgType":"text","Content":"\u0001"#.to_owned()).boxed(),
        ],
        repeat in prop_oneof![1usize..4, 1_000usize..4_000],
        fallback in any::<u64>(),
    ) {
        let plaintext = unit.repeat(repeat);
        let (_, m) = message::parse_or_raw(&plaintext, fallback);
        match &m.body {
            MessageBody::Raw { raw, .. } => prop_assert_eq!(raw, &plaintext),
            _ => prop_assert!(message::parse(&plaintext).is_ok()),
        }
        if message::check_key_limits(&m).is_ok() {
            let mut env = QueueEnvelope::new(Platform::Wechat, "wx1", 1, Mode::Safe, DataFormat::Json, m);
            let json = env.to_fitted_json();
            prop_assert_eq!(&json, &env.to_json());
            prop_assert!(json.len() <= QueueEnvelope::MAX_BYTES, "{} bytes", json.len());
            prop_assert_eq!(QueueEnvelope::from_json(&json).unwrap(), env);
        }
    }
}
