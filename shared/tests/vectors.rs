//! Data-driven tests over every published vector (`official.json`) and every case of the
//! independent corpus (`corpus.json`): positive cases must yield the exact plaintext and fields,
//! negative cases must be rejected with the expected error class or one of its acceptable ones.
//!
//! The vectors live in `tests/data/` (their sources and the traps they pin are in docs/protocol.md §5).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::Value;
use shared::message::{self, InboundMessage, MessageBody};
use shared::protocol::{
    self, AesKey, Callback, CallbackRequest, Credentials, Method, Params, ProtocolError,
    ReceiveIdRule, Signature, cipher,
};
use shared::secret::Secret;

fn data(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn s<'a>(case: &'a Value, field: &str) -> &'a str {
    case[field]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no string {field}", case["id"]))
}

#[test]
fn official_vectors_all_pass() {
    let doc = data("official.json");
    let signatures = doc["signatures"].as_array().unwrap();
    for case in signatures {
        let sig = Signature::plain(s(case, "token"), s(case, "timestamp"), s(case, "nonce"));
        assert_eq!(sig.as_str(), s(case, "signature"), "{}", case["source"]);
    }
    let decrypts = doc["decrypt"].as_array().unwrap();
    for case in decrypts {
        let name = s(case, "name");
        let key = AesKey::from_encoding_aes_key(s(case, "encoding_aes_key")).unwrap();
        let encrypt = s(case, "encrypt");
        let frame = cipher::open(&key, encrypt).unwrap_or_else(|e| panic!("{name}: {e}"));
        let random = hex::decode(s(case, "random_hex")).unwrap();
        assert_eq!(frame.random(), &random[..], "{name}: random");
        assert_eq!(
            frame.receive_id(),
            s(case, "receive_id").as_bytes(),
            "{name}: receive id"
        );
        let plaintext = s(case, "plaintext");
        let ct_len = base64_len(encrypt);
        let pad = ct_len - 20 - plaintext.len() - s(case, "receive_id").len();
        assert_eq!(pad as u64, case["pad"].as_u64().unwrap(), "{name}: pad");
        assert_eq!(
            frame.into_message().as_deref(),
            Some(plaintext),
            "{name}: plaintext"
        );
        // Sealing the same message with the same random reproduces the ciphertext byte for byte.
        let random: [u8; 16] = random.try_into().unwrap();
        let resealed = cipher::seal(&key, &random, plaintext.as_bytes(), s(case, "receive_id"));
        assert_eq!(resealed, encrypt, "{name}: seal");
        if let (Some(sig), Some(token)) = (case["msg_signature"].as_str(), case["token"].as_str()) {
            let computed =
                Signature::message(token, s(case, "timestamp"), s(case, "nonce"), encrypt);
            assert!(computed.matches(sig), "{name}: msg_signature");
        }
    }
    println!(
        "vectors: official.json {} signature + {} decrypt cases passed",
        signatures.len(),
        decrypts.len()
    );
}

fn base64_len(b64: &str) -> usize {
    let pad = b64.bytes().rev().take_while(|&b| b == b'=').count();
    b64.len() / 4 * 3 - pad
}

fn creds(case: &Value, receive_id: ReceiveIdRule) -> Credentials {
    Credentials {
        token: Secret::new(s(case, "token")),
        key: AesKey::from_encoding_aes_key(s(case, "encoding_aes_key")).unwrap(),
        previous_key: None,
        previous_token: None,
        receive_id,
    }
}

/// Runs one corpus message through the WeChat rules and the parser; returns the plaintext and
/// the parsed message, or the corpus error class.
fn run_wechat(case: &Value) -> Result<(String, InboundMessage<'static>), String> {
    let query = Params::parse_query(s(case, "query_string"));
    let body = s(case, "body").as_bytes();
    let req = CallbackRequest {
        method: Method::Post,
        query: &query,
        body,
    };
    let creds = creds(case, ReceiveIdRule::Exact(s(case, "appid").to_owned()));
    match protocol::wechat::read_callback(&req, &creds) {
        Ok(Callback::Push(push)) => match message::parse(&push.plaintext) {
            Ok((_, m)) => {
                let m = m.into_owned();
                Ok((push.plaintext, m))
            }
            Err(_) => Err("message_invalid".into()),
        },
        Ok(Callback::Verify { .. }) => Err("unexpected verification".into()),
        Err(e) => Err(e.reason().into()),
    }
}

fn check_fields(id: &str, m: &InboundMessage<'_>, fields: &serde_json::Map<String, Value>) {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for (name, expected) in fields {
        let expected = text(expected);
        let actual: Option<String> = match (name.as_str(), &m.body) {
            ("ToUserName", _) => m.to_user_name.clone().map(|s| s.into_owned()),
            ("FromUserName", _) => Some(m.from_user_name.to_string()),
            ("CreateTime", _) => Some(m.create_time.to_string()),
            ("MsgType", _) => Some(m.msg_type().to_owned()),
            ("MsgId", _) => m.msg_id.as_ref().map(|i| i.0.clone()),
            ("Content", MessageBody::Text { content }) => Some(content.to_string()),
            ("PicUrl", MessageBody::Image { pic_url, .. }) => {
                pic_url.clone().map(|s| s.into_owned())
            }
            ("MediaId", MessageBody::Image { media_id, .. }) => {
                media_id.clone().map(|s| s.into_owned())
            }
            ("Title", MessageBody::MiniProgramPage { title, .. }) => Some(title.to_string()),
            ("AppId", MessageBody::MiniProgramPage { app_id, .. }) => Some(app_id.to_string()),
            ("PagePath", MessageBody::MiniProgramPage { page_path, .. }) => {
                Some(page_path.to_string())
            }
            ("ThumbUrl", MessageBody::MiniProgramPage { thumb_url, .. }) => {
                Some(thumb_url.to_string())
            }
            ("ThumbMediaId", MessageBody::MiniProgramPage { thumb_media_id, .. }) => {
                Some(thumb_media_id.to_string())
            }
            ("Event", MessageBody::UserEnterTempSession { .. }) => {
                Some("user_enter_tempsession".into())
            }
            ("Event", MessageBody::Event { event, .. }) => Some(event.to_string()),
            ("SessionFrom", MessageBody::UserEnterTempSession { session_from }) => {
                Some(session_from.to_string())
            }
            (other, MessageBody::Event { fields, .. } | MessageBody::Unknown { fields, .. }) => {
                fields.get(other).map(text)
            }
            // Fields a modelled type does not carry (FutureField, AgentID, …) are ignored.
            _ => continue,
        };
        assert_eq!(
            actual.as_deref(),
            Some(expected.as_str()),
            "{id}: field {name}"
        );
    }
}

#[test]
fn corpus_vectors_all_pass() {
    let doc = data("corpus.json");
    let cases = doc["cases"].as_array().unwrap();
    let (mut positive, mut negative) = (0usize, 0usize);
    for case in cases {
        let id = s(case, "id");
        let expected = &case["expected"];
        let ok = expected["ok"].as_bool().unwrap();
        let acceptable: Vec<&str> = expected["acceptable_errors"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let check_err = |got: &str| {
            assert!(
                acceptable.contains(&got) || expected["error"].as_str() == Some(got),
                "{id}: rejected as {got}, expected one of {acceptable:?}"
            );
        };
        match s(case, "kind") {
            "message" | "message_official" | "message_interop" => {
                let (plaintext, m) =
                    run_wechat(case).unwrap_or_else(|e| panic!("{id}: rejected as {e}"));
                assert_eq!(plaintext, s(expected, "plaintext"), "{id}: plaintext");
                check_fields(id, &m, expected["fields"].as_object().unwrap());
                // Baidu first party carries the same signature in the query: same result.
                let query = Params::parse_query(s(case, "query_string"));
                let req = CallbackRequest {
                    method: Method::Post,
                    query: &query,
                    body: s(case, "body").as_bytes(),
                };
                match protocol::baidu::read_callback(&req, &creds(case, ReceiveIdRule::Report)) {
                    Ok(Callback::Push(push)) => {
                        assert_eq!(push.plaintext, plaintext, "{id}: baidu")
                    }
                    other => panic!("{id}: baidu rules gave {other:?}"),
                }
                positive += 1;
            }
            "message_negative" => {
                match run_wechat(case) {
                    Ok(_) => panic!("{id}: accepted, expected {:?}", expected["error"]),
                    Err(e) => check_err(&e),
                }
                negative += 1;
            }
            "url_verify_plain" | "url_verify_plain_negative" => {
                let query = Params::parse_query(s(case, "query_string"));
                let req = CallbackRequest {
                    method: Method::Get,
                    query: &query,
                    body: b"",
                };
                let creds = Credentials {
                    token: Secret::new(s(case, "token")),
                    key: AesKey::from_encoding_aes_key(
                        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
                    )
                    .unwrap(),
                    previous_key: None,
                    previous_token: None,
                    receive_id: ReceiveIdRule::Report,
                };
                for result in [
                    protocol::wechat::read_callback(&req, &creds),
                    protocol::baidu::read_callback(&req, &creds),
                ] {
                    match (ok, result) {
                        (true, Ok(Callback::Verify { echo })) => {
                            assert_eq!(echo, s(expected, "response_body"), "{id}")
                        }
                        (false, Err(e)) => check_err(e.reason()),
                        (_, other) => panic!("{id}: unexpected {other:?}"),
                    }
                }
                if ok { positive += 1 } else { negative += 1 }
            }
            "url_verify_encrypted"
            | "url_verify_encrypted_official"
            | "url_verify_encrypted_negative" => {
                // WeCom-style encrypted echostr: exercises the shared signature and cipher.
                let query = Params::parse_query(s(case, "query_string"));
                let echostr = query.get("echostr").unwrap();
                let result = protocol::open_signed(
                    &creds(case, ReceiveIdRule::Exact(s(case, "appid").to_owned())),
                    query.get("timestamp").unwrap(),
                    query.get("nonce").unwrap(),
                    query.get("msg_signature").unwrap(),
                    echostr,
                );
                match (ok, result) {
                    (true, Ok(opened)) => {
                        assert_eq!(opened.plaintext, s(expected, "response_body"), "{id}")
                    }
                    (false, Err(e)) => check_err(e.reason()),
                    (_, other) => panic!("{id}: unexpected {other:?}"),
                }
                if ok { positive += 1 } else { negative += 1 }
            }
            "config_negative" => {
                assert!(
                    AesKey::from_encoding_aes_key(s(case, "encoding_aes_key")).is_err(),
                    "{id}: key accepted"
                );
                check_err("key_invalid");
                negative += 1;
            }
            other => panic!("{id}: unknown kind {other}"),
        }
    }
    assert_eq!(positive + negative, cases.len());
    println!(
        "vectors: corpus.json {} cases passed ({positive} positive, {negative} negative)",
        cases.len()
    );
}

#[test]
fn protocol_errors_have_distinct_reasons() {
    let reasons = [
        ProtocolError::SignatureMismatch.reason(),
        ProtocolError::ReceiveIdMismatch.reason(),
        ProtocolError::Utf8.reason(),
        ProtocolError::Cipher(cipher::CipherError::Base64).reason(),
        ProtocolError::Cipher(cipher::CipherError::CiphertextLength).reason(),
        ProtocolError::Cipher(cipher::CipherError::Padding).reason(),
        ProtocolError::Cipher(cipher::CipherError::FrameLength).reason(),
    ];
    let unique: std::collections::HashSet<_> = reasons.iter().collect();
    assert_eq!(unique.len(), reasons.len());
}
