//! Conditional GET (RFC 9110 §13): `ETag` and `Last-Modified` validators, answered
//! `304 Not Modified` when the client's copy is current.
//!
//! ETags are weak (`W/"..."`): the compression layer sends other bytes for the same
//! document, and weak comparison is what `If-None-Match` on GET uses anyway.

use std::hash::{Hash, Hasher};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// A weak ETag from whatever identifies a representation. `DefaultHasher::new()` has
/// fixed keys, so replicas of the same build agree.
pub fn etag(parts: impl Hash) -> HeaderValue {
    let mut h = std::hash::DefaultHasher::new();
    parts.hash(&mut h);
    HeaderValue::from_str(&format!("W/\"{:016x}\"", h.finish()))
        .unwrap_or(HeaderValue::from_static("W/\"0\""))
}

/// `Vary` for documents that depend on who asks.
pub const VARY_CALLER: HeaderValue = HeaderValue::from_static("Authorization, Cookie");

/// Whether the client's copy, described by the request's conditional headers, is
/// current. `If-None-Match` wins over `If-Modified-Since` when both are present.
pub fn fresh(req: &HeaderMap, etag: Option<&HeaderValue>, modified: Option<&HeaderValue>) -> bool {
    if let Some(inm) = req.get(header::IF_NONE_MATCH) {
        let (Some(tag), Ok(inm)) = (etag, inm.to_str()) else { return false };
        let ours = opaque(tag.to_str().unwrap_or(""));
        return inm.split(',').map(str::trim).any(|t| t == "*" || opaque(t) == ours);
    }
    let since =
        req.get(header::IF_MODIFIED_SINCE).and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok());
    let modified = modified.and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok());
    matches!((since, modified), (Some(s), Some(m)) if m <= s)
}

/// The tag without its weakness marker (weak comparison).
fn opaque(t: &str) -> &str {
    t.strip_prefix("W/").unwrap_or(t)
}

/// 304 keeping the validators and `Vary` (CORS is added by the outer layer).
pub fn not_modified(from: &HeaderMap) -> Response {
    let mut r = StatusCode::NOT_MODIFIED.into_response();
    for name in [header::ETAG, header::LAST_MODIFIED, header::VARY, header::CACHE_CONTROL] {
        for v in from.get_all(&name) {
            r.headers_mut().append(name.clone(), v.clone());
        }
    }
    r
}

/// The middleware: a 200 to GET or HEAD with validators becomes 304 when the client's
/// copy is current. Handlers whose work is expensive (`/data`) check [`fresh`] themselves
/// before doing it.
pub async fn revalidate(req: Request, next: Next) -> Response {
    let conditional = (req.method() == Method::GET || req.method() == Method::HEAD)
        && (req.headers().contains_key(header::IF_NONE_MATCH)
            || req.headers().contains_key(header::IF_MODIFIED_SINCE));
    if !conditional {
        return next.run(req).await;
    }
    let headers = req.headers().clone();
    let r = next.run(req).await;
    let h = r.headers();
    if r.status() == StatusCode::OK && fresh(&headers, h.get(header::ETAG), h.get(header::LAST_MODIFIED)) {
        let mut out = not_modified(h);
        // The counting middleware still sees the HAPI code of what was validated.
        if let Some(c) = r.extensions().get::<crate::metrics::HapiCode>() {
            out.extensions_mut().insert(*c);
        }
        return out;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_wins_and_compares_weakly() {
        let tag = etag(("a", 1));
        assert_ne!(tag, etag(("a", 2)));
        let date = HeaderValue::from_static("Tue, 01 Dec 2026 10:00:00 GMT");
        let mut req = HeaderMap::new();
        assert!(!fresh(&req, Some(&tag), Some(&date)), "unconditional");
        req.insert(header::IF_MODIFIED_SINCE, date.clone());
        assert!(fresh(&req, Some(&tag), Some(&date)));
        let later = HeaderValue::from_static("Tue, 01 Dec 2026 10:00:01 GMT");
        assert!(!fresh(&req, Some(&tag), Some(&later)));
        let strong = tag.to_str().unwrap().trim_start_matches("W/").to_owned();
        req.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&format!("\"x\", {strong}")).unwrap());
        assert!(fresh(&req, Some(&tag), Some(&later)), "weak comparison, list, and wins over the date");
        req.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\""));
        assert!(!fresh(&req, Some(&tag), Some(&date)), "a failed If-None-Match is not rescued by the date");
        assert!(!fresh(&req, None, Some(&date)));
    }
}
