//! The Prometheus endpoint: the text exposition of this server's registry.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// `GET {prefix}{metrics_path}`.
pub(crate) async fn render(State(st): State<Arc<AppState>>) -> Response {
    let validator = st.access.validator().map(|v| (v.cache_hits(), v.jwks_fetches()));
    let text = st.metrics.render(st.streams.active(), validator);
    let mut r = text.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r
}
