//! The record store on PostgreSQL: the column blocks of the SQLite store
//! (`hapi_store::codec`), one row per block and column, so a scan reads only the
//! requested columns and every lookup is an index seek:
//!
//! - `store_datasets(key, id UNIQUE, layout, block_rows)`, as in SQLite;
//! - `store_blocks(dataset, col, k, t0, t1, n, data)`, primary key `(dataset, col, k)`,
//!   plus a partial index on `(dataset, t0)` of the time column (`col = 0`), the only
//!   one searched by time. `data` is stored uncompressed out of line (`STORAGE
//!   EXTERNAL`): packed doubles do not compress, and trying costs every append.
//!
//! The same invariants hold (docs: crates/hapi-store/src/sqlite.rs): all columns share
//! block boundaries, every block but the last holds `block_rows` records, so record `i`
//! is in block `i / block_rows`, and ranks come from one index seek plus a binary search.
//!
//! Appends (`append.rs`) lock the dataset's row (`FOR UPDATE`: appenders on any replica
//! queue there), rewrite the partial last block and stream new blocks through one
//! binary `COPY`, then `pg_notify` in the same transaction: all or nothing. Scans
//! (`scan.rs`) fix their record indices at the start and read one block per statement
//! on a pooled connection, holding nothing between batches.
//!
//! The [`hapi_store::Store`] methods are synchronous (ingest calls them from a blocking
//! thread or the command line's main thread); they run the async code on the runtime
//! the store was opened in. The server reads through [`PgSource`] (async, no blocking
//! thread) and learns of appends by `LISTEN` (`watch.rs`).

/// The time block that starts last before `$2` (of dataset `$1`): one index probe.
/// A macro, not a `const`, so that [`BLOCK_BEFORE`] and the small scan's statement
/// (`scan.rs`) are put together from it with `concat!`.
macro_rules! time_block_before {
    () => {
        "FROM store_blocks WHERE dataset = $1 AND col = 0 AND t0 < $2 ORDER BY t0 DESC LIMIT 1"
    };
}

/// Where `$3` times around `$2` start in a block of `n` times from `t0` to `t1`, if they
/// were evenly spaced: a quarter of the window before the guess, clamped to the block.
/// The guess stays in floating point until it is clamped: `$2 - t0` may not fit a bigint.
macro_rules! window_start {
    () => {
        "greatest(0, least(n - $3::int,
            ($2::bigint::float8 - t0::float8) / greatest(t1::float8 - t0::float8, 1) * (n - 1) - $3 / 4))::int"
    };
}

mod append;
mod scan;
mod watch;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};

use deadpool_postgres::GenericClient;
use hapi_core::{Batch, Nanos};
use hapi_source::Source;
use hapi_store::codec::{self, block_rows_for};
use hapi_store::{BatchIter, Layout, Snapshot, Store, StoreError};
use tokio::runtime::Handle;
use tracing::debug;

pub use scan::PgSource;

use crate::{Database, Migrations, PgError};

/// The store's tables.
pub const MIGRATIONS: Migrations = Migrations {
    component: "store",
    steps: &[(
        1,
        "CREATE TABLE store_datasets (
            key SERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            layout TEXT NOT NULL,
            block_rows INTEGER NOT NULL CHECK (block_rows > 0)
        );
        CREATE TABLE store_blocks (
            dataset INTEGER NOT NULL REFERENCES store_datasets (key),
            col INTEGER NOT NULL,
            k BIGINT NOT NULL,
            t0 BIGINT NOT NULL,
            t1 BIGINT NOT NULL,
            n INTEGER NOT NULL,
            data BYTEA NOT NULL,
            PRIMARY KEY (dataset, col, k)
        );
        ALTER TABLE store_blocks ALTER COLUMN data SET STORAGE EXTERNAL;
        CREATE INDEX store_blocks_by_time ON store_blocks (dataset, t0) WHERE col = 0;",
    )],
};

/// Records per block at most (SQLite's is 4,096): each block costs a statement and its
/// TOAST lookups, so bigger blocks stream faster (docs/decisions.md); the widest column
/// of a block still stays within `hapi_store::codec::BLOCK_BYTES`.
pub const MAX_BLOCK_ROWS: usize = 16_384;

/// The channel appends notify, with `last-time<TAB>dataset-id` as the payload.
pub(crate) const CHANNEL: &str = "hapi_store_append";

const GET_DATASET: &str = "SELECT key, layout, block_rows FROM store_datasets WHERE id = $1";
const ADD_DATASET: &str =
    "INSERT INTO store_datasets (id, layout, block_rows) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING";
const EXTENT: &str = "SELECT (SELECT t0 FROM store_blocks WHERE dataset = $1 AND col = 0 AND k = 0),
    (SELECT t1 FROM store_blocks WHERE dataset = $1 AND col = 0 ORDER BY k DESC LIMIT 1)";
const LAST_BLOCK: &str =
    "SELECT k, n, t0, t1 FROM store_blocks WHERE dataset = $1 AND col = 0 ORDER BY k DESC LIMIT 1";
/// The block holding the records just before `$2` and, when `$2` falls inside it, `$3`
/// of its times from `w`: around where `$2` would lie if the times were evenly spaced.
/// `substring` of an uncompressed external blob reads only the TOAST chunks it needs,
/// so a small request moves 2 KB, not the whole 128 KB time block.
const BLOCK_BEFORE: &str = concat!(
    "SELECT k, n, t1, w, CASE WHEN t1 >= $2 THEN substring(data FROM w * 8 + 1 FOR $3 * 8) END
    FROM (SELECT k, n, t1, data, ",
    window_start!(),
    " AS w ",
    time_block_before!(),
    ") b"
);
/// Times in a window of [`BLOCK_BEFORE`]: 2 KB, one TOAST chunk or two. It starts a
/// quarter before the guess, so a small request's `stop` usually falls in its `start`'s.
pub(crate) const WINDOW: i32 = 256;
/// Block `k` of the columns `$3` (the time column is 0): one index scan.
const BLOCK_DATA: &str =
    "SELECT col, n, t0, data FROM store_blocks WHERE dataset = $1 AND k = $2 AND col = ANY ($3)";

/// The [`Store`] on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) db: Database,
    /// The runtime the synchronous [`Store`] calls run on.
    runtime: Handle,
    max_block_rows: usize,
    datasets: RwLock<HashMap<String, Arc<Meta>>>,
    /// Extents kept by the listener (`watch.rs`), by dataset id.
    pub(crate) extents: watch::Extents,
    /// Dropped with the store: the listener then ends.
    _stop: tokio::sync::watch::Sender<()>,
}

/// What every operation needs to know about a dataset.
#[derive(Debug)]
pub(crate) struct Meta {
    pub(crate) id: String,
    pub(crate) key: i32,
    pub(crate) layout: Layout,
    pub(crate) block_rows: i64,
}

/// The last block of a dataset's time column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tail {
    pub(crate) k: i64,
    pub(crate) n: i64,
    pub(crate) t0: Nanos,
    pub(crate) t1: Nanos,
}

impl PgStore {
    /// Migrates the store's tables (safe when replicas start together) and starts the
    /// listener that keeps extents current. Call it inside the tokio runtime that will
    /// run the synchronous calls.
    pub async fn open(db: Database) -> Result<PgStore, PgError> {
        PgStore::with_max_block_rows(db, MAX_BLOCK_ROWS).await
    }

    /// Like [`PgStore::open`], with at most `rows` records per block for datasets it
    /// creates (tests cross many block edges with little data).
    pub async fn with_max_block_rows(db: Database, rows: usize) -> Result<PgStore, PgError> {
        db.migrate(&MIGRATIONS).await?;
        let (stop, stopped) = tokio::sync::watch::channel(());
        let shared = Arc::new(Shared {
            db,
            runtime: Handle::current(),
            max_block_rows: rows.max(1),
            datasets: RwLock::default(),
            extents: watch::Extents::default(),
            _stop: stop,
        });
        watch::start(&shared, stopped);
        Ok(PgStore { shared })
    }

    /// Whether it is listening for appends (else extents are read on every call).
    pub fn listening(&self) -> bool {
        self.shared.extents.is_live()
    }

    /// The pools it uses (shared with other components of the same database).
    pub fn database(&self) -> &Database {
        &self.shared.db
    }

    /// [`crate::block_on`] for the `Store` trait's callers.
    fn block_on<T>(&self, f: impl Future<Output = Result<T, PgError>>) -> Result<T, StoreError> {
        crate::block_on(&self.shared.runtime, f).map_err(StoreError::from_pg)
    }
}

/// Converts for the `Store` trait's error type.
trait FromPg {
    fn from_pg(e: PgError) -> StoreError;
}

impl FromPg for StoreError {
    fn from_pg(e: PgError) -> StoreError {
        match e {
            PgError::Store(e) => e,
            e => StoreError::Backend { backend: "postgres", kind: e.kind(), detail: e.to_string() },
        }
    }
}

impl Shared {
    /// The dataset's [`Meta`] once it was read.
    pub(crate) fn cached_meta(&self, id: &str) -> Option<Arc<Meta>> {
        self.datasets.read().unwrap_or_else(PoisonError::into_inner).get(id).map(Arc::clone)
    }

    /// The dataset's key and layout, cached after the first lookup.
    pub(crate) async fn meta(&self, c: &impl GenericClient, id: &str) -> Result<Arc<Meta>, PgError> {
        if let Some(meta) = self.cached_meta(id) {
            return Ok(meta);
        }
        let meta = Arc::new(
            load_meta(c, id)
                .await?
                .ok_or_else(|| PgError::Store(StoreError::UnknownDataset(id.to_owned())))?,
        );
        self.datasets
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), Arc::clone(&meta));
        Ok(meta)
    }

    pub(crate) async fn open_dataset(&self, id: &str, layout: &Layout) -> Result<(), PgError> {
        let conn = self.db.writer().await?;
        let block_rows = block_rows_for(layout, self.max_block_rows) as i32;
        // Two replicas creating it at once: one insert wins, both read the same row.
        conn.execute(ADD_DATASET, &[&id, &layout.describe(), &block_rows])
            .await
            .map_err(write_error(&self.db))?;
        let meta = load_meta(&conn, id).await?.ok_or_else(|| corrupt(format!("dataset `{id}` vanished")))?;
        if let Some(detail) = layout.changes_from(&meta.layout) {
            return Err(PgError::Store(StoreError::LayoutChanged { dataset: id.to_owned(), detail }));
        }
        debug!(dataset = %id, block_rows = meta.block_rows, "dataset opened");
        self.datasets.write().unwrap_or_else(PoisonError::into_inner).insert(id.to_owned(), Arc::new(meta));
        Ok(())
    }

    /// The extent the reads see (the standby's, when there is one).
    pub(crate) async fn extent(&self, id: &str) -> Result<Option<(Nanos, Nanos)>, PgError> {
        let conn = self.db.reader().await?;
        let meta = self.meta(&conn, id).await?;
        read_extent(&conn, &meta).await
    }

    /// The primary's extent: what an append continues (a standby may lag behind it).
    pub(crate) async fn primary_extent(&self, id: &str) -> Result<Option<(Nanos, Nanos)>, PgError> {
        let conn = self.db.writer().await?;
        let meta = self.meta(&conn, id).await?;
        read_extent(&conn, &meta).await
    }

    async fn count(&self, id: &str, start: Nanos, stop: Nanos) -> Result<u64, PgError> {
        let conn = self.db.reader().await?;
        let meta = self.meta(&conn, id).await?;
        if stop <= start {
            return Ok(0);
        }
        let (a, b) = ranks(&conn, &meta, start, stop).await?;
        Ok((b - a) as u64)
    }

    pub(crate) async fn nth_time(&self, id: &str, start: Nanos, n: u64) -> Result<Option<Nanos>, PgError> {
        let conn = self.db.reader().await?;
        let meta = self.meta(&conn, id).await?;
        let Ok(n) = i64::try_from(n) else { return Ok(None) };
        let (first, tail) = futures::try_join!(rank(&conn, &meta, start), last_block(&conn, &meta))?;
        let index = first.saturating_add(n);
        let total = tail.map_or(0, |t| t.k * meta.block_rows + t.n);
        if index >= total {
            return Ok(None);
        }
        let (k, row) = (index / meta.block_rows, (index % meta.block_rows) as usize);
        let block = time_block(&conn, meta.key, k).await?;
        let (n, data) = (block.get::<_, i32>(1) as usize, block.get(3));
        if row >= n {
            return Err(corrupt(format!("block {k} ends before record {index}")));
        }
        Ok(Some(codec::time_at(data, row)))
    }
}

/// A spawned task that ends when its handle is dropped (a client went away).
pub(crate) struct AbortOnDrop<T>(Option<tokio::task::JoinHandle<T>>);

impl<T: Send + 'static> AbortOnDrop<T> {
    pub(crate) fn spawn(f: impl Future<Output = T> + Send + 'static) -> AbortOnDrop<T> {
        AbortOnDrop(Some(tokio::spawn(f)))
    }

    /// Watches a task spawned elsewhere.
    pub(crate) fn of(handle: tokio::task::JoinHandle<T>) -> AbortOnDrop<T> {
        AbortOnDrop(Some(handle))
    }
}

impl<T> AbortOnDrop<Result<T, PgError>> {
    /// Its result; a task that panicked is an internal error.
    pub(crate) async fn join(mut self) -> Result<T, PgError> {
        let handle = self.0.take().expect("joined once");
        handle.await.unwrap_or_else(|e| {
            Err(PgError::Store(StoreError::Backend {
                backend: "postgres",
                kind: hapi_source::ErrorKind::Internal,
                detail: format!("a read-ahead task failed: {e}"),
            }))
        })
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

pub(crate) fn corrupt(detail: String) -> PgError {
    PgError::Store(StoreError::Corrupt(detail))
}

/// A write refused by a read-only server names the likely cause.
pub(crate) fn write_error(db: &Database) -> impl Fn(tokio_postgres::Error) -> PgError + '_ {
    move |e| {
        let e = PgError::Query(e);
        if e.is_read_only() { PgError::ReadOnly { target: db.settings().url.redacted() } } else { e }
    }
}

async fn load_meta(c: &impl GenericClient, id: &str) -> Result<Option<Meta>, PgError> {
    let Some(row) = c.query_opt(&c.prepare_cached(GET_DATASET).await?, &[&id]).await? else {
        return Ok(None);
    };
    let (key, text, block_rows): (i32, String, i32) = (row.get(0), row.get(1), row.get(2));
    let layout = Layout::parse(&text)
        .ok_or_else(|| corrupt(format!("dataset `{id}` has an unreadable layout `{text}`")))?;
    Ok(Some(Meta { id: id.to_owned(), key, layout, block_rows: i64::from(block_rows) }))
}

pub(crate) async fn read_extent(
    c: &impl GenericClient,
    meta: &Meta,
) -> Result<Option<(Nanos, Nanos)>, PgError> {
    let row = c.query_one(&c.prepare_cached(EXTENT).await?, &[&meta.key]).await?;
    Ok(match (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) {
        (Some(a), Some(b)) => Some((a, b)),
        (None, None) => None,
        _ => return Err(corrupt(format!("dataset `{}` has blocks but no block 0", meta.id))),
    })
}

pub(crate) async fn last_block(c: &impl GenericClient, meta: &Meta) -> Result<Option<Tail>, PgError> {
    let row = c.query_opt(&c.prepare_cached(LAST_BLOCK).await?, &[&meta.key]).await?;
    Ok(row.map(|r| Tail { k: r.get(0), n: i64::from(r.get::<_, i32>(1)), t0: r.get(2), t1: r.get(3) }))
}

/// Records with a time before `t`.
pub(crate) async fn rank(c: &impl GenericClient, meta: &Meta, t: Nanos) -> Result<i64, PgError> {
    match block_before(c, meta, t).await? {
        None => Ok(0),
        Some(b) => b.rank(c, meta, t).await,
    }
}

/// Records before `start` and before `stop` (`start <= stop`), the second never less
/// than the first. A block holding `start` whose last time is at least `stop` holds
/// `stop`'s place too (the next block starts after it), so a small request reads one
/// window of one time block.
pub(crate) async fn ranks(
    c: &impl GenericClient,
    meta: &Meta,
    start: Nanos,
    stop: Nanos,
) -> Result<(i64, i64), PgError> {
    let Some(b) = block_before(c, meta, start).await? else { return Ok((0, rank(c, meta, stop).await?)) };
    let a = b.rank(c, meta, start).await?;
    let z = if b.t1 >= stop { b.rank(c, meta, stop).await? } else { rank(c, meta, stop).await? };
    Ok((a, z.max(a)))
}

/// The last time block that starts before some time `t`: its first record's index, its
/// ordinal, size and last time, and a window of its times when `t` falls inside it.
struct Before {
    k: i64,
    first: i64,
    n: i32,
    t1: Nanos,
    /// Index of the window's first time in the block.
    w: i32,
    /// Its row: the window is read from it in place.
    row: tokio_postgres::Row,
}

impl Before {
    fn window(&self) -> Option<&[u8]> {
        self.row.get(4)
    }

    /// Records of the dataset before `t` (`t` after this block's start): from the
    /// window when it brackets `t`, else from the whole time block (uneven times).
    async fn rank(&self, c: &impl GenericClient, meta: &Meta, t: Nanos) -> Result<i64, PgError> {
        if self.t1 < t {
            return Ok(self.first + i64::from(self.n));
        }
        if let Some(r) = self.window().and_then(|w| self.rank_in_window(w, t)) {
            return Ok(self.first + r as i64);
        }
        let block = time_block(c, meta.key, self.k).await?;
        Ok(self.first + codec::rank_in(block.get(3), block.get::<_, i32>(1) as usize, t) as i64)
    }

    fn rank_in_window(&self, window: &[u8], t: Nanos) -> Option<usize> {
        rank_in_window(window, self.w, self.n, t)
    }
}

/// The rank of `t` in a block of `n` times if its window (the times from `w`) shows it:
/// a time before `t` in the window or none before it, and one at or after `t` or none
/// after it.
pub(crate) fn rank_in_window(window: &[u8], w: i32, n: i32, t: Nanos) -> Option<usize> {
    let (w, n) = (usize::try_from(w).ok()?, usize::try_from(n).ok()?);
    let m = window.len() / 8;
    if !window.len().is_multiple_of(8) || w + m > n {
        return None;
    }
    let r = codec::rank_in(window, m, t);
    ((r > 0 || w == 0) && (r < m || w + m == n)).then_some(w + r)
}

/// The row of time block `k` (`col, n, t0, data`), its blob checked to hold its `n` times.
async fn time_block(c: &impl GenericClient, key: i32, k: i64) -> Result<tokio_postgres::Row, PgError> {
    let rows = c.query(&c.prepare_cached(BLOCK_DATA).await?, &[&key, &k, &vec![0i32]]).await?;
    let row =
        rows.into_iter().next().ok_or_else(|| corrupt(format!("block {k} of the time column is missing")))?;
    let (n, data): (i32, &[u8]) = (row.get(1), row.get(3));
    codec::check_len(data, n as usize, 8, "time block").map_err(PgError::Store)?;
    Ok(row)
}

async fn block_before(c: &impl GenericClient, meta: &Meta, t: Nanos) -> Result<Option<Before>, PgError> {
    let Some(row) = c.query_opt(&c.prepare_cached(BLOCK_BEFORE).await?, &[&meta.key, &t, &WINDOW]).await?
    else {
        return Ok(None);
    };
    let k: i64 = row.get(0);
    Ok(Some(Before { k, first: k * meta.block_rows, n: row.get(1), t1: row.get(2), w: row.get(3), row }))
}

impl Store for PgStore {
    fn open_dataset(&self, id: &str, layout: &Layout) -> Result<(), StoreError> {
        self.block_on(self.shared.open_dataset(id, layout))
    }

    /// The primary's: callers of the synchronous API append next (ingest).
    fn extent(&self, id: &str) -> Result<Option<(Nanos, Nanos)>, StoreError> {
        self.block_on(self.shared.primary_extent(id))
    }

    fn count(&self, id: &str, start: Nanos, stop: Nanos) -> Result<u64, StoreError> {
        self.block_on(self.shared.count(id, start, stop))
    }

    fn nth_time(&self, id: &str, start: Nanos, n: u64) -> Result<Option<Nanos>, StoreError> {
        self.block_on(self.shared.nth_time(id, start, n))
    }

    fn snapshot(
        &self,
        id: &str,
        columns: &[usize],
        start: Nanos,
        stop: Nanos,
    ) -> Result<Snapshot, StoreError> {
        let scan = self.block_on(scan::open(&self.shared, id, columns, start, stop))?;
        let count = scan.len();
        let store = self.clone();
        let mut stream = scan.into_stream();
        let batches: BatchIter = Box::new(std::iter::from_fn(move || {
            use futures::StreamExt;
            match store.block_on(async { Ok(stream.next().await) }) {
                Ok(item) => item.map(|r| r.map_err(StoreError::from_pg)),
                Err(e) => Some(Err(e)),
            }
        }));
        Ok(Snapshot { count, batches })
    }

    fn append(&self, id: &str, batches: &mut dyn Iterator<Item = Batch>) -> Result<u64, StoreError> {
        self.block_on(append::append(&self.shared, id, batches))
    }

    fn source(&self, id: &str) -> Option<Arc<dyn Source>> {
        Some(Arc::new(PgSource::new(Arc::clone(&self.shared), id)))
    }
}
