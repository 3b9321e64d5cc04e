//! Scans: a cursor over record indices fixed when the scan starts. Records are only ever
//! appended and a stored record never changes, so the indices `next..end` name the same
//! records for as long as the scan lives: that is its snapshot. Each batch is one block
//! (trimmed at the range edges), read in its own short read transaction on a pooled
//! connection: one point lookup per requested column in lockstep, so memory stays at
//! one block per column, unrequested columns are never read, and a scan whose client
//! stopped reading holds no connection and no lock (a long-lived read transaction would
//! also keep SQLite from checkpointing the WAL).
//!
//! Every batch is checked before it is yielded: times strictly increasing, inside the
//! block's key range, inside the requested range, and after the previous batch. A block
//! that fails is corruption, never data.

use std::sync::Arc;

use hapi_core::{Batch, Nanos};

use super::block::BlockReader;
use super::{Meta, Shared, in_read_transaction, rank};
use crate::StoreError;
use crate::codec::{self, check_times};

/// The iterator behind [`crate::SqliteStore`]'s `scan`.
pub(super) struct Scan {
    shared: Arc<Shared>,
    meta: Arc<Meta>,
    columns: Vec<usize>,
    range: (Nanos, Nanos),
    /// Index of the next record to yield.
    next: i64,
    /// Index one past the last record to yield.
    end: i64,
    /// The last time yielded, to check order across batches.
    last: Option<Nanos>,
    /// The first batch, read with the transaction that fixed the range.
    pending: Option<Result<Batch, StoreError>>,
    failed: bool,
}

impl Scan {
    /// Fixes the scan's records with `r`, whose connection is inside a read transaction.
    pub(super) fn start(
        r: &mut BlockReader<'_>,
        shared: &Arc<Shared>,
        id: &str,
        columns: &[usize],
        start: Nanos,
        stop: Nanos,
    ) -> Result<Scan, StoreError> {
        let meta = shared.meta(r.conn(), id)?;
        meta.layout.check_columns(columns)?;
        let next = rank(r, &meta, start)?;
        let end = if stop > start { rank(r, &meta, stop)?.max(next) } else { next };
        Ok(Scan {
            shared: Arc::clone(shared),
            meta,
            columns: columns.to_vec(),
            range: (start, stop),
            next,
            end,
            last: None,
            pending: None,
            failed: false,
        })
    }

    /// Records the scan yields in all.
    pub(super) fn len(&self) -> u64 {
        let pending = self.pending.as_ref().and_then(|b| b.as_ref().ok()).map_or(0, |b| b.times.len());
        (self.end - self.next) as u64 + pending as u64
    }

    /// Reads the first batch now, with `r` (inside the transaction of `start`).
    pub(super) fn prefetch(&mut self, r: &mut BlockReader<'_>) {
        if self.next < self.end {
            self.pending = Some(self.read_with(r));
        }
    }

    fn read(&mut self) -> Result<Batch, StoreError> {
        // One snapshot for the time block and its column blocks: an append may be
        // extending this very block, and the blocks of one batch must agree.
        let reader = Shared::reader(&self.shared)?;
        in_read_transaction(&reader, |conn| self.read_with(&mut BlockReader::new(conn)))
    }

    fn read_with(&mut self, r: &mut BlockReader<'_>) -> Result<Batch, StoreError> {
        let (batch, next) = read_batch(r, &self.meta, &self.columns, self.next, self.end)?;
        check_times(&batch.times, self.last, self.range, self.next / self.meta.block_rows)?;
        self.last = batch.times.last().copied().or(self.last);
        self.next = next;
        Ok(batch)
    }
}

impl Iterator for Scan {
    type Item = Result<Batch, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let out = match self.pending.take() {
            Some(first) => first,
            None if self.next >= self.end => return None,
            None => self.read(),
        };
        self.failed = out.is_err();
        Some(out)
    }
}

/// Records `next..end` that lie in the block holding `next`, and the index after them.
/// Only those records' bytes are read, and only of the requested columns.
fn read_batch(
    r: &mut BlockReader<'_>,
    meta: &Meta,
    columns: &[usize],
    next: i64,
    end: i64,
) -> Result<(Batch, i64), StoreError> {
    let k = next / meta.block_rows;
    let first = k * meta.block_rows;
    let rows = (next - first) as usize..(end - first).min(meta.block_rows) as usize;
    let time = r.find(meta, 0, k)?;
    if rows.end > time.n {
        return Err(StoreError::Corrupt(format!(
            "block {k} holds {} records, the scan needs {}",
            time.n, rows.end
        )));
    }
    // The block's key must name its first record (the index seeks rely on it).
    if time.n == 0 || r.time(meta, &time, 0)? != time.t0 {
        return Err(StoreError::Corrupt(format!("block {k} does not start at its key time")));
    }
    let times = codec::get_times(r.read(meta, &time, rows.clone())?, 0..rows.len());
    let columns = columns
        .iter()
        .map(|&c| {
            let block = r.find(meta, c + 1, k)?;
            if block.n != time.n || block.t0 != time.t0 {
                return Err(StoreError::Corrupt(format!(
                    "block {k} of column {} disagrees with the time column",
                    c + 1
                )));
            }
            Ok(codec::get_column(meta.spec(c), r.read(meta, &block, rows.clone())?, 0..rows.len()))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((Batch { times, columns, wire: None }, first + rows.end as i64))
}
