//! Items of the tokens table: their keys (`token#…`, `media#…`, `idem#…`, one prefix per kind),
//! the items written whole (a cached media id, a new idempotency claim), and reading a cached token
//! or media id back.
//!
//! Not here: the conditional updates of leases and claims (`expressions`), or what an existing
//! claim means for a request (the `OutboundStore` adapter).

use super::reader::ItemReader;
use super::*;
use crate::ids::Platform;
use crate::ports::{CachedToken, ClaimRequest, StoreError};
use crate::secret::Secret;

/// How long a token item outlives its `expires_at` before DynamoDB's TTL may delete it.
pub const TOKEN_TTL_GRACE_SECS: u64 = 86_400;

/// The key of an app's access token and refresh lease: `token#platform#app_id`.
pub fn token_pk(platform: Platform, app_id: &str) -> String {
    format!("token#{platform}#{app_id}")
}

/// The key of a cached media id: `media#platform#app_id#digest`.
pub fn media_pk(platform: Platform, app_id: &str, digest: &str) -> String {
    format!("media#{platform}#{app_id}#{digest}")
}

/// The key of an idempotency record: `idem#` + the request's key (`platform#app_id#client_msg_id`).
pub fn idem_pk(key: &str) -> String {
    format!("idem#{key}")
}

/// The cached token of a token item, if it has one (`None` while only a lease is held, or after
/// an invalidation).
pub fn cached_token_from_item(item: &Item, pk: &str) -> Result<Option<CachedToken>, StoreError> {
    let r = ItemReader::new(item, pk);
    Ok(match (r.opt_s(TOKEN)?, r.opt_n::<u64>(EXPIRES_AT)?) {
        (Some(token), Some(expires_at)) => Some(CachedToken {
            token: Secret::new(token),
            expires_at,
        }),
        _ => None,
    })
}

/// The item of a cached media id, reused until `expires_at`; DynamoDB's TTL may delete it from then
/// on (nothing reads it after).
pub fn media_item(
    platform: Platform,
    app_id: &str,
    digest: &str,
    media_id: &str,
    expires_at: u64,
) -> Item {
    Item::from([
        (PK.to_owned(), s(media_pk(platform, app_id, digest))),
        (MEDIA.to_owned(), s(media_id)),
        (EXPIRES_AT.to_owned(), n(expires_at)),
        (TTL.to_owned(), n(expires_at)),
    ])
}

/// The media id of a media item, if it is still to be reused at `now` (`expires_at > now`); an
/// item DynamoDB's TTL has not deleted yet is not returned once expired.
pub fn media_id_from_item(item: &Item, pk: &str, now: u64) -> Result<Option<String>, StoreError> {
    let r = ItemReader::new(item, pk);
    let expires_at: u64 = r.req_n(EXPIRES_AT)?;
    (expires_at > now)
        .then(|| r.req_s(MEDIA).map(str::to_owned))
        .transpose()
}

/// A new idempotency claim: `pending`, bound to the request's fingerprint, leased until its
/// `lease_until`, remembered `ttl_secs` from `now`.
pub fn claim_item(request: &ClaimRequest<'_>) -> Item {
    Item::from([
        (PK.to_owned(), s(idem_pk(request.key))),
        (STATE.to_owned(), s(STATE_PENDING)),
        (FINGERPRINT.to_owned(), s(request.fingerprint)),
        (LEASE_UNTIL.to_owned(), n(request.lease_until)),
        (TTL.to_owned(), n(request.now + request.ttl_secs)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_key_prefix() {
        let p = Platform::Wechat;
        assert_eq!(token_pk(p, "wx1"), "token#wechat#wx1");
        assert_eq!(media_pk(p, "wx1", "ab12"), "media#wechat#wx1#ab12");
        assert_eq!(idem_pk("wechat#wx1#c-1"), "idem#wechat#wx1#c-1");
    }

    #[test]
    fn a_media_item_is_read_back_only_before_it_expires() {
        let item = media_item(Platform::Wechat, "wx1", "ab12", "MEDIA_1", 1000);
        assert_eq!(item[MEDIA], s("MEDIA_1"));
        assert_eq!((&item[EXPIRES_AT], &item[TTL]), (&n(1000), &n(1000)));
        let pk = media_pk(Platform::Wechat, "wx1", "ab12");
        assert_eq!(
            media_id_from_item(&item, &pk, 999).unwrap().as_deref(),
            Some("MEDIA_1")
        );
        assert_eq!(media_id_from_item(&item, &pk, 1000).unwrap(), None);
        let mut broken = item.clone();
        broken.remove(MEDIA);
        assert!(
            media_id_from_item(&broken, &pk, 0)
                .unwrap_err()
                .to_string()
                .contains(MEDIA)
        );
    }

    #[test]
    fn a_token_item_without_both_halves_has_no_token() {
        let lease_only = Item::from([(LEASE_OWNER.to_owned(), s("a"))]);
        assert_eq!(
            cached_token_from_item(&lease_only, "token#wechat#wx1").unwrap(),
            None
        );
        let full = Item::from([(TOKEN.to_owned(), s("t")), (EXPIRES_AT.to_owned(), n(5))]);
        let cached = cached_token_from_item(&full, "token#wechat#wx1")
            .unwrap()
            .unwrap();
        assert_eq!((cached.token.expose(), cached.expires_at), ("t", 5));
    }
}
