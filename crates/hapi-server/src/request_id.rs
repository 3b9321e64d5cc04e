//! One id per request: in the `X-Request-Id` response header, the request's tracing
//! span and the audit lines, so an operator can find a client's request in the logs.
//!
//! An incoming `X-Request-Id` (from a proxy that already assigned one) is kept only if
//! it is at most [`MAX_LEN`] characters of `[A-Za-z0-9._-]`: it goes into log lines,
//! which must not be forgeable or unbounded. Otherwise a random id is made.
//! (tower-http's `SetRequestIdLayer` keeps any incoming value, so it does not fit.)

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header, in and out.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest incoming id kept.
pub const MAX_LEN: usize = 64;

/// The id of the current request, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether an incoming id may be used as is.
pub fn acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id.iter().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
}

/// 16 random hex digits: unique enough to find one request, and no count of requests.
fn fresh() -> String {
    let mut raw = [0u8; 8];
    // A failed system RNG leaves zeros: the id is then only less unique.
    let _ = aws_lc_rs::rand::fill(&mut raw);
    raw.iter().fold(String::with_capacity(16), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The middleware: takes or makes the id, runs the request in a span naming it, and
/// puts it on the response, whatever produced that (errors, 401, 429 included).
pub async fn assign(mut req: Request, next: Next) -> Response {
    let id = match req.headers().get(&X_REQUEST_ID) {
        Some(v) if acceptable(v.as_bytes()) => v.to_str().unwrap_or_default().to_owned(),
        _ => fresh(),
    };
    let header = HeaderValue::from_str(&id).ok();
    let span = tracing::info_span!("request", id = %id);
    req.extensions_mut().insert(RequestId(id.into()));
    let mut r = next.run(req).instrument(span).await;
    if let Some(v) = header {
        r.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::{MAX_LEN, acceptable, fresh};

    #[test]
    fn only_short_safe_ids_are_kept() {
        assert!(acceptable(b"abc-123_X.y"));
        assert!(acceptable(&[b'a'; MAX_LEN]));
        assert!(!acceptable(&[b'a'; MAX_LEN + 1]));
        assert!(!acceptable(b""));
        for bad in [&b"a b"[..], b"a\"b", b"a\nb", b"a=b", "é".as_bytes()] {
            assert!(!acceptable(bad), "{bad:?}");
        }
        let (a, b) = (fresh(), fresh());
        assert!(a.len() == 16 && acceptable(a.as_bytes()) && a != b);
    }
}
