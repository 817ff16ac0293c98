//! What a platform sends: signed URL-verification requests and signed, encrypted pushes, built
//! exactly as WeChat and Baidu build them (docs/protocol.md §1–§3). Used by `kefu simulate`, the event
//! fixture generator and tests; the inverse of the rules in `wechat` / `baidu`.

use std::fmt::Write as _;

use super::sealed::DataFormat;
use super::{AesKey, Mode, Signature, cipher};
use crate::ids::Platform;

/// Where a Baidu verification puts its parameters (docs/protocol.md §1.2: the docs disagree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyVia {
    /// `GET` with a query string (WeChat always; Baidu's older docs).
    Query,
    /// `POST` with a form body.
    Form,
    /// `POST` with a JSON body.
    Json,
}

/// An HTTP request as the platform would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The raw, percent-encoded query string (no leading `?`).
    pub query: String,
    /// The body (empty for GET).
    pub body: String,
    /// The `Content-Type` the platform would set.
    pub content_type: &'static str,
}

/// The signing secrets and ids of one app, as the console shows them.
#[derive(Debug, Clone)]
pub struct AppKeys {
    /// The Token.
    pub token: String,
    /// The decoded EncodingAESKey.
    pub key: AesKey,
    /// The id written after the message (AppID, component AppID or Baidu's numeric id).
    pub receive_id: String,
}

/// A push to build.
#[derive(Debug, Clone)]
pub struct PushSpec<'a> {
    /// Platform whose conventions to follow.
    pub platform: Platform,
    /// Plaintext, compatible or safe.
    pub mode: Mode,
    /// Envelope format (the plaintext message keeps its own).
    pub format: DataFormat,
    /// Signed timestamp.
    pub timestamp: u64,
    /// Nonce.
    pub nonce: &'a str,
    /// The 16 random bytes that start the frame.
    pub random: [u8; 16],
    /// Baidu 服务商 style: put `MsgSignature`, `TimeStamp`, `Nonce` in the JSON body.
    pub body_signature: bool,
    /// `ToUserName` for the envelope (WeChat original id), if any.
    pub to_user_name: Option<&'a str>,
}

/// Percent-encodes a query value (unreserved characters kept).
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A URL verification request for `echo`.
pub fn verify_request(
    token: &str,
    timestamp: u64,
    nonce: &str,
    echo: &str,
    platform: Platform,
    via: VerifyVia,
) -> SimulatedRequest {
    let ts = timestamp.to_string();
    let signature = Signature::plain(token, &ts, nonce);
    let echo_name = match platform {
        Platform::Wechat => "echostr",
        Platform::Baidu => "echoStr",
    };
    let pairs = format!(
        "signature={signature}&timestamp={ts}&nonce={}&{echo_name}={}",
        encode_query_value(nonce),
        encode_query_value(echo)
    );
    match via {
        VerifyVia::Query => SimulatedRequest { method: "GET", query: pairs, body: String::new(), content_type: "text/plain" },
        VerifyVia::Form => SimulatedRequest {
            method: "POST",
            query: String::new(),
            body: pairs,
            content_type: "application/x-www-form-urlencoded",
        },
        VerifyVia::Json => SimulatedRequest {
            method: "POST",
            query: String::new(),
            body: serde_json::json!({ "signature": signature.as_str(), "timestamp": ts, "nonce": nonce, echo_name: echo })
                .to_string(),
            content_type: "application/json",
        },
    }
}

/// A push of `plaintext` (a rendered message) protected as `spec` says.
pub fn push_request(keys: &AppKeys, spec: &PushSpec<'_>, plaintext: &str) -> SimulatedRequest {
    let ts = spec.timestamp.to_string();
    let nonce = spec.nonce;
    let signature = Signature::plain(&keys.token, &ts, nonce);
    let content_type = match spec.format {
        DataFormat::Json => "application/json",
        DataFormat::Xml => "text/xml",
    };
    if spec.mode == Mode::Plaintext {
        return SimulatedRequest {
            method: "POST",
            query: format!(
                "signature={signature}&timestamp={ts}&nonce={}",
                encode_query_value(nonce)
            ),
            body: plaintext.to_owned(),
            content_type,
        };
    }
    let encrypt = cipher::seal(
        &keys.key,
        &spec.random,
        plaintext.as_bytes(),
        &keys.receive_id,
    );
    let msg_signature = Signature::message(&keys.token, &ts, nonce, &encrypt);
    let body = match (spec.mode, spec.format) {
        (Mode::Compatible, DataFormat::Json) => {
            // The plaintext fields and Encrypt side by side.
            let mut doc: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(plaintext).unwrap_or_default();
            doc.insert("Encrypt".into(), encrypt.clone().into());
            if spec.body_signature {
                doc.insert("MsgSignature".into(), msg_signature.as_str().into());
                doc.insert("TimeStamp".into(), ts.clone().into());
                doc.insert("Nonce".into(), nonce.into());
            }
            serde_json::Value::Object(doc).to_string()
        }
        (Mode::Compatible, DataFormat::Xml) => {
            let inner = plaintext
                .trim_end()
                .strip_suffix("</xml>")
                .unwrap_or(plaintext);
            let mut out = format!("{inner}<Encrypt><![CDATA[{encrypt}]]></Encrypt>");
            if spec.body_signature {
                let _ = write!(
                    out,
                    "<MsgSignature><![CDATA[{msg_signature}]]></MsgSignature><TimeStamp>{ts}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce>"
                );
            }
            out.push_str("</xml>");
            out
        }
        (_, DataFormat::Json) => {
            let mut doc = serde_json::Map::new();
            if let Some(to) = spec.to_user_name {
                doc.insert("ToUserName".into(), to.into());
            }
            doc.insert("Encrypt".into(), encrypt.clone().into());
            if spec.body_signature {
                doc.insert("MsgSignature".into(), msg_signature.as_str().into());
                doc.insert("TimeStamp".into(), ts.clone().into());
                doc.insert("Nonce".into(), nonce.into());
            }
            serde_json::Value::Object(doc).to_string()
        }
        (_, DataFormat::Xml) => {
            let mut out = String::from("<xml>");
            if let Some(to) = spec.to_user_name {
                let _ = write!(out, "<ToUserName><![CDATA[{to}]]></ToUserName>");
            }
            let _ = write!(out, "<Encrypt><![CDATA[{encrypt}]]></Encrypt>");
            if spec.body_signature {
                let _ = write!(
                    out,
                    "<MsgSignature><![CDATA[{msg_signature}]]></MsgSignature><TimeStamp>{ts}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce>"
                );
            }
            out.push_str("</xml>");
            out
        }
    };
    let query = if spec.body_signature {
        String::new()
    } else {
        let mut q = format!(
            "signature={signature}&timestamp={ts}&nonce={}",
            encode_query_value(nonce)
        );
        if spec.platform == Platform::Wechat {
            q.push_str("&encrypt_type=aes");
        }
        let _ = write!(q, "&msg_signature={msg_signature}");
        q
    };
    SimulatedRequest {
        method: "POST",
        query,
        body,
        content_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        Callback, CallbackRequest, Credentials, Method, Params, ReceiveIdRule, baidu, wechat,
    };
    use crate::secret::Secret;

    fn keys() -> AppKeys {
        AppKeys {
            token: "tok".into(),
            key: AesKey::from_encoding_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
                .unwrap(),
            receive_id: "wx1".into(),
        }
    }

    fn creds(k: &AppKeys, rule: ReceiveIdRule) -> Credentials {
        Credentials {
            token: Secret::new(k.token.clone()),
            key: k.key.clone(),
            previous_key: None,
            previous_token: None,
            receive_id: rule,
        }
    }

    fn run(platform: Platform, req: &SimulatedRequest, c: &Credentials) -> Callback {
        let query = Params::parse_query(&req.query);
        let method = if req.method == "GET" {
            Method::Get
        } else {
            Method::Post
        };
        let r = CallbackRequest {
            method,
            query: &query,
            body: req.body.as_bytes(),
        };
        match platform {
            Platform::Wechat => wechat::read_callback(&r, c).unwrap(),
            Platform::Baidu => baidu::read_callback(&r, c).unwrap(),
        }
    }

    #[test]
    fn every_push_shape_passes_the_rules() {
        let k = keys();
        let plain_json =
            r#"{"FromUserName":"o","CreateTime":1,"MsgType":"text","Content":"hi","MsgId":1}"#;
        let plain_xml = "<xml><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>";
        for platform in [Platform::Wechat, Platform::Baidu] {
            for mode in [Mode::Plaintext, Mode::Compatible, Mode::Safe] {
                for (format, plaintext) in
                    [(DataFormat::Json, plain_json), (DataFormat::Xml, plain_xml)]
                {
                    for body_signature in [false, true] {
                        if body_signature
                            && (platform == Platform::Wechat || mode == Mode::Plaintext)
                        {
                            continue;
                        }
                        let spec = PushSpec {
                            platform,
                            mode,
                            format,
                            timestamp: 1_700_000_000,
                            nonce: "n 1",
                            random: [7; 16],
                            body_signature,
                            to_user_name: Some("gh_1"),
                        };
                        let req = push_request(&k, &spec, plaintext);
                        match run(
                            platform,
                            &req,
                            &creds(&k, ReceiveIdRule::Exact("wx1".into())),
                        ) {
                            Callback::Push(p) => {
                                assert_eq!(
                                    p.plaintext, plaintext,
                                    "{platform} {mode:?} {format:?}"
                                );
                                assert_eq!(p.mode, mode);
                                assert_eq!(p.timestamp, Some(1_700_000_000));
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn verification_requests_echo_for_every_carrier() {
        let k = keys();
        let c = creds(&k, ReceiveIdRule::Report);
        let echo = "abc+def/ghi== x";
        assert_eq!(
            run(
                Platform::Wechat,
                &verify_request("tok", 5, "9", echo, Platform::Wechat, VerifyVia::Query),
                &c
            ),
            Callback::Verify { echo: echo.into() }
        );
        for via in [VerifyVia::Query, VerifyVia::Form, VerifyVia::Json] {
            let req = verify_request("tok", 5, "9", echo, Platform::Baidu, via);
            assert_eq!(
                run(Platform::Baidu, &req, &c),
                Callback::Verify { echo: echo.into() },
                "{via:?}"
            );
        }
    }
}
