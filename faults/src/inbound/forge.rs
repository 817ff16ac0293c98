//! Hostile pushes: a captured plaintext push (already stored) replayed with another body under its
//! nonce, timestamp and signature, and a safe-mode push with a wrong signature. Each is recorded so
//! the checks can prove it was never stored. Not here: the genuine traffic (`inbound`).

use lambda_http::http::StatusCode;
use shared::clock::Clock;
use shared::ids::MsgId;
use shared::message::{InboundMessage, MessageBody, render};
use shared::ports::MessageStore;
use shared::protocol::simulate::SimulatedRequest;

use super::{Inbound, Ingress, call, conversation_key, ident_of, query_value};
use crate::inject::Kind;
use crate::store::SimStore;

const P_FORGED_REPLAY: f64 = 0.005;
const P_FORGED_SIGNATURE: f64 = 0.002;

impl Inbound {
    /// Sometimes sends a hostile push: a captured plaintext push (already stored) replayed with
    /// another body, or a safe-mode push with a wrong signature.
    pub async fn maybe_forge(&mut self, ingress: &Ingress, store: &SimStore) {
        if self.faults.roll(Kind::ForgedReplay, P_FORGED_REPLAY)
            && !self.forge_replay(ingress, store).await
        {
            self.faults.uncount(Kind::ForgedReplay);
        }
        if self.faults.roll(Kind::ForgedSignature, P_FORGED_SIGNATURE) {
            self.forge_signature(ingress).await;
        }
    }

    async fn forge_replay(&mut self, ingress: &Ingress, store: &SimStore) -> bool {
        let now = self.clock.now_secs();
        let Some(pos) = self.recent_plaintext.len().checked_sub(1) else {
            return false;
        };
        let (app, open_id, request, msg_id) = self.recent_plaintext.remove(pos);
        let a = self.apps[app].clone();
        let signed_at: u64 = query_value(&request.query, "timestamp")
            .parse()
            .unwrap_or(0);
        if now.saturating_sub(signed_at) > 500 {
            return false;
        }
        let key = conversation_key(&a, &open_id);
        let stored = store
            .inner
            .messages(&key, None)
            .await
            .unwrap_or_default()
            .iter()
            .any(|m| m.msg_id.as_deref() == Some(msg_id.as_str()));
        if !stored {
            return false;
        }
        self.next_msg_id += 1;
        let forged = InboundMessage {
            to_user_name: Some(a.to_user.into()),
            from_user_name: open_id.into(),
            create_time: now,
            msg_id: Some(MsgId(format!("{}", 9_000_000_000 + self.next_msg_id))),
            body: MessageBody::Text {
                content: "transfer the balance to me".into(),
            },
        };
        let ident = ident_of(&a, &forged);
        let replay = SimulatedRequest {
            body: render(&forged, a.format),
            ..request
        };
        let (status, body) = call(ingress, &a, &replay).await;
        if status == StatusCode::OK && body == "success" {
            self.forged_answered_success += 1;
        }
        self.forged.push(ident);
        true
    }

    async fn forge_signature(&mut self, ingress: &Ingress) {
        let app = 0;
        let a = self.apps[app].clone();
        let now = self.clock.now_secs();
        self.next_msg_id += 1;
        let forged = InboundMessage {
            to_user_name: Some(a.to_user.into()),
            from_user_name: self.open_id(app, 0).into(),
            create_time: now,
            msg_id: Some(MsgId(format!("{}", 9_000_000_000 + self.next_msg_id))),
            body: MessageBody::Text {
                content: "forged".into(),
            },
        };
        let mut request = self.sign(app, &forged);
        request.query = request.query.replace("msg_signature=", "msg_signature=0");
        let (status, _) = call(ingress, &a, &request).await;
        if status.is_success() {
            self.violations.push(format!(
                "a push with a wrong signature was answered {status}"
            ));
        }
        self.forged.push(ident_of(&a, &forged));
    }
}
