//! Appending: one IMMEDIATE transaction that first refills the dataset's last partial
//! block (read-modify-write of that block in every column), then writes whole new blocks.
//! Any error drops the transaction, which rolls it back: all or nothing.

use std::time::Instant;

use hapi_core::{Batch, Nanos};
use rusqlite::{Connection, TransactionBehavior, params};
use tracing::debug;

use super::{INSERT_BLOCK, Meta, Shared, UPDATE_BLOCK, last_block, with_block};
use crate::{StoreError, codec};

pub(super) fn append(
    shared: &Shared,
    writer: &mut Connection,
    id: &str,
    batches: &mut dyn Iterator<Item = Batch>,
) -> Result<u64, StoreError> {
    let started = Instant::now();
    // IMMEDIATE takes the write lock up front, so the stored tail read below cannot
    // change before commit.
    let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let meta = shared.meta(&tx, id)?;
    let mut open = OpenBlock::resume(&tx, &meta)?;
    let first_block = open.k;
    let mut appended = 0u64;
    for (b, batch) in batches.enumerate() {
        meta.layout.check_batch(&batch, b)?;
        for &time in &batch.times {
            if let Some(previous) = open.last.filter(|&previous| time <= previous) {
                return Err(StoreError::OutOfOrder { index: appended, time, previous });
            }
            open.last = Some(time);
            appended += 1;
        }
        open.push(&tx, &meta, &batch)?;
    }
    open.flush(&tx, &meta)?;
    tx.commit()?;
    debug!(
        dataset = %id,
        records = appended,
        blocks = open.k - first_block + i64::from(open.rows > 0),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "append committed"
    );
    Ok(appended)
}

/// The block being filled: its packed columns (time first) and where it goes.
struct OpenBlock {
    /// Ordinal of the block.
    k: i64,
    /// Records in it.
    rows: usize,
    /// Its first time (valid when `rows > 0`).
    t0: Nanos,
    /// The last record's time, stored or appended.
    last: Option<Nanos>,
    /// Packed columns, index 0 is the time.
    columns: Vec<Vec<u8>>,
    /// Holds records not yet written.
    dirty: bool,
    /// An earlier version of this block is stored (the resumed partial block).
    stored: bool,
}

impl OpenBlock {
    /// Continues after the stored records, loading the last block if it is not full.
    fn resume(conn: &Connection, meta: &Meta) -> Result<OpenBlock, StoreError> {
        let full = meta.block_rows as usize;
        let mut open = OpenBlock {
            k: 0,
            rows: 0,
            t0: 0,
            last: None,
            columns: std::iter::once(8)
                .chain(meta.layout.columns.iter().map(|spec| spec.record_bytes()))
                .map(|record| Vec::with_capacity(record * full))
                .collect(),
            dirty: false,
            stored: false,
        };
        let Some(tail) = last_block(conn, meta)? else { return Ok(open) };
        open.last = Some(tail.t1);
        if tail.n >= meta.block_rows {
            open.k = tail.k + 1;
            return Ok(open);
        }
        (open.k, open.rows, open.t0, open.stored) = (tail.k, tail.n as usize, tail.t0, true);
        for (col, buf) in open.columns.iter_mut().enumerate() {
            let record = if col == 0 { 8 } else { meta.spec(col - 1).record_bytes() };
            with_block(conn, meta, col, tail.k, |n, t0, data| {
                if n != open.rows || t0 != tail.t0 {
                    return Err(StoreError::Corrupt(format!(
                        "last block {} of column {col} disagrees with the time column",
                        tail.k
                    )));
                }
                codec::check_len(data, n, record, "last block")?;
                buf.extend_from_slice(data);
                Ok(())
            })?;
        }
        Ok(open)
    }

    /// Adds the records of `batch` (already checked), writing each block as it fills.
    fn push(&mut self, conn: &Connection, meta: &Meta, batch: &Batch) -> Result<(), StoreError> {
        let full = meta.block_rows as usize;
        let mut row = 0;
        while row < batch.times.len() {
            let take = (full - self.rows).min(batch.times.len() - row);
            if self.rows == 0 {
                self.t0 = batch.times[row];
            }
            let rows = row..row + take;
            codec::put_times(&mut self.columns[0], &batch.times[rows.clone()]);
            for (buf, column) in self.columns[1..].iter_mut().zip(&batch.columns) {
                codec::put_column(buf, column, rows.clone());
            }
            self.rows += take;
            self.dirty = true;
            row += take;
            if self.rows == full {
                self.flush(conn, meta)?;
                self.k += 1;
                self.rows = 0;
                self.stored = false;
                self.columns.iter_mut().for_each(Vec::clear);
            }
        }
        Ok(())
    }

    /// Writes the block (replacing its stored version) if it holds records not yet written.
    fn flush(&mut self, conn: &Connection, meta: &Meta) -> Result<(), StoreError> {
        if !self.dirty || self.rows == 0 {
            return Ok(());
        }
        let t1 = codec::time_at(&self.columns[0], self.rows - 1);
        let mut put = conn.prepare_cached(if self.stored { UPDATE_BLOCK } else { INSERT_BLOCK })?;
        for (col, data) in self.columns.iter().enumerate() {
            put.execute(params![
                meta.key,
                col as i64,
                self.k,
                self.t0,
                t1,
                self.rows as i64,
                data.as_slice()
            ])?;
        }
        self.dirty = false;
        self.stored = true;
        Ok(())
    }
}
