//! The desk's page, served by the desk function from the same origin as its API: `GET /desk/`
//! (the HTML), `/desk/desk.css`, `/desk/desk.js`, compiled into the binary (no CDN, no external
//! asset). The headers keep it to its own origin: a strict content security policy, no framing,
//! no sniffing, revalidated on every load so a deploy shows at once.
//!
//! Not here: the page's code (`functions/desk/page/`) or the API (`routes`).

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};

const INDEX: &str = include_str!("../page/index.html");
const CSS: &str = include_str!("../page/desk.css");
const JS: &str = include_str!("../page/desk.js");

/// What the page may load: itself, and images from its origin, signed storage URLs and uploads
/// being previewed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self' data: blob: https: http://127.0.0.1:*; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The asset at `path` (the request's path) with its content type, if it is one of the page's.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    let name = match path.find("/desk/") {
        Some(at) => &path[at + "/desk".len()..],
        None => path.strip_suffix("/desk").map(|_| "")?,
    };
    match name {
        "" | "/" | "/index.html" => Some(("text/html; charset=utf-8", INDEX)),
        "/desk.css" => Some(("text/css; charset=utf-8", CSS)),
        "/desk.js" => Some(("text/javascript; charset=utf-8", JS)),
        _ => None,
    }
}

/// The response for `path`, or `None` when it is not a page asset.
pub fn serve(path: &str) -> Option<Response<Body>> {
    let (content_type, body) = asset(path)?;
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header(header::REFERRER_POLICY, "no-referrer")
        .body(Body::from(body))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_assets_are_served_and_nothing_else() {
        for (path, kind) in [
            ("/desk", "text/html"),
            ("/desk/", "text/html"),
            ("/prod/desk/index.html", "text/html"),
            ("/desk/desk.js", "text/javascript"),
            ("/prod/desk/desk.js", "text/javascript"),
            ("/desk/desk.css", "text/css"),
        ] {
            let (content_type, body) = asset(path).unwrap_or_else(|| panic!("{path}"));
            assert!(content_type.starts_with(kind), "{path}");
            assert!(!body.is_empty());
        }
        for path in ["/desk/api/me", "/desk/../etc/passwd", "/desk/other.js", "/"] {
            assert!(asset(path).is_none(), "{path}");
        }
        let r = serve("/desk/").unwrap();
        assert_eq!(
            r.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for body in [INDEX, CSS, JS] {
            for outside in [
                "src=\"http",
                "src=\"//",
                "href=\"http",
                "href=\"//",
                "url(http",
                "url(//",
                "@import",
                "fetch(\"http",
                "fetch('http",
            ] {
                assert!(!body.contains(outside), "the page names {outside}");
            }
        }
    }
}
