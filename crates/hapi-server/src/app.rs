//! The one way to build the server from a configuration and a store: `main` and the
//! tests both use it, so what they run is the same.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result};
use hapi_auth::{AuthStore, SqliteAuthStore};
use hapi_postgres::Database;
use hapi_source::Source;
use hapi_store::Store;

use crate::auth::Access;
use crate::config::{Config, ModeSettings};
use crate::state::AppState;
use crate::stores::Stores;

/// A server, ready to serve.
#[derive(Debug, Clone)]
pub struct App {
    /// What the handlers share.
    pub state: Arc<AppState>,
    /// What the running process is bound to: a reload may not change it.
    fixed: Fixed,
    /// Sources given by the embedding program, by dataset id; kept across reloads.
    given: Arc<HashMap<String, Arc<dyn Source>>>,
    /// The issuer's clients and users and the browser sessions (none in open mode);
    /// kept across reloads.
    auth_db: Option<Arc<dyn AuthStore>>,
}

/// Opens the database of the built-in issuer's clients and users and of the browser
/// sessions: PostgreSQL beside the records when the store is there (what makes
/// replicas stateless), else `auth.sqlite3` in the data directory. `None` in open mode,
/// which has neither.
pub async fn open_auth_store(
    config: &Config,
    database: Option<&Database>,
) -> Result<Option<Arc<dyn AuthStore>>> {
    if matches!(config.auth.mode, ModeSettings::Open) {
        return Ok(None);
    }
    if let Some(db) = database {
        let store = hapi_postgres::auth::PgAuthStore::open(db.clone(), tokio::runtime::Handle::current())
            .await
            .context("opening the auth tables in PostgreSQL")?;
        return Ok(Some(Arc::new(store)));
    }
    let dir = config.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || -> Result<SqliteAuthStore> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("auth.sqlite3");
        SqliteAuthStore::open(&path).with_context(|| format!("opening {}", path.display()))
    })
    .await??;
    Ok(Some(Arc::new(store)))
}

/// The parts of a configuration that only a restart can change.
#[derive(Debug, Clone, PartialEq)]
struct Fixed {
    listen: std::net::SocketAddr,
    data_dir: std::path::PathBuf,
    store: String,
    path_prefix: String,
    server: crate::config::ServerSettings,
    mode: std::mem::Discriminant<crate::config::ModeSettings>,
}

impl Fixed {
    fn of(c: &Config) -> Fixed {
        Fixed {
            listen: c.listen,
            data_dir: c.data_dir.clone(),
            store: c.store.describe(),
            path_prefix: c.path_prefix.clone(),
            server: c.server.clone(),
            mode: std::mem::discriminant(&c.auth.mode),
        }
    }
}

impl App {
    /// Builds access control (opening the built-in issuer, or discovering the external
    /// provider: a start-up error if it fails) and opens every dataset in `store`.
    pub async fn build(config: &Config, store: Arc<dyn Store>) -> Result<App> {
        Self::build_with_sources(config, store, HashMap::new()).await
    }

    /// [`build`](App::build) over the opened [`Stores`]: with PostgreSQL, the issuer's
    /// and the sessions' tables live in the same database as the records.
    pub async fn build_on(config: &Config, stores: Stores) -> Result<App> {
        let auth_db = open_auth_store(config, stores.database.as_ref()).await?;
        Self::assemble(config, stores.store, HashMap::new(), auth_db).await
    }

    /// [`build`](App::build), with the datasets named in `sources` read from the source
    /// given there instead of from `store` (tests, and programs embedding the server).
    pub async fn build_with_sources(
        config: &Config,
        store: Arc<dyn Store>,
        sources: HashMap<String, Arc<dyn Source>>,
    ) -> Result<App> {
        let auth_db = open_auth_store(config, None).await?;
        Self::assemble(config, store, sources, auth_db).await
    }

    async fn assemble(
        config: &Config,
        store: Arc<dyn Store>,
        sources: HashMap<String, Arc<dyn Source>>,
        auth_db: Option<Arc<dyn AuthStore>>,
    ) -> Result<App> {
        let access = Access::build(&config.auth, &config.path_prefix, auth_db.clone()).await?;
        let state = open_datasets(config, store, &sources, access).await?;
        Ok(App { state: Arc::new(state), fixed: Fixed::of(config), given: Arc::new(sources), auth_db })
    }

    /// The server with a new configuration (SIGHUP): datasets, access rules and limits
    /// may change, over the same store; the listen address, data directory, `[store]`,
    /// path prefix, `[server]` settings and the access mode need a restart. Any error
    /// leaves the running server as it is. Stream caps, metrics and the writers' queues
    /// carry over, so running streams still count and appends stay one at a time per dataset.
    pub async fn reload(&self, config: &Config) -> Result<App> {
        let fixed = Fixed::of(config);
        if fixed != self.fixed {
            anyhow::bail!(
                "listen, data_dir, [store], path_prefix, [server] and [auth] mode need a restart; change only datasets, access rules and limits in a reload"
            );
        }
        let access = Access::build(&config.auth, &config.path_prefix, self.auth_db.clone()).await?;
        let mut state = open_datasets(config, self.state.store.clone(), &self.given, access).await?;
        state.streams = self.state.streams.clone();
        state.metrics = self.state.metrics.clone();
        state.writers = self.state.writers.clone();
        Ok(App { state: Arc::new(state), fixed, given: self.given.clone(), auth_db: self.auth_db.clone() })
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

    /// Serves like [`serve`](App::serve), switching to each state `reloads` sends:
    /// requests that started keep the state they started with, the next request on
    /// every connection sees the new one, and no connection is dropped.
    pub async fn serve_reloadable(
        listener: tokio::net::TcpListener,
        reloads: tokio::sync::watch::Receiver<Arc<AppState>>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        crate::serve_states(listener, reloads, shutdown).await
    }
}

/// The state with every dataset open: the upstreams' catalogs read, then each source.
/// Sources `given` win over the configured ones.
async fn open_datasets(
    config: &Config,
    store: Arc<dyn Store>,
    given: &HashMap<String, Arc<dyn Source>>,
    access: Access,
) -> Result<AppState> {
    let (config, mut sources) =
        crate::upstreams::open(config).await.context("opening the upstream servers")?;
    sources.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
    AppState::new(&config, store, &sources, Arc::new(access)).await.context("opening the datasets")
}
