//! HAPI binary (REQ-180..185): fixed-size little-endian records with no separators.

use std::ops::Range;

use super::ColSpec;
use super::timecache::TimeWriter;
use crate::batch::{Batch, Column};
use crate::info::ParamType;

/// The canonical quiet NaN (REQ-183): every NaN is written with these bits so that
/// a payload or sign picked up along the way never reaches clients.
const QUIET_NAN: u64 = 0x7FF8_0000_0000_0000;

/// Bytes per record, exactly: the time string, 8 per double, 4 per integer and
/// `length` per string or isotime element.
pub(super) fn record_size(time_len: usize, cols: &[ColSpec]) -> usize {
    let values: usize = cols
        .iter()
        .map(|c| {
            let each = match c.kind {
                ParamType::Double => 8,
                ParamType::Integer => 4,
                ParamType::String | ParamType::IsoTime => c.len,
            };
            c.width * each
        })
        .sum();
    time_len + values
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
