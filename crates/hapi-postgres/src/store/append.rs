//! Appending: one transaction on the primary. It locks the dataset's row, so appenders
//! on every replica queue there; reloads and removes the partial last block (it is
//! written again, refilled); streams every new block through one binary `COPY`; and
//! notifies the listeners. Any error drops the `COPY` and the transaction, which rolls
//! both back: all or nothing.

use std::pin::pin;
use std::time::Instant;

use hapi_core::{Batch, Nanos};
use hapi_store::codec::{self, OpenBlock};
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
    let mut open = OpenBlock::new(&meta.layout, meta.block_rows as usize);
    if let Some(tail) = last_block(&tx, &meta).await? {
        open.last = Some(tail.t1);
        open.k = tail.k + 1;
        if tail.n < meta.block_rows {
            resume(&mut open, &tx, &meta, tail.k, tail.n as usize, tail.t0).await?;
            tx.execute(DELETE_BLOCK, &[&meta.key, &tail.k]).await.map_err(&werr)?;
        }
    }
    let first_block = open.k;
    let sink = tx.copy_in(COPY_BLOCKS).await.map_err(&werr)?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &COPY_TYPES));
    let mut appended = 0u64;
    for (b, batch) in batches.enumerate() {
        meta.layout.check_batch(&batch, b)?;
        open.check_order(&batch.times, &mut appended)?;
        let mut row = 0;
        while row < batch.times.len() {
            row += open.fill(&batch, row);
            if open.is_full() {
                write(&mut open, writer.as_mut(), &meta).await?;
            }
        }
    }
    write(&mut open, writer.as_mut(), &meta).await?;
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

/// Loads the stored partial block `k` of every column into `open`, to be refilled.
async fn resume(
    open: &mut OpenBlock,
    tx: &deadpool_postgres::Transaction<'_>,
    meta: &Meta,
    k: i64,
    n: usize,
    t0: Nanos,
) -> Result<(), PgError> {
    let cols: Vec<i32> = (0..=meta.layout.columns.len() as i32).collect();
    let found = tx.query(&tx.prepare_cached(BLOCK_DATA).await?, &[&meta.key, &k, &cols]).await?;
    for (col, buf) in open.columns.iter_mut().enumerate() {
        let row = found
            .iter()
            .find(|r| r.get::<_, i32>(0) == col as i32)
            .ok_or_else(|| corrupt(format!("last block {k} of column {col} is missing")))?;
        let (cn, ct0, data): (i32, Nanos, &[u8]) = (row.get(1), row.get(2), row.get(3));
        if cn as usize != n || ct0 != t0 {
            return Err(corrupt(format!("last block {k} of column {col} disagrees with the time column")));
        }
        codec::check_len(data, n, codec::record_bytes(&meta.layout, col), "last block")?;
        buf.extend_from_slice(data);
    }
    (open.k, open.rows, open.t0) = (k, n, t0);
    Ok(())
}

/// Sends the block (every column) to the COPY and starts the next one.
async fn write(
    open: &mut OpenBlock,
    mut writer: std::pin::Pin<&mut BinaryCopyInWriter>,
    meta: &Meta,
) -> Result<(), PgError> {
    if open.rows == 0 {
        return Ok(());
    }
    let (t1, n) = (open.t1(), open.rows as i32);
    for (col, data) in open.columns.iter().enumerate() {
        let col = col as i32;
        let row: [&(dyn ToSql + Sync); 7] = [&meta.key, &col, &open.k, &open.t0, &t1, &n, &data.as_slice()];
        writer.as_mut().write(&row).await?;
    }
    open.next_block();
    Ok(())
}
