//! HAPI json (REQ-190..193): the info header object with `data` as its last key,
//! one record per line, array parameters nested to the depth of their `size`.

use std::ops::Range;

use serde_json::{Map, Value};

use super::timecache::TimeWriter;
use super::{ColSpec, DOUBLE_MAX, DoubleFill, INTEGER_MAX, Nest, unpad, write_json_value};
use crate::batch::{Batch, Column};
use crate::info::ParamType;

/// Writes `{` and every header entry but `data`, then `"data":[`, leaving both open.
pub(super) fn header(header: &Map<String, Value>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (key, value) in header.iter().filter(|(k, _)| k.as_str() != "data") {
        write_json_value(out, key.as_str());
        out.push(b':');
        write_json_value(out, value);
        out.push(b',');
    }
    out.extend_from_slice(b"\"data\":[");
}

/// Bytes per record at most: the line break and comma, the record's brackets, the
/// quoted time, and per element a comma, its brackets and the longest value text
/// (a string of control characters escapes each byte as `\u00XX`).
pub(super) fn record_bound(time_len: usize, cols: &[ColSpec]) -> usize {
    let values: usize = cols
        .iter()
        .map(|c| {
            let each = match c.kind {
                ParamType::Double => {
                    let fill = c.fill.as_ref().and_then(|f| f.json.as_ref()).map_or(0, |t| t.len());
                    DOUBLE_MAX.max(fill)
                }
                ParamType::Integer => INTEGER_MAX,
                ParamType::String | ParamType::IsoTime => 2 + 6 * c.len,
            };
            let brackets: usize = c.nest.iter().map(|n| (n.open + n.close) as usize).sum();
            c.width * (1 + each) + brackets
        })
        .sum();
    2 + 1 + (time_len + 2) + values + 1
}

pub(super) fn write(
    tw: &mut TimeWriter,
    cols: &[ColSpec],
    b: &Batch,
    rows: Range<usize>,
    mut wrote: bool,
    out: &mut Vec<u8>,
) {
    let mut num = zmij::Buffer::new();
    let mut int = itoa::Buffer::new();
    for r in rows {
        // Records go one per line; the first follows `"data":[` on its own line too.
        out.extend_from_slice(if wrote { b",\n[\"" } else { b"\n[\"" });
        wrote = true;
        tw.write(b.times[r], out);
        out.push(b'"');
        for (spec, col) in cols.iter().zip(&b.columns) {
            // Every element is preceded by exactly one comma: it separates either the
            // parameter from the previous one or the element from its sibling.
            match col {
                Column::Double { width, values } => {
                    for (k, &v) in values[r * width..(r + 1) * width].iter().enumerate() {
                        let nest = open(&spec.nest, k, out);
                        write_double(v, spec.fill.as_ref(), &mut num, out);
                        close(nest, out);
                    }
                }
                Column::Integer { width, values } => {
                    for (k, &v) in values[r * width..(r + 1) * width].iter().enumerate() {
                        let nest = open(&spec.nest, k, out);
                        out.extend_from_slice(int.format(v).as_bytes());
                        close(nest, out);
                    }
                }
                Column::Text { width, len, bytes } => {
                    let record = &bytes[r * width * len..(r + 1) * width * len];
                    for k in 0..*width {
                        let nest = open(&spec.nest, k, out);
                        write_str(unpad(&record[k * len..(k + 1) * len]), out);
                        close(nest, out);
                    }
                }
            }
        }
        out.push(b']');
    }
}

/// Writes the comma and opening brackets of element `k`; returns its closing count.
#[inline]
fn open(nest: &[Nest], k: usize, out: &mut Vec<u8>) -> u32 {
    out.push(b',');
    match nest.get(k) {
        Some(n) => {
            out.extend(std::iter::repeat_n(b'[', n.open as usize));
            n.close
        }
        None => 0,
    }
}

#[inline]
fn close(n: u32, out: &mut Vec<u8>) {
    out.extend(std::iter::repeat_n(b']', n as usize));
}

/// A double as json: NaN (and, defensively, infinity) as `null` since JSON has no NaN
/// (REQ-193); the fill's metadata text when it is a JSON number; otherwise shortest
/// round-trip.
#[inline]
fn write_double(v: f64, fill: Option<&DoubleFill>, num: &mut zmij::Buffer, out: &mut Vec<u8>) {
    if let Some(f) = fill
        && v.to_bits() == f.bits
        && let Some(text) = &f.json
    {
        out.extend_from_slice(text);
    } else if v.is_finite() {
        out.extend_from_slice(num.format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// A JSON string. Stored text is UTF-8 (ingest checks it); anything else is written
/// with replacement characters rather than producing invalid JSON.
pub(super) fn write_str(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    match std::str::from_utf8(s) {
        Ok(_) => escape(s, out),
        Err(_) => escape(String::from_utf8_lossy(s).as_bytes(), out),
    }
    out.push(b'"');
}

/// Copies runs that need no escaping in one go; escapes `"`, `\` and control characters.
fn escape(s: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &c) in s.iter().enumerate() {
        let short = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0C => b'f',
            0..0x20 => 0,
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        if short == 0 {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 0xF)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}
