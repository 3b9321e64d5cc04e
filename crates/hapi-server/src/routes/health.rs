//! `/healthz` and `/readyz` for load balancers and orchestrators: public, outside
//! `/hapi`, never logged as HAPI requests.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// How long the readiness probe waits for the first dataset's source.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The process runs and answers.
pub(crate) async fn live() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// The first dataset's source answers within [`READY_TIMEOUT`]: requests can be served.
pub(crate) async fn ready(State(st): State<Arc<AppState>>) -> Response {
    let Some(d) = st.datasets.first() else {
        return (StatusCode::OK, "ready\n").into_response();
    };
    match tokio::time::timeout(READY_TIMEOUT, d.source.extent()).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(kind = ?e.kind(), error = %e, "readiness probe: the store failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store not answering\n").into_response(),
    }
}
