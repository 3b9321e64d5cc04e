//! Schema migrations: per component (the store, the issuer's tables, ...), an ordered
//! list of `(version, SQL)` steps. [`migrate`] applies the missing ones in one
//! transaction under a transaction-scoped advisory lock, so replicas starting at the
//! same moment apply each step exactly once (the others wait on the lock, then find it
//! done), and a failing step leaves nothing behind. A database whose recorded version
//! of a component is newer than this binary knows is refused: an older server must not
//! read or write tables whose meaning changed. A current schema is recognised without a
//! lock or a write.

use tokio_postgres::Client;
use tracing::info;

use crate::PgError;

/// The migrations of one component.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    /// Its name in `hapi_schema`, e.g. `store`.
    pub component: &'static str,
    /// `(version, SQL)`, versions ascending from 1; a released step never changes (add
    /// a later one instead).
    pub steps: &'static [(i32, &'static str)],
}

impl Migrations {
    /// The newest version this binary knows.
    pub fn latest(&self) -> i32 {
        self.steps.last().map_or(0, |s| s.0)
    }
}

/// One key for every component: migrations are rare and short, so they need not run
/// in parallel, and DDL of different components cannot deadlock each other.
const LOCK_KEY: i64 = 0x4841_5049_5343_4845; // "HAPISCHE"

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS hapi_schema (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)";

/// Brings `component` up to its latest version; returns the steps applied (0 when
/// another replica did it first).
pub async fn migrate(client: &mut Client, m: &Migrations) -> Result<usize, PgError> {
    check_steps(m);
    // Read-only first: a replica starting on a current schema takes no lock and writes
    // nothing (so it also starts against a read-only server).
    let found = version(client, m.component).await?;
    if found > m.latest() {
        return Err(PgError::SchemaTooNew { component: m.component, found, known: m.latest() });
    }
    if found == m.latest() {
        return Ok(0);
    }
    let tx = client.transaction().await?;
    // Held until commit or rollback; a replica starting meanwhile waits here.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
    tx.batch_execute(BOOKKEEPING).await?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM hapi_schema WHERE component = $1", &[&m.component])
        .await?
        .get(0);
    if current > m.latest() {
        return Err(PgError::SchemaTooNew { component: m.component, found: current, known: m.latest() });
    }
    let mut applied = 0;
    for &(version, sql) in m.steps.iter().filter(|s| s.0 > current) {
        tx.batch_execute(sql).await.map_err(|e| PgError::Migration {
            component: m.component,
            version,
            source: e,
        })?;
        tx.execute("INSERT INTO hapi_schema (component, version) VALUES ($1, $2)", &[&m.component, &version])
            .await?;
        applied += 1;
    }
    tx.commit().await?;
    if applied > 0 {
        info!(component = m.component, from = current, to = m.latest(), "schema migrated");
    }
    Ok(applied)
}

/// The version of `component` recorded in the database (0: none), without changing it.
pub async fn version(client: &Client, component: &str) -> Result<i32, PgError> {
    let exists: bool = client.query_one("SELECT to_regclass('hapi_schema') IS NOT NULL", &[]).await?.get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM hapi_schema WHERE component = $1", &[&component])
        .await?;
    Ok(row.get(0))
}

/// A list whose versions do not ascend from 1 without gaps is a programming error.
fn check_steps(m: &Migrations) {
    for (i, step) in m.steps.iter().enumerate() {
        assert_eq!(step.0, i as i32 + 1, "migrations of {} must number 1, 2, 3, ...", m.component);
    }
}
