//! Scans: record indices fixed at the start (records are append-only and a stored
//! record never changes, so `next..end` names the same records for the scan's whole
//! life: its snapshot), then one statement per block on a pooled connection, fetching
//! the time column and the requested columns of that block only; the next block is read
//! on another pooled connection while this one is encoded. Between batches the scan
//! holds no transaction or lock, and no connection once that read is done, so a
//! stalled client pins nothing.
//! Every batch passes `hapi_store::codec::check_times` before it is yielded.

use std::sync::Arc;

use deadpool_postgres::GenericClient;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use hapi_core::{Batch, Nanos};
use hapi_source::{Batches, Count, Extent, Nth, Scan, ScanRequest, Source, SourceError};
use hapi_store::ColumnSpec;
use hapi_store::codec::{self, check_times};

use super::{AbortOnDrop, Meta, Shared, WINDOW, corrupt, rank, rank_in_window, ranks};
use crate::PgError;

/// An open scan: the records `next..end` of one dataset.
pub(crate) struct PgScan {
    shared: Arc<Shared>,
    meta: Arc<Meta>,
    /// Requested layout columns, and the `col` numbers to read: 0 (the time), then theirs.
    columns: Vec<usize>,
    cols: Vec<i32>,
    range: (Nanos, Nanos),
    next: i64,
    end: i64,
    last: Option<Nanos>,
    /// The first batch, read on the connection that fixed the range.
    pending: Option<Result<Batch, PgError>>,
    /// The block after the last one read, being read on another pooled connection
    /// while the caller encodes this one: it hides a round trip per block.
    ahead: Option<AbortOnDrop<Result<Block, PgError>>>,
}

/// A block's records in the scan, its ordinal, and the index after them.
type Block = (Batch, i64, i64);

/// Fixes the records of `[start, stop)` and reads the first batch.
///
/// A small request is one statement ([`SMALL`]) on a shared, pipelined connection.
/// Anything else takes a pooled connection for one or two rank statements and the first
/// block; they may see different commits, but an append only adds records after all
/// stored ones, so `start`'s rank cannot move and `end` counts whole appends: the scan
/// is still one consistent prefix.
pub(crate) async fn open(
    shared: &Arc<Shared>,
    id: &str,
    columns: &[usize],
    start: Nanos,
    stop: Nanos,
) -> Result<PgScan, PgError> {
    let meta = match shared.cached_meta(id) {
        Some(meta) => meta,
        None => shared.meta(&*shared.db.pipelined().await?, id).await?,
    };
    meta.layout.check_columns(columns).map_err(PgError::Store)?;
    let cols: Vec<i32> = std::iter::once(0).chain(columns.iter().map(|&c| c as i32 + 1)).collect();
    if stop > start && small_enough(&meta, columns) {
        let conn = shared.db.pipelined().await?;
        if let Some((batch, k, a, z)) = read_small(&*conn, &meta, columns, &cols, start, stop).await? {
            return Ok(
                PgScan::new(shared, meta, columns, cols, (start, stop), (a, z)).first(Ok((batch, k, z)))
            );
        }
    }
    let conn = shared.db.reader().await?;
    let (next, end) = if stop > start {
        ranks(&conn, &meta, start, stop).await?
    } else {
        let a = rank(&conn, &meta, start).await?;
        (a, a)
    };
    let scan = PgScan::new(shared, meta, columns, cols, (start, stop), (next, end));
    if scan.next == scan.end {
        return Ok(scan);
    }
    let block = read_block(&conn, &scan.meta, &scan.columns, &scan.cols, scan.next, scan.end).await;
    Ok(scan.first(block))
}

impl PgScan {
    fn new(
        shared: &Arc<Shared>,
        meta: Arc<Meta>,
        columns: &[usize],
        cols: Vec<i32>,
        range: (Nanos, Nanos),
        (next, end): (i64, i64),
    ) -> PgScan {
        PgScan {
            shared: Arc::clone(shared),
            meta,
            columns: columns.to_vec(),
            cols,
            range,
            next,
            end,
            last: None,
            pending: None,
            ahead: None,
        }
    }

    /// The scan with its first block, read with the range (nothing when it is empty).
    fn first(mut self, block: Result<Block, PgError>) -> PgScan {
        if self.next < self.end {
            self.pending = Some(self.accept(block));
        }
        self
    }

    /// Records the scan yields in all.
    pub(crate) fn len(&self) -> u64 {
        let pending = self.pending.as_ref().and_then(|b| b.as_ref().ok()).map_or(0, |b| b.times.len());
        (self.end - self.next) as u64 + pending as u64
    }

    /// The batches; the first error ends them.
    pub(crate) fn into_stream(self) -> BoxStream<'static, Result<Batch, PgError>> {
        Box::pin(futures::stream::unfold(Some(self), |state| async move {
            let mut s = state?;
            let item = match s.pending.take() {
                Some(first) => first,
                None if s.next >= s.end => return None,
                None => s.read().await,
            };
            let failed = item.is_err();
            Some((item, (!failed).then_some(s)))
        }))
    }

    async fn read(&mut self) -> Result<Batch, PgError> {
        let block = match self.ahead.take() {
            Some(task) => task.join().await,
            None => {
                let conn = self.shared.db.reader().await?;
                read_block(&conn, &self.meta, &self.columns, &self.cols, self.next, self.end).await
            }
        };
        self.accept(block)
    }

    /// Checks a block that was read, moves past it and starts reading the next.
    fn accept(&mut self, block: Result<Block, PgError>) -> Result<Batch, PgError> {
        let (batch, k, next) = block?;
        check_times(&batch.times, self.last, self.range, k).map_err(PgError::Store)?;
        self.last = batch.times.last().copied().or(self.last);
        self.next = next;
        if self.next < self.end {
            let (shared, meta) = (Arc::clone(&self.shared), Arc::clone(&self.meta));
            let (columns, cols, end) = (self.columns.clone(), self.cols.clone(), self.end);
            self.ahead = Some(AbortOnDrop::spawn(async move {
                let conn = shared.db.reader().await?;
                read_block(&conn, &meta, &columns, &cols, next, end).await
            }));
        }
        Ok(batch)
    }
}

/// Only the rows' bytes of each column of one block: `octet_length` to check the whole
/// blob's size, its first time (the key check), and `substring` of the rows, which reads
/// just the TOAST chunks holding them (the blobs are `STORAGE EXTERNAL`, uncompressed).
/// A small request then moves its records, not a whole 16,384-record block per column.
const BLOCK_ROWS: &str = "SELECT b.col, b.n, b.t0, octet_length(b.data), substring(b.data FROM 1 FOR 8), \
     substring(b.data FROM w.off FOR w.len) \
     FROM store_blocks b JOIN unnest($3::int[], $4::int[], $5::int[]) AS w(col, off, len) ON b.col = w.col \
     WHERE b.dataset = $1 AND b.k = $2";

/// Records `next..end` that lie in the block holding `next`: the batch, the block's
/// ordinal and the index after them.
async fn read_block(
    c: &impl GenericClient,
    meta: &Meta,
    columns: &[usize],
    cols: &[i32],
    next: i64,
    end: i64,
) -> Result<Block, PgError> {
    let k = next / meta.block_rows;
    let first = k * meta.block_rows;
    let rows = (next - first) as usize..(end - first).min(meta.block_rows) as usize;
    let widths: Vec<usize> = record_widths(meta, columns).collect();
    let offsets: Vec<i32> = widths.iter().map(|w| (rows.start * w + 1) as i32).collect();
    let lengths: Vec<i32> = widths.iter().map(|w| (rows.len() * w) as i32).collect();
    let found =
        c.query(&c.prepare_cached(BLOCK_ROWS).await?, &[&meta.key, &k, &cols, &offsets, &lengths]).await?;
    let block = |col: i32| found.iter().find(|r| r.get::<_, i32>(0) == col);
    let time = block(0).ok_or_else(|| corrupt(format!("block {k} of the time column is missing")))?;
    let (n, t0, size, head, data): (i32, Nanos, i32, &[u8], &[u8]) =
        (time.get(1), time.get(2), time.get(3), time.get(4), time.get(5));
    check_time_block(k, n, t0, size, head)?;
    let n = n as usize;
    if rows.end > n {
        return Err(corrupt(format!("block {k} holds {n} records, the scan needs {}", rows.end)));
    }
    codec::check_len(data, rows.len(), 8, "time block rows")?;
    let times = codec::get_times(data, 0..rows.len());
    let mut out = Vec::with_capacity(columns.len());
    for (&c, &col) in columns.iter().zip(&cols[1..]) {
        let spec = meta.layout.columns[c];
        let row = block(col).ok_or_else(|| corrupt(format!("block {k} of column {col} is missing")))?;
        let cdata: &[u8] = row.get(5);
        check_column_block(k, col, &spec, (n as i32, t0), (row.get(1), row.get(2), row.get(3)))?;
        codec::check_len(cdata, rows.len(), spec.record_bytes(), "column block rows")?;
        out.push(codec::get_column(&spec, cdata, 0..rows.len()));
    }
    Ok((Batch { times, columns: out, wire: None }, k, first + rows.end as i64))
}

/// A small request in one statement: the block holding `start`, and in it a window of
/// [`WINDOW`] records around where evenly spaced times would put `start`, of the time
/// column and of every requested column alike. Most answers of a few minutes lie in it
/// whole; anything else (the range leaves the window or the block, columns so wide that
/// the windows would be large) is `None`, and the general path reads it.
const SMALL: &str = concat!(
    "WITH b AS (SELECT k, n, t0, t1, ",
    window_start!(),
    " AS w ",
    time_block_before!(),
    ")
    SELECT c.col, b.k, b.n, b.t0, b.t1, b.w, c.n, c.t0, octet_length(c.data), substring(c.data FROM 1 FOR 8),
        substring(c.data FROM b.w * u.width + 1 FOR $3 * u.width)
    FROM b JOIN unnest($4::int[], $5::int[]) AS u(col, width) ON true
    JOIN store_blocks c ON c.dataset = $1 AND c.k = b.k AND c.col = u.col
    WHERE b.t1 >= $6"
);

/// Bytes of the windows of one small request at most: wider records take the general
/// path. It also bounds what a statement on a pipelined connection makes others wait for.
const SMALL_BYTES: usize = 64 * 1024;

/// Bytes per record of the time, then of each of `columns`.
fn record_widths<'a>(meta: &'a Meta, columns: &'a [usize]) -> impl Iterator<Item = usize> + 'a {
    std::iter::once(8).chain(columns.iter().map(|&c| meta.layout.columns[c].record_bytes()))
}

/// Whether [`SMALL`]'s windows of these columns stay under [`SMALL_BYTES`].
fn small_enough(meta: &Meta, columns: &[usize]) -> bool {
    record_widths(meta, columns).sum::<usize>() * WINDOW as usize <= SMALL_BYTES
}

/// [`SMALL`]: the records of `[start, stop)`, the block's ordinal and the records'
/// indices `a..z`, or `None` when the window does not hold them all.
async fn read_small(
    c: &impl GenericClient,
    meta: &Meta,
    columns: &[usize],
    cols: &[i32],
    start: Nanos,
    stop: Nanos,
) -> Result<Option<(Batch, i64, i64, i64)>, PgError> {
    let widths: Vec<i32> = record_widths(meta, columns).map(|w| w as i32).collect();
    let found = c
        .query(&c.prepare_cached(SMALL).await?, &[&meta.key, &start, &WINDOW, &cols, &widths, &stop])
        .await?;
    let Some(time) = found.iter().find(|r| r.get::<_, i32>(0) == 0) else { return Ok(None) };
    let (k, n, t0, w): (i64, i32, Nanos, i32) = (time.get(1), time.get(2), time.get(3), time.get(5));
    let window: &[u8] = time.get(10);
    let (Some(a), Some(z)) = (rank_in_window(window, w, n, start), rank_in_window(window, w, n, stop)) else {
        return Ok(None);
    };
    check_time_block(k, n, t0, time.get(8), time.get(9))?;
    let rows = a - w as usize..z - w as usize;
    let times = codec::get_times(window, rows.clone());
    let mut out = Vec::with_capacity(columns.len());
    for (&c, &col) in columns.iter().zip(&cols[1..]) {
        let spec = meta.layout.columns[c];
        let row = found
            .iter()
            .find(|r| r.get::<_, i32>(0) == col)
            .ok_or_else(|| corrupt(format!("block {k} of column {col} is missing")))?;
        let data: &[u8] = row.get(10);
        check_column_block(k, col, &spec, (n, t0), (row.get(6), row.get(7), row.get(8)))?;
        codec::check_len(data, window.len() / 8, spec.record_bytes(), "column block window")?;
        out.push(codec::get_column(&spec, data, rows.clone()));
    }
    let first = k * meta.block_rows;
    Ok(Some((Batch { times, columns: out, wire: None }, k, first + a as i64, first + z as i64)))
}

/// Time block `k` holds `n` times (its blob's `size`) and starts at its key time `t0`
/// (`head`, the blob's first 8 bytes).
fn check_time_block(k: i64, n: i32, t0: Nanos, size: i32, head: &[u8]) -> Result<(), PgError> {
    if size as usize != n as usize * 8 {
        return Err(corrupt(format!("time block {k}: blob of {size} bytes for {n} records")));
    }
    if head.len() != 8 || codec::time_at(head, 0) != t0 {
        return Err(corrupt(format!("block {k} does not start at its key time")));
    }
    Ok(())
}

/// Block `k` of column `col`, whose row gave `(n, t0, size)`, agrees with the time
/// column's `(n, t0)` and its blob holds `n` records.
fn check_column_block(
    k: i64,
    col: i32,
    spec: &ColumnSpec,
    (n, t0): (i32, Nanos),
    (cn, ct0, size): (i32, Nanos, i32),
) -> Result<(), PgError> {
    if cn != n || ct0 != t0 {
        return Err(corrupt(format!("block {k} of column {col} disagrees with the time column")));
    }
    if size as usize != n as usize * spec.record_bytes() {
        return Err(corrupt(format!(
            "column block {k} of column {col}: blob of {size} bytes for {n} records"
        )));
    }
    Ok(())
}

/// One dataset of a [`super::PgStore`] as an async [`Source`]: scans stream on the
/// runtime, and the extent comes from the listener's cache, not a query per call.
#[derive(Debug)]
pub struct PgSource {
    shared: Arc<Shared>,
    id: String,
}

impl PgSource {
    pub(crate) fn new(shared: Arc<Shared>, id: &str) -> PgSource {
        PgSource { shared, id: id.to_owned() }
    }
}

impl From<PgError> for SourceError {
    fn from(e: PgError) -> SourceError {
        SourceError::new(e.kind(), "postgres store", e)
    }
}

impl Source for PgSource {
    fn extent(&self) -> BoxFuture<'_, Result<Extent, SourceError>> {
        Box::pin(async move { Ok(self.shared.extents.get_or_read(&self.shared, &self.id).await?) })
    }

    fn scan(&self, r: ScanRequest) -> BoxFuture<'_, Result<Scan, SourceError>> {
        Box::pin(async move {
            let scan = open(&self.shared, &self.id, &r.columns, r.start, r.stop).await?;
            let count = Count::Exact(scan.len());
            let batches = scan.into_stream().map(|b| b.map_err(SourceError::from)).boxed();
            Ok(Scan { count, batches: Batches::Async(batches) })
        })
    }

    fn nth_time(&self, start: Nanos, n: u64) -> BoxFuture<'_, Result<Nth, SourceError>> {
        Box::pin(async move {
            Ok(match self.shared.nth_time(&self.id, start, n).await? {
                Some(t) => Nth::At(t),
                None => Nth::Past,
            })
        })
    }
}
