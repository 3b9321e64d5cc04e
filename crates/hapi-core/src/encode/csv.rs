//! HAPI csv (REQ-170..175): one `\n`-terminated line per record, no header row,
//! arrays unrolled, RFC 4180 quoting for strings only.

use std::ops::Range;

use super::timecache::TimeWriter;
use super::{ColSpec, DOUBLE_MAX, DoubleFill, INTEGER_MAX, binary, unpad};
use crate::batch::{Batch, Column};
use crate::info::ParamType;

/// Bytes per record at most: the time, the newline, and per element a comma and the
/// longest value text (a string of nothing but quotes doubles and gains two quotes).
pub(super) fn record_bound(time_len: usize, cols: &[ColSpec]) -> usize {
    let values: usize = cols
        .iter()
        .map(|c| {
            let each = match c.kind {
                ParamType::Double => {
                    let fill = c.fill.as_ref().and_then(|f| f.csv.as_ref()).map_or(0, |t| t.len());
                    DOUBLE_MAX.max(fill)
                }
                ParamType::Integer => INTEGER_MAX,
                ParamType::String => 2 * c.len + 2,
                ParamType::IsoTime => c.len,
            };
            c.width * (1 + each)
        })
        .sum();
    time_len + 1 + values
}

pub(super) fn write(tw: &mut TimeWriter, cols: &[ColSpec], b: &Batch, rows: Range<usize>, out: &mut Vec<u8>) {
    let mut num = zmij::Buffer::new();
    let mut int = itoa::Buffer::new();
    for r in rows {
        tw.write(b.times[r], out);
        for (spec, col) in cols.iter().zip(&b.columns) {
            match col {
                Column::Double { width, values } => {
                    for &v in &values[r * width..(r + 1) * width] {
                        out.push(b',');
                        write_double(v, spec.fill.as_ref(), &mut num, out);
                    }
                }
                Column::Integer { width, values } => {
                    for &v in &values[r * width..(r + 1) * width] {
                        out.push(b',');
                        out.extend_from_slice(int.format(v).as_bytes());
                    }
                }
                Column::Text { width, len, bytes } => {
                    let quotable = spec.kind != ParamType::IsoTime;
                    let record = &bytes[r * width * len..(r + 1) * width * len];
                    for k in 0..*width {
                        out.push(b',');
                        write_text(unpad(&record[k * len..(k + 1) * len]), quotable, out);
                    }
                }
            }
        }
        out.push(b'\n');
    }
}

/// [`write`] of records in wire form, `len` bytes each: the time text is the binary
/// encoder's, which is the csv encoder's too; the values are read where they lie.
pub(super) fn write_wire(time_len: usize, cols: &[ColSpec], records: &[u8], len: usize, out: &mut Vec<u8>) {
    let mut num = zmij::Buffer::new();
    let mut int = itoa::Buffer::new();
    for record in records.chunks_exact(len) {
        let (time, mut rest) = record.split_at(time_len);
        out.extend_from_slice(time);
        for spec in cols {
            let (values, tail) = rest.split_at(spec.width * binary::element_size(spec));
            rest = tail;
            match spec.kind {
                ParamType::Double => {
                    for v in values.chunks_exact(8) {
                        out.push(b',');
                        let v = f64::from_le_bytes(v.try_into().expect("8 bytes"));
                        write_double(v, spec.fill.as_ref(), &mut num, out);
                    }
                }
                ParamType::Integer => {
                    for v in values.chunks_exact(4) {
                        out.push(b',');
                        let v = i32::from_le_bytes(v.try_into().expect("4 bytes"));
                        out.extend_from_slice(int.format(v).as_bytes());
                    }
                }
                ParamType::String | ParamType::IsoTime => {
                    let quotable = spec.kind != ParamType::IsoTime;
                    for element in values.chunks_exact(spec.len.max(1)).take(spec.width) {
                        out.push(b',');
                        write_text(unpad(element), quotable, out);
                    }
                }
            }
        }
        out.push(b'\n');
    }
}

/// A double as csv: `NaN` unquoted, the fill's metadata text for the fill, otherwise the
/// shortest round-trip form. Infinities cannot enter the store; should one appear it is
/// written as `NaN`, since the verifier's number regex has no infinity.
#[inline]
pub(super) fn write_double(v: f64, fill: Option<&DoubleFill>, num: &mut zmij::Buffer, out: &mut Vec<u8>) {
    if let Some(f) = fill
        && v.to_bits() == f.bits
        && let Some(text) = &f.csv
    {
        out.extend_from_slice(text);
    } else if v.is_finite() {
        out.extend_from_slice(num.format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"NaN");
    }
}

/// A string field, quoted (RFC 4180, `"` doubled) when it holds a separator, a quote or
/// a line break, or has a leading or trailing space that a reader might trim.
/// Non-primary isotime values are never quoted (REQ-172).
#[inline]
pub(super) fn write_text(s: &[u8], quotable: bool, out: &mut Vec<u8>) {
    if !quotable || !needs_quotes(s) {
        out.extend_from_slice(s);
        return;
    }
    out.push(b'"');
    let mut rest = s;
    while let Some(q) = rest.iter().position(|&c| c == b'"') {
        out.extend_from_slice(&rest[..=q]);
        out.push(b'"');
        rest = &rest[q + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

fn needs_quotes(s: &[u8]) -> bool {
    matches!(s.first(), Some(b' '))
        || matches!(s.last(), Some(b' '))
        || s.iter().any(|&c| matches!(c, b',' | b'"' | b'\r' | b'\n'))
}
