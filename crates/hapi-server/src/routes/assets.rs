//! `{prefix}/portal/assets/NAME`: the portal's stylesheet and scripts, our own files in
//! `crates/hapi-server/assets/`, embedded in the binary (`include_str!`), so `cargo
//! build` alone builds what the pages load and they work with no internet (no CDN, no
//! third-party library). Public, like the login form that uses the stylesheet.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Name, contents and media type of each file.
const FILES: [(&str, &str, &str); 5] = [
    ("portal.css", include_str!("../../assets/portal.css"), "text/css; charset=utf-8"),
    ("catalog.js", include_str!("../../assets/catalog.js"), "text/javascript; charset=utf-8"),
    ("dataset.js", include_str!("../../assets/dataset.js"), "text/javascript; charset=utf-8"),
    ("plot.js", include_str!("../../assets/plot.js"), "text/javascript; charset=utf-8"),
    ("hapi-binary.js", include_str!("../../assets/hapi-binary.js"), "text/javascript; charset=utf-8"),
];

/// The names served, for the router.
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|f| f.0)
}

/// The file `name`. Its `ETag` (the conditional layer answers 304 for it) changes
/// with the build, so a new server's pages never run an old script; `no-cache` makes
/// browsers ask, which costs one small round trip.
pub(crate) async fn serve(name: &'static str) -> Response {
    let Some((_, body, media)) = FILES.iter().find(|f| f.0 == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut r = (*body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::ETAG, crate::conditional::etag(body.as_bytes()));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}
