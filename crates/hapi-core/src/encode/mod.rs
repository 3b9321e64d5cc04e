//! The csv, binary and json encoders of `/data` (spec §3.7.4).
//!
//! An [`Encoder`] is synchronous and pure: it appends bytes to a caller-owned buffer and
//! keeps only the json framing state between batches. Everything that depends on the
//! metadata (fill bit patterns and their text, json nesting, per-record size bounds) is
//! worked out once in [`Encoder::new`], so the per-value work is a branch and a copy.

mod binary;
mod csv;
mod json;
mod timecache;

use std::ops::Range;

use serde_json::{Map, Value};

use crate::batch::{Batch, Wire};
use crate::info::{DatasetInfo, ParamType};
use timecache::TimeWriter;

#[cfg(test)]
pub(crate) mod tests;

/// The output formats of `/data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/csv`, the default.
    Csv,
    /// Little-endian fixed-width records.
    Binary,
    /// The info header with `data` last.
    Json,
}

impl Format {
    /// All formats, in the order `/capabilities` lists them.
    pub const ALL: [Format; 3] = [Format::Csv, Format::Binary, Format::Json];

    /// The `format=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Binary => "binary",
            Format::Json => "json",
        }
    }

    /// The format named by a `format=` value.
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The response `Content-Type` (REQ-165).
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Binary => "application/octet-stream",
            Format::Json => "application/json",
        }
    }
}

/// The canonical quiet NaN (REQ-183): every NaN is written with these bits so that
/// a payload or sign picked up along the way never reaches clients.
pub const QUIET_NAN: u64 = 0x7FF8_0000_0000_0000;

/// Longest text zmij writes for an f64 (`-2.2250738585072014e-308`).
const DOUBLE_MAX: usize = 24;
/// Longest i32 in decimal (`-2147483648`).
const INTEGER_MAX: usize = 11;
/// Most bytes reserved ahead per batch.
const RESERVE_CAP: usize = 4 << 20;

/// Writes the records of one dataset in one format.
///
/// Call [`header`](Encoder::header) first (json always, csv/binary only with
/// `include=header`), then [`batch`](Encoder::batch) for every batch, then
/// [`finish`](Encoder::finish).
#[derive(Debug, Clone)]
pub struct Encoder {
    format: Format,
    times: TimeWriter,
    cols: Vec<ColSpec>,
    /// json only: whether a record was written, so the next one needs `,`.
    wrote_record: bool,
    bound: usize,
}

/// An encoder's place between records (the time cache only saves work: the output
/// does not depend on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    wrote_record: bool,
}

/// What the encoders need to know about one selected non-time parameter.
#[derive(Debug, Clone)]
struct ColSpec {
    kind: ParamType,
    /// `length` for string and isotime parameters.
    len: usize,
    /// Elements per record.
    width: usize,
    /// Doubles only: the value whose bits equal the fill is written as the fill text.
    fill: Option<DoubleFill>,
    /// json only: `[` before and `]` after each element; empty for a scalar.
    nest: Vec<Nest>,
}

/// A double fill value: its bit pattern and the metadata text to write instead of
/// the shortest round-trip form, so that clients comparing fill strings see the same text.
#[derive(Debug, Clone)]
struct DoubleFill {
    bits: u64,
    /// The fill text when it is a valid HAPI csv double (the verifier's regex).
    csv: Option<Box<[u8]>>,
    /// The fill text when it is a valid JSON number.
    json: Option<Box<[u8]>>,
}

/// Brackets around one element of a json array parameter.
#[derive(Debug, Clone, Copy)]
struct Nest {
    open: u32,
    close: u32,
}

impl Encoder {
    /// An encoder for the parameters `selection` (ascending indices into
    /// `info.parameters`, starting with 0, the primary time).
    ///
    /// # Panics
    /// If an index in `selection` is out of range.
    pub fn new(format: Format, info: &DatasetInfo, selection: &[usize]) -> Encoder {
        let cols: Vec<ColSpec> = selection
            .iter()
            .filter(|&&i| i != 0)
            .map(|&i| {
                let p = &info.parameters[i];
                let fill = match (p.fill_f64(), p.fill.as_deref()) {
                    (Some(v), Some(text)) => Some(DoubleFill {
                        bits: v.to_bits(),
                        csv: is_hapi_double(text).then(|| text.as_bytes().into()),
                        json: is_json_number(text).then(|| text.as_bytes().into()),
                    }),
                    _ => None,
                };
                ColSpec {
                    kind: p.kind,
                    len: p.length.unwrap_or(0),
                    width: p.width(),
                    fill,
                    nest: if format == Format::Json { nesting(&p.size) } else { Vec::new() },
                }
            })
            .collect();
        let time = info.time_format;
        let bound = match format {
            Format::Csv => csv::record_bound(time.len, &cols),
            Format::Binary => binary::record_size(time.len, &cols),
            Format::Json => json::record_bound(time.len, &cols),
        };
        Encoder { format, times: TimeWriter::new(time), cols, wrote_record: false, bound }
    }

    /// Writes the header.
    ///
    /// csv and binary (called only with `include=header`): `#`, the compact one-line JSON
    /// of `header`, and `\n`. json: the header object left open and followed by `"data":[`,
    /// so that `data` is its last key (REQ-190); a `data` key in `header` is dropped.
    pub fn header(&mut self, header: &Map<String, Value>, out: &mut Vec<u8>) {
        match self.format {
            Format::Csv | Format::Binary => {
                out.push(b'#');
                write_json_value(out, header);
                out.push(b'\n');
            }
            Format::Json => json::header(header, out),
        }
    }

    /// Appends the records of `b`, whose columns are exactly the selected non-time
    /// parameters in order.
    pub fn batch(&mut self, b: &Batch, out: &mut Vec<u8>) {
        self.rows(b, 0..b.times.len(), out);
    }

    /// Appends records `rows` of `b` (clamped to the records every column holds), so a
    /// caller can cut output into chunks of about the size it wants.
    ///
    /// # Panics
    /// If `b` is in wire form ([`Batch::wire`]) with records of another length than
    /// this encoder's binary records: the scan was not of this selection.
    pub fn rows(&mut self, b: &Batch, rows: Range<usize>, out: &mut Vec<u8>) {
        if let Some(wire) = &b.wire {
            self.wire_rows(b, wire, rows, out);
            return;
        }
        // A short column would make the row-major walk index past its end: write only
        // the records every column holds (they always agree for a well-formed batch).
        debug_assert_eq!(b.columns.len(), self.cols.len(), "batch columns differ from the selection");
        let held = b.columns.iter().map(|c| c.rows()).fold(b.times.len(), usize::min);
        debug_assert_eq!(held, b.times.len(), "a column has fewer records than the times");
        let rows = rows.start.min(held)..rows.end.min(held);
        // The bound is a worst case (a string of control characters is 6 bytes per byte in
        // json), so cap the reservation and let the Vec grow in the rare case it must.
        out.reserve(rows.len().saturating_mul(self.bound).min(RESERVE_CAP));
        let wrote = !rows.is_empty();
        match self.format {
            Format::Csv => csv::write(&mut self.times, &self.cols, b, rows, out),
            Format::Binary => binary::write(&mut self.times, b, rows, out),
            Format::Json => {
                json::write(&mut self.times, &self.cols, b, rows, self.wrote_record, out);
                self.wrote_record |= wrote;
            }
        }
    }

    /// [`Encoder::rows`] of a batch in wire form: binary is the records themselves; csv
    /// takes each record's time text and reads its values in place; json, rarely asked
    /// of an upstream's records, takes them apart into columns first.
    fn wire_rows(&mut self, b: &Batch, wire: &Wire, rows: Range<usize>, out: &mut Vec<u8>) {
        let len = binary::record_size(self.times.format().len, &self.cols);
        assert_eq!(wire.record_len, len, "wire records of another selection or time format");
        let held = b.times.len().min(wire.bytes.len() / len.max(1));
        let rows = rows.start.min(held)..rows.end.min(held);
        let records = &wire.bytes[rows.start * len..rows.end * len];
        match self.format {
            Format::Binary => out.extend_from_slice(records),
            Format::Csv => {
                out.reserve(rows.len().saturating_mul(self.bound).min(RESERVE_CAP));
                csv::write_wire(self.times.format().len, &self.cols, records, len, out);
            }
            Format::Json => {
                let batch = Batch {
                    times: b.times[rows].to_vec(),
                    columns: binary::columns(self.times.format().len, &self.cols, records, len),
                    wire: None,
                };
                self.rows(&batch, 0..batch.len(), out);
            }
        }
    }

    /// Ends the stream: `\n]}\n` for json, nothing for csv and binary.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.format == Format::Json {
            out.extend_from_slice(b"\n]}\n");
        }
    }

    /// Where the output stands between records; [`Encoder::rewind`] to it writes the
    /// same bytes again from there (a stream that dropped a chunk it had made).
    pub fn mark(&self) -> Mark {
        Mark { wrote_record: self.wrote_record }
    }

    /// Back to `mark`: what follows is encoded as it was after `mark` was taken.
    pub fn rewind(&mut self, mark: Mark) {
        self.wrote_record = mark.wrote_record;
    }

    /// An upper bound of the bytes per record (exact for binary), for the
    /// response-size limit and buffer reservation.
    pub fn record_bound(&self) -> usize {
        self.bound
    }
}

/// Appends `v` as compact JSON.
fn write_json_value<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Serializing a `serde_json::Value` or `&str` into a `Vec` has no failure path.
    serde_json::to_writer(out, v).expect("JSON values serialize into a Vec");
}

/// Bracket counts for every element of an array parameter of shape `size` in
/// row-major order: element `i` opens one `[` per dimension whose block starts at `i`
/// and closes one `]` per dimension whose block ends there. A scalar gets none.
fn nesting(size: &[usize]) -> Vec<Nest> {
    if size.is_empty() {
        return Vec::new();
    }
    // blocks[j]: elements spanned by one value of index j and everything after it.
    let mut blocks = Vec::with_capacity(size.len());
    let mut span = 1usize;
    for &d in size.iter().rev() {
        span = span.saturating_mul(d.max(1));
        blocks.push(span);
    }
    let width = span;
    (0..width)
        .map(|i| Nest {
            open: blocks.iter().filter(|&&b| i % b == 0).count() as u32,
            close: blocks.iter().filter(|&&b| (i + 1) % b == 0).count() as u32,
        })
        .collect()
}

/// Whether `s` matches the verifier's double regex
/// `^[-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]{1,3})?$`.
fn is_hapi_double(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let int_digits = count_digits(&b[i..]);
    i += int_digits;
    let frac_digits = if b.get(i) == Some(&b'.') {
        let n = count_digits(&b[i + 1..]);
        i += 1 + n;
        n
    } else {
        0
    };
    // `[0-9]*\.?[0-9]+`: the mantissa must end in a digit.
    let mantissa_ok = if frac_digits > 0 { true } else { int_digits > 0 && b[i - 1] != b'.' };
    if !mantissa_ok {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        i += usize::from(matches!(b.get(i), Some(b'-' | b'+')));
        let n = count_digits(&b[i..]);
        if !(1..=3).contains(&n) {
            return false;
        }
        i += n;
    }
    i == b.len()
}

/// Whether `s` is a JSON number (RFC 8259 §6).
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    match count_digits(&b[i..]) {
        0 => return false,
        n if n > 1 && b[i] == b'0' => return false,
        n => i += n,
    }
    if b.get(i) == Some(&b'.') {
        let n = count_digits(&b[i + 1..]);
        if n == 0 {
            return false;
        }
        i += 1 + n;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        i += usize::from(matches!(b.get(i), Some(b'-' | b'+')));
        let n = count_digits(&b[i..]);
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == b.len()
}

fn count_digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// The text of a padded element: its bytes up to the first NUL.
#[inline]
fn unpad(raw: &[u8]) -> &[u8] {
    match raw.iter().position(|&b| b == 0) {
        Some(end) => &raw[..end],
        None => raw,
    }
}
