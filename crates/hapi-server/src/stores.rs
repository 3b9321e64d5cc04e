//! Opens the configured record store: the embedded SQLite store in `data_dir`, or
//! PostgreSQL (its pools, migrations and the extent listener), and fills empty demo
//! datasets. `serve`, `ingest` and the tests open it here, so all three see the same
//! store; [`Stores::database`] is the PostgreSQL connection for other components that
//! keep their tables in the same database.

use std::sync::Arc;

use anyhow::{Context, Result};
use hapi_postgres::{Database, PgStore};
use hapi_store::{SqliteStore, Store};

use crate::config::{Config, SourceSpec, StoreSpec};
use crate::demo;

/// The opened store.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Where datasets without their own source live, and where ingest appends.
    pub store: Arc<dyn Store>,
    /// The PostgreSQL pools, when the store is PostgreSQL.
    pub database: Option<Database>,
}

/// Opens the store of `config` (inside the runtime that will use it), creates or
/// checks every embedded dataset, and generates the demo datasets that are empty.
pub async fn open(config: &Config) -> Result<Stores> {
    let (store, database): (Arc<dyn Store>, _) = match &config.store {
        StoreSpec::Sqlite => {
            let dir = config.data_dir.clone();
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&dir))
                .await?
                .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
            (Arc::new(store), None)
        }
        StoreSpec::Postgres(settings) => {
            let db = Database::connect(settings).await.context("opening the PostgreSQL store")?;
            tracing::info!(url = %settings.url, read_url = ?settings.read_url.as_ref().map(|u| u.redacted()), "postgres store connected");
            let store = PgStore::open(db.clone()).await.context("opening the PostgreSQL store")?;
            (Arc::new(store), Some(db))
        }
    };
    let datasets: Vec<_> =
        config.datasets.iter().filter(|d| matches!(d.source, SourceSpec::Embedded)).cloned().collect();
    let s = store.clone();
    // The store's calls block (a file, or a database round trip).
    tokio::task::spawn_blocking(move || -> Result<()> {
        for d in &datasets {
            s.open_dataset(&d.info.id, &hapi_store::Layout::of(&d.info))?;
            if let Some(g) = &d.demo
                && s.extent(&d.info.id)?.is_none()
            {
                let t = std::time::Instant::now();
                let n = demo::populate(s.as_ref(), &d.info, g)?;
                tracing::info!(dataset = %d.info.id, records = n, ms = t.elapsed().as_millis() as u64, "demo data generated");
            }
        }
        Ok(())
    })
    .await??;
    Ok(Stores { store, database })
}
