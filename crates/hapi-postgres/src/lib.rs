//! PostgreSQL for stateless replicas: the connection pools ([`Database`]: writes to the
//! primary, reads from a hot standby when one is configured), schema migrations per
//! component ([`migrate`]), and the record store ([`PgStore`], the same column blocks
//! as the SQLite store, see `store.rs`).
//!
//! Written on tokio-postgres with deadpool pools. Every connection has a connect
//! timeout, TCP keepalives and a statement timeout, so a lost database fails requests
//! in seconds instead of hanging them; the pools reconnect by themselves. One-statement
//! reads of small requests share a few connections instead ([`Database::pipelined`]).
//! URLs carry passwords: [`DatabaseUrl`] never shows one (`Debug`, `Display` and every
//! error use [`DatabaseUrl::redacted`]).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use hapi_source::ErrorKind;
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

pub mod auth;
pub mod migrate;
mod store;

pub use migrate::{Migrations, migrate};
pub use store::{MIGRATIONS as STORE_MIGRATIONS, PgSource, PgStore};

/// A PostgreSQL connection URL (`postgres://user:password@host:port/db` or a key=value
/// string); shown only without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Checks that `text` parses as a connection string.
    pub fn new(text: impl Into<String>) -> Result<DatabaseUrl, PgError> {
        let text = text.into().trim().to_owned();
        text.parse::<tokio_postgres::Config>()
            .map_err(|e| PgError::BadUrl(format!("not a PostgreSQL connection URL ({e})")))?;
        Ok(DatabaseUrl(text))
    }

    /// The URL to connect with (password included): for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn config(&self) -> tokio_postgres::Config {
        self.0.parse().expect("checked by DatabaseUrl::new")
    }

    /// `postgres://user@host:port/db`: what logs and errors show.
    pub fn redacted(&self) -> String {
        let c = self.config();
        let host = match c.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = c.get_ports().first().copied().unwrap_or(5432);
        let user = c.get_user().map(|u| format!("{u}@")).unwrap_or_default();
        format!("postgres://{user}{host}:{port}/{}", c.get_dbname().unwrap_or(""))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Runs `f` to completion on `rt` (the runtime the pools run on) for a synchronous
/// caller: a blocking thread (`spawn_blocking`), a thread outside the runtime, or a
/// worker of a multi-threaded runtime (in place). A current-thread runtime's own thread
/// cannot wait on itself: call from `spawn_blocking` there. The one bridge of the
/// synchronous `Store` and `AuthStore` traits to the async driver.
pub(crate) fn block_on<F: std::future::Future>(rt: &tokio::runtime::Handle, f: F) -> F::Output {
    let run = || rt.block_on(f);
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(run)
        }
        _ => run(),
    }
}

/// How long start-up waits for a standby to replay a migration of the primary.
const STANDBY_WAIT: Duration = Duration::from_secs(30);

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// The primary: every write, and reads without `read_url`.
    pub url: DatabaseUrl,
    /// A hot standby for reads.
    pub read_url: Option<DatabaseUrl>,
    /// Connections per pool.
    pub pool_size: usize,
    /// Connections on the read database that small requests share ([`Database::pipelined`]).
    pub pipelined_connections: usize,
    /// How long opening a connection, or waiting for a free one, may take.
    pub connect_timeout: Duration,
    /// How long one read statement may run.
    pub statement_timeout: Duration,
    /// How long one write statement (a whole COPY of an append) may run.
    pub write_timeout: Duration,
}

impl DatabaseSettings {
    /// `url` with the defaults: 16 connections per pool and 1 pipelined, 3 s to
    /// connect, 10 s per read statement, 10 min per write statement.
    pub fn new(url: DatabaseUrl) -> DatabaseSettings {
        DatabaseSettings {
            url,
            read_url: None,
            pool_size: 16,
            pipelined_connections: 1,
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(600),
        }
    }
}

/// The pools: `write` on the primary, `read` on the standby (or the primary), and the
/// shared read connections of [`Database::pipelined`].
#[derive(Clone)]
pub struct Database {
    write: Pool,
    read: Pool,
    pipelined: Arc<Pipelined>,
    settings: DatabaseSettings,
}

/// Read connections that many requests use at once. tokio-postgres pipelines the
/// statements of concurrent callers on one connection, so a backend under load reads
/// and answers them back to back instead of sleeping and waking per statement: on two
/// cores, small requests served this way went from 10k to 19k a second (see
/// `docs/benchmarks.md`, "Replicas behind nginx"). A pooled connection is held whole by
/// one caller, which a streaming scan needs and a one-statement read does not.
struct Pipelined {
    /// Where the connections come from: timeouts, error texts, recycling of broken ones.
    pool: Pool,
    /// The pool's database, for errors.
    url: DatabaseUrl,
    /// How long a caller waits for another's attempt to connect.
    wait: Duration,
    /// The connections in use, opened on first need and replaced once closed.
    slots: Vec<Mutex<Option<Arc<Object>>>>,
    /// Held while a slot is being (re)opened, so one caller connects and the rest wait.
    opening: Vec<tokio::sync::Mutex<()>>,
    /// Round robin over the slots.
    next: AtomicUsize,
}

impl Pipelined {
    fn new(pool: Pool, url: DatabaseUrl, wait: Duration, n: usize) -> Pipelined {
        Pipelined {
            pool,
            url,
            wait,
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
            opening: (0..n).map(|_| tokio::sync::Mutex::new(())).collect(),
            next: AtomicUsize::new(0),
        }
    }

    fn open_in(&self, i: usize) -> Option<Arc<Object>> {
        let slot = self.slots[i].lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().filter(|c| !c.is_closed()).map(Arc::clone)
    }

    /// Waits at most `wait` for another caller's attempt to connect, then makes its
    /// own, itself bounded by the pool's timeouts: callers never queue behind a
    /// database that does not answer, as they would behind the lock alone.
    async fn get(&self) -> Result<Arc<Object>, PgError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        if let Some(c) = self.open_in(i) {
            return Ok(c);
        }
        let Ok(_opening) = tokio::time::timeout(self.wait, self.opening[i].lock()).await else {
            return Err(PgError::Connect { target: self.url.redacted(), detail: TIMED_OUT.to_owned() });
        };
        if let Some(c) = self.open_in(i) {
            return Ok(c);
        }
        // A closed connection goes back to its pool once its last caller is done, and
        // the pool's recycling drops it.
        let c = Arc::new(get(&self.pool, &self.url).await?);
        *self.slots[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&c));
        Ok(c)
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("url", &self.settings.url)
            .field("read_url", &self.settings.read_url)
            .finish_non_exhaustive()
    }
}

/// The driver's settings for `url`: timeouts, keepalives, the statement timeout.
fn client_config(
    url: &DatabaseUrl,
    s: &DatabaseSettings,
    statement_timeout: Duration,
) -> tokio_postgres::Config {
    let mut c = url.config();
    c.connect_timeout(s.connect_timeout);
    c.keepalives(true).keepalives_idle(Duration::from_secs(10));
    // A peer that vanished (no RST) fails writes after this long instead of TCP's minutes.
    c.tcp_user_timeout(s.connect_timeout.max(Duration::from_secs(5)));
    c.application_name("hapi-server");
    c.options(format!("-c statement_timeout={}", statement_timeout.as_millis()));
    c
}

fn pool(
    url: &DatabaseUrl,
    s: &DatabaseSettings,
    size: usize,
    statement_timeout: Duration,
) -> Result<Pool, PgError> {
    let c = client_config(url, s, statement_timeout);
    let manager = Manager::from_config(c, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(s.connect_timeout))
        .create_timeout(Some(s.connect_timeout))
        .recycle_timeout(Some(s.connect_timeout))
        .build()
        .map_err(|e| PgError::BadUrl(format!("building the connection pool: {e}")))
}

impl Database {
    /// Builds the pools and opens one connection to each database, so a wrong URL, a
    /// wrong password or a database that is down is a start-up error.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Database, PgError> {
        let write = pool(&settings.url, settings, settings.pool_size, settings.write_timeout)?;
        let read_url = settings.read_url.as_ref().unwrap_or(&settings.url);
        let read = pool(read_url, settings, settings.pool_size, settings.statement_timeout)?;
        // Twice the slots: a replacement never waits for a closed connection that its
        // last callers have not let go of yet.
        let n = settings.pipelined_connections.max(1);
        let shared = pool(read_url, settings, 2 * n, settings.statement_timeout)?;
        let pipelined = Arc::new(Pipelined::new(shared, read_url.clone(), settings.connect_timeout, n));
        let db = Database { write, read, pipelined, settings: settings.clone() };
        drop(db.writer().await?);
        drop(db.reader().await?);
        Ok(db)
    }

    /// A connection to the primary.
    pub async fn writer(&self) -> Result<Object, PgError> {
        get(&self.write, &self.settings.url).await
    }

    /// A connection for reads (the standby when configured).
    pub async fn reader(&self) -> Result<Object, PgError> {
        get(&self.read, self.read_url()).await
    }

    /// A read connection shared with other callers, for reads of one statement each (a
    /// statement is its own snapshot): no transaction, no portal, nothing that changes
    /// the session, and nothing large, which would delay the statements behind it.
    pub async fn pipelined(&self) -> Result<Arc<Object>, PgError> {
        self.pipelined.get().await
    }

    fn read_url(&self) -> &DatabaseUrl {
        self.settings.read_url.as_ref().unwrap_or(&self.settings.url)
    }

    /// Applies `m`'s missing steps on the primary, then, with a standby for reads, waits
    /// until the standby has replayed them: a replica that read the standby at once
    /// would find no tables on a fresh deployment.
    pub async fn migrate(&self, m: &Migrations) -> Result<usize, PgError> {
        let mut conn = self.writer().await?;
        let applied = migrate(&mut conn, m).await.map_err(|e| match e {
            PgError::Migration { ref source, .. }
                if source.code() == Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION) =>
            {
                PgError::ReadOnly { target: self.settings.url.redacted() }
            }
            e if e.is_read_only() => PgError::ReadOnly { target: self.settings.url.redacted() },
            e => e,
        })?;
        drop(conn);
        if let Some(read_url) = &self.settings.read_url {
            let started = std::time::Instant::now();
            loop {
                let found = migrate::version(&*self.reader().await?, m.component).await?;
                if found >= m.latest() {
                    break;
                }
                if started.elapsed() > STANDBY_WAIT {
                    return Err(PgError::StandbyBehind {
                        target: read_url.redacted(),
                        component: m.component,
                        found,
                        known: m.latest(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(applied)
    }

    /// A connection's settings for the primary's notifications (LISTEN).
    pub(crate) fn listen_config(&self) -> tokio_postgres::Config {
        client_config(&self.settings.url, &self.settings, self.settings.statement_timeout)
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &DatabaseSettings {
        &self.settings
    }
}

/// [`PgError::Connect`]'s detail when no connection came in time: a [`ErrorKind::TimedOut`].
const TIMED_OUT: &str = "timed out";

async fn get(pool: &Pool, url: &DatabaseUrl) -> Result<Object, PgError> {
    pool.get().await.map_err(|e| PgError::Connect { target: url.redacted(), detail: pool_detail(e) })
}

/// The cause of a pool failure, without the connection string.
fn pool_detail(e: deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::PoolError as P;
    match e {
        P::Timeout(_) => TIMED_OUT.to_owned(),
        P::Backend(e) => error_text(&e),
        other => other.to_string(),
    }
}

/// A driver error with the server's message and code when there is one.
fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                text = format!("{text}: {c}");
                cause = c.source();
            }
            text
        }
    }
}

/// Why a PostgreSQL operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The configured URL is not usable.
    #[error("database URL: {0}")]
    BadUrl(String),
    /// No connection could be had.
    #[error("connecting to {target}: {detail}")]
    Connect {
        /// The redacted URL.
        target: String,
        /// Why.
        detail: String,
    },
    /// A statement failed.
    #[error("postgres: {}", error_text(.0))]
    Query(#[from] tokio_postgres::Error),
    /// The database was migrated by a newer server.
    #[error(
        "the database's {component} schema is version {found}, newer than this server knows ({known}): run the newer server, or restore a matching backup"
    )]
    SchemaTooNew {
        /// The component.
        component: &'static str,
        /// Its version in the database.
        found: i32,
        /// The latest this binary knows.
        known: i32,
    },
    /// A store error (layout, order, shape, corruption) found in PostgreSQL's data.
    #[error(transparent)]
    Store(#[from] hapi_store::StoreError),
    /// A write reached a read-only server.
    #[error(
        "{target} is read-only (a hot standby?): writes must go to the primary; set the store's `url` to the primary and `read_url` to the standby"
    )]
    ReadOnly {
        /// The redacted URL written to.
        target: String,
    },
    /// The standby for reads has not replayed the schema the primary has.
    #[error(
        "the read database {target} still has the {component} schema at version {found} (the primary has {known}) after {}s: is it replicating from the primary?",
        STANDBY_WAIT.as_secs()
    )]
    StandbyBehind {
        /// The redacted read URL.
        target: String,
        /// The component.
        component: &'static str,
        /// Its version on the standby.
        found: i32,
        /// The version on the primary.
        known: i32,
    },
    /// A migration step failed (and was rolled back).
    #[error("migrating the {component} schema to version {version}: {}", error_text(.source))]
    Migration {
        /// The component.
        component: &'static str,
        /// The step.
        version: i32,
        /// The cause.
        source: tokio_postgres::Error,
    },
}

impl PgError {
    /// What the failure means to the server.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PgError::BadUrl(_)
            | PgError::SchemaTooNew { .. }
            | PgError::Migration { .. }
            | PgError::StandbyBehind { .. } => ErrorKind::Internal,
            PgError::Connect { detail, .. } if detail == TIMED_OUT => ErrorKind::TimedOut,
            PgError::Connect { .. } => ErrorKind::Unavailable,
            PgError::Query(e) => query_kind(e),
            PgError::Store(e) => e.kind(),
            PgError::ReadOnly { .. } => ErrorKind::Unavailable,
        }
    }

    /// A write reached a read-only server (a standby).
    pub fn is_read_only(&self) -> bool {
        matches!(self, PgError::Query(e) if e.code() == Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION))
    }
}

fn query_kind(e: &tokio_postgres::Error) -> ErrorKind {
    use tokio_postgres::error::SqlState as S;
    match e.code() {
        None if e.is_closed() => ErrorKind::Unavailable,
        None => ErrorKind::Unavailable,
        Some(c) if *c == S::QUERY_CANCELED || *c == S::LOCK_NOT_AVAILABLE => ErrorKind::TimedOut,
        Some(c) if *c == S::READ_ONLY_SQL_TRANSACTION => ErrorKind::Unavailable,
        Some(c) if c.code().starts_with("08") || c.code().starts_with("57") || c.code().starts_with("53") => {
            ErrorKind::Unavailable
        }
        Some(c) if c.code().starts_with("XX") => ErrorKind::Corrupt,
        Some(_) => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_never_show_their_password() {
        let url = DatabaseUrl::new("postgres://hapi:s3cret@db.example:6543/hapi").unwrap();
        assert_eq!(url.redacted(), "postgres://hapi@db.example:6543/hapi");
        assert!(!format!("{url:?} {url}").contains("s3cret"));
        let kv = DatabaseUrl::new("host=127.0.0.1 user=u password=pw dbname=d").unwrap();
        assert_eq!(kv.to_string(), "postgres://u@127.0.0.1:5432/d");
        let err = DatabaseUrl::new("postgres://u:pw@host:notaport/db").unwrap_err().to_string();
        assert!(err.starts_with("database URL: not a PostgreSQL connection URL"), "{err}");
        assert!(!err.contains("pw@"), "{err}");
    }
}
