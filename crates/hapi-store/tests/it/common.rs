//! Shared fixtures: a layout with every column kind, records whose values are a pure
//! function of their time (so any torn row is detectable), and every store: memory,
//! SQLite, and PostgreSQL (a fresh database of the process's throwaway cluster; left
//! out, with a printed reason, where PostgreSQL is not installed).

use hapi_core::batch::push_text;
use hapi_core::info::ParamType;
use hapi_core::{Batch, Column, Nanos};
use hapi_postgres::{Database, DatabaseSettings, DatabaseUrl, PgStore};
use hapi_store::{BatchIter, ColumnSpec, Layout, MemoryStore, SqliteStore, Store, StoreError};
use tempfile::TempDir;

/// Text values, multibyte UTF-8 included; each fits 12 bytes.
const WORDS: [&str; 7] = ["", "a", "héllo", "日本語", "Ünïcødé", "x\u{1F600}", "twelve bytes"];

/// Every column kind: double widths 1 and 3, integer width 2, string 12 bytes,
/// isotime-like text 5 bytes wide 2.
pub fn full_layout() -> Layout {
    Layout {
        columns: vec![
            ColumnSpec { kind: ParamType::Double, width: 1, len: 0 },
            ColumnSpec { kind: ParamType::Double, width: 3, len: 0 },
            ColumnSpec { kind: ParamType::Integer, width: 2, len: 0 },
            ColumnSpec { kind: ParamType::String, width: 1, len: 12 },
            ColumnSpec { kind: ParamType::IsoTime, width: 2, len: 5 },
        ],
    }
}

/// The records at `times`, every column of `layout`, values derived from the time.
pub fn records(layout: &Layout, times: &[Nanos]) -> Batch {
    let columns = layout
        .columns
        .iter()
        .enumerate()
        .map(|(c, spec)| {
            let elements = times.iter().flat_map(|&t| (0..spec.width).map(move |j| (t, j)));
            match spec.kind {
                ParamType::Double => Column::Double {
                    width: spec.width,
                    values: elements.map(|(t, j)| t as f64 * 0.5 + (c * 10 + j) as f64).collect(),
                },
                ParamType::Integer => Column::Integer {
                    width: spec.width,
                    values: elements.map(|(t, j)| (t as i32).wrapping_mul(3) - j as i32).collect(),
                },
                ParamType::String | ParamType::IsoTime => {
                    let fits: Vec<&str> = WORDS.iter().copied().filter(|w| w.len() <= spec.len).collect();
                    let mut bytes = Vec::new();
                    for (t, j) in elements {
                        let word = fits[(t.unsigned_abs() as usize + j) % fits.len()];
                        assert!(push_text(&mut bytes, word.as_bytes(), spec.len));
                    }
                    Column::Text { width: spec.width, len: spec.len, bytes }
                }
            }
        })
        .collect();
    Batch { times: times.to_vec(), columns, wire: None }
}

/// `batch` with only the given columns, in that order.
pub fn select(batch: &Batch, columns: &[usize]) -> Batch {
    Batch {
        times: batch.times.clone(),
        columns: columns.iter().map(|&c| batch.columns[c].clone()).collect(),
        wire: None,
    }
}

/// Concatenates a scan, also returning each batch's length.
pub fn collect(scan: BatchIter) -> Result<(Batch, Vec<usize>), StoreError> {
    let mut all: Option<Batch> = None;
    let mut lengths = Vec::new();
    for batch in scan {
        let batch = batch?;
        lengths.push(batch.len());
        match &mut all {
            None => all = Some(batch),
            Some(all) => {
                all.times.extend_from_slice(&batch.times);
                for (into, from) in all.columns.iter_mut().zip(batch.columns) {
                    extend(into, from);
                }
            }
        }
    }
    Ok((all.unwrap_or_default(), lengths))
}

fn extend(into: &mut Column, from: Column) {
    match (into, from) {
        (Column::Double { values, .. }, Column::Double { values: more, .. }) => values.extend(more),
        (Column::Integer { values, .. }, Column::Integer { values: more, .. }) => values.extend(more),
        (Column::Text { bytes, .. }, Column::Text { bytes: more, .. }) => bytes.extend(more),
        (into, from) => panic!("column kinds differ between batches: {into:?} / {from:?}"),
    }
}

/// Everything in `[start, stop)` with the given columns, or an empty batch.
pub fn scan_all(store: &dyn Store, id: &str, columns: &[usize], start: Nanos, stop: Nanos) -> Batch {
    let (batch, _) = collect(store.scan(id, columns, start, stop).unwrap()).unwrap();
    batch
}

/// Compares a concatenated scan with what it should hold; a scan of an empty range
/// yields no batch at all, so it concatenates to a batch without columns.
#[track_caller]
pub fn assert_same(got: &Batch, want: &Batch, context: &str) {
    if want.times.is_empty() {
        assert!(got.times.is_empty() && got.columns.is_empty(), "{context}: expected nothing, got {got:?}");
    } else {
        assert_eq!(got, want, "{context}");
    }
}

pub fn sqlite(max_block_rows: usize) -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::with_max_block_rows(dir.path(), max_block_rows).unwrap();
    (dir, store)
}

/// A fresh PostgreSQL database, and the runtime its stores run on (the `Store` calls
/// are synchronous; they block on it).
pub struct Postgres {
    pub runtime: tokio::runtime::Runtime,
    pub url: String,
}

impl Postgres {
    /// `None` (printed) without PostgreSQL.
    pub fn fresh() -> Option<Postgres> {
        let url = hapi_pgtest::shared()?.fresh_database();
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        Some(Postgres { runtime, url })
    }

    /// A store over this database, creating datasets with `max_block_rows`-record blocks.
    pub fn open(&self, max_block_rows: usize) -> PgStore {
        let settings = DatabaseSettings::new(DatabaseUrl::new(&self.url).unwrap());
        self.runtime.block_on(async {
            let db = Database::connect(&settings).await.unwrap();
            PgStore::with_max_block_rows(db, max_block_rows).await.unwrap()
        })
    }
}

/// Runs `check` against a MemoryStore, a SqliteStore and a PgStore with
/// `block_rows`-record blocks.
pub fn each_store(block_rows: usize, check: impl Fn(&dyn Store)) {
    check(&MemoryStore::with_batch_rows(block_rows));
    let (_dir, store) = sqlite(block_rows);
    check(&store);
    if let Some(pg) = Postgres::fresh() {
        check(&pg.open(block_rows));
    }
}

/// Opens a store over the same persistent data, with the given block size for new datasets.
pub type Reopen<'a> = &'a dyn Fn(usize) -> Box<dyn Store>;

/// Runs `check` against each store that outlives its handle (SQLite, PostgreSQL); it
/// opens (and reopens) the store with the function it is given.
pub fn each_persistent_store(check: impl Fn(Reopen<'_>)) {
    let dir = tempfile::tempdir().unwrap();
    check(&|rows| Box::new(SqliteStore::with_max_block_rows(dir.path(), rows).unwrap()));
    if let Some(pg) = Postgres::fresh() {
        check(&|rows| Box::new(pg.open(rows)));
    }
}

/// Appends `times` split into batches of the given sizes (the rest in a last batch).
pub fn append_split(store: &dyn Store, id: &str, layout: &Layout, times: &[Nanos], sizes: &[usize]) -> u64 {
    let mut batches = Vec::new();
    let mut rest = times;
    for &size in sizes {
        let (head, tail) = rest.split_at(size.min(rest.len()));
        batches.push(records(layout, head));
        rest = tail;
    }
    if !rest.is_empty() {
        batches.push(records(layout, rest));
    }
    store.append(id, &mut batches.into_iter()).unwrap()
}
