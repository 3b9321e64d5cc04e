//! HAPI binary (REQ-180..185): fixed-size little-endian records with no separators.

use std::ops::Range;

use super::timecache::TimeWriter;
use super::{ColSpec, QUIET_NAN};
use crate::batch::{Batch, Column};
use crate::info::ParamType;

/// Bytes per record, exactly: the time string, 8 per double, 4 per integer and
/// `length` per string or isotime element.
pub(super) fn record_size(time_len: usize, cols: &[ColSpec]) -> usize {
    time_len + cols.iter().map(|c| c.width * element_size(c)).sum::<usize>()
}

/// Bytes of one element of `c`.
pub(super) fn element_size(c: &ColSpec) -> usize {
    match c.kind {
        ParamType::Double => 8,
        ParamType::Integer => 4,
        ParamType::String | ParamType::IsoTime => c.len,
    }
}

/// The values of records in wire form, `len` bytes each, as columns.
pub(super) fn columns(time_len: usize, cols: &[ColSpec], records: &[u8], len: usize) -> Vec<Column> {
    let mut offset = time_len;
    cols.iter()
        .map(|spec| {
            let bytes = spec.width * element_size(spec);
            let values = records.chunks_exact(len).map(move |r| &r[offset..offset + bytes]);
            offset += bytes;
            let width = spec.width;
            match spec.kind {
                ParamType::Double => Column::Double {
                    width,
                    values: values
                        .flat_map(|v| v.chunks_exact(8))
                        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                        .collect(),
                },
                ParamType::Integer => Column::Integer {
                    width,
                    values: values
                        .flat_map(|v| v.chunks_exact(4))
                        .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
                        .collect(),
                },
                ParamType::String | ParamType::IsoTime => {
                    Column::Text { width, len: spec.len, bytes: values.flatten().copied().collect() }
                }
            }
        })
        .collect()
}

pub(super) fn write(tw: &mut TimeWriter, b: &Batch, rows: Range<usize>, out: &mut Vec<u8>) {
    for r in rows {
        tw.write(b.times[r], out);
        for col in &b.columns {
            match col {
                Column::Double { width, values } => {
                    for &v in &values[r * width..(r + 1) * width] {
                        let bits = if v.is_nan() { QUIET_NAN } else { v.to_bits() };
                        out.extend_from_slice(&bits.to_le_bytes());
                    }
                }
                Column::Integer { width, values } => {
                    for &v in &values[r * width..(r + 1) * width] {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                }
                // Text is stored in its wire form: exactly `len` bytes, NUL-padded.
                Column::Text { width, len, bytes } => {
                    out.extend_from_slice(&bytes[r * width * len..(r + 1) * width * len]);
                }
            }
        }
    }
}
