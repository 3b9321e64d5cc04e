//! The HAPI 3.3 HTTP server: configuration, shared state, routes and streaming.
//!
//! `main.rs` parses the command line, runs the issuer's client and account commands
//! and ingest; the server itself is built by [`App::build`], which the tests use too, and
//! served on any listener (port 0 in tests) by [`serve`].
//!
//! Module layers, each importing only those below it: `envelope`, `html`, `metrics`,
//! `request_id`, `conditional` (leaves);
//! `config`, `demo`, `stores`; `auth`; `state`; `error`, `routes`, `live`; `app`.

mod app;
pub mod auth;
pub mod conditional;
pub mod config;
pub mod demo;
pub mod envelope;
pub mod error;
pub mod html;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod state;
pub mod stores;
pub mod streams;
mod upstreams;
pub mod urls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use app::{App, open_auth_store};
pub use routes::app;
pub use state::AppState;

/// Serves until `shutdown` resolves, refreshing dataset extents every second so
/// that appends by another process (`hapi-server ingest`) show in `stopDate`. Then
/// running responses get the configured grace time to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (_keep, states) = tokio::sync::watch::channel(state);
    serve_states(listener, states, shutdown).await
}

/// [`serve`], following the state `states` holds: a reload sends a new one.
pub async fn serve_states(
    listener: tokio::net::TcpListener,
    mut states: tokio::sync::watch::Receiver<Arc<AppState>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let first = states.borrow_and_update().clone();
    let limits = first.server.clone();
    // Metrics carry over reloads (App::reload), so the first state's gauge is the one.
    let open = first.metrics.connections.clone();
    let (routers_tx, routers) = tokio::sync::watch::channel(app(first));
    let refresher = {
        let states = states.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let state = states.borrow().clone();
                state.metrics.upkeep();
                let t = std::time::Instant::now();
                // Failures are logged per dataset inside.
                let _ = state.refresh().await;
                state.metrics.store_time("refresh", t.elapsed());
            }
        })
    };
    // Each new state becomes the router the next request is given.
    let switcher = tokio::spawn(async move {
        while states.changed().await.is_ok() {
            let state = states.borrow_and_update().clone();
            let _ = routers_tx.send(app(state));
        }
    });
    let result = server::run(listener, routers, limits, open, shutdown).await;
    refresher.abort();
    switcher.abort();
    result
}
