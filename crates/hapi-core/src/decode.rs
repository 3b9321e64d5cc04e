//! HAPI csv records into batches, for `hapi-server ingest` and the sources that read
//! csv; [`BinaryDecoder`] does the same for HAPI binary.
//!
//! The input is what a HAPI server sends as csv (REQ-170..175): one record per line, the
//! primary time first, arrays unrolled, RFC 4180 quoting. A `#` header (`include=header`)
//! before the first record is skipped. Every row is checked against the metadata so that
//! whatever is stored can later be served unchanged: the time must be strictly
//! increasing and exactly representable in the dataset's time format, numbers must fit
//! their type, texts their `length`.

use std::borrow::Cow;
use std::fmt;

use crate::batch::{Batch, Column, push_text};
use crate::info::{DatasetInfo, ParamType, Parameter};
use crate::time::{self, Nanos};

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    /// Line number, from 1.
    pub line: usize,
    /// Field number within the line, from 1, when one field is at fault.
    pub column: Option<usize>,
    /// The parameter of that field, with the element index for arrays (`B_GSE[2]`).
    pub name: Option<String>,
    /// What is wrong, lowercase.
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(c) = self.column {
            write!(f, ", column {c}")?;
        }
        if let Some(n) = &self.name {
            write!(f, " ({n})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Turns csv lines into a [`Batch`] holding every parameter of a dataset
/// (`columns` for `parameters[1..]`).
#[derive(Debug)]
pub struct CsvDecoder<'a> {
    /// Borrowed for ingest; owned by a reader that outlives its caller's borrow.
    info: Cow<'a, DatasetInfo>,
    /// Fields per record: the time plus every element of the other parameters.
    fields: usize,
    times: TimeCheck,
    /// Records before this time are dropped after their time is checked.
    from: Option<Nanos>,
    /// A record was seen, so `#` lines are no longer header lines.
    started: bool,
    /// The first blank line after a record: fine at the end, an error before another record.
    blank: Option<usize>,
    batch: Batch,
    /// Unquoted contents of the current line's fields when it has quotes, and each
    /// field's range in it (or in the line itself when it has none).
    buf: Vec<u8>,
    spans: Vec<(usize, usize)>,
    /// The fields are in `buf`, not in the line.
    in_buf: bool,
    /// The start of a line the last [`push`](CsvDecoder::push) ended inside.
    partial: Vec<u8>,
    /// Lines pushed so far, for their numbers.
    pushed: usize,
    /// The longest line [`push`](CsvDecoder::push) takes: a source that never ends its
    /// line must not fill the memory.
    max_line: usize,
    /// Every parameter after the time is a number: lines can take [`CsvDecoder::plain`].
    numeric: bool,
}

impl CsvDecoder<'_> {
    /// A decoder for `info`'s records; `after` is the last stored time, which every
    /// record must exceed.
    pub fn new(info: &DatasetInfo, after: Option<Nanos>) -> CsvDecoder<'_> {
        Self::with(Cow::Borrowed(info), after)
    }

    /// [`new`](CsvDecoder::new) with its own copy of the metadata.
    pub fn owned(info: DatasetInfo, after: Option<Nanos>) -> CsvDecoder<'static> {
        CsvDecoder::with(Cow::Owned(info), after)
    }

    fn with(info: Cow<'_, DatasetInfo>, after: Option<Nanos>) -> CsvDecoder<'_> {
        // Generous: any number, quoted texts of only quotes, and room for spaces.
        let max_line = 64 * 1024
            + info.parameters.iter().map(|p| p.width() * (64 + 2 * p.length.unwrap_or(0))).sum::<usize>();
        let numeric =
            info.parameters[1..].iter().all(|p| matches!(p.kind, ParamType::Double | ParamType::Integer));
        CsvDecoder {
            numeric,
            partial: Vec::new(),
            pushed: 0,
            max_line,
            fields: 1 + info.parameters.iter().skip(1).map(Parameter::width).sum::<usize>(),
            times: TimeCheck::new(&info, after),
            from: None,
            started: false,
            blank: None,
            batch: empty_batch(&info),
            info,
            buf: Vec::new(),
            spans: Vec::new(),
            in_buf: false,
        }
    }

    /// Decodes one physical line (without its line ending; a trailing CR is dropped),
    /// numbered from 1. On error nothing of the line is kept.
    pub fn line(&mut self, number: usize, line: &[u8]) -> Result<(), DecodeError> {
        let mut line = line.strip_suffix(b"\r").unwrap_or(line);
        if !self.started {
            // Spreadsheet exports often start with a byte-order mark.
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            if self.started && self.blank.is_none() {
                self.blank = Some(number);
            }
            return Ok(());
        }
        if let Some(blank) = self.blank {
            return Err(DecodeError {
                line: blank,
                column: None,
                name: None,
                message: format!("blank line between records (line {number} follows it)"),
            });
        }
        if line[0] == b'#' {
            if !self.started {
                return Ok(());
            }
            return Err(self.error(number, None, "a '#' header line after the first record".to_owned()));
        }
        self.started = true;
        if let Some(from) = self.from
            && let Some(comma) = line.iter().position(|&c| c == b',')
            && line[0] != b'"'
        {
            // Before the range only the time is read: it must still be valid and in order.
            let t = self
                .times
                .check_bytes(line[..comma].trim_ascii())
                .map_err(|m| self.error(number, Some(0), m))?;
            if t < from {
                self.times.accept(t);
                return Ok(());
            }
            // Times increase: every later line is in the range, and is read once.
            self.from = None;
        }
        if self.numeric {
            let rows = self.batch.times.len();
            if let Some(t) = self.plain(line) {
                self.batch.times.push(t);
                self.times.accept(t);
                return Ok(());
            }
            truncate(&mut self.batch, rows);
        }
        self.split(line).map_err(|(field, message)| self.error(number, Some(field), message.to_owned()))?;
        if self.spans.len() != self.fields {
            let message = format!(
                "expected {} fields (the time and {} values), found {}",
                self.fields,
                self.fields - 1,
                self.spans.len()
            );
            return Err(self.error(number, None, message));
        }
        let rows = self.batch.times.len();
        let buf = std::mem::take(&mut self.buf);
        let record = self.record(if self.in_buf { &buf[..] } else { line });
        self.buf = buf;
        match record {
            Ok(t) => {
                self.batch.times.push(t);
                self.times.accept(t);
                Ok(())
            }
            Err((field, message)) => {
                truncate(&mut self.batch, rows);
                Err(self.error(number, Some(field), message))
            }
        }
    }

    /// Decodes every whole line of `bytes`, after what an earlier push left of a line;
    /// lines are numbered from 1 in the order pushed.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let mut rest = bytes;
        if !self.partial.is_empty() {
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                return self.keep_partial(rest);
            };
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&rest[..nl]);
            self.pushed += 1;
            let decoded = self.line(self.pushed, &line);
            line.clear();
            self.partial = line;
            decoded?;
            rest = &rest[nl + 1..];
        }
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', rest) {
            self.pushed += 1;
            self.line(self.pushed, &rest[start..nl])?;
            start = nl + 1;
        }
        self.keep_partial(&rest[start..])
    }

    fn keep_partial(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        if self.partial.len() + bytes.len() > self.max_line {
            let message = format!(
                "a line longer than {} bytes, the most a record of this dataset needs",
                self.max_line
            );
            return Err(DecodeError { line: self.pushed + 1, column: None, name: None, message });
        }
        self.partial.extend_from_slice(bytes);
        Ok(())
    }

    /// Whether the last [`push`](CsvDecoder::push) ended inside a line.
    pub fn in_line(&self) -> bool {
        !self.partial.is_empty()
    }

    /// The input ended: decodes what it left of a last line without its line break.
    pub fn finish_line(&mut self) -> Result<(), DecodeError> {
        if self.partial.is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.partial);
        self.pushed += 1;
        self.line(self.pushed, &line)
    }

    /// Drops records before `from` after checking only their time (a reader that
    /// ignores the requested range, the first file of one): the rest of such a line is
    /// never parsed.
    pub fn skip_before(&mut self, from: Nanos) {
        self.from = Some(from);
    }

    /// Records buffered now.
    pub fn rows(&self) -> usize {
        self.batch.times.len()
    }

    /// Hands over the buffered records; the ordering check carries on across batches.
    pub fn take_batch(&mut self) -> Batch {
        std::mem::replace(&mut self.batch, empty_batch(&self.info))
    }

    /// Splits `line` into `spans` over `buf` (RFC 4180); on error the 0-based field and why.
    fn split(&mut self, line: &[u8]) -> Result<(), (usize, &'static str)> {
        self.buf.clear();
        self.spans.clear();
        // Most lines quote nothing: their fields are ranges of the line itself, found
        // in one pass that gives up at the first quote (a SIMD search per comma costs
        // more on lines this short).
        self.in_buf = false;
        let mut start = 0;
        for (i, &c) in line.iter().enumerate() {
            if c == b',' {
                self.spans.push((start, i));
                start = i + 1;
            } else if c == b'"' {
                self.in_buf = true;
                break;
            }
        }
        if !self.in_buf {
            self.spans.push((start, line.len()));
            return Ok(());
        }
        self.spans.clear();
        let mut i = 0;
        loop {
            let start = self.buf.len();
            let field = self.spans.len();
            let end = if line.get(i) == Some(&b'"') {
                i += 1;
                loop {
                    let Some(q) = line[i..].iter().position(|&c| c == b'"') else {
                        return Err((
                            field,
                            "quoted field not closed on its line (line breaks inside quoted fields are not supported)",
                        ));
                    };
                    self.buf.extend_from_slice(&line[i..i + q]);
                    i += q + 1;
                    if line.get(i) == Some(&b'"') {
                        self.buf.push(b'"');
                        i += 1;
                    } else {
                        break;
                    }
                }
                if i < line.len() && line[i] != b',' {
                    return Err((field, "unexpected character after a closing quote"));
                }
                i
            } else {
                let end = line[i..].iter().position(|&c| c == b',').map_or(line.len(), |p| i + p);
                if line[i..end].contains(&b'"') {
                    return Err((
                        field,
                        "a quote inside an unquoted field (quote the whole field and double the quote)",
                    ));
                }
                self.buf.extend_from_slice(&line[i..end]);
                end
            };
            self.spans.push((start, self.buf.len()));
            if end >= line.len() {
                return Ok(());
            }
            i = end + 1;
        }
    }

    /// A line of a dataset of numbers only, read in one pass: the number parsers stop at
    /// the comma, so the line is not split first. Appends the values and gives the time;
    /// `None` for anything but short plain numbers (spaces, exponents, quotes, a wrong
    /// field count, an error), which the general path then reads, and which may have
    /// appended some values.
    fn plain(&mut self, line: &[u8]) -> Option<Nanos> {
        let len = self.times.format.len;
        let cut = if line.get(len) == Some(&b',') { len } else { memchr::memchr(b',', line)? };
        let t = self.times.check_bytes(&line[..cut]).ok()?;
        let mut i = cut;
        for column in &mut self.batch.columns {
            match column {
                Column::Double { width, values } => {
                    for _ in 0..*width {
                        if line.get(i) != Some(&b',') {
                            return None;
                        }
                        let (v, n) = short_decimal_prefix(&line[i + 1..])?;
                        values.push(v);
                        i += 1 + n;
                    }
                }
                Column::Integer { width, values } => {
                    for _ in 0..*width {
                        if line.get(i) != Some(&b',') {
                            return None;
                        }
                        let (v, n) = short_integer_prefix(&line[i + 1..])?;
                        values.push(v);
                        i += 1 + n;
                    }
                }
                Column::Text { .. } => return None,
            }
        }
        (i == line.len()).then_some(t)
    }

    /// Checks the fields of a split line and appends the values (not the time);
    /// returns the time, or the 0-based field at fault and why.
    fn record(&mut self, fields: &[u8]) -> Result<Nanos, (usize, String)> {
        let (a, b) = self.spans[0];
        let time = &fields[a..b];
        if !time.is_ascii() && std::str::from_utf8(time).is_err() {
            return Err((0, "time is not valid UTF-8".to_owned()));
        }
        // Spaces around numbers and times are tolerated (the spec's own examples have
        // them); strings keep theirs.
        let t = self.times.check_bytes(time.trim_ascii()).map_err(|m| (0, m))?;
        let mut f = 1;
        for (p, column) in self.info.parameters[1..].iter().zip(&mut self.batch.columns) {
            for _ in 0..p.width() {
                let (a, b) = self.spans[f];
                value(p, &fields[a..b], column).map_err(|m| (f, m))?;
                f += 1;
            }
        }
        Ok(t)
    }

    fn error(&self, line: usize, field: Option<usize>, message: String) -> DecodeError {
        DecodeError { line, column: field.map(|f| f + 1), name: field.map(|f| self.field_name(f)), message }
    }

    /// The parameter of 0-based field `f`, with its row-major index for arrays.
    fn field_name(&self, f: usize) -> String {
        let mut first = 0;
        for p in &self.info.parameters {
            let w = if first == 0 { 1 } else { p.width() };
            if f < first + w {
                if p.size.is_empty() {
                    return p.name.clone();
                }
                let mut k = f - first;
                let mut index = vec![0; p.size.len()];
                for (slot, &d) in index.iter_mut().zip(&p.size).rev() {
                    *slot = k % d.max(1);
                    k /= d.max(1);
                }
                let index: Vec<String> = index.iter().map(usize::to_string).collect();
                return format!("{}[{}]", p.name, index.join(","));
            }
            first += w;
        }
        format!("field {}", f + 1)
    }
}

/// The checks every primary time passes, in csv and binary alike: a HAPI time, inside
/// the range of [`Nanos`], exact in the dataset's time format, after the one before.
#[derive(Debug)]
struct TimeCheck {
    /// The time every next record must exceed.
    last: Option<Nanos>,
    /// Whether `last` is the stored time given to `new` rather than a decoded record's.
    last_is_stored: bool,
    resolution: Nanos,
    /// `resolution`, for the check of every time.
    divisor: Divisor,
    format: time::TimeFormat,
    /// Times of the previous record's day cost a few digits, not a full parse.
    reader: time::TimeReader,
}

impl TimeCheck {
    fn new(info: &DatasetInfo, after: Option<Nanos>) -> TimeCheck {
        TimeCheck {
            last: after,
            last_is_stored: after.is_some(),
            resolution: info.time_format.resolution().max(1),
            divisor: Divisor::new(info.time_format.resolution().max(1).unsigned_abs()),
            format: info.time_format,
            reader: time::TimeReader::default(),
        }
    }

    /// From now on, tell whether each time is written exactly as the dataset's format
    /// writes it ([`TimeCheck::exact`]).
    fn tell_exact(&mut self) {
        self.reader = time::TimeReader::exact_in(self.format);
    }

    /// Whether the last time checked is written exactly as the dataset's format writes
    /// it; false unless [`TimeCheck::tell_exact`] was called.
    fn exact(&self) -> bool {
        self.reader.exact()
    }

    /// The time of `raw` (bytes that need not be UTF-8), checked;
    /// [`accept`](TimeCheck::accept) it once its record is whole.
    fn check_bytes(&mut self, raw: &[u8]) -> Result<Nanos, String> {
        let t = self.reader.parse(raw).map_err(|e| format!("not a HAPI time ({e}): {}", shown(raw)))?;
        if t == Nanos::MIN || t == Nanos::MAX {
            return Err(format!("time outside 1677-09-21..2262-04-11: {}", shown(raw)));
        }
        if !self.divisor.divides(t.unsigned_abs()) {
            return Err(format!(
                "time {} is finer than the dataset's {}-character times resolve ({}): output would repeat or reorder times",
                String::from_utf8_lossy(raw),
                self.format.len,
                describe(self.resolution)
            ));
        }
        if let Some(last) = self.last
            && t <= last
        {
            let last = time::format_string(last, self.format);
            let what = if self.last_is_stored { "the last stored time" } else { "the previous record" };
            let text = String::from_utf8_lossy(raw);
            return Err(format!("time {text} is not after {what} ({last}); times must increase strictly"));
        }
        Ok(t)
    }

    fn accept(&mut self, t: Nanos) {
        self.last = Some(t);
        self.last_is_stored = false;
    }
}

/// Divisibility by a fixed divisor without a division, once per decoded time (a 64-bit
/// `idiv` was half of the time check's cost): `n` is a multiple of `2^shift * odd` when
/// its low `shift` bits are zero and `(n >> shift) * odd⁻¹ mod 2^64` is at most
/// `u64::MAX / odd` (Granlund and Montgomery, "Division by invariant integers using
/// multiplication", 1994, §9).
#[derive(Debug, Clone, Copy)]
struct Divisor {
    shift: u32,
    inverse: u64,
    limit: u64,
}

impl Divisor {
    fn new(d: u64) -> Divisor {
        let d = d.max(1);
        let shift = d.trailing_zeros();
        let odd = d >> shift;
        // Newton's iteration for the inverse modulo 2^64: `odd` is its own inverse to 3
        // bits, and each step doubles the correct bits (3, 6, 12, 24, 48, 96).
        let mut inverse = odd;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inverse)));
        }
        Divisor { shift, inverse, limit: u64::MAX / odd }
    }

    fn divides(self, n: u64) -> bool {
        n.trailing_zeros() >= self.shift && (n >> self.shift).wrapping_mul(self.inverse) <= self.limit
    }
}

/// Checks one value of parameter `p` and appends it to `column`. Only what is not a
/// short number is checked for UTF-8: the fast paths read digits, which are ASCII.
fn value(p: &Parameter, raw: &[u8], column: &mut Column) -> Result<(), String> {
    let utf8 = |raw| std::str::from_utf8(raw).map_err(|_| "not valid UTF-8".to_owned());
    match column {
        Column::Double { values, .. } => {
            let raw = raw.trim_ascii();
            let v = match short_decimal(raw) {
                Some(v) => v,
                None => utf8(raw)?.parse::<f64>().map_err(|_| format!("not a double: {}", shown(raw)))?,
            };
            if v.is_infinite() {
                return Err(format!("not a finite double: {} (write the fill value instead)", shown(raw)));
            }
            values.push(v);
        }
        Column::Integer { values, .. } => {
            let raw = raw.trim_ascii();
            if let Some(v) = short_integer(raw) {
                values.push(v);
                return Ok(());
            }
            let v = utf8(raw)?.parse::<i32>().map_err(|e| match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    format!("integer out of the 32-bit range: {}", shown(raw))
                }
                _ => format!("not an integer: {}", shown(raw)),
            })?;
            values.push(v);
        }
        Column::Text { len, bytes, .. } => {
            let text = utf8(raw)?;
            if raw.contains(&0) {
                return Err("contains a NUL character".to_owned());
            }
            if p.kind == ParamType::IsoTime && p.fill.as_deref() != Some(text) {
                time::parse_strict(text).map_err(|e| format!("not a HAPI time ({e}): {}", shown(raw)))?;
                if raw.len() != *len {
                    return Err(format!(
                        "an isotime value must have exactly {len} characters, found {}",
                        raw.len()
                    ));
                }
            }
            if !push_text(bytes, raw, *len) {
                return Err(format!("{} bytes exceed the parameter's length of {len}", raw.len()));
            }
        }
    }
    Ok(())
}

/// `[-+]digits` with 9 digits at most, which always fits an `i32`: what `str::parse`
/// gives without its general path. Anything else: `None`.
fn short_integer(b: &[u8]) -> Option<i32> {
    short_integer_prefix(b).and_then(|(v, n)| (n == b.len()).then_some(v))
}

/// [`short_integer`] of the longest start of `b` that can be one, and its length;
/// `None` when that start has more than 9 digits.
fn short_integer_prefix(b: &[u8]) -> Option<(i32, usize)> {
    let (negative, sign) = sign_of(b)?;
    let mut v = 0i32;
    let mut n = 0;
    for &c in &b[sign..] {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if n == 9 {
            return None;
        }
        v = v * 10 + i32::from(d);
        n += 1;
    }
    (n > 0).then_some((if negative { -v } else { v }, sign + n))
}

/// Whether `b` (not empty) starts with `-`, and the bytes its sign takes.
fn sign_of(b: &[u8]) -> Option<(bool, usize)> {
    Some(match b.first()? {
        b'-' => (true, 1),
        b'+' => (false, 1),
        _ => (false, 0),
    })
}

/// `[-+]digits[.digits]` with 15 digits at most, as time series mostly hold: the
/// digits as an integer divided by a power of ten. Both are exact in `f64` (below 2^53,
/// and 10^15), and one IEEE division rounds correctly, so this is the value
/// `str::parse` gives, at a fraction of its cost on the csv files' hot path (std's
/// general parser was a sixth of a files download). Anything else: `None`.
fn short_decimal(b: &[u8]) -> Option<f64> {
    short_decimal_prefix(b).and_then(|(v, n)| (n == b.len()).then_some(v))
}

/// [`short_decimal`] of the longest start of `b` that can be one, and its length: the
/// value of a field that ends at the next comma, read without looking for the comma
/// first. `None` when that start has more than 15 digits.
fn short_decimal_prefix(b: &[u8]) -> Option<(f64, usize)> {
    const POW10: [f64; 16] =
        [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let (negative, sign) = sign_of(b)?;
    let (mut m, mut n, mut fraction, mut dot) = (0u64, 0usize, 0usize, false);
    let mut used = sign;
    for &c in &b[sign..] {
        if c == b'.' && !dot {
            dot = true;
            used += 1;
            continue;
        }
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if n == 15 {
            return None;
        }
        m = m * 10 + u64::from(d);
        n += 1;
        used += 1;
        fraction += usize::from(dot);
    }
    if n == 0 {
        return None;
    }
    let v = m as f64 / POW10[fraction];
    Some((if negative { -v } else { v }, used))
}

fn empty_batch(info: &DatasetInfo) -> Batch {
    let columns = info.parameters[1..]
        .iter()
        .map(|p| {
            let width = p.width();
            match p.kind {
                ParamType::Double => Column::Double { width, values: Vec::new() },
                ParamType::Integer => Column::Integer { width, values: Vec::new() },
                ParamType::String | ParamType::IsoTime => {
                    Column::Text { width, len: p.length.unwrap_or(0), bytes: Vec::new() }
                }
            }
        })
        .collect();
    Batch { times: Vec::new(), columns, wire: None }
}

/// Drops whatever a refused line appended, so that every column keeps `rows` records.
fn truncate(b: &mut Batch, rows: usize) {
    for c in &mut b.columns {
        match c {
            Column::Double { width, values } => values.truncate(rows * *width),
            Column::Integer { width, values } => values.truncate(rows * *width),
            Column::Text { width, len, bytes } => bytes.truncate(rows * *width * *len),
        }
    }
}

/// A field for an error message, cut short so that a runaway line is not echoed whole.
fn shown(raw: &[u8]) -> String {
    const MAX: usize = 40;
    let text = String::from_utf8_lossy(raw);
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// `resolution` in words: "1 ms", "10 ns", "1 s", "1 day".
fn describe(resolution: Nanos) -> String {
    const UNITS: [(Nanos, &str); 7] = [
        (86_400_000_000_000, "day"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "min"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "µs"),
        (1, "ns"),
    ];
    let (unit, name) = UNITS.iter().find(|(u, _)| resolution % u == 0).copied().unwrap_or((1, "ns"));
    format!("{} {name}", resolution / unit)
}

mod binary;
pub use binary::BinaryDecoder;

#[cfg(test)]
mod tests;
