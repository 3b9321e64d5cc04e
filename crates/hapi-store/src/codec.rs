//! Column blocks, shared by the block stores (SQLite here, PostgreSQL in `hapi-postgres`):
//! how many records a block holds, packing columns into block blobs and back
//! (little-endian `i64` times, `f64`, `i32`, and text as fixed-size NUL-padded elements,
//! records back to back, array elements row-major), and the checks every block passes
//! before it is served. Callers check blob lengths first (see [`check_len`]), so the
//! packing functions only slice.

use std::ops::Range;

use hapi_core::info::ParamType;
use hapi_core::{Batch, Column, Nanos};

use crate::{ColumnSpec, Layout, StoreError};

/// A block of the widest column stays at or below this many bytes...
pub const BLOCK_BYTES: usize = 256 * 1024;
/// ...and holds at most this many records, which is also the largest scan batch.
pub const MAX_BLOCK_ROWS: usize = 4096;

/// Records per block for a new dataset: as many as fit `BLOCK_BYTES` for the widest
/// column, at least 1, at most `max` (normally `MAX_BLOCK_ROWS`).
pub fn block_rows_for(layout: &Layout, max: usize) -> i64 {
    let widest = layout.columns.iter().map(ColumnSpec::record_bytes).max().unwrap_or(0).max(8);
    (BLOCK_BYTES / widest).clamp(1, max.max(1)) as i64
}

/// Checks that a stored block blob holds exactly `rows` records of `record_bytes` each.
pub fn check_len(data: &[u8], rows: usize, record_bytes: usize, what: &str) -> Result<(), StoreError> {
    if data.len() == rows * record_bytes {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "{what}: blob of {} bytes for {rows} records of {record_bytes} bytes",
            data.len()
        )))
    }
}

fn le8(chunk: &[u8]) -> [u8; 8] {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(chunk);
    bytes
}

fn le4(chunk: &[u8]) -> [u8; 4] {
    let mut bytes = [0; 4];
    bytes.copy_from_slice(chunk);
    bytes
}

/// The time of record `i` of a time blob.
pub fn time_at(data: &[u8], i: usize) -> Nanos {
    i64::from_le_bytes(le8(&data[i * 8..i * 8 + 8]))
}

/// How many of the `rows` sorted times in `data` are before `t`.
pub fn rank_in(data: &[u8], rows: usize, t: Nanos) -> usize {
    let (mut lo, mut hi) = (0, rows);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if time_at(data, mid) < t {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Appends the packed form of `times`.
pub fn put_times(buf: &mut Vec<u8>, times: &[Nanos]) {
    buf.reserve(times.len() * 8);
    for t in times {
        buf.extend_from_slice(&t.to_le_bytes());
    }
}

/// Appends the packed form of records `rows` of `column` (already checked against its spec).
pub fn put_column(buf: &mut Vec<u8>, column: &Column, rows: Range<usize>) {
    match column {
        Column::Double { width, values } => {
            let values = &values[rows.start * width..rows.end * width];
            buf.reserve(values.len() * 8);
            for v in values {
                buf.extend_from_slice(&v.to_le_bytes());
            }
        }
        Column::Integer { width, values } => {
            let values = &values[rows.start * width..rows.end * width];
            buf.reserve(values.len() * 4);
            for v in values {
                buf.extend_from_slice(&v.to_le_bytes());
            }
        }
        Column::Text { width, len, bytes } => {
            let record = width * len;
            buf.extend_from_slice(&bytes[rows.start * record..rows.end * record]);
        }
    }
}

/// Unpacks records `rows` of a time blob.
pub fn get_times(data: &[u8], rows: Range<usize>) -> Vec<Nanos> {
    data[rows.start * 8..rows.end * 8].chunks_exact(8).map(|c| i64::from_le_bytes(le8(c))).collect()
}

/// Unpacks records `rows` of a column blob.
pub fn get_column(spec: &ColumnSpec, data: &[u8], rows: Range<usize>) -> Column {
    let record = spec.record_bytes();
    let data = &data[rows.start * record..rows.end * record];
    let width = spec.width;
    match spec.kind {
        ParamType::Double => Column::Double {
            width,
            values: data.chunks_exact(8).map(|c| f64::from_le_bytes(le8(c))).collect(),
        },
        ParamType::Integer => Column::Integer {
            width,
            values: data.chunks_exact(4).map(|c| i32::from_le_bytes(le4(c))).collect(),
        },
        ParamType::String | ParamType::IsoTime => Column::Text { width, len: spec.len, bytes: data.to_vec() },
    }
}

/// Times of one batch must increase strictly, follow `last`, and lie in `start..stop`;
/// `k` (the block) names it in the error.
pub fn check_times(
    times: &[Nanos],
    last: Option<Nanos>,
    (start, stop): (Nanos, Nanos),
    k: i64,
) -> Result<(), StoreError> {
    let (Some(&first), Some(&end)) = (times.first(), times.last()) else {
        return Err(StoreError::Corrupt(format!(
            "block {k} yielded no records where the index promised some"
        )));
    };
    if last.is_some_and(|l| first <= l) || first < start || end >= stop {
        return Err(StoreError::Corrupt(format!("block {k} holds times outside its place in the series")));
    }
    if let Some(i) = times.windows(2).position(|w| w[0] >= w[1]) {
        return Err(StoreError::Corrupt(format!(
            "block {k}: record {} is not after the one before it",
            i + 1
        )));
    }
    Ok(())
}

/// The block an append is filling, as both block stores build it: its packed columns
/// (time first), its ordinal, and the last time stored or appended, which every
/// further record must follow.
#[derive(Debug)]
pub struct OpenBlock {
    /// Ordinal of the block.
    pub k: i64,
    /// Records in it.
    pub rows: usize,
    /// Its first time (valid when `rows > 0`).
    pub t0: Nanos,
    /// The last record's time, stored or appended.
    pub last: Option<Nanos>,
    /// Packed columns, index 0 is the time.
    pub columns: Vec<Vec<u8>>,
    /// Records a full block holds.
    full: usize,
}

impl OpenBlock {
    /// Block 0 of an empty dataset of `layout` with `full`-record blocks.
    pub fn new(layout: &Layout, full: usize) -> OpenBlock {
        let columns =
            (0..=layout.columns.len()).map(|c| Vec::with_capacity(record_bytes(layout, c) * full)).collect();
        OpenBlock { k: 0, rows: 0, t0: 0, last: None, columns, full }
    }

    /// Checks that `times` (of the batch that follows `appended` records of this
    /// append) increase strictly after the last record; counts them.
    pub fn check_order(&mut self, times: &[Nanos], appended: &mut u64) -> Result<(), StoreError> {
        for &time in times {
            if let Some(previous) = self.last.filter(|&previous| time <= previous) {
                return Err(StoreError::OutOfOrder { index: *appended, time, previous });
            }
            self.last = Some(time);
            *appended += 1;
        }
        Ok(())
    }

    /// Packs records of `batch` (checked) from `row` until the block is full; returns
    /// how many it took.
    pub fn fill(&mut self, batch: &Batch, row: usize) -> usize {
        let take = (self.full - self.rows).min(batch.times.len() - row);
        if self.rows == 0 {
            self.t0 = batch.times[row];
        }
        let rows = row..row + take;
        put_times(&mut self.columns[0], &batch.times[rows.clone()]);
        for (buf, column) in self.columns[1..].iter_mut().zip(&batch.columns) {
            put_column(buf, column, rows.clone());
        }
        self.rows += take;
        take
    }

    /// The block holds `full` records.
    pub fn is_full(&self) -> bool {
        self.rows == self.full
    }

    /// Its last time (valid when `rows > 0`).
    pub fn t1(&self) -> Nanos {
        time_at(&self.columns[0], self.rows - 1)
    }

    /// After the block was written: the next, empty one.
    pub fn next_block(&mut self) {
        self.k += 1;
        self.rows = 0;
        self.columns.iter_mut().for_each(Vec::clear);
    }
}

/// Bytes one record of stored column `col` (0: the time) occupies.
pub fn record_bytes(layout: &Layout, col: usize) -> usize {
    if col == 0 { 8 } else { layout.columns[col - 1].record_bytes() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_counts_times_before() {
        let mut data = Vec::new();
        put_times(&mut data, &[10, 20, 30]);
        let ranks: Vec<usize> = [5, 10, 11, 20, 30, 31].iter().map(|&t| rank_in(&data, 3, t)).collect();
        assert_eq!(ranks, [0, 0, 1, 1, 2, 3]);
        assert_eq!(get_times(&data, 1..3), [20, 30]);
    }

    #[test]
    fn columns_round_trip_bit_exact() {
        let spec = ColumnSpec { kind: ParamType::Double, width: 2, len: 0 };
        let values = vec![f64::NAN, -0.0, f64::INFINITY, 1e-310, 1.5, -2.5];
        let mut data = Vec::new();
        put_column(&mut data, &Column::Double { width: 2, values: values.clone() }, 1..3);
        let Column::Double { values: back, .. } = get_column(&spec, &data, 0..2) else { panic!("kind") };
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&values[2..]));

        let spec = ColumnSpec { kind: ParamType::Integer, width: 1, len: 0 };
        let mut data = Vec::new();
        put_column(&mut data, &Column::Integer { width: 1, values: vec![i32::MIN, -1, i32::MAX] }, 0..3);
        assert_eq!(get_column(&spec, &data, 1..3), Column::Integer { width: 1, values: vec![-1, i32::MAX] });
    }

    #[test]
    fn out_of_order_or_out_of_range_times_are_corruption() {
        let range = (0, 100);
        assert!(check_times(&[1, 2, 3], None, range, 0).is_ok());
        assert!(check_times(&[1, 2, 3], Some(0), range, 0).is_ok());
        assert!(check_times(&[1, 3, 2], None, range, 0).is_err(), "not increasing");
        assert!(check_times(&[1, 1], None, range, 0).is_err(), "repeated");
        assert!(check_times(&[5, 6], Some(5), range, 0).is_err(), "not after the previous batch");
        assert!(check_times(&[-1, 6], None, range, 0).is_err(), "before the range");
        assert!(check_times(&[6, 100], None, range, 0).is_err(), "at the exclusive stop");
        assert!(check_times(&[], None, range, 0).is_err(), "empty where records were promised");
    }
}
