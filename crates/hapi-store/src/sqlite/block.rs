//! Reads parts of block blobs through one incremental-blob handle.
//!
//! A blob read as a column value is copied whole, and its overflow pages bypass the
//! page cache (SQLite reads them straight from the file): a 60-record request read
//! its 32-98 KB blocks five times over, 15 `pread`s and 230 KB for 3 KB of output. A
//! blob handle reads only the bytes asked for, and a binary search for a time reads
//! 12 of a block's 4,096 times. The handle is opened once per transaction and moved
//! from block to block (`sqlite3_blob_reopen` is a seek; opening builds a statement).

use std::ops::Range;

use hapi_core::Nanos;
use rusqlite::blob::Blob;
use rusqlite::{Connection, MAIN_DB, OptionalExtension, params};

use super::Meta;
use crate::StoreError;
use crate::codec;

/// The row of one block of one column; its data is read through [`BlockReader`].
pub(super) const BLOCK_ROW: &str =
    "SELECT rowid, n, t0 FROM blocks WHERE dataset = ?1 AND col = ?2 AND k = ?3";

/// One block of one column, as its row describes it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Block {
    pub rowid: i64,
    pub k: i64,
    /// 0 is the time, `1..` the parameters.
    pub col: usize,
    pub n: usize,
    pub t0: Nanos,
}

impl Block {
    /// A block as a row states it, its record count checked against the dataset's.
    pub fn new(meta: &Meta, rowid: i64, k: i64, col: usize, n: i64, t0: Nanos) -> Result<Block, StoreError> {
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n as i64 <= meta.block_rows)
            .ok_or_else(|| StoreError::Corrupt(format!("block {k} of column {col} claims {n} records")))?;
        Ok(Block { rowid, k, col, n, t0 })
    }
}

/// Reads the blocks of one transaction on `conn`.
pub(super) struct BlockReader<'c> {
    conn: &'c Connection,
    /// The handle and the row it is on.
    blob: Option<(i64, Blob<'c>)>,
    /// Reused for each read; records are decoded out of it.
    buf: Vec<u8>,
}

impl<'c> BlockReader<'c> {
    pub fn new(conn: &'c Connection) -> BlockReader<'c> {
        BlockReader { conn, blob: None, buf: Vec::new() }
    }

    pub fn conn(&self) -> &'c Connection {
        self.conn
    }

    /// Finds block `k` of column `col`.
    pub fn find(&mut self, meta: &Meta, col: usize, k: i64) -> Result<Block, StoreError> {
        let row = self
            .conn
            .prepare_cached(BLOCK_ROW)?
            .query_row(params![meta.key, col as i64, k], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()?;
        let (rowid, n, t0) =
            row.ok_or_else(|| StoreError::Corrupt(format!("block {k} of column {col} is missing")))?;
        Block::new(meta, rowid, k, col, n, t0)
    }

    /// The packed bytes of records `rows` of `block`.
    pub fn read(&mut self, meta: &Meta, block: &Block, rows: Range<usize>) -> Result<&[u8], StoreError> {
        let record = codec::record_bytes(&meta.layout, block.col);
        let blob = at(self.conn, &mut self.blob, meta, block)?;
        // Resized, not cleared: only growth is zeroed, and the read overwrites it all.
        self.buf.resize(rows.len() * record, 0);
        blob.read_at_exact(&mut self.buf, rows.start * record)?;
        Ok(&self.buf)
    }

    /// Time `i` of the time block `block`.
    pub fn time(&mut self, meta: &Meta, block: &Block, i: usize) -> Result<Nanos, StoreError> {
        let mut bytes = [0; 8];
        at(self.conn, &mut self.blob, meta, block)?.read_at_exact(&mut bytes, i * 8)?;
        Ok(i64::from_le_bytes(bytes))
    }

    /// How many times of the time block `block` are before `t`.
    pub fn rank(&mut self, meta: &Meta, block: &Block, t: Nanos) -> Result<usize, StoreError> {
        let (mut lo, mut hi) = (0, block.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.time(meta, block, mid)? < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}

/// The handle, moved onto `block` if it is elsewhere, its blob checked to hold exactly
/// the block's records.
fn at<'b, 'c>(
    conn: &'c Connection,
    handle: &'b mut Option<(i64, Blob<'c>)>,
    meta: &Meta,
    block: &Block,
) -> Result<&'b Blob<'c>, StoreError> {
    let (mut on, mut blob) = match handle.take() {
        Some(open) => open,
        None => (block.rowid, conn.blob_open(MAIN_DB, c"blocks", c"data", block.rowid, true)?),
    };
    if on != block.rowid {
        blob.reopen(block.rowid)?;
        on = block.rowid;
    }
    let (_, blob) = handle.insert((on, blob));
    let record = codec::record_bytes(&meta.layout, block.col);
    if blob.len() != block.n * record {
        return Err(StoreError::Corrupt(format!(
            "block {} of column {}: blob of {} bytes for {} records of {record} bytes",
            block.k,
            block.col,
            blob.len(),
            block.n
        )));
    }
    Ok(blob)
}
