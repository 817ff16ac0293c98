//! The ops side of the `kefu` command against the emulator: `queues` counts, `dlq redrive` moves
//! exactly what it reports and deletes from the DLQ only what reached the inbound queue, and
//! `conversation show --json` has the documented fields with exact values.

use shared::ids::{MsgId, Platform};
use shared::message::{InboundMessage, MessageBody, QueueEnvelope};
use shared::ports::MessageStore;
use shared::protocol::{DataFormat, Mode};
use shared::quota::QuotaPolicy;

use crate::helpers::TestEnv;

#[tokio::test]
async fn queues_counts_and_dlq_redrive_moves_what_it_reports() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    for i in 0..3 {
        env.sqs
            .send_message()
            .queue_url(&env.queues.dead_letter)
            .message_body(format!("dead {i}"))
            .send()
            .await
            .unwrap();
    }
    env.sqs
        .send_message()
        .queue_url(&env.queues.inbound)
        .message_body("alive")
        .send()
        .await
        .unwrap();
    let dlq = kefu::queues::stats(&env.sqs, "dlq", &env.queues.dead_letter)
        .await
        .unwrap();
    let inbound = kefu::queues::stats(&env.sqs, "inbound", &env.queues.inbound)
        .await
        .unwrap();
    assert_eq!((dlq.visible, inbound.visible), (3, 1));
    let table = kefu::queues::render_text(&[inbound, dlq]);
    assert!(table.lines().nth(2).unwrap().starts_with("dlq"), "{table}");

    let report = kefu::queues::redrive(
        &env.sqs,
        &env.queues.dead_letter,
        &env.queues.inbound,
        Some(2),
    )
    .await
    .unwrap();
    assert_eq!((report.moved, report.failed), (2, 0));
    assert_eq!(env.depth(&env.queues.dead_letter).await, 1);
    assert_eq!(env.depth(&env.queues.inbound).await, 3);
    let report =
        kefu::queues::redrive(&env.sqs, &env.queues.dead_letter, &env.queues.inbound, None)
            .await
            .unwrap();
    assert_eq!(report.moved, 1);
    assert_eq!(env.depth(&env.queues.dead_letter).await, 0);
    let mut bodies: Vec<String> = Vec::new();
    for _ in 0..5 {
        bodies.extend(
            env.receive(&env.queues.inbound, 1)
                .await
                .into_iter()
                .filter_map(|m| m.body),
        );
        if bodies.len() == 4 {
            break;
        }
    }
    bodies.sort();
    assert_eq!(bodies, ["alive", "dead 0", "dead 1", "dead 2"]);
}

#[tokio::test]
async fn conversation_show_json_has_the_documented_fields() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let t = 1_763_770_123;
    let m = InboundMessage {
        to_user_name: None,
        from_user_name: "oShow".into(),
        create_time: t,
        msg_id: Some(MsgId("18446744073709551000".into())),
        body: MessageBody::Text {
            content: " exact\ntext 😀 ".into(),
        },
    };
    let envelope = QueueEnvelope::new(
        Platform::Wechat,
        "wxkefu0000000001",
        t * 1000,
        Mode::Safe,
        DataFormat::Json,
        m,
    );
    env.store
        .store_inbound(
            &envelope,
            QuotaPolicy::default().grant_for(Platform::Wechat, &envelope.message),
        )
        .await
        .unwrap();
    let view = kefu::conversation::show(&*env.store, &envelope.key().conversation, t + 60)
        .await
        .unwrap()
        .unwrap();
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["quota"]["remaining"], 5);
    assert_eq!(json["quota"]["expires_at"], t + 172_800);
    assert_eq!(json["messages"][0]["direction"], "in");
    assert_eq!(json["messages"][0]["msg_type"], "text");
    assert_eq!(json["messages"][0]["content"], " exact\ntext 😀 ");
    assert_eq!(json["messages"][0]["msg_id"], "18446744073709551000");
    assert_eq!(json["messages"][0]["create_time"], t);
    let text = kefu::conversation::render_text(&view, t + 60);
    assert!(text.contains("5 remaining"), "{text}");
}
