//! RFC 6750 refusals with a HAPI body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hapi_auth::TokenError;
use hapi_core::HapiStatus;
use serde_json::{Map, Value};

/// Why a request is refused before it reaches a handler.
#[derive(Debug)]
pub enum Denied {
    /// No credentials: 401 with a bare `WWW-Authenticate: Bearer` challenge (RFC 6750 §3.1).
    Missing,
    /// Malformed request, e.g. a token in the query string: 400 `invalid_request`.
    InvalidRequest(&'static str),
    /// A bad token: 401 `invalid_token`.
    Token(TokenError),
    /// The credentials cannot be checked now (the auth database is unreachable and no
    /// recent answer stands in): 503 with `Retry-After` and HAPI 1500, not a refusal
    /// that would make clients drop a good token.
    Unavailable,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        if matches!(self, Denied::Unavailable) {
            return unavailable();
        }
        let (status, error, description) = match &self {
            Denied::Missing => {
                (StatusCode::UNAUTHORIZED, None, "authentication required: send a bearer token")
            }
            Denied::InvalidRequest(d) => (StatusCode::BAD_REQUEST, Some("invalid_request"), *d),
            Denied::Unavailable => unreachable!("answered above"),
            Denied::Token(e) => {
                // RFC 6750 §3.1: insufficient_scope is 403, the rest 401.
                let status = if e.error_code() == "insufficient_scope" {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::UNAUTHORIZED
                };
                (status, Some(e.error_code()), e.description())
            }
        };
        let challenge = match error {
            Some(code) => {
                format!("Bearer realm=\"hapi\", error=\"{code}\", error_description=\"{description}\"")
            }
            None => "Bearer realm=\"hapi\"".to_owned(),
        };
        let bad = HapiStatus::BadRequest;
        let mut extra = Map::new();
        extra.insert("x_auth_error".to_owned(), Value::String(error.unwrap_or("missing_token").to_owned()));
        let message = format!("HAPI error {}: {}: {description}", bad.code(), bad.message());
        let body = crate::envelope::document(bad.code(), &message, extra);
        let mut r = (status, body).into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        r.extensions_mut().insert(crate::metrics::HapiCode(bad.code()));
        if matches!(self, Denied::Token(_)) {
            r.extensions_mut().insert(crate::metrics::TokenCheck::Refused);
        }
        r
    }
}

/// 503, HAPI 1500: credentials could not be checked.
fn unavailable() -> Response {
    let code = HapiStatus::Internal.code();
    let message = format!(
        "HAPI error {code}: {}: credentials cannot be checked now, try again",
        HapiStatus::Internal.message()
    );
    let body = crate::envelope::document(code, &message, Map::new());
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r.extensions_mut().insert(crate::metrics::HapiCode(code));
    r
}
