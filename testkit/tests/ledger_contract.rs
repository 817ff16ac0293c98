//! The ledger, replay-memory, token-lease and idempotency contracts of `shared::ports`, run
//! against both the in-memory fakes and `DynamoDbStore` on the emulator (moto), so the fakes the
//! handler tests use cannot drift from DynamoDB's behaviour.
//!
//! Each scenario is one generic function; `memory::*` runs it on the fakes, `on_dynamodb::*` on moto
//! (skipped without `AWS_ENDPOINT_URL`). Run with the emulator:
//! `infra/local/with-moto.sh cargo test -p testkit --test ledger_contract`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use shared::ids::Platform;
use shared::message::{QueueEnvelope, ReplayTag};
use shared::ports::{
    AccessTokenCache, Claim, ClaimRequest, MessageStore, OutboundStore, QuotaLedger, Reservation,
    StoreOutcome,
};
use shared::quota::{Refusal, Window};
use testkit::memory::{InMemoryStore, InMemoryTokens};

mod common;

use common::{H48, T0, enter_session, push, store, window};

async fn reserve<S: QuotaLedger>(
    s: &S,
    env: &QueueEnvelope<'_>,
    units: u32,
    now: u64,
) -> Reservation {
    s.reserve(&env.key().conversation, units, now)
        .await
        .unwrap()
}

fn generation(r: Reservation) -> u64 {
    match r {
        Reservation::Reserved { generation, .. } => generation,
        other => panic!("not reserved: {other:?}"),
    }
}

/// M1 stored, its five units spent, then an older M0 arrives late (redelivery, DLQ redrive): the
/// window is not refilled, so a sixth reply is refused by kefu instead of by the platform.
async fn a_late_older_message_never_refills_a_spent_window<S: MessageStore + QuotaLedger>(s: &S) {
    let m1 = push("oLate", T0, T0, "1");
    assert_eq!(store(s, &m1).await, StoreOutcome::Inserted);
    generation(reserve(s, &m1, 5, T0 + 1).await);
    let m0 = push("oLate", T0 - 100, T0 + 50, "0");
    assert_eq!(store(s, &m0).await, StoreOutcome::Inserted);
    assert_eq!(
        window(s, &m1).await,
        Window {
            remaining: 0,
            expires_at: T0 + H48
        }
    );
    assert!(matches!(
        reserve(s, &m1, 1, T0 + 60).await,
        Reservation::Refused(Refusal::QuotaExhausted, _)
    ));
}

/// A `CreateTime` far in the future opens the window from the receive time, not until 2100.
async fn a_future_create_time_is_bounded_by_the_receive_time<S: MessageStore>(s: &S) {
    let future = push("oFuture", 4_102_444_800, T0, "1");
    assert_eq!(store(s, &future).await, StoreOutcome::Inserted);
    let key = future.key().conversation;
    let c = s.conversation(&key).await.unwrap().unwrap();
    assert_eq!(c.window.expires_at, T0 + H48);
    assert_eq!(c.last_in_at, Some(T0));
    // A later genuine message still takes effect.
    let next = push("oFuture", T0 + 10, T0 + 10, "2");
    assert_eq!(store(s, &next).await, StoreOutcome::Inserted);
    assert_eq!(window(s, &next).await.expires_at, T0 + 10 + H48);
}

/// Units reserved under one grant are given back only while that grant is current, so
/// `remaining` never exceeds a grant; a late 45047 / 45015 never empties a refreshed window.
async fn releases_and_refusals_only_touch_their_own_generation<S: MessageStore + QuotaLedger>(
    s: &S,
) {
    let m1 = push("oGen", T0, T0, "1");
    store(s, &m1).await;
    let key = m1.key().conversation;
    let g1 = generation(reserve(s, &m1, 2, T0 + 1).await);
    assert!(s.release(&key, 2, g1).await.unwrap());
    assert_eq!(window(s, &m1).await.remaining, 5);

    let g1 = generation(reserve(s, &m1, 2, T0 + 2).await);
    // The user writes again while the send is in flight: a new grant.
    store(s, &push("oGen", T0 + 3, T0 + 3, "2")).await;
    assert!(!s.release(&key, 2, g1).await.unwrap());
    s.exhaust(&key, g1).await.unwrap();
    s.close_window(&key, T0 + 4, g1).await.unwrap();
    // The two units in flight may land after the action, so the new window counts them (and the
    // two released earlier, which `spent` keeps: it only over-counts).
    assert_eq!(
        window(s, &m1).await,
        Window {
            remaining: 3,
            expires_at: T0 + 3 + H48
        }
    );
    // Under the current generation they apply.
    let g2 = generation(reserve(s, &m1, 1, T0 + 5).await);
    assert!(g2 > g1);
    s.exhaust(&key, g2).await.unwrap();
    assert_eq!(window(s, &m1).await.remaining, 0);
    s.close_window(&key, T0 + 6, g2).await.unwrap();
    assert_eq!(window(s, &m1).await.expires_at, T0 + 6);
}

/// The enter-session unit added to a spent 48 h window expires with its own minute.
async fn the_enter_session_unit_expires_with_its_own_window<S: MessageStore + QuotaLedger>(s: &S) {
    let m1 = push("oEnter", T0, T0, "1");
    store(s, &m1).await;
    generation(reserve(s, &m1, 5, T0 + 1).await);
    store(s, &enter_session("oEnter", T0 + 100)).await;
    assert_eq!(
        window(s, &m1).await,
        Window {
            remaining: 1,
            expires_at: T0 + 160
        }
    );
    assert!(matches!(
        reserve(s, &m1, 1, T0 + 160).await,
        Reservation::Refused(Refusal::WindowExpired, _)
    ));
}

/// A plaintext push reusing a stored (nonce, timestamp) with another body is refused.
async fn a_plaintext_replay_with_another_body_is_refused<S: MessageStore>(s: &S) {
    let genuine = push("oPlain", T0, T0, "1").with_replay(ReplayTag::new("n-1", T0, b"genuine"));
    assert_eq!(store(s, &genuine).await, StoreOutcome::Inserted);
    assert_eq!(store(s, &genuine).await, StoreOutcome::Duplicate);
    let forged =
        push("oForged", T0, T0 + 5, "99").with_replay(ReplayTag::new("n-1", T0, b"forged"));
    assert_eq!(store(s, &forged).await, StoreOutcome::ReplayRefused);
    assert!(
        s.conversation(&forged.key().conversation)
            .await
            .unwrap()
            .is_none(),
        "nothing of the forged push is stored"
    );
    let other =
        push("oPlain", T0 + 1, T0 + 1, "2").with_replay(ReplayTag::new("n-2", T0 + 1, b"x"));
    assert_eq!(store(s, &other).await, StoreOutcome::Inserted);
}

/// The user writes again at T0+100, and before kefu has stored that message two units are sent
/// from the old window. The platform counts them against the new window (5 − 2 = 3), so storing
/// the message late must not make it 5 again.
async fn sends_before_a_late_grant_still_count<S: MessageStore + QuotaLedger>(s: &S) {
    let m1 = push("oRace", T0, T0, "1");
    assert_eq!(store(s, &m1).await, StoreOutcome::Inserted);
    let g = generation(reserve(s, &m1, 1, T0 + 10).await);
    assert!(s.release(&m1.key().conversation, 1, g).await.unwrap());
    generation(reserve(s, &m1, 2, T0 + 110).await);
    let m2 = push("oRace", T0 + 100, T0 + 120, "2");
    assert_eq!(store(s, &m2).await, StoreOutcome::Inserted);
    assert_eq!(
        window(s, &m1).await,
        Window {
            remaining: 3,
            expires_at: T0 + 100 + H48
        }
    );
    // Sends before the action are the old window's: a later message gets its full grant.
    generation(reserve(s, &m1, 1, T0 + 130).await);
    let m3 = push("oRace", T0 + 200, T0 + 200, "3");
    assert_eq!(store(s, &m3).await, StoreOutcome::Inserted);
    assert_eq!(window(s, &m1).await.remaining, 5);
}

/// A platform retry under a new nonce is a duplicate, yet its (nonce, timestamp) was answered
/// `success` too: a capture of that retry replayed with another body is refused as well, whichever
/// of the two attempts was stored.
async fn a_duplicates_replay_tag_is_remembered<S: MessageStore>(s: &S) {
    let first = push("oRetry", T0, T0, "1").with_replay(ReplayTag::new("n-a", T0, b"body"));
    let retry = push("oRetry", T0, T0 + 5, "1").with_replay(ReplayTag::new("n-b", T0 + 5, b"body"));
    assert_eq!(store(s, &first).await, StoreOutcome::Inserted);
    assert_eq!(store(s, &retry).await, StoreOutcome::Duplicate);
    let forged =
        push("oRetry", T0 + 6, T0 + 6, "66").with_replay(ReplayTag::new("n-b", T0 + 5, b"forged"));
    assert_eq!(store(s, &forged).await, StoreOutcome::ReplayRefused);
    let messages = s.messages(&first.key().conversation, None).await.unwrap();
    assert_eq!(messages.len(), 1, "only the genuine message is stored");
}

/// A lease that expired and was taken by another instance is not dropped by the first owner.
async fn only_the_owner_releases_a_token_lease<T: AccessTokenCache>(t: &T) {
    let p = Platform::Wechat;
    assert!(t.try_lease(p, "wxLease", "a", T0, 10).await.unwrap());
    assert!(!t.try_lease(p, "wxLease", "b", T0 + 5, 10).await.unwrap());
    // a is slow; its lease expires and b takes it.
    assert!(t.try_lease(p, "wxLease", "b", T0 + 11, 10).await.unwrap());
    t.put_token(p, "wxLease", "token-of-a", T0 + 7200, "a")
        .await
        .unwrap();
    t.release_lease(p, "wxLease", "a").await.unwrap();
    assert!(
        !t.try_lease(p, "wxLease", "c", T0 + 12, 10).await.unwrap(),
        "b's lease must still hold"
    );
    t.put_token(p, "wxLease", "token-of-b", T0 + 7200, "b")
        .await
        .unwrap();
    assert!(t.try_lease(p, "wxLease", "c", T0 + 13, 10).await.unwrap());
    let cached = t.get_token(p, "wxLease").await.unwrap().unwrap();
    assert_eq!(cached.token.expose(), "token-of-b");
}

/// Idempotency keys are bound to the request, leased, and never re-run after sending started.
async fn idempotency_claims_are_bound_and_leased<S: OutboundStore>(s: &S) {
    let claim = |key: &'static str, fp: &'static str, now: u64| ClaimRequest {
        key,
        fingerprint: fp,
        now,
        lease_until: now + 60,
        ttl_secs: 86_400,
    };
    assert_eq!(s.claim(&claim("k1", "fp", T0)).await.unwrap(), Claim::New);
    assert_eq!(
        s.claim(&claim("k1", "fp", T0 + 1)).await.unwrap(),
        Claim::InProgress
    );
    assert_eq!(
        s.claim(&claim("k1", "other", T0 + 1)).await.unwrap(),
        Claim::Reused
    );
    // Died before sending: after the lease, the same request takes over.
    assert_eq!(
        s.claim(&claim("k1", "fp", T0 + 61)).await.unwrap(),
        Claim::New
    );
    s.start_sending("k1").await.unwrap();
    assert_eq!(
        s.claim(&claim("k1", "fp", T0 + 100)).await.unwrap(),
        Claim::InProgress
    );
    // Died while sending: never sent again.
    assert_eq!(
        s.claim(&claim("k1", "fp", T0 + 200)).await.unwrap(),
        Claim::Interrupted
    );
    s.complete("k1", "{\"status\":200}").await.unwrap();
    assert_eq!(
        s.claim(&claim("k1", "fp", T0 + 300)).await.unwrap(),
        Claim::Completed("{\"status\":200}".into())
    );
    assert_eq!(
        s.claim(&claim("k1", "other", T0 + 300)).await.unwrap(),
        Claim::Reused
    );
    // Abandoned before anything was sent: the next try is new.
    assert_eq!(s.claim(&claim("k2", "fp", T0)).await.unwrap(), Claim::New);
    s.abandon("k2").await.unwrap();
    assert_eq!(
        s.claim(&claim("k2", "fp", T0 + 1)).await.unwrap(),
        Claim::New
    );
}

contract! {
    late_older_message: a_late_older_message_never_refills_a_spent_window(InMemoryStore::new()),
    future_create_time: a_future_create_time_is_bounded_by_the_receive_time(InMemoryStore::new()),
    generations: releases_and_refusals_only_touch_their_own_generation(InMemoryStore::new()),
    enter_session_unit: the_enter_session_unit_expires_with_its_own_window(InMemoryStore::new()),
    plaintext_replay: a_plaintext_replay_with_another_body_is_refused(InMemoryStore::new()),
    duplicate_replay_tag: a_duplicates_replay_tag_is_remembered(InMemoryStore::new()),
    late_grant_after_sends: sends_before_a_late_grant_still_count(InMemoryStore::new()),
    token_lease_owner: only_the_owner_releases_a_token_lease(InMemoryTokens::new()),
    idempotency: idempotency_claims_are_bound_and_leased(InMemoryStore::new()),
}
