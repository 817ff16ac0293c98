//! HTTP clients for the platforms' outbound APIs (feature `platform-http`): WeChat customer-service
//! send, typing, temporary-media upload and access tokens (docs/protocol.md §9.1–9.3, §10.1), Baidu send and
//! access tokens (§9.4, §10.3).
//!
//! This module holds what both platforms share: [`PlatformError`] and its classification, the
//! [`OutboundBody`] model, [`BaseUrls`], the [`RetryPolicy`] for "system busy" answers, the
//! [`http_client`] builder and [`split_text`]. The per-platform rules (paths, encodings, errcode
//! tables) live in [`wechat`] and [`baidu`].
//!
//! The clients only classify errors. Refreshing an access token after
//! [`PlatformError::TokenInvalid`] is the caller's job (it owns the shared token cache); the
//! clients retry only [`PlatformError::Busy`]. Access tokens and URLs that carry them never appear
//! in error strings: reqwest errors are stripped of their URL and every message passes through a
//! redaction step.

pub mod baidu;
pub mod wechat;

use std::future::Future;
use std::time::Duration;

pub use baidu::BaiduClient;
pub use wechat::WechatClient;

/// WeChat's production API origin.
pub const WECHAT_BASE_URL: &str = "https://api.weixin.qq.com";
/// Baidu's production Open API origin.
pub const BAIDU_BASE_URL: &str = "https://openapi.baidu.com";
/// Largest text part sent in one message, in UTF-8 bytes (docs/protocol.md §11.1).
pub const MAX_TEXT_BYTES: usize = 2000;

/// Why a platform call failed.
///
/// Only the *definite* rejections ([`is_definite_rejection`](Self::is_definite_rejection)) prove
/// that the message was not delivered; [`Timeout`](Self::Timeout),
/// [`Transport`](Self::Transport) and [`Protocol`](Self::Protocol) leave the outcome unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// The access token is invalid or expired (WeChat 40001/40014/42001, Baidu 110/111): refresh
    /// it once and retry once.
    #[error("access token rejected (errcode {errcode})")]
    TokenInvalid {
        /// The platform's code.
        errcode: i64,
    },
    /// The platform is busy or rate-limiting (WeChat -1, Baidu 4/17/18): retry with backoff. The
    /// clients already retried [`RetryPolicy::backoff`]`.len()` times before returning this.
    #[error("platform busy (errcode {errcode})")]
    Busy {
        /// The platform's code.
        errcode: i64,
    },
    /// The user's message quota is used up (WeChat 45047, Baidu 90001): drop, mark quota 0.
    #[error("send quota exhausted (errcode {errcode})")]
    QuotaExhausted {
        /// The platform's code.
        errcode: i64,
    },
    /// The send window has expired (WeChat 45015): drop, mark the window closed.
    #[error("send window expired (errcode {errcode})")]
    WindowExpired {
        /// The platform's code.
        errcode: i64,
    },
    /// Any other definite rejection (bad openid, bad media id, no permission, bad credentials…).
    #[error("platform rejected the call (errcode {errcode:?}): {errmsg}")]
    Rejected {
        /// The platform's numeric code; `None` for Baidu OAuth-style errors
        /// (`{"error":"invalid_client",…}`), whose code is a string (kept in `errmsg`).
        errcode: Option<i64>,
        /// The platform's message, with anything that looks like an access token redacted.
        errmsg: String,
    },
    /// The body is not valid for this platform (e.g. a Baidu `ImageUrl` sent to WeChat). Nothing
    /// was sent.
    #[error("{msg_type} messages are not supported by {platform}")]
    Unsupported {
        /// The platform's lowercase name.
        platform: &'static str,
        /// The body's message type.
        msg_type: &'static str,
    },
    /// No answer within the client's timeout: the platform may or may not have acted.
    #[error("platform call timed out")]
    Timeout,
    /// The request failed below HTTP (connect refused, TLS, reset). It may or may not have reached
    /// the platform, so treat the outcome as unknown, like [`Timeout`](Self::Timeout).
    #[error("transport error: {0}")]
    Transport(String),
    /// The platform answered with something unparseable (non-JSON, unexpected shape, HTTP error
    /// page): outcome unknown.
    #[error("unexpected platform response: {0}")]
    Protocol(String),
}

impl PlatformError {
    /// The platform's numeric code, for the variants that carry one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Self::TokenInvalid { errcode }
            | Self::Busy { errcode }
            | Self::QuotaExhausted { errcode }
            | Self::WindowExpired { errcode } => Some(*errcode),
            Self::Rejected { errcode, .. } => *errcode,
            Self::Unsupported { .. } | Self::Timeout | Self::Transport(_) | Self::Protocol(_) => {
                None
            }
        }
    }

    /// True when the platform definitely did not deliver (it answered with an error code, or
    /// nothing was sent): the caller may release a reserved quota unit. False for
    /// [`Timeout`](Self::Timeout), [`Transport`](Self::Transport) and
    /// [`Protocol`](Self::Protocol), whose outcome is unknown.
    pub fn is_definite_rejection(&self) -> bool {
        !matches!(self, Self::Timeout | Self::Transport(_) | Self::Protocol(_))
    }

    /// Maps a reqwest error without its URL (which carries `access_token=`).
    pub(crate) fn from_reqwest(err: reqwest::Error) -> Self {
        let err = err.without_url();
        if err.is_timeout() {
            return Self::Timeout;
        }
        let mut text = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::Transport(redact(&text))
    }
}

/// Replaces the value of every `access_token=` in `text` with `***`.
pub(crate) fn redact(text: &str) -> String {
    const KEY: &str = "access_token=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (head, tail) = rest.split_at(at + KEY.len());
        out.push_str(head);
        out.push_str("***");
        let end = tail
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The platforms' API origins (scheme, host, optional port; no trailing slash). Injectable so
/// tests and the dev loop can point at `testkit::fake_platform`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrls {
    /// WeChat origin, default [`WECHAT_BASE_URL`].
    pub wechat: String,
    /// Baidu origin, default [`BAIDU_BASE_URL`].
    pub baidu: String,
}

impl Default for BaseUrls {
    fn default() -> Self {
        Self {
            wechat: WECHAT_BASE_URL.to_owned(),
            baidu: BAIDU_BASE_URL.to_owned(),
        }
    }
}

impl BaseUrls {
    /// Both platforms at one origin (the fake serves both).
    pub fn same(base: impl Into<String>) -> Self {
        let base = base.into();
        Self {
            wechat: base.clone(),
            baidu: base,
        }
    }
}

/// One outbound customer-service message body.
///
/// WeChat accepts `Text`, `Image`, `Link` and `MiniProgramPage` (docs/protocol.md §9.1); Baidu accepts
/// `Text` and `ImageUrl` (§9.4). A client given a body its platform does not support returns
/// [`PlatformError::Unsupported`] without calling out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundBody {
    /// Plain text (both platforms). Split long text with [`split_text`] first.
    Text {
        /// The text, raw UTF-8.
        content: String,
    },
    /// WeChat image by temporary media id (from [`WechatClient::upload_image`]).
    Image {
        /// The media id (valid 3 days).
        media_id: String,
    },
    /// WeChat link card.
    Link {
        /// Title.
        title: String,
        /// Description.
        description: String,
        /// Target URL.
        url: String,
        /// Thumbnail image URL (JPG/PNG).
        thumb_url: String,
    },
    /// WeChat mini program page card.
    MiniProgramPage {
        /// Title.
        title: String,
        /// Page path, as in app.json, may carry a query string.
        pagepath: String,
        /// Thumbnail image media id.
        thumb_media_id: String,
    },
    /// Baidu image by URL (`msg_type=image`, `pic_url`).
    ImageUrl {
        /// The image URL.
        pic_url: String,
    },
}

impl OutboundBody {
    /// The platform's `msgtype`/`msg_type` value for this body.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Image { .. } | Self::ImageUrl { .. } => "image",
            Self::Link { .. } => "link",
            Self::MiniProgramPage { .. } => "miniprogrampage",
        }
    }
}

/// How often and how long the clients wait before retrying a [`PlatformError::Busy`] answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// One entry per retry: the pause before it. Empty disables retries.
    pub backoff: Vec<Duration>,
}

impl Default for RetryPolicy {
    /// Two retries, after 100 ms and 300 ms.
    fn default() -> Self {
        Self {
            backoff: vec![Duration::from_millis(100), Duration::from_millis(300)],
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            backoff: Vec::new(),
        }
    }

    /// Runs `op`, retrying [`PlatformError::Busy`] after each pause in `backoff`; any other
    /// outcome (including [`PlatformError::Timeout`], whose outcome is unknown) returns at once.
    pub(crate) async fn run<T, F, Fut>(&self, mut op: F) -> Result<T, PlatformError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, PlatformError>>,
    {
        let mut pauses = self.backoff.iter();
        loop {
            match op().await {
                Err(PlatformError::Busy { errcode }) => match pauses.next() {
                    Some(pause) => {
                        tracing::debug!(errcode, "platform busy, retrying");
                        tokio::time::sleep(*pause).await;
                    }
                    None => return Err(PlatformError::Busy { errcode }),
                },
                other => return other,
            }
        }
    }
}

/// Builds the reqwest client the platform clients share: rustls, HTTP/1.1, the given connect and
/// total (per request, body included) timeouts.
pub fn http_client(
    connect_timeout: Duration,
    total_timeout: Duration,
) -> Result<reqwest::Client, PlatformError> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(total_timeout)
        .build()
        .map_err(PlatformError::from_reqwest)
}

/// Splits `text` into parts of at most `max_bytes` UTF-8 bytes each, only on character
/// boundaries, preserving order and content. Empty text gives one empty part. A character longer
/// than `max_bytes` (only possible with `max_bytes < 4`) gets a part of its own.
pub fn split_text(text: &str, max_bytes: usize) -> Vec<String> {
    if text.is_empty() {
        return vec![String::new()];
    }
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max_bytes);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            // One character wider than the limit: emit it whole rather than loop forever.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (head, tail) = rest.split_at(end);
        parts.push(head.to_owned());
        rest = tail;
    }
    parts
}

/// Reads a response body as bytes, mapping transport errors (incl. a timeout while reading).
pub(crate) async fn body_bytes(resp: reqwest::Response) -> Result<Vec<u8>, PlatformError> {
    resp.bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(PlatformError::from_reqwest)
}

/// Builds `base + path` with `params` as the query string.
pub(crate) fn url_with(
    base: &str,
    path: &str,
    params: &[(&str, &str)],
) -> Result<reqwest::Url, PlatformError> {
    let raw = format!("{}{path}", base.trim_end_matches('/'));
    // The URL may contain secrets: never include it (or the parser's message about it).
    reqwest::Url::parse_with_params(&raw, params)
        .map_err(|_| PlatformError::Transport("invalid platform base URL".to_owned()))
}

/// Parses a JSON body, naming the HTTP status when it is not JSON.
pub(crate) fn parse_json(
    status: reqwest::StatusCode,
    body: &[u8],
) -> Result<serde_json::Value, PlatformError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) if value.is_object() => Ok(value),
        _ => Err(PlatformError::Protocol(format!(
            "HTTP {} with a non-JSON-object body of {} bytes",
            status.as_u16(),
            body.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_empty_gives_one_empty_part() {
        assert_eq!(split_text("", 2000), vec![String::new()]);
    }

    #[test]
    fn split_short_text_is_unchanged() {
        assert_eq!(split_text("hello", 2000), vec!["hello".to_owned()]);
        assert_eq!(split_text("hello", 5), vec!["hello".to_owned()]);
    }

    #[test]
    fn split_ascii_at_exact_limit() {
        assert_eq!(split_text("abcdef", 3), vec!["abc", "def"]);
        assert_eq!(split_text("abcdefg", 3), vec!["abc", "def", "g"]);
    }

    #[test]
    fn split_never_cuts_a_multibyte_char() {
        // "你" is 3 bytes: a 4-byte limit holds one char per part.
        let parts = split_text("你好世界", 4);
        assert_eq!(parts, vec!["你", "好", "世", "界"]);
        let parts = split_text("a你好", 4);
        assert_eq!(parts, vec!["a你", "好"]);
    }

    #[test]
    fn split_emoji_at_boundary() {
        // "😀" is 4 bytes; at limit 5, "ab😀" (6 bytes) must cut before the emoji.
        let parts = split_text("ab😀cd", 5);
        assert_eq!(parts, vec!["ab", "😀c", "d"]);
        // A ZWJ family stays readable part by part; every part is valid UTF-8 within the limit.
        let family = "👨‍👩‍👧".repeat(50);
        let parts = split_text(&family, 2000);
        assert_eq!(parts.concat(), family);
        assert!(parts.iter().all(|p| p.len() <= 2000));
    }

    #[test]
    fn split_limit_smaller_than_a_char() {
        assert_eq!(split_text("😀a", 2), vec!["😀", "a"]);
    }

    #[test]
    fn split_round_trips_and_respects_limit() {
        let text = "汉字😀abc".repeat(400);
        for limit in [1, 2, 3, 4, 5, 7, 2000] {
            let parts = split_text(&text, limit);
            assert_eq!(parts.concat(), text);
            assert!(parts.iter().all(|p| !p.is_empty()));
            if limit >= 4 {
                assert!(parts.iter().all(|p| p.len() <= limit), "limit {limit}");
            }
        }
        let parts = split_text(&text, MAX_TEXT_BYTES);
        assert!(
            parts[..parts.len() - 1]
                .iter()
                .all(|p| p.len() > MAX_TEXT_BYTES - 4)
        );
    }

    #[test]
    fn redact_hides_token_values() {
        assert_eq!(
            redact("GET /x?access_token=abc.DEF-1&type=image failed"),
            "GET /x?access_token=***&type=image failed"
        );
        assert_eq!(redact("access_token=zzz"), "access_token=***");
        assert_eq!(redact("nothing here"), "nothing here");
    }

    #[test]
    fn classification_helpers() {
        assert_eq!(PlatformError::Busy { errcode: -1 }.errcode(), Some(-1));
        assert_eq!(PlatformError::Timeout.errcode(), None);
        assert!(!PlatformError::Timeout.is_definite_rejection());
        assert!(!PlatformError::Transport("x".into()).is_definite_rejection());
        assert!(!PlatformError::Protocol("x".into()).is_definite_rejection());
        assert!(PlatformError::QuotaExhausted { errcode: 45047 }.is_definite_rejection());
        let rejected = PlatformError::Rejected {
            errcode: None,
            errmsg: "invalid_client".into(),
        };
        assert_eq!(rejected.errcode(), None);
        assert!(rejected.is_definite_rejection());
    }

    #[test]
    fn msg_types() {
        let text = OutboundBody::Text {
            content: "x".into(),
        };
        assert_eq!(text.msg_type(), "text");
        let img = OutboundBody::ImageUrl {
            pic_url: "u".into(),
        };
        assert_eq!(img.msg_type(), "image");
    }
}
