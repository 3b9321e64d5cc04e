//! The in-memory store: plain vectors behind locks, for router tests and as the oracle
//! the SQLite store is tested against.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, PoisonError, RwLock};

use hapi_core::info::ParamType;
use hapi_core::{Batch, Column, Nanos};

use crate::{ColumnSpec, Layout, Snapshot, Store, StoreError};

/// Rows per scan batch unless set with [`MemoryStore::with_batch_rows`].
const DEFAULT_BATCH_ROWS: usize = 1000;

/// A [`Store`] over vectors. Data is lost when it is dropped.
#[derive(Debug)]
pub struct MemoryStore {
    datasets: RwLock<HashMap<String, Arc<RwLock<Series>>>>,
    batch_rows: usize,
}

/// One dataset: every column holds exactly `times.len()` records.
#[derive(Debug)]
struct Series {
    layout: Layout,
    times: Vec<Nanos>,
    columns: Vec<Column>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store yielding scan batches of 1000 rows.
    pub fn new() -> MemoryStore {
        MemoryStore::with_batch_rows(DEFAULT_BATCH_ROWS)
    }

    /// An empty store yielding scan batches of `rows` rows (at least 1), so tests can
    /// produce many batches from little data.
    pub fn with_batch_rows(rows: usize) -> MemoryStore {
        MemoryStore { datasets: RwLock::default(), batch_rows: rows.max(1) }
    }

    fn series(&self, id: &str) -> Result<Arc<RwLock<Series>>, StoreError> {
        let datasets = self.datasets.read().unwrap_or_else(PoisonError::into_inner);
        datasets.get(id).cloned().ok_or_else(|| StoreError::UnknownDataset(id.to_owned()))
    }
}

impl Series {
    /// Number of records with time < `t`.
    fn rank(&self, t: Nanos) -> usize {
        self.times.partition_point(|&x| x < t)
    }
}

impl Store for MemoryStore {
    fn open_dataset(&self, id: &str, layout: &Layout) -> Result<(), StoreError> {
        let mut datasets = self.datasets.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(series) = datasets.get(id) {
            let series = series.read().unwrap_or_else(PoisonError::into_inner);
            return match layout.changes_from(&series.layout) {
                Some(detail) => Err(StoreError::LayoutChanged { dataset: id.to_owned(), detail }),
                None => Ok(()),
            };
        }
        let columns = layout.columns.iter().map(empty_column).collect();
        let series = Series { layout: layout.clone(), times: Vec::new(), columns };
        datasets.insert(id.to_owned(), Arc::new(RwLock::new(series)));
        Ok(())
    }

    fn extent(&self, id: &str) -> Result<Option<(Nanos, Nanos)>, StoreError> {
        let series = self.series(id)?;
        let series = series.read().unwrap_or_else(PoisonError::into_inner);
        Ok(series.times.first().copied().zip(series.times.last().copied()))
    }

    fn count(&self, id: &str, start: Nanos, stop: Nanos) -> Result<u64, StoreError> {
        let series = self.series(id)?;
        let series = series.read().unwrap_or_else(PoisonError::into_inner);
        Ok(series.rank(stop).saturating_sub(series.rank(start)) as u64)
    }

    fn nth_time(&self, id: &str, start: Nanos, n: u64) -> Result<Option<Nanos>, StoreError> {
        let series = self.series(id)?;
        let series = series.read().unwrap_or_else(PoisonError::into_inner);
        let index = usize::try_from(n).ok().and_then(|n| series.rank(start).checked_add(n));
        Ok(index.and_then(|i| series.times.get(i).copied()))
    }

    fn snapshot(
        &self,
        id: &str,
        columns: &[usize],
        start: Nanos,
        stop: Nanos,
    ) -> Result<Snapshot, StoreError> {
        let series = self.series(id)?;
        let (next, end) = {
            let guard = series.read().unwrap_or_else(PoisonError::into_inner);
            guard.layout.check_columns(columns)?;
            let next = guard.rank(start);
            (next, guard.rank(stop).max(next))
        };
        // Records are only ever appended, so the index range fixed here is a snapshot.
        let batch_rows = self.batch_rows;
        let columns = columns.to_vec();
        let count = (end - next) as u64;
        let mut next = next;
        let batches = Box::new(std::iter::from_fn(move || {
            if next >= end {
                return None;
            }
            let rows = next..end.min(next + batch_rows);
            next = rows.end;
            let series = series.read().unwrap_or_else(PoisonError::into_inner);
            let times = series.times[rows.clone()].to_vec();
            let columns = columns.iter().map(|&c| slice_column(&series.columns[c], rows.clone())).collect();
            Some(Ok(Batch { times, columns, wire: None }))
        }));
        Ok(Snapshot { count, batches })
    }

    fn append(&self, id: &str, batches: &mut dyn Iterator<Item = Batch>) -> Result<u64, StoreError> {
        let series = self.series(id)?;
        let mut series = series.write().unwrap_or_else(PoisonError::into_inner);
        // Validate everything before touching the series: all or nothing.
        let mut staged = Vec::new();
        let mut last = series.times.last().copied();
        let mut index = 0u64;
        for (b, batch) in batches.enumerate() {
            series.layout.check_batch(&batch, b)?;
            for &time in &batch.times {
                if let Some(previous) = last.filter(|&previous| time <= previous) {
                    return Err(StoreError::OutOfOrder { index, time, previous });
                }
                last = Some(time);
                index += 1;
            }
            staged.push(batch);
        }
        for batch in staged {
            series.times.extend_from_slice(&batch.times);
            for (column, add) in series.columns.iter_mut().zip(&batch.columns) {
                extend_column(column, add);
            }
        }
        Ok(index)
    }
}

fn empty_column(spec: &ColumnSpec) -> Column {
    let (width, len) = (spec.width, spec.len);
    match spec.kind {
        ParamType::Double => Column::Double { width, values: Vec::new() },
        ParamType::Integer => Column::Integer { width, values: Vec::new() },
        ParamType::String | ParamType::IsoTime => Column::Text { width, len, bytes: Vec::new() },
    }
}

/// Records `rows` of `column`.
fn slice_column(column: &Column, rows: Range<usize>) -> Column {
    match column {
        Column::Double { width, values } => {
            Column::Double { width: *width, values: values[rows.start * width..rows.end * width].to_vec() }
        }
        Column::Integer { width, values } => {
            Column::Integer { width: *width, values: values[rows.start * width..rows.end * width].to_vec() }
        }
        Column::Text { width, len, bytes } => {
            let record = width * len;
            Column::Text {
                width: *width,
                len: *len,
                bytes: bytes[rows.start * record..rows.end * record].to_vec(),
            }
        }
    }
}

/// Appends `add` to `column`; both already checked against the same layout.
fn extend_column(column: &mut Column, add: &Column) {
    match (column, add) {
        (Column::Double { values, .. }, Column::Double { values: more, .. }) => {
            values.extend_from_slice(more)
        }
        (Column::Integer { values, .. }, Column::Integer { values: more, .. }) => {
            values.extend_from_slice(more);
        }
        (Column::Text { bytes, .. }, Column::Text { bytes: more, .. }) => bytes.extend_from_slice(more),
        _ => unreachable!("batches are checked against the layout before they are applied"),
    }
}
