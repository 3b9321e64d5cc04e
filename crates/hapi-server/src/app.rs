//! The one way to build the server from a configuration and a store: `main` and the
//! tests both use it, so what they run is the same.

use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result};
use hapi_store::Store;

use crate::auth::Access;
use crate::config::Config;
use crate::state::AppState;

/// A server, ready to serve.
#[derive(Debug, Clone)]
pub struct App {
    /// What the handlers share.
    pub state: Arc<AppState>,
}

impl App {
    /// Builds access control (opening the built-in issuer, or discovering the external
    /// provider: a start-up error if it fails) and opens every dataset in `store`.
    pub async fn build(config: &Config, store: Arc<dyn Store>) -> Result<App> {
        let access = Access::build(&config.auth, &config.path_prefix, &config.data_dir).await?;
        let state = AppState::new(config, store, Arc::new(access)).context("opening the datasets")?;
        Ok(App { state: Arc::new(state) })
    }

    /// The HTTP application, without a socket.
    pub fn router(&self) -> axum::Router {
        crate::app(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        crate::serve(listener, self.state, shutdown).await
    }
}
