//! The HAPI 3.3 HTTP server: configuration, shared state, routes and streaming.
//!
//! `main.rs` only parses the command line; everything else lives here so that
//! tests can build the router ([`app`]) or serve on a port-0 listener ([`serve`]).

pub mod auth;
pub mod config;
pub mod demo;
pub mod error;
pub mod ingest;
pub mod routes;
pub mod state;
pub mod urls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use routes::app;
pub use state::AppState;

/// Serves until `shutdown` resolves, refreshing dataset extents every second so
/// that appends by another process (`hapi-server ingest`) show in `stopDate`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let refresher = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let s = state.clone();
                match tokio::task::spawn_blocking(move || s.refresh()).await {
                    Ok(Err(e)) => tracing::warn!(error = %e, "refreshing dataset extents failed"),
                    Err(e) => tracing::warn!(error = %e, "extent refresher panicked"),
                    Ok(Ok(())) => {}
                }
            }
        })
    };
    let result =
        axum::serve(listener, app(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await;
    refresher.abort();
    result
}
