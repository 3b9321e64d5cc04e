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
use rusqlite::Connection;

use super::{Meta, Shared, in_read_transaction, rank, with_block};
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
    /// Fixes the scan's records with `conn`, which is inside a read transaction.
    pub(super) fn start(
        conn: &Connection,
        shared: &Arc<Shared>,
        id: &str,
        columns: &[usize],
        start: Nanos,
        stop: Nanos,
    ) -> Result<Scan, StoreError> {
        let meta = shared.meta(conn, id)?;
        meta.layout.check_columns(columns)?;
        let next = rank(conn, &meta, start)?;
        let end = if stop > start { rank(conn, &meta, stop)?.max(next) } else { next };
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

    /// Reads the first batch now, with `conn` (inside the transaction of `start`).
    pub(super) fn prefetch(&mut self, conn: &Connection) {
        if self.next < self.end {
            self.pending = Some(self.read_with(conn));
        }
    }

    fn read(&mut self) -> Result<Batch, StoreError> {
        // One snapshot for the time block and its column blocks: an append may be
        // extending this very block, and the blocks of one batch must agree.
        let reader = Shared::reader(&self.shared)?;
        in_read_transaction(&reader, |conn| self.read_with(conn))
    }

    fn read_with(&mut self, conn: &Connection) -> Result<Batch, StoreError> {
        let (batch, next) = read_batch(conn, &self.meta, &self.columns, self.next, self.end)?;
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
fn read_batch(
    conn: &Connection,
    meta: &Meta,
    columns: &[usize],
    next: i64,
    end: i64,
) -> Result<(Batch, i64), StoreError> {
    let k = next / meta.block_rows;
    let first = k * meta.block_rows;
    let rows = (next - first) as usize..(end - first).min(meta.block_rows) as usize;
    let (times, n, t0) = with_block(conn, meta, 0, k, |n, t0, data| {
        codec::check_len(data, n, 8, "time block")?;
        if rows.end > n {
            return Err(StoreError::Corrupt(format!(
                "block {k} holds {n} records, the scan needs {}",
                rows.end
            )));
        }
        // The block's key must name its first record (the index seeks rely on it).
        if n == 0 || codec::time_at(data, 0) != t0 {
            return Err(StoreError::Corrupt(format!("block {k} does not start at its key time")));
        }
        Ok((codec::get_times(data, rows.clone()), n, t0))
    })?;
    let columns = columns
        .iter()
        .map(|&c| {
            let spec = meta.spec(c);
            with_block(conn, meta, c + 1, k, |cn, ct0, data| {
                if cn != n || ct0 != t0 {
                    return Err(StoreError::Corrupt(format!(
                        "block {k} of column {} disagrees with the time column",
                        c + 1
                    )));
                }
                codec::check_len(data, n, spec.record_bytes(), "column block")?;
                Ok(codec::get_column(spec, data, rows.clone()))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((Batch { times, columns }, first + rows.end as i64))
}
