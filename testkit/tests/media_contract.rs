//! The `MediaIdCache` contract — a hit before the reuse time, a miss for unknown bytes, nothing
//! once expired, each (platform, app) apart, a later put replacing an earlier one — run against
//! both `InMemoryMediaIds` and `DynamoDbStore` on moto, so the sender's tests on the fake see what
//! DynamoDB does.
//!
//! `memory::*` runs each scenario on the fake, `on_dynamodb::*` on moto (skipped without
//! `AWS_ENDPOINT_URL`). Run with the emulator:
//! `infra/local/with-moto.sh cargo test -p testkit --test media_contract`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use shared::ids::Platform;
use shared::ports::MediaIdCache;
use testkit::memory::InMemoryMediaIds;

mod common;

use common::T0;

/// The SHA-1 of some image bytes, as the sender keys them.
const DIGEST: &str = "3f786850e387550fdab836ed7e6dc881de23001b";
/// Three days less an hour, as the sender reuses an id.
const REUSE: u64 = 3 * 86_400 - 3600;

async fn get<M: MediaIdCache>(m: &M, platform: Platform, app: &str, now: u64) -> Option<String> {
    m.get_media_id(platform, app, DIGEST, now).await.unwrap()
}

/// A media id put for some bytes is found for the same bytes and not for others.
async fn a_put_id_is_found_for_the_same_bytes_only<M: MediaIdCache>(m: &M) {
    let w = Platform::Wechat;
    assert_eq!(get(m, w, "wxHit", T0).await, None, "nothing cached yet");
    m.put_media_id(w, "wxHit", DIGEST, "MEDIA_HIT", T0 + REUSE)
        .await
        .unwrap();
    assert_eq!(
        get(m, w, "wxHit", T0 + 1).await.as_deref(),
        Some("MEDIA_HIT")
    );
    let other = m
        .get_media_id(
            w,
            "wxHit",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            T0 + 1,
        )
        .await
        .unwrap();
    assert_eq!(other, None, "other bytes miss");
}

/// An id is reused strictly before its reuse time, never at or after it (whether or not
/// DynamoDB's TTL has deleted the item yet).
async fn an_expired_id_is_not_returned<M: MediaIdCache>(m: &M) {
    let w = Platform::Wechat;
    m.put_media_id(w, "wxExp", DIGEST, "MEDIA_OLD", T0 + 100)
        .await
        .unwrap();
    assert_eq!(
        get(m, w, "wxExp", T0 + 99).await.as_deref(),
        Some("MEDIA_OLD")
    );
    assert_eq!(get(m, w, "wxExp", T0 + 100).await, None);
    assert_eq!(get(m, w, "wxExp", T0 + 5000).await, None);
    // Uploading again gives a fresh id that is reused from then on.
    m.put_media_id(w, "wxExp", DIGEST, "MEDIA_NEW", T0 + 5000 + REUSE)
        .await
        .unwrap();
    assert_eq!(
        get(m, w, "wxExp", T0 + 5001).await.as_deref(),
        Some("MEDIA_NEW")
    );
}

/// The same bytes uploaded by two apps (or under the same app id on two platforms) are two
/// media ids: one app's id is never handed to another.
async fn each_app_has_its_own_ids<M: MediaIdCache>(m: &M) {
    let (w, b) = (Platform::Wechat, Platform::Baidu);
    m.put_media_id(w, "wxA", DIGEST, "MEDIA_OF_A", T0 + REUSE)
        .await
        .unwrap();
    assert_eq!(get(m, w, "wxB", T0).await, None, "another app misses");
    assert_eq!(get(m, b, "wxA", T0).await, None, "another platform misses");
    m.put_media_id(w, "wxB", DIGEST, "MEDIA_OF_B", T0 + REUSE)
        .await
        .unwrap();
    assert_eq!(get(m, w, "wxA", T0).await.as_deref(), Some("MEDIA_OF_A"));
    assert_eq!(get(m, w, "wxB", T0).await.as_deref(), Some("MEDIA_OF_B"));
}

/// A later put for the same (app, bytes) replaces the earlier id and its reuse time.
async fn a_later_put_replaces_the_earlier<M: MediaIdCache>(m: &M) {
    let w = Platform::Wechat;
    m.put_media_id(w, "wxRe", DIGEST, "MEDIA_1", T0 + REUSE)
        .await
        .unwrap();
    m.put_media_id(w, "wxRe", DIGEST, "MEDIA_2", T0 + 10)
        .await
        .unwrap();
    assert_eq!(get(m, w, "wxRe", T0 + 9).await.as_deref(), Some("MEDIA_2"));
    assert_eq!(get(m, w, "wxRe", T0 + 10).await, None);
}

contract! {
    hit_and_miss: a_put_id_is_found_for_the_same_bytes_only(InMemoryMediaIds::new()),
    expired: an_expired_id_is_not_returned(InMemoryMediaIds::new()),
    per_app: each_app_has_its_own_ids(InMemoryMediaIds::new()),
    replaced: a_later_put_replaces_the_earlier(InMemoryMediaIds::new()),
}
