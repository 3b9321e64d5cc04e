//! The embedded store: SQLite holding columnar blocks.
//!
//! A row per record tops out near 1–3 M rows/s in SQLite, far below what binary output
//! needs, so each row of `blocks` holds `block_rows` consecutive records of one column,
//! packed little-endian (see `codec`). Tables:
//!
//! - `datasets(key, id UNIQUE, layout, block_rows)`: `layout` is the machine form of the
//!   [`Layout`] (`double*1,integer*2,string*1/12`), compared on every open; `block_rows`
//!   is fixed when the dataset is created.
//! - `blocks(dataset, col, k, t0, t1, n, data)`, primary key `(dataset, col, k)` plus an
//!   index on `(dataset, col, t0)`. `col` 0 is the time, `1..` the parameters; `k` is the
//!   block's ordinal, `t0`/`t1` its first and last time, `n` its record count.
//!
//! Architecture invariants (what makes every lookup a couple of index seeks):
//! - every column of a dataset has the same blocks (same `k`, `t0`, `t1`, `n`);
//! - every block but the last holds exactly `block_rows` records, so record `i` lives in
//!   block `i / block_rows` at row `i % block_rows`;
//! - the rank of a time (records before it) is the index of the block holding it times
//!   `block_rows` plus a binary search in that one time blob. `count` and `nth_time` use
//!   ranks and never decode a range;
//! - a block is read in parts, through a blob handle (`block.rs`): its length is checked
//!   against its row's `n`, and a batch reads only its own records' bytes.

mod append;
mod block;
mod scan;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hapi_core::{Batch, Nanos};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tracing::{debug, info};

use crate::codec::{MAX_BLOCK_ROWS, block_rows_for};
use crate::{ColumnSpec, Layout, Snapshot, Store, StoreError};
use block::{Block, BlockReader};

/// The database file inside the store's directory.
const FILE_NAME: &str = "hapi.sqlite3";
/// Stored in `PRAGMA user_version`; a newer file is refused rather than misread.
const SCHEMA_VERSION: i64 = 1;
/// Bigger pages mean fewer overflow pages per block blob; only applies to a new file.
const PAGE_SIZE: i64 = 16 * 1024;
/// Idle reader connections kept for reuse; more are opened on demand.
const MAX_IDLE_READERS: usize = 64;
/// How long a statement waits for a lock (e.g. a checkpoint) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Page cache of the writer, in KiB (SQLite reads negative `cache_size` as KiB).
const CACHE_KIB: i64 = 16 * 1024;
/// Page cache per reader, in KiB. Scans read each block once, so the OS page cache does
/// the caching; a big private cache (or mmap, whose resident pages count once per
/// mapping) would make memory grow with the number of concurrent responses, and up to
/// `MAX_IDLE_READERS` idle readers keep theirs. 256 KiB holds the index pages a block
/// lookup walks; 2 MiB cost 16 concurrent responses 39 MB more and no speed.
const READER_CACHE_KIB: i64 = 256;
/// A bulk load leaves a big WAL behind; truncate it to this size after checkpoints.
const WAL_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

const SCHEMA: &str = "
BEGIN;
CREATE TABLE IF NOT EXISTS datasets (
    key INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    layout TEXT NOT NULL,
    block_rows INTEGER NOT NULL
);
-- data last: reading k, t0, t1, n never touches the blob's overflow pages
CREATE TABLE IF NOT EXISTS blocks (
    dataset INTEGER NOT NULL REFERENCES datasets (key),
    col INTEGER NOT NULL,
    k INTEGER NOT NULL,
    t0 INTEGER NOT NULL,
    t1 INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (dataset, col, k)
);
CREATE INDEX IF NOT EXISTS blocks_by_time ON blocks (dataset, col, t0);
COMMIT;
";

const GET_DATASET: &str = "SELECT key, layout, block_rows FROM datasets WHERE id = ?1";
const ADD_DATASET: &str = "INSERT INTO datasets (id, layout, block_rows) VALUES (?1, ?2, ?3)";
const FIRST_TIME: &str = "SELECT t0 FROM blocks WHERE dataset = ?1 AND col = 0 AND k = 0";
const LAST_BLOCK: &str =
    "SELECT k, n, t0, t1 FROM blocks WHERE dataset = ?1 AND col = 0 ORDER BY k DESC LIMIT 1";
/// The block that holds the records just before `t`, if any. Its statement keeps its
/// plan across bindings (QPSG, see `open_existing`).
const BLOCK_BEFORE: &str = "SELECT rowid, k, n, t0, t1 FROM blocks WHERE dataset = ?1 AND col = 0 AND t0 < ?2 ORDER BY t0 DESC LIMIT 1";
/// Plain INSERT and UPDATE, not INSERT OR REPLACE: a REPLACE may delete rows, so SQLite
/// writes a statement journal for it, which cost a third of the append time.
const INSERT_BLOCK: &str =
    "INSERT INTO blocks (dataset, col, k, t0, t1, n, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const UPDATE_BLOCK: &str =
    "UPDATE blocks SET t0 = ?4, t1 = ?5, n = ?6, data = ?7 WHERE dataset = ?1 AND col = ?2 AND k = ?3";

/// The embedded [`Store`]: one SQLite file in WAL mode, one writer connection, pooled
/// reader connections, so scans read a snapshot while appends continue.
#[derive(Debug)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    /// SQLite allows one writer at a time anyway; the mutex makes appends queue here
    /// instead of spinning on `SQLITE_BUSY`.
    writer: Mutex<Connection>,
    max_block_rows: usize,
    idle: Mutex<Vec<Connection>>,
    datasets: Mutex<HashMap<String, Arc<Meta>>>,
}

/// What every operation needs to know about a dataset.
#[derive(Debug)]
struct Meta {
    key: i64,
    layout: Layout,
    block_rows: i64,
}

impl Meta {
    fn spec(&self, col: usize) -> &ColumnSpec {
        &self.layout.columns[col]
    }
}

/// The last block of a dataset's time column.
#[derive(Debug, Clone, Copy)]
struct Tail {
    k: i64,
    n: i64,
    t0: Nanos,
    t1: Nanos,
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/hapi.sqlite3`.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::with_max_block_rows(dir, MAX_BLOCK_ROWS)
    }

    /// Like [`SqliteStore::open`], but datasets created through this handle hold at most
    /// `rows` records per block (at least 1). Tests use tiny blocks to cross many block
    /// edges with little data. Existing datasets keep the block size they were created with.
    pub fn with_max_block_rows(dir: &Path, rows: usize) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        match std::fs::metadata(&path) {
            // We never leave an empty file behind (see `create`), so an empty one is a
            // store that was truncated: serving it as an empty store would hide the loss.
            Ok(m) if m.len() == 0 => {
                return Err(StoreError::Corrupt(format!(
                    "{} is empty (0 bytes) where a store existed: restore it from a backup, or delete it to start an empty store",
                    path.display()
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path)?,
            Err(e) => return Err(e.into()),
        }
        let writer = open_existing(&path)?;
        let mode: String = writer.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!("cannot enable WAL, journal mode stays {mode}")));
        }
        // Committed data must survive a crash or power loss: FULL syncs the WAL on every
        // commit (NORMAL would keep the file consistent but could lose the last commits).
        writer.pragma_update(None, "synchronous", "FULL")?;
        writer.pragma_update(None, "cache_size", -CACHE_KIB)?;
        writer.pragma_update(None, "journal_size_limit", WAL_LIMIT_BYTES)?;
        let version: i64 = writer.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "schema version {version} is newer than this server's {SCHEMA_VERSION}"
            )));
        }
        writer.execute_batch(SCHEMA)?;
        writer.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        info!(path = %path.display(), "sqlite store opened");
        let shared = Shared {
            path,
            writer: Mutex::new(writer),
            max_block_rows: rows.max(1),
            idle: Mutex::default(),
            datasets: Mutex::default(),
        };
        Ok(SqliteStore { shared: Arc::new(shared) })
    }

    /// Runs `f` in a read transaction on a pooled connection, so its queries share one snapshot.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        in_read_transaction(&Shared::reader(&self.shared)?, f)
    }
}

impl Shared {
    fn reader(shared: &Arc<Shared>) -> Result<Reader, StoreError> {
        let pooled = shared.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = open_existing(&shared.path)?;
                conn.pragma_update(None, "query_only", true)?;
                conn.pragma_update(None, "mmap_size", 0)?;
                conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
                conn
            }
        };
        Ok(Reader { conn: Some(conn), shared: Arc::clone(shared) })
    }

    /// The dataset's key and layout, cached after the first lookup.
    fn meta(&self, conn: &Connection, id: &str) -> Result<Arc<Meta>, StoreError> {
        if let Some(meta) = self.datasets.lock().unwrap_or_else(PoisonError::into_inner).get(id) {
            return Ok(Arc::clone(meta));
        }
        let meta = Arc::new(load_meta(conn, id)?.ok_or_else(|| StoreError::UnknownDataset(id.to_owned()))?);
        let mut datasets = self.datasets.lock().unwrap_or_else(PoisonError::into_inner);
        datasets.insert(id.to_owned(), Arc::clone(&meta));
        Ok(meta)
    }
}

/// A pooled reader connection; returned to the pool when dropped, its transaction (if
/// any) rolled back.
struct Reader {
    conn: Option<Connection>,
    shared: Arc<Shared>,
}

impl Reader {
    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("a reader holds its connection until dropped")
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !conn.is_autocommit() {
            // Only reads happened, so rolling back loses nothing and releases the snapshot.
            let _ = conn.execute_batch("ROLLBACK");
        }
        if conn.is_autocommit() {
            let mut idle = self.shared.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
    }
}

/// Runs `f` on `reader` inside one read transaction. BEGIN and COMMIT are cached
/// statements: small requests run several transactions, and parsing them showed in
/// profiles.
fn in_read_transaction<T>(
    reader: &Reader,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let conn = reader.conn();
    conn.prepare_cached("BEGIN")?.execute([])?;
    let out = f(conn)?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(out)
}

/// Opens the database file, never creating it: a file that vanished while the server
/// runs is an error, not a new empty store.
fn open_existing(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::default() - OpenFlags::SQLITE_OPEN_CREATE)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Keep each cached statement's plan: without this SQLite prepares `t0 < ?` again on
    // every new binding (to re-plan for the value), a fifth of a small request's CPU.
    // Every query here is an index seek whatever the value.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(conn)
}

/// Creates a new store file whole: built under a temporary name, then linked into place,
/// which fails if another process created it first (then theirs is used). A crash leaves
/// no file or a complete one, never an empty one.
fn create(path: &Path) -> Result<(), StoreError> {
    let tmp = path.with_extension(format!("sqlite3.new-{}", std::process::id()));
    for leftover in [tmp.clone(), wal_path(&tmp, "-wal"), wal_path(&tmp, "-shm")] {
        let _ = std::fs::remove_file(leftover);
    }
    {
        let conn = Connection::open(&tmp)?;
        // page_size must be set before the first table exists and before WAL is enabled.
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        // Closing the last connection checkpoints the WAL into the file and removes it.
        conn.close().map_err(|(_, e)| e)?;
    }
    std::fs::File::open(&tmp)?.sync_all()?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            info!(path = %path.display(), "sqlite store created");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn wal_path(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn load_meta(conn: &Connection, id: &str) -> Result<Option<Meta>, StoreError> {
    let row = conn
        .prepare_cached(GET_DATASET)?
        .query_row([id], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?)))
        .optional()?;
    let Some((key, text, block_rows)) = row else { return Ok(None) };
    let layout = Layout::parse(&text)
        .ok_or_else(|| StoreError::Corrupt(format!("dataset `{id}` has an unreadable layout `{text}`")))?;
    if block_rows < 1 {
        return Err(StoreError::Corrupt(format!("dataset `{id}` has {block_rows} records per block")));
    }
    Ok(Some(Meta { key, layout, block_rows }))
}

fn last_block(conn: &Connection, meta: &Meta) -> Result<Option<Tail>, StoreError> {
    let tail = conn
        .prepare_cached(LAST_BLOCK)?
        .query_row([meta.key], |row| {
            Ok(Tail { k: row.get(0)?, n: row.get(1)?, t0: row.get(2)?, t1: row.get(3)? })
        })
        .optional()?;
    Ok(tail)
}

/// Records stored.
fn total(conn: &Connection, meta: &Meta) -> Result<i64, StoreError> {
    Ok(last_block(conn, meta)?.map_or(0, |tail| tail.k * meta.block_rows + tail.n))
}

/// Records with a time before `t`.
fn rank(r: &mut BlockReader<'_>, meta: &Meta, t: Nanos) -> Result<i64, StoreError> {
    let before = r
        .conn()
        .prepare_cached(BLOCK_BEFORE)?
        .query_row(params![meta.key, t], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get::<_, Nanos>(4)?))
        })
        .optional()?;
    let Some((rowid, k, n, t0, t1)) = before else { return Ok(0) };
    let before_block = k * meta.block_rows;
    if t1 < t {
        return Ok(before_block + n);
    }
    let block = Block::new(meta, rowid, k, 0, n, t0)?;
    Ok(before_block + r.rank(meta, &block, t)? as i64)
}

impl Store for SqliteStore {
    fn open_dataset(&self, id: &str, layout: &Layout) -> Result<(), StoreError> {
        let mut writer = self.shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let meta = match load_meta(&tx, id)? {
            Some(meta) => {
                if let Some(detail) = layout.changes_from(&meta.layout) {
                    return Err(StoreError::LayoutChanged { dataset: id.to_owned(), detail });
                }
                meta
            }
            None => {
                let block_rows = block_rows_for(layout, self.shared.max_block_rows);
                tx.execute(ADD_DATASET, params![id, layout.describe(), block_rows])?;
                debug!(dataset = %id, block_rows, "dataset created");
                Meta { key: tx.last_insert_rowid(), layout: layout.clone(), block_rows }
            }
        };
        tx.commit()?;
        let mut datasets = self.shared.datasets.lock().unwrap_or_else(PoisonError::into_inner);
        datasets.insert(id.to_owned(), Arc::new(meta));
        Ok(())
    }

    fn extent(&self, id: &str) -> Result<Option<(Nanos, Nanos)>, StoreError> {
        self.read(|conn| {
            let meta = self.shared.meta(conn, id)?;
            let Some(tail) = last_block(conn, &meta)? else { return Ok(None) };
            let first: Nanos = conn.prepare_cached(FIRST_TIME)?.query_row([meta.key], |row| row.get(0))?;
            Ok(Some((first, tail.t1)))
        })
    }

    fn count(&self, id: &str, start: Nanos, stop: Nanos) -> Result<u64, StoreError> {
        self.read(|conn| {
            let meta = self.shared.meta(conn, id)?;
            if stop <= start {
                return Ok(0);
            }
            let mut r = BlockReader::new(conn);
            Ok((rank(&mut r, &meta, stop)? - rank(&mut r, &meta, start)?) as u64)
        })
    }

    fn nth_time(&self, id: &str, start: Nanos, n: u64) -> Result<Option<Nanos>, StoreError> {
        self.read(|conn| {
            let meta = self.shared.meta(conn, id)?;
            let Ok(n) = i64::try_from(n) else { return Ok(None) };
            let mut r = BlockReader::new(conn);
            let index = rank(&mut r, &meta, start)?.saturating_add(n);
            if index >= total(conn, &meta)? {
                return Ok(None);
            }
            let (k, row) = (index / meta.block_rows, (index % meta.block_rows) as usize);
            let block = r.find(&meta, 0, k)?;
            if row >= block.n {
                return Err(StoreError::Corrupt(format!("block {k} ends before record {index}")));
            }
            Ok(Some(r.time(&meta, &block, row)?))
        })
    }

    fn snapshot(
        &self,
        id: &str,
        columns: &[usize],
        start: Nanos,
        stop: Nanos,
    ) -> Result<Snapshot, StoreError> {
        // The first batch comes from the same transaction: a small request then costs
        // one pooled connection and one transaction.
        let scan = self.read(|conn| {
            let mut r = BlockReader::new(conn);
            let mut scan = scan::Scan::start(&mut r, &self.shared, id, columns, start, stop)?;
            scan.prefetch(&mut r);
            Ok(scan)
        })?;
        Ok(Snapshot { count: scan.len(), batches: Box::new(scan) })
    }

    fn append(&self, id: &str, batches: &mut dyn Iterator<Item = Batch>) -> Result<u64, StoreError> {
        let mut writer = self.shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
        append::append(&self.shared, &mut writer, id, batches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every query must be index seeks, never a scan of the blocks table.
    #[test]
    fn queries_use_the_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let conn = store.shared.writer.lock().unwrap();
        for sql in [GET_DATASET, FIRST_TIME, LAST_BLOCK, BLOCK_BEFORE, block::BLOCK_ROW, UPDATE_BLOCK] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let params = rusqlite::params_from_iter(1..=stmt.parameter_count() as i64);
            let plan: Vec<String> =
                stmt.query_map(params, |row| row.get(3)).unwrap().collect::<Result<_, _>>().unwrap();
            // A scalar subquery of a parameter reads one constant row, no table.
            let table_step =
                |step: &&String| step.as_str() != "SCAN CONSTANT ROW" && !step.starts_with("SCALAR SUBQUERY");
            assert!(plan.iter().filter(table_step).all(|step| step.starts_with("SEARCH")), "{sql}: {plan:?}");
            assert!(plan.iter().all(|step| !step.contains("TEMP B-TREE")), "{sql}: {plan:?}");
        }
    }

    /// Every lookup is a cached statement that stays prepared across bindings.
    #[test]
    fn lookups_are_not_reprepared_per_binding() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::with_max_block_rows(dir.path(), 4).unwrap();
        let layout = Layout {
            columns: vec![ColumnSpec { kind: hapi_core::info::ParamType::Double, width: 1, len: 0 }],
        };
        store.open_dataset("ds", &layout).unwrap();
        let b = Batch {
            times: (0..100).collect(),
            columns: vec![hapi_core::Column::Double { width: 1, values: vec![0.0; 100] }],
            wire: None,
        };
        store.append("ds", &mut std::iter::once(b)).unwrap();
        // One pooled reader serves every call below, in turn.
        for t in 0..20 {
            store.count("ds", t, 50 + t).unwrap();
            let _ = store.snapshot("ds", &[0], t, 77).unwrap().batches.count();
        }
        let reader = Shared::reader(&store.shared).unwrap();
        for sql in [LAST_BLOCK, BLOCK_BEFORE, block::BLOCK_ROW] {
            let stmt = reader.conn().prepare_cached(sql).unwrap();
            let runs = stmt.get_status(rusqlite::StatementStatus::Run);
            let again = stmt.get_status(rusqlite::StatementStatus::RePrepare);
            assert!(runs >= 20 || sql == LAST_BLOCK, "{sql}: {runs} runs");
            assert!(again <= 1, "{sql}: prepared again {again} times in {runs} runs");
        }
    }

    #[test]
    fn block_rows_follow_the_widest_column() {
        use hapi_core::info::ParamType;
        let spec = |width| ColumnSpec { kind: ParamType::Double, width, len: 0 };
        let rows = |columns| block_rows_for(&Layout { columns }, MAX_BLOCK_ROWS);
        assert_eq!(rows(vec![]), 4096);
        assert_eq!(rows(vec![spec(3)]), 4096);
        assert_eq!(rows(vec![spec(1), spec(1000)]), 32);
        assert_eq!(rows(vec![spec(100_000)]), 1);
        assert_eq!(block_rows_for(&Layout { columns: vec![spec(3)] }, 7), 7);
    }
}
