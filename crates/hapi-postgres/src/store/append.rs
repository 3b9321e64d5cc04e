//! Appending: one transaction on the primary. It locks the dataset's row, so appenders
//! on every replica queue there; reloads and removes the partial last block (it is
//! written again, refilled); streams every new block through one binary `COPY`; and
//! notifies the listeners. Any error drops the `COPY` and the transaction, which rolls
//! both back: all or nothing.

use std::pin::pin;
use std::time::Instant;

use hapi_core::{Batch, Nanos};
use hapi_store::StoreError;
use hapi_store::codec;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tracing::debug;

use super::{BLOCK_DATA, CHANNEL, Meta, Shared, corrupt, last_block, write_error};
use crate::PgError;

const LOCK_DATASET: &str = "SELECT key FROM store_datasets WHERE key = $1 FOR UPDATE";
const DELETE_BLOCK: &str = "DELETE FROM store_blocks WHERE dataset = $1 AND k = $2";
const COPY_BLOCKS: &str = "COPY store_blocks (dataset, col, k, t0, t1, n, data) FROM STDIN (FORMAT binary)";
const COPY_TYPES: [Type; 7] =
    [Type::INT4, Type::INT4, Type::INT8, Type::INT8, Type::INT8, Type::INT4, Type::BYTEA];

pub(super) async fn append(
    shared: &Shared,
    id: &str,
    batches: &mut dyn Iterator<Item = Batch>,
) -> Result<u64, PgError> {
    let started = Instant::now();
    let werr = write_error(&shared.db);
    let mut conn = shared.db.writer().await?;
    let meta = shared.meta(&conn, id).await?;
    let tx = conn.transaction().await?;
    // A standby refuses this first write, before anything else is read or sent.
    tx.query_one(&tx.prepare_cached(LOCK_DATASET).await?, &[&meta.key]).await.map_err(&werr)?;
    let mut open = OpenBlock::new(&meta);
    if let Some(tail) = last_block(&tx, &meta).await? {
        open.last = Some(tail.t1);
        open.k = tail.k + 1;
        if tail.n < meta.block_rows {
            open.resume(&tx, &meta, tail.k, tail.n as usize, tail.t0).await?;
            tx.execute(DELETE_BLOCK, &[&meta.key, &tail.k]).await.map_err(&werr)?;
        }
    }
    let first_block = open.k;
    let sink = tx.copy_in(COPY_BLOCKS).await.map_err(&werr)?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &COPY_TYPES));
    let mut appended = 0u64;
    for (b, batch) in batches.enumerate() {
        meta.layout.check_batch(&batch, b).map_err(PgError::Store)?;
        for &time in &batch.times {
            if let Some(previous) = open.last.filter(|&previous| time <= previous) {
                return Err(PgError::Store(StoreError::OutOfOrder { index: appended, time, previous }));
            }
            open.last = Some(time);
            appended += 1;
        }
        let full = meta.block_rows as usize;
        let mut row = 0;
        while row < batch.times.len() {
            row += open.push(&batch, row, full);
            if open.rows == full {
                open.write(writer.as_mut(), &meta).await?;
            }
        }
    }
    open.write(writer.as_mut(), &meta).await?;
    writer.finish().await.map_err(&werr)?;
    if appended > 0 {
        let last = open.last.unwrap_or_default();
        let payload = format!("{last}\t{id}");
        tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await.map_err(&werr)?;
    }
    tx.commit().await.map_err(&werr)?;
    debug!(
        dataset = %id,
        records = appended,
        blocks = open.k - first_block,
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
}

impl OpenBlock {
    fn new(meta: &Meta) -> OpenBlock {
        let full = meta.block_rows as usize;
        let columns = std::iter::once(8)
            .chain(meta.layout.columns.iter().map(|spec| spec.record_bytes()))
            .map(|record| Vec::with_capacity(record * full))
            .collect();
        OpenBlock { k: 0, rows: 0, t0: 0, last: None, columns }
    }

    /// Loads the stored partial block `k` of every column, to be refilled.
    async fn resume(
        &mut self,
        tx: &deadpool_postgres::Transaction<'_>,
        meta: &Meta,
        k: i64,
        n: usize,
        t0: Nanos,
    ) -> Result<(), PgError> {
        let cols: Vec<i32> = (1..=meta.layout.columns.len() as i32).collect();
        let found = tx.query(&tx.prepare_cached(BLOCK_DATA).await?, &[&meta.key, &k, &cols]).await?;
        for (col, buf) in self.columns.iter_mut().enumerate() {
            let record = if col == 0 { 8 } else { meta.layout.columns[col - 1].record_bytes() };
            let row = found
                .iter()
                .find(|r| r.get::<_, i32>(0) == col as i32)
                .ok_or_else(|| corrupt(format!("last block {k} of column {col} is missing")))?;
            let (cn, ct0, data): (i32, Nanos, &[u8]) = (row.get(1), row.get(2), row.get(3));
            if cn as usize != n || ct0 != t0 {
                return Err(corrupt(format!(
                    "last block {k} of column {col} disagrees with the time column"
                )));
            }
            codec::check_len(data, n, record, "last block").map_err(PgError::Store)?;
            buf.extend_from_slice(data);
        }
        (self.k, self.rows, self.t0) = (k, n, t0);
        Ok(())
    }

    /// Adds records from `row` of `batch` (already checked) until the block is full;
    /// returns how many it took.
    fn push(&mut self, batch: &Batch, row: usize, full: usize) -> usize {
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
        take
    }

    /// Sends the block (every column) to the COPY and starts the next one.
    async fn write(
        &mut self,
        mut writer: std::pin::Pin<&mut BinaryCopyInWriter>,
        meta: &Meta,
    ) -> Result<(), PgError> {
        if self.rows == 0 {
            return Ok(());
        }
        let t1 = codec::time_at(&self.columns[0], self.rows - 1);
        let n = self.rows as i32;
        for (col, data) in self.columns.iter().enumerate() {
            let col = col as i32;
            let row: [&(dyn ToSql + Sync); 7] =
                [&meta.key, &col, &self.k, &self.t0, &t1, &n, &data.as_slice()];
            writer.as_mut().write(&row).await?;
        }
        self.k += 1;
        self.rows = 0;
        self.columns.iter_mut().for_each(Vec::clear);
        Ok(())
    }
}
