//! Record stores behind one trait, yielding columnar [`Batch`]es.
//!
//! A store keeps, per dataset, the primary time and every non-time parameter of each record,
//! column by column. It answers the questions the `/data` handler asks before streaming
//! (extent, record counts for the size limit) and streams records by time range and column
//! subset, one snapshot per scan, in batches of at most a few thousand rows.
//!
//! - [`SqliteStore`]: the embedded default, SQLite holding packed column blocks.
//! - [`MemoryStore`]: plain vectors, for router tests and as a test oracle.
//! - [`testing::FailingStore`]: a wrapper that fails scans on demand and counts live scans.
//!
//! ```
//! use hapi_core::{Batch, Column};
//! use hapi_core::info::ParamType;
//! use hapi_store::{ColumnSpec, Layout, MemoryStore, Store};
//!
//! let store = MemoryStore::new();
//! let layout = Layout { columns: vec![ColumnSpec { kind: ParamType::Double, width: 1, len: 0 }] };
//! store.open_dataset("ds", &layout)?;
//! let batch = Batch { times: vec![10, 20, 30], columns: vec![Column::Double { width: 1, values: vec![1.0, 2.0, 3.0] }], wire: None };
//! assert_eq!(store.append("ds", &mut std::iter::once(batch))?, 3);
//! assert_eq!(store.count("ds", 15, 31)?, 2);
//! let first = store.scan("ds", &[0], 0, 25)?.next().unwrap()?;
//! assert_eq!(first.times, vec![10, 20]);
//! # Ok::<(), hapi_store::StoreError>(())
//! ```

use std::fmt;
use std::sync::Arc;

use hapi_core::info::{DatasetInfo, ParamType, Parameter};
use hapi_core::{Batch, Column, Nanos};

pub mod codec;
mod memory;
mod source;
mod sqlite;
pub mod testing;

pub use hapi_source::ErrorKind;
use hapi_source::Source;
pub use memory::MemoryStore;
pub use source::StoreSource;
pub use sqlite::SqliteStore;

/// How one non-time parameter is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The HAPI type; `String` and `IsoTime` are both stored as padded text.
    pub kind: ParamType,
    /// Elements per record (the product of `size`, 1 for a scalar).
    pub width: usize,
    /// Bytes per text element; 0 for numbers.
    pub len: usize,
}

impl ColumnSpec {
    /// The storage of one parameter.
    pub fn of(parameter: &Parameter) -> ColumnSpec {
        let len = match parameter.kind {
            ParamType::Double | ParamType::Integer => 0,
            ParamType::String | ParamType::IsoTime => parameter.length.unwrap_or(0),
        };
        ColumnSpec { kind: parameter.kind, width: parameter.width(), len }
    }

    /// Bytes one element occupies when packed.
    pub fn element_bytes(&self) -> usize {
        match self.kind {
            ParamType::Double => 8,
            ParamType::Integer => 4,
            ParamType::String | ParamType::IsoTime => self.len,
        }
    }

    /// Bytes one record of this column occupies when packed.
    pub fn record_bytes(&self) -> usize {
        self.element_bytes() * self.width
    }

    /// Why `column` cannot hold this column's values for `rows` records, if it cannot.
    fn mismatch(&self, column: &Column, rows: usize) -> Option<String> {
        let text = matches!(self.kind, ParamType::String | ParamType::IsoTime);
        let (kind_ok, width, have, need) = match column {
            Column::Double { width, values } => {
                (self.kind == ParamType::Double, *width, values.len(), rows * width)
            }
            Column::Integer { width, values } => {
                (self.kind == ParamType::Integer, *width, values.len(), rows * width)
            }
            Column::Text { width, len, bytes } => {
                if text && *len != self.len {
                    return Some(format!("text length is {len} bytes, the layout says {}", self.len));
                }
                (text, *width, bytes.len(), rows * width * len)
            }
        };
        if !kind_ok {
            return Some(format!("expected {self}, got a {} column", column_kind(column)));
        }
        if width != self.width {
            return Some(format!("width is {width}, the layout says {}", self.width));
        }
        let unit = if matches!(column, Column::Text { .. }) { "bytes" } else { "values" };
        (have != need).then(|| format!("holds {have} {unit} where {rows} records need {need}"))
    }

    /// The machine form kept in the store: `kind*width` or `kind*width/len`.
    fn describe(&self) -> String {
        let kind = kind_name(self.kind);
        match self.kind {
            ParamType::Double | ParamType::Integer => format!("{kind}*{}", self.width),
            ParamType::String | ParamType::IsoTime => format!("{kind}*{}/{}", self.width, self.len),
        }
    }

    fn parse(text: &str) -> Option<ColumnSpec> {
        let (kind, rest) = text.split_once('*')?;
        let kind = match kind {
            "double" => ParamType::Double,
            "integer" => ParamType::Integer,
            "string" => ParamType::String,
            "isotime" => ParamType::IsoTime,
            _ => return None,
        };
        let (width, len) = match rest.split_once('/') {
            Some((width, len)) => (width.parse().ok()?, len.parse().ok()?),
            None => (rest.parse().ok()?, 0),
        };
        Some(ColumnSpec { kind, width, len })
    }
}

impl fmt::Display for ColumnSpec {
    /// `double`, `double[3]`, `string(12 bytes)`, `isotime(24 bytes)[2]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(kind_name(self.kind))?;
        if matches!(self.kind, ParamType::String | ParamType::IsoTime) {
            write!(f, "({} bytes)", self.len)?;
        }
        if self.width != 1 {
            write!(f, "[{}]", self.width)?;
        }
        Ok(())
    }
}

fn kind_name(kind: ParamType) -> &'static str {
    match kind {
        ParamType::Double => "double",
        ParamType::Integer => "integer",
        ParamType::String => "string",
        ParamType::IsoTime => "isotime",
    }
}

fn column_kind(column: &Column) -> &'static str {
    match column {
        Column::Double { .. } => "double",
        Column::Integer { .. } => "integer",
        Column::Text { .. } => "text",
    }
}

/// The stored columns of a dataset: one per non-time parameter, in info order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// Column `i` holds parameter `i + 1` of the info.
    pub columns: Vec<ColumnSpec>,
}

impl Layout {
    /// The layout of a dataset's parameters after the primary time.
    pub fn of(info: &DatasetInfo) -> Layout {
        Layout { columns: info.parameters.iter().skip(1).map(ColumnSpec::of).collect() }
    }

    /// Bytes one record occupies when packed, time included.
    pub fn record_bytes(&self) -> usize {
        8 + self.columns.iter().map(ColumnSpec::record_bytes).sum::<usize>()
    }

    /// Checks that `batch` holds every column of this layout, with consistent lengths.
    /// `index` names the batch in the error.
    pub fn check_batch(&self, batch: &Batch, index: usize) -> Result<(), StoreError> {
        let shape = |detail: String| StoreError::Shape { batch: index, detail };
        if batch.columns.len() != self.columns.len() {
            return Err(shape(format!(
                "{} columns, the layout has {}",
                batch.columns.len(),
                self.columns.len()
            )));
        }
        for (i, (spec, column)) in self.columns.iter().zip(&batch.columns).enumerate() {
            if let Some(why) = spec.mismatch(column, batch.times.len()) {
                return Err(shape(format!("column {i}: {why}")));
            }
        }
        Ok(())
    }

    /// The machine form kept next to the data, compared on every open.
    pub fn describe(&self) -> String {
        self.columns.iter().map(ColumnSpec::describe).collect::<Vec<_>>().join(",")
    }

    pub fn parse(text: &str) -> Option<Layout> {
        if text.is_empty() {
            return Some(Layout::default());
        }
        text.split(',').map(ColumnSpec::parse).collect::<Option<Vec<_>>>().map(|columns| Layout { columns })
    }

    /// What changed from `stored` to `self`, in words, if anything did.
    pub fn changes_from(&self, stored: &Layout) -> Option<String> {
        if let Some(i) = self.columns.iter().zip(&stored.columns).position(|(new, old)| new != old) {
            return Some(format!(
                "column {i} (parameter {}) was {}, now {}",
                i + 1,
                stored.columns[i],
                self.columns[i]
            ));
        }
        (self.columns.len() != stored.columns.len())
            .then(|| format!("it had {} parameter columns, now {}", stored.columns.len(), self.columns.len()))
    }

    /// Checks requested column indices against the layout.
    pub fn check_columns(&self, columns: &[usize]) -> Result<(), StoreError> {
        match columns.iter().find(|&&c| c >= self.columns.len()) {
            Some(&index) => Err(StoreError::UnknownColumn { index, columns: self.columns.len() }),
            None => Ok(()),
        }
    }
}

/// Batches of a scan, in time order. Dropping it early is normal (a client went away).
pub type BatchIter = Box<dyn Iterator<Item = Result<Batch, StoreError>> + Send>;

/// The records of a time range as they were at one moment: how many there are, and a
/// scan of exactly those. The count decides a response's limits and the scan streams
/// it, so an append between the two cannot push a response past its limit.
pub struct Snapshot {
    /// Records in the range.
    pub count: u64,
    /// Exactly `count` records, whatever is appended meanwhile. It holds no lock or
    /// connection between batches, so a client that stops reading pins nothing.
    pub batches: BatchIter,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot").field("count", &self.count).finish_non_exhaustive()
    }
}

/// A record store. Datasets are append-only series of records ordered by strictly
/// increasing time; each record holds every column of the dataset's [`Layout`].
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Creates the dataset's storage, or checks that the stored layout still matches
    /// (the error names what changed).
    fn open_dataset(&self, id: &str, layout: &Layout) -> Result<(), StoreError>;

    /// Times of the first and last stored record.
    fn extent(&self, id: &str) -> Result<Option<(Nanos, Nanos)>, StoreError>;

    /// Records with `start <= t < stop` (exact).
    fn count(&self, id: &str, start: Nanos, stop: Nanos) -> Result<u64, StoreError>;

    /// Time of record `n` (0-based) among those with `t >= start`, if it exists. The
    /// server uses it to tell the longest span that fits a size limit.
    fn nth_time(&self, id: &str, start: Nanos, n: u64) -> Result<Option<Nanos>, StoreError>;

    /// Records with `start <= t < stop`, holding only the given columns (indices into the
    /// layout, output in the order given; the server passes them ascending), in batches of
    /// at most a few thousand rows, all from one consistent snapshot.
    fn scan(&self, id: &str, columns: &[usize], start: Nanos, stop: Nanos) -> Result<BatchIter, StoreError> {
        Ok(self.snapshot(id, columns, start, stop)?.batches)
    }

    /// The count and the scan of `start <= t < stop`, from one snapshot.
    fn snapshot(
        &self,
        id: &str,
        columns: &[usize],
        start: Nanos,
        stop: Nanos,
    ) -> Result<Snapshot, StoreError>;

    /// Appends all records of all batches (every column) in one transaction: all or
    /// nothing. Times must be strictly increasing and later than the last stored record.
    /// Returns the number of records appended.
    fn append(&self, id: &str, batches: &mut dyn Iterator<Item = Batch>) -> Result<u64, StoreError>;

    /// The read side of dataset `id` (opened already) as the store's own [`Source`],
    /// when it has a better one than [`StoreSource`] on the blocking pool: a store on a
    /// network reads asynchronously and may learn of appends by notification.
    fn source(&self, id: &str) -> Option<Arc<dyn Source>> {
        let _ = id;
        None
    }
}

/// Lets callers keep a typed handle (e.g. to a [`testing::FailingStore`]) while the
/// server holds the same store as `Arc<dyn Store>`.
impl<S: Store + ?Sized> Store for Arc<S> {
    fn open_dataset(&self, id: &str, layout: &Layout) -> Result<(), StoreError> {
        (**self).open_dataset(id, layout)
    }
    fn extent(&self, id: &str) -> Result<Option<(Nanos, Nanos)>, StoreError> {
        (**self).extent(id)
    }
    fn count(&self, id: &str, start: Nanos, stop: Nanos) -> Result<u64, StoreError> {
        (**self).count(id, start, stop)
    }
    fn nth_time(&self, id: &str, start: Nanos, n: u64) -> Result<Option<Nanos>, StoreError> {
        (**self).nth_time(id, start, n)
    }
    fn snapshot(
        &self,
        id: &str,
        columns: &[usize],
        start: Nanos,
        stop: Nanos,
    ) -> Result<Snapshot, StoreError> {
        (**self).snapshot(id, columns, start, stop)
    }
    fn append(&self, id: &str, batches: &mut dyn Iterator<Item = Batch>) -> Result<u64, StoreError> {
        (**self).append(id, batches)
    }
    fn source(&self, id: &str) -> Option<Arc<dyn Source>> {
        (**self).source(id)
    }
}

/// Why a store operation failed. Every variant is an internal error to a HAPI client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The dataset was never opened in this store.
    #[error("unknown dataset `{0}`")]
    UnknownDataset(String),
    /// The stored layout differs from the one the dataset's info now implies.
    #[error("dataset `{dataset}` changed layout: {detail}")]
    LayoutChanged {
        /// The dataset id.
        dataset: String,
        /// What changed, e.g. `column 2 (parameter 3) was double, now integer`.
        detail: String,
    },
    /// A record of an append is not after the record before it (stored or appended).
    #[error("record {index} of the append is out of order: time {time} is not after {previous}")]
    OutOfOrder {
        /// 0-based index of the record among all records given to this append.
        index: u64,
        /// Its time.
        time: Nanos,
        /// The time of the record before it.
        previous: Nanos,
    },
    /// A batch given to append does not match the layout.
    #[error("batch {batch} does not match the layout: {detail}")]
    Shape {
        /// 0-based index of the batch within the append.
        batch: usize,
        /// What does not match.
        detail: String,
    },
    /// A scan asked for a column the layout does not have.
    #[error("column {index} does not exist; the layout has {columns} columns")]
    UnknownColumn {
        /// The requested index.
        index: usize,
        /// Columns in the layout.
        columns: usize,
    },
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Creating the store's directory failed.
    #[error("store directory: {0}")]
    Io(#[from] std::io::Error),
    /// Stored data contradicts itself.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// A failure injected by [`testing::FailingStore`].
    #[error("injected failure: {0}")]
    Injected(String),
    /// A store in another crate failed (PostgreSQL): what it means, and its message.
    #[error("{backend}: {detail}")]
    Backend {
        /// Which store, e.g. `postgres`.
        backend: &'static str,
        /// What the failure means to the server.
        kind: ErrorKind,
        /// Its message (never a password).
        detail: String,
    },
}

impl StoreError {
    /// The kind of this failure.
    pub fn kind(&self) -> ErrorKind {
        use rusqlite::ErrorCode as C;
        match self {
            StoreError::UnknownDataset(_) | StoreError::UnknownColumn { .. } => ErrorKind::NotFound,
            StoreError::LayoutChanged { .. } | StoreError::OutOfOrder { .. } | StoreError::Shape { .. } => {
                ErrorKind::Invalid
            }
            StoreError::Corrupt(_) => ErrorKind::Corrupt,
            StoreError::Io(_) => ErrorKind::Unavailable,
            StoreError::Injected(_) => ErrorKind::Internal,
            StoreError::Backend { kind, .. } => *kind,
            StoreError::Sqlite(e) => match e.sqlite_error_code() {
                Some(C::DatabaseBusy | C::DatabaseLocked) => ErrorKind::TimedOut,
                Some(C::DatabaseCorrupt | C::NotADatabase) => ErrorKind::Corrupt,
                Some(
                    C::CannotOpen
                    | C::SystemIoFailure
                    | C::DiskFull
                    | C::PermissionDenied
                    | C::ReadOnly
                    | C::OutOfMemory,
                ) => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
        }
    }
}

impl From<StoreError> for hapi_source::SourceError {
    fn from(e: StoreError) -> Self {
        hapi_source::SourceError::new(e.kind(), "store", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            columns: vec![
                ColumnSpec { kind: ParamType::Double, width: 1, len: 0 },
                ColumnSpec { kind: ParamType::Integer, width: 6, len: 0 },
                ColumnSpec { kind: ParamType::String, width: 1, len: 12 },
                ColumnSpec { kind: ParamType::IsoTime, width: 2, len: 24 },
            ],
        }
    }

    #[test]
    fn the_stored_description_round_trips() {
        let text = layout().describe();
        assert_eq!(text, "double*1,integer*6,string*1/12,isotime*2/24");
        assert_eq!(Layout::parse(&text), Some(layout()));
        assert_eq!(Layout::parse(""), Some(Layout::default()));
        assert_eq!(Layout::parse("float*1"), None);
        assert_eq!(Layout::parse("double*x"), None);
    }

    #[test]
    fn changes_are_named_for_people() {
        let names: Vec<String> = layout().columns.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["double", "integer[6]", "string(12 bytes)", "isotime(24 bytes)[2]"]);
        let mut fewer = layout();
        fewer.columns.pop();
        assert_eq!(fewer.changes_from(&layout()).unwrap(), "it had 4 parameter columns, now 3");
        assert_eq!(layout().changes_from(&layout()), None);
    }

    #[test]
    fn batches_are_checked_against_the_layout() {
        let layout = Layout { columns: vec![ColumnSpec { kind: ParamType::String, width: 2, len: 3 }] };
        let text = |bytes: usize| Batch {
            times: vec![1, 2],
            columns: vec![Column::Text { width: 2, len: 3, bytes: vec![b'a'; bytes] }],
            wire: None,
        };
        assert!(layout.check_batch(&text(12), 0).is_ok());
        let err = layout.check_batch(&text(11), 4).unwrap_err().to_string();
        assert_eq!(
            err,
            "batch 4 does not match the layout: column 0: holds 11 bytes where 2 records need 12"
        );
    }
}
