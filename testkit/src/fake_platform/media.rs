//! The fake's `GET /cgi-bin/media/get`: an inbound image's bytes by media id, as WeChat keeps them
//! for 3 days. A media id the simulator made (`simulated-media-…`) or one uploaded to the fake is
//! known; its bytes are [`image_bytes`] (a small valid PNG carrying the id), so a test can compare.
//! Anything else answers 40007, like WeChat.

use super::{Req, State, wx_error};

/// The path.
pub const MEDIA_GET: &str = "/cgi-bin/media/get";

/// The bytes the fake serves for `media_id`: a 1×1 PNG followed by the id (image decoders stop at
/// `IEND`), so each id has its own bytes.
pub fn image_bytes(media_id: &str) -> Vec<u8> {
    const PNG: [u8; 67] = [
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    let mut out = PNG.to_vec();
    out.extend_from_slice(media_id.as_bytes());
    out
}

/// The answer: the file (`image/png`) or a WeChat error.
pub(super) fn get(state: &mut State, req: &Req) -> Result<Vec<u8>, serde_json::Value> {
    if !req.query.contains_key("access_token") {
        return Err(wx_error(41001, "access_token missing"));
    }
    let Some(app_id) = state.authorize(req) else {
        return Err(wx_error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        ));
    };
    let Some(id) = req.query.get("media_id") else {
        return Err(wx_error(40007, "invalid media_id"));
    };
    let known = id.starts_with("simulated-media-") || state.media.contains_key(id);
    if !known {
        return Err(wx_error(40007, "invalid media_id"));
    }
    let id = id.clone();
    state.record(req, &app_id, None, serde_json::json!({ "media_id": id }));
    Ok(image_bytes(&id))
}
