//! Appending: one IMMEDIATE transaction that first refills the dataset's last partial
//! block (read-modify-write of that block in every column), then writes whole new blocks.
//! Any error drops the transaction, which rolls it back: all or nothing.

use std::time::Instant;

use hapi_core::Batch;
use rusqlite::{Connection, TransactionBehavior, params};
use tracing::debug;

use super::block::BlockReader;
use super::{INSERT_BLOCK, Meta, Shared, UPDATE_BLOCK, last_block};
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
    let first_block = open.b.k;
    let mut appended = 0u64;
    for (b, batch) in batches.enumerate() {
        meta.layout.check_batch(&batch, b)?;
        open.b.check_order(&batch.times, &mut appended)?;
        open.push(&tx, &meta, &batch)?;
    }
    open.flush(&tx, &meta)?;
    tx.commit()?;
    debug!(
        dataset = %id,
        records = appended,
        blocks = open.b.k - first_block + i64::from(open.b.rows > 0),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "append committed"
    );
    Ok(appended)
}

/// The block being filled, and whether SQLite has a version of it.
struct OpenBlock {
    b: codec::OpenBlock,
    /// Holds records not yet written.
    dirty: bool,
    /// An earlier version of this block is stored (the resumed partial block).
    stored: bool,
}

impl OpenBlock {
    /// Continues after the stored records, loading the last block if it is not full.
    fn resume(conn: &Connection, meta: &Meta) -> Result<OpenBlock, StoreError> {
        let b = codec::OpenBlock::new(&meta.layout, meta.block_rows as usize);
        let mut open = OpenBlock { b, dirty: false, stored: false };
        let Some(tail) = last_block(conn, meta)? else { return Ok(open) };
        open.b.last = Some(tail.t1);
        if tail.n >= meta.block_rows {
            open.b.k = tail.k + 1;
            return Ok(open);
        }
        (open.b.k, open.b.rows, open.b.t0, open.stored) = (tail.k, tail.n as usize, tail.t0, true);
        // Dropped before anything is written: a blob handle must not outlive its row's update.
        let mut r = BlockReader::new(conn);
        for (col, buf) in open.b.columns.iter_mut().enumerate() {
            let block = r.find(meta, col, tail.k)?;
            if block.n != tail.n as usize || block.t0 != tail.t0 {
                return Err(StoreError::Corrupt(format!(
                    "last block {} of column {col} disagrees with the time column",
                    tail.k
                )));
            }
            buf.extend_from_slice(r.read(meta, &block, 0..block.n)?);
        }
        Ok(open)
    }

    /// Adds the records of `batch` (already checked), writing each block as it fills.
    fn push(&mut self, conn: &Connection, meta: &Meta, batch: &Batch) -> Result<(), StoreError> {
        let mut row = 0;
        while row < batch.times.len() {
            row += self.b.fill(batch, row);
            self.dirty = true;
            if self.b.is_full() {
                self.flush(conn, meta)?;
                self.b.next_block();
                self.stored = false;
            }
        }
        Ok(())
    }

    /// Writes the block (replacing its stored version) if it holds records not yet written.
    fn flush(&mut self, conn: &Connection, meta: &Meta) -> Result<(), StoreError> {
        if !self.dirty || self.b.rows == 0 {
            return Ok(());
        }
        let (b, t1) = (&self.b, self.b.t1());
        let mut put = conn.prepare_cached(if self.stored { UPDATE_BLOCK } else { INSERT_BLOCK })?;
        for (col, data) in b.columns.iter().enumerate() {
            put.execute(params![meta.key, col as i64, b.k, b.t0, t1, b.rows as i64, data.as_slice()])?;
        }
        self.dirty = false;
        self.stored = true;
        Ok(())
    }
}
