//! Scans: a read transaction on a pooled connection, held while the iterator lives, so
//! every column of every batch comes from one snapshot while appends continue. Each
//! batch is one block (trimmed at the range edges): one point lookup per requested column
//! in lockstep, so memory stays at one block per column and unrequested columns are never
//! read.

use std::sync::Arc;

use hapi_core::{Batch, Nanos};
use rusqlite::Connection;

use super::{Meta, Reader, Shared, codec, rank, with_block};
use crate::StoreError;

/// The iterator behind [`crate::SqliteStore`]'s `scan`. Dropping it mid-way rolls the
/// read transaction back and returns the connection to the pool.
pub(super) struct Scan {
    /// `None` once finished: the snapshot is released as soon as the last batch is out.
    reader: Option<Reader>,
    meta: Arc<Meta>,
    columns: Vec<usize>,
    /// Index of the next record to yield.
    next: i64,
    /// Index one past the last record to yield.
    end: i64,
}

impl Scan {
    pub(super) fn start(
        reader: Reader,
        shared: &Shared,
        id: &str,
        columns: &[usize],
        start: Nanos,
        stop: Nanos,
    ) -> Result<Scan, StoreError> {
        let conn = reader.conn();
        conn.execute_batch("BEGIN")?;
        let meta = shared.meta(conn, id)?;
        meta.layout.check_columns(columns)?;
        let next = rank(conn, &meta, start)?;
        let end = if stop > start { rank(conn, &meta, stop)? } else { next };
        Ok(Scan { reader: Some(reader), meta, columns: columns.to_vec(), next, end })
    }

    /// Ends the read transaction and gives the connection back.
    fn finish(&mut self) {
        if let Some(reader) = self.reader.take() {
            // A failed COMMIT leaves the transaction open; Reader's drop then rolls back.
            let _ = reader.conn().execute_batch("COMMIT");
        }
    }
}

impl Iterator for Scan {
    type Item = Result<Batch, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let reader = self.reader.as_ref()?;
        if self.next >= self.end {
            self.finish();
            return None;
        }
        match read_batch(reader.conn(), &self.meta, &self.columns, self.next, self.end) {
            Ok((batch, next)) => {
                self.next = next;
                Some(Ok(batch))
            }
            Err(err) => {
                self.finish();
                Some(Err(err))
            }
        }
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
