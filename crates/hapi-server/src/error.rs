//! The one error type of the HTTP layer: every failure becomes a HAPI JSON body
//! with the matching HTTP status and the `HAPI <code> <message>` reason phrase.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hapi_core::{HapiStatus, StatusError};
use hyper::ext::ReasonPhrase;
use std::sync::OnceLock;

/// A request that ends in a HAPI error before any data byte is sent.
#[derive(Debug)]
pub struct ApiError(pub StatusError);

impl ApiError {
    /// An internal failure: the cause is logged here, once, and the client sees a generic 1500/1501.
    pub fn internal(status: HapiStatus, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(code = status.code(), error = %cause, "request failed");
        ApiError(StatusError::new(status))
    }
}

impl ApiError {
    /// A source failed: 1501 when an upstream server or a reader program did, 1500
    /// otherwise. The cause goes to the log, never to the client.
    pub fn source(e: &hapi_source::SourceError) -> Self {
        let status = match e.kind() {
            hapi_source::ErrorKind::Upstream => HapiStatus::Upstream,
            // Only a client error passes through; the upstream's own message stays in the log.
            hapi_source::ErrorKind::Refused(code) => HapiStatus::from_code(code)
                .filter(|s| (1400..1500).contains(&s.code()))
                .unwrap_or(HapiStatus::Upstream),
            _ => HapiStatus::Internal,
        };
        tracing::error!(code = status.code(), kind = ?e.kind(), error = %e, "request failed");
        ApiError(StatusError::new(status))
    }
}

impl From<StatusError> for ApiError {
    fn from(e: StatusError) -> Self {
        ApiError(e)
    }
}

impl From<HapiStatus> for ApiError {
    fn from(s: HapiStatus) -> Self {
        ApiError(StatusError::new(s))
    }
}

/// The status line of HTTP/1.1 carries the HAPI code (REQ-025), e.g. `404 Not Found; HAPI 1406 ...`.
/// Built once per code: it is on every response.
pub fn reason_phrase(status: HapiStatus) -> Option<ReasonPhrase> {
    static PHRASES: OnceLock<Vec<Option<ReasonPhrase>>> = OnceLock::new();
    let table = PHRASES.get_or_init(|| {
        HapiStatus::ALL
            .iter()
            .map(|s| {
                let http = StatusCode::from_u16(s.http_status()).ok()?;
                let canonical = http.canonical_reason().unwrap_or("");
                ReasonPhrase::try_from(format!("{canonical}; HAPI {} {}", s.code(), s.message())).ok()
            })
            .collect()
    });
    let i = HapiStatus::ALL.iter().position(|&s| s == status)?;
    table[i].clone()
}

/// Tags a response with its HAPI status: the reason phrase, and the code for the metrics.
pub fn mark(r: &mut Response, status: HapiStatus) {
    if let Some(p) = reason_phrase(status) {
        r.extensions_mut().insert(p);
    }
    r.extensions_mut().insert(crate::metrics::HapiCode(status.code()));
}

/// `{"HAPI":"3.3","status":{...}}`, the body of every error (REQ-024), also when csv or binary was asked.
pub fn status_body(e: &StatusError) -> Vec<u8> {
    crate::envelope::document(e.status.code(), &e.message(), serde_json::Map::new())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, status_body(&self.0)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        mark(&mut resp, self.0.status);
        resp
    }
}
