//! `client_msg_id`: one key per (platform, app, id), bound to the request's fingerprint (user and
//! content). A repeat of a completed request returns its stored answer and sends nothing; the same
//! key for another request is refused (422); a claim is leased until the request's deadline plus a
//! margin, so an invocation that dies before sending never blocks its key for long, and one that
//! dies while sending is answered "outcome unknown", never sent twice.

use serde_json::{Value, json};
use shared::clock::Clock;
use shared::ids::ConversationKey;
use shared::ports::{
    AccessTokenCache, Claim, ClaimRequest, MediaIdCache, OutboundStore, QuotaLedger,
};
use shared::registry::AppConfig;
use tracing::error;

use crate::deadline::Deadline;
use crate::error::SendError;
use crate::request::SendRequest;
use crate::response::Answer;
use crate::send::best_effort;
use crate::{App, pick_app};

impl<S, T, M, C> App<S, T, M, C>
where
    S: QuotaLedger + OutboundStore,
    T: AccessTokenCache,
    M: MediaIdCache,
    C: Clock,
{
    /// Sends one message: the use case behind `POST /messages`, idempotency included.
    pub async fn send(&self, req: &SendRequest, deadline: &Deadline) -> Result<Answer, SendError> {
        let registry = self.registry.current().await;
        let app = pick_app(&registry, &req.app_id, req.platform)?;
        let key = ConversationKey {
            platform: app.platform,
            app_id: app.app_id.clone(),
            open_id: req.open_id.clone(),
        };
        let Some(client_msg_id) = &req.client_msg_id else {
            return self.send_once(app, &key, req, deadline, None).await;
        };
        let idem = format!("{}#{}#{client_msg_id}", app.platform, app.app_id);
        let now = self.clock.now_secs();
        let claim = ClaimRequest {
            key: &idem,
            fingerprint: &req.fingerprint,
            now,
            lease_until: deadline.end_unix_secs() + self.config.lease_margin_secs,
            ttl_secs: self.config.idempotency_ttl_secs,
        };
        match self.store.claim(&claim).await? {
            Claim::New => {}
            Claim::Completed(stored) => return Answer::replay(&stored),
            Claim::InProgress => return Err(SendError::InProgress),
            Claim::Reused => return Err(SendError::KeyReused),
            Claim::Interrupted => {
                let answer = Answer::from_error(&SendError::Interrupted);
                self.store.complete(&idem, &answer.stored()).await?;
                return Ok(answer);
            }
        }
        let result = self.send_once(app, &key, req, deadline, Some(&idem)).await;
        let answer = match &result {
            Ok(answer) => answer.clone(),
            Err(e) if e.is_final() => Answer::from_error(e),
            Err(_) => {
                // Nothing reached the platform: let a retry run.
                self.store.abandon(&idem).await?;
                return result;
            }
        };
        let stored = answer.stored();
        if let Err(e) = best_effort("complete", || self.store.complete(&idem, &stored)).await {
            // The key stays `sending`: a retry after its lease is answered "outcome unknown".
            error!(platform = %app.platform, app_id = %app.app_id, error.message = %e, "idempotency record not completed");
        }
        Ok(answer)
    }

    async fn send_once(
        &self,
        app: &AppConfig,
        key: &ConversationKey,
        req: &SendRequest,
        deadline: &Deadline,
        idem: Option<&str>,
    ) -> Result<Answer, SendError> {
        let mark = || async {
            match idem {
                Some(k) => self.store.start_sending(k).await,
                None => Ok(()),
            }
        };
        match self.deliver(app, key, req, deadline, mark).await {
            Ok(delivery) => Ok(Answer::from_delivery(&delivery)),
            Err(e) => Err(e),
        }
    }
}

/// The stored form of an answer: `{"status": …, "body": …}`.
pub(crate) fn stored(status: u16, body: &Value) -> String {
    json!({ "status": status, "body": body }).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use shared::api::baidu::BaiduClient;
    use shared::api::http_client;
    use shared::api::wechat::WechatClient;
    use shared::clock::FixedClock;
    use shared::ids::{MsgId, Platform};
    use shared::message::{InboundMessage, MessageBody, QueueEnvelope};
    use shared::ports::MessageStore;
    use shared::protocol::{DataFormat, Mode};
    use shared::quota::QuotaPolicy;
    use shared::registry::AppRegistry;
    use testkit::fake_platform::FakePlatform;
    use testkit::memory::{InMemoryMediaIds, InMemoryStore, InMemoryTokens};

    use super::*;
    use crate::{Clients, Settings};

    const NOW: u64 = 1_800_000_000;
    const REGISTRY: &str = r#"{"apps":[{"platform":"wechat","app_id":"wx1","token":"t",
        "encoding_aes_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG","app_secret":"s"}]}"#;

    async fn app(
        fake: &FakePlatform,
    ) -> App<InMemoryStore, InMemoryTokens, InMemoryMediaIds, FixedClock> {
        let http = http_client(Duration::from_millis(500), Duration::from_secs(2)).unwrap();
        let registry = AppRegistry::parse_for(REGISTRY, shared::registry::Purpose::Send).unwrap();
        let app = App::new(
            Settings::default(),
            registry,
            InMemoryStore::new(),
            InMemoryTokens::new(),
            InMemoryMediaIds::new(),
            Clients {
                wechat: WechatClient::new(http.clone(), fake.base_url()),
                baidu: BaiduClient::new(http, fake.base_url()),
                images: reqwest::Client::new(),
            },
            FixedClock::at_secs(NOW),
        );
        let message = InboundMessage {
            to_user_name: None,
            from_user_name: "oU".into(),
            create_time: NOW - 5,
            msg_id: Some(MsgId("1".into())),
            body: MessageBody::Text {
                content: "hi".into(),
            },
        };
        let env = QueueEnvelope::new(
            Platform::Wechat,
            "wx1",
            NOW * 1000,
            Mode::Safe,
            DataFormat::Json,
            message,
        );
        let grant = QuotaPolicy::default().grant_for(Platform::Wechat, &env.message);
        app.store.store_inbound(&env, grant).await.unwrap();
        app
    }

    fn request(open_id: &str, content: &str, key: &str) -> SendRequest {
        SendRequest::from_json(
            serde_json::json!({ "app_id": "wx1", "open_id": open_id, "msg_type": "text",
                "content": content, "client_msg_id": key })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_key_replays_its_request_and_refuses_any_other() {
        let fake = FakePlatform::start().await.unwrap();
        let app = app(&fake).await;
        let deadline = app.local_deadline();
        let first = app
            .send(&request("oU", "hello", "k"), &deadline)
            .await
            .unwrap();
        let again = app
            .send(&request("oU", "hello", "k"), &deadline)
            .await
            .unwrap();
        assert_eq!(again.body["replayed"], true);
        assert_eq!(again.body["id"], first.body["id"]);
        assert!(matches!(
            app.send(&request("oU", "other", "k"), &deadline).await,
            Err(SendError::KeyReused)
        ));
        assert_eq!(fake.sent_messages("oU").len(), 1);
    }

    #[tokio::test]
    async fn nothing_sent_leaves_the_key_free_for_a_retry() {
        let fake = FakePlatform::start().await.unwrap();
        let app = app(&fake).await;
        // The token endpoint refuses: nothing reaches the send API, the answer is retryable.
        fake.fail_next("/cgi-bin/stable_token", 40125, 1);
        let deadline = app.local_deadline();
        assert!(matches!(
            app.send(&request("oU", "hello", "k2"), &deadline).await,
            Err(SendError::Token(_))
        ));
        let retried = app
            .send(&request("oU", "hello", "k2"), &deadline)
            .await
            .unwrap();
        assert_eq!(retried.body["status"], "sent");
        assert!(retried.body.get("replayed").is_none());
        assert_eq!(fake.sent_messages("oU").len(), 1);
    }
}
