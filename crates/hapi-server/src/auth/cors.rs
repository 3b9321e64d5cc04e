//! CORS on every response, errors included (HAPI REQ-220): bearer requests from any
//! origin; cookie sessions only from configured origins, never with `*`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Access;

/// The middleware; it also answers preflight requests.
pub async fn cors(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let trusted = origin
        .as_ref()
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| access.cookie_origins.iter().any(|c| c == o));
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut r = if preflight { StatusCode::NO_CONTENT.into_response() } else { next.run(req).await };
    let h = r.headers_mut();
    match origin {
        Some(o) if trusted => {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
            h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        _ => {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
    }
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("WWW-Authenticate, Last-Modified, ETag, X-Request-Id"),
    );
    if preflight {
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    r
}
