//! HAPI binary records into batches, for sources that read another HAPI server.
//!
//! The wire form (REQ-180..183) has no separators: each record is the primary time as
//! fixed-length ASCII, then every element of every parameter in order, doubles and
//! integers little-endian, texts as `length` bytes of UTF-8 padded with NUL. Records
//! may arrive split anywhere across reads; the rest of a record waits for the next.
//! The times pass the csv decoder's checks, so a source cannot hand on a record the
//! encoders would write wrongly.

use super::{TimeCheck, empty_batch};
use crate::batch::{Batch, Column, Wire};
use crate::encode::QUIET_NAN;
use crate::info::{DatasetInfo, ParamType};
use crate::time::{self, Nanos, TimeFormat};

/// Turns a HAPI binary stream of `info`'s parameters (the time first) into batches.
#[derive(Debug)]
pub struct BinaryDecoder {
    /// Bytes of the primary time.
    time_len: usize,
    /// Bytes of one record.
    record: usize,
    /// The start of a record the last push ended inside.
    pending: Vec<u8>,
    times: TimeCheck,
    /// Records decoded so far, for messages.
    decoded: usize,
    names: Vec<String>,
    template: Batch,
    batch: Batch,
    /// Set when records are kept whole ([`BinaryDecoder::wire`]).
    whole: Option<Whole>,
}

/// What keeping records whole needs: where their doubles and texts lie, and the time
/// format, to write a time whose text is not the format's.
#[derive(Debug)]
struct Whole {
    /// Offset of every double element in a record.
    doubles: Vec<usize>,
    /// Offset and length of every text element, and its parameter (from 1).
    texts: Vec<(usize, usize, usize)>,
    format: TimeFormat,
    /// The format's text of a time being rewritten.
    text: Vec<u8>,
}

impl BinaryDecoder {
    /// A decoder for records of all of `info`'s parameters, in its order.
    pub fn new(info: &DatasetInfo) -> BinaryDecoder {
        let time_len = info.time_format.len;
        let template = empty_batch(info);
        let record = time_len
            + template
                .columns
                .iter()
                .map(|c| match c {
                    Column::Double { width, .. } => 8 * width,
                    Column::Integer { width, .. } => 4 * width,
                    Column::Text { width, len, .. } => width * len,
                })
                .sum::<usize>();
        BinaryDecoder {
            time_len,
            record,
            pending: Vec::new(),
            times: TimeCheck::new(info, None),
            decoded: 0,
            names: info.parameters.iter().map(|p| p.name.clone()).collect(),
            batch: template.clone(),
            template,
            whole: None,
        }
    }

    /// A decoder that keeps records whole ([`Batch::wire`]) for an encoder of `info`'s
    /// parameters in its time format: the same checks, and what the encoder must not
    /// write as it came (a non-canonical NaN, bytes after a text's first NUL, a time
    /// written otherwise than the format writes it) is rewritten in place.
    pub fn wire(info: &DatasetInfo) -> BinaryDecoder {
        let mut d = BinaryDecoder::new(info);
        let (mut doubles, mut texts) = (Vec::new(), Vec::new());
        let mut at = d.time_len;
        for (i, p) in info.parameters.iter().enumerate().skip(1) {
            for _ in 0..p.width() {
                match p.kind {
                    ParamType::Double => {
                        doubles.push(at);
                        at += 8;
                    }
                    ParamType::Integer => at += 4,
                    ParamType::String | ParamType::IsoTime => {
                        let len = p.length.unwrap_or(0);
                        texts.push((at, len, i));
                        at += len;
                    }
                }
            }
        }
        d.batch.columns.clear();
        d.batch.wire = Some(Wire { record_len: d.record, bytes: Vec::new() });
        d.template = d.batch.clone();
        d.times.tell_exact();
        d.whole = Some(Whole { doubles, texts, format: info.time_format, text: Vec::new() });
        d
    }

    /// Bytes of one record.
    pub fn record_len(&self) -> usize {
        self.record
    }

    /// Decodes every whole record of `bytes` (after what an earlier push left over).
    /// The error names the record (from 1) and the parameter at fault.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        if !self.pending.is_empty() {
            let need = self.record - self.pending.len();
            let take = need.min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() < self.record {
                return Ok(());
            }
            let record = std::mem::take(&mut self.pending);
            self.decode(&record)?;
        }
        let mut records = bytes.chunks_exact(self.record);
        if self.whole.is_some() {
            // One copy of the whole run, then each record checked and mended in place.
            let run = bytes.len() / self.record * self.record;
            let start = self.wire_bytes().len();
            self.wire_bytes().extend_from_slice(&bytes[..run]);
            for (k, r) in (&mut records).enumerate() {
                let at = start + k * self.record;
                if let Err(e) = self.keep(r, at) {
                    self.wire_bytes().truncate(at);
                    return Err(e);
                }
            }
        } else {
            for r in &mut records {
                self.decode(r)?;
            }
        }
        self.pending.extend_from_slice(records.remainder());
        Ok(())
    }

    fn wire_bytes(&mut self) -> &mut Vec<u8> {
        &mut self.batch.wire.as_mut().expect("a whole-record decoder's batch is in wire form").bytes
    }

    /// Checks record `r`, already copied to `at` in the batch's wire bytes, and mends the
    /// copy where the encoder would write otherwise.
    fn keep(&mut self, r: &[u8], at: usize) -> Result<(), String> {
        let number = self.decoded + 1;
        let fail = |name: &str, what: String| format!("record {number} ({name}): {what}");
        let time = &r[..self.time_len];
        // A time shorter than its length is padded with NUL.
        let end = time.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        let t = self.times.check_bytes(&time[..end]).map_err(|m| fail(&self.names[0], m))?;
        let exact = self.times.exact();
        let whole = self.whole.as_mut().expect("keeping records whole");
        let wire =
            &mut self.batch.wire.as_mut().expect("a whole-record decoder's batch is in wire form").bytes;
        if let Some(p) = whole.mend(r, &mut wire[at..at + self.record], t, exact) {
            return Err(fail(&self.names[p], "text is not valid UTF-8".to_owned()));
        }
        self.batch.times.push(t);
        self.times.accept(t);
        self.decoded += 1;
        Ok(())
    }

    /// Checks that the stream ended on a record boundary.
    pub fn finish(&self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        Err(format!(
            "the stream ends inside record {}: {} of its {} bytes",
            self.decoded + 1,
            self.pending.len(),
            self.record
        ))
    }

    /// Records buffered now.
    pub fn rows(&self) -> usize {
        self.batch.times.len()
    }

    /// Hands over the buffered records; the ordering check carries on across batches.
    pub fn take_batch(&mut self) -> Batch {
        // The next batch is as long as this one: its columns grow once, not by doubling.
        let rows = self.batch.times.len();
        let mut next = self.template.clone();
        next.times.reserve(rows);
        if let Some(w) = &mut next.wire {
            w.bytes.reserve(rows * w.record_len);
        }
        for c in &mut next.columns {
            match c {
                Column::Double { width, values } => values.reserve(rows * *width),
                Column::Integer { width, values } => values.reserve(rows * *width),
                Column::Text { width, len, bytes } => bytes.reserve(rows * *width * *len),
            }
        }
        std::mem::replace(&mut self.batch, next)
    }

    fn decode(&mut self, r: &[u8]) -> Result<(), String> {
        if self.whole.is_some() {
            let at = self.wire_bytes().len();
            self.wire_bytes().extend_from_slice(r);
            let kept = self.keep(r, at);
            if kept.is_err() {
                self.wire_bytes().truncate(at);
            }
            return kept;
        }
        let number = self.decoded + 1;
        let fail = |name: &str, what: String| format!("record {number} ({name}): {what}");
        let (time, mut rest) = r.split_at(self.time_len);
        // A time shorter than its length is padded with NUL.
        let end = time.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        let t = self.times.check_bytes(&time[..end]).map_err(|m| fail(&self.names[0], m))?;
        let rows = self.batch.times.len();
        let mut bad = None;
        'columns: for (i, column) in self.batch.columns.iter_mut().enumerate() {
            match column {
                Column::Double { width, values } => {
                    let (v, tail) = rest.split_at(8 * *width);
                    values.extend(
                        v.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))),
                    );
                    rest = tail;
                }
                Column::Integer { width, values } => {
                    let (v, tail) = rest.split_at(4 * *width);
                    values.extend(
                        v.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes"))),
                    );
                    rest = tail;
                }
                Column::Text { width, len, bytes } => {
                    let (v, tail) = rest.split_at(*width * *len);
                    for element in v.chunks_exact((*len).max(1)).take(*width) {
                        let end = element.iter().position(|&b| b == 0).unwrap_or(element.len());
                        if std::str::from_utf8(&element[..end]).is_err() {
                            bad = Some(i + 1);
                            break 'columns;
                        }
                        // Whatever follows the first NUL is padding: kept as NUL.
                        bytes.extend_from_slice(&element[..end]);
                        bytes.resize(bytes.len() + element.len() - end, 0);
                    }
                    rest = tail;
                }
            }
        }
        if let Some(p) = bad {
            super::truncate(&mut self.batch, rows);
            return Err(fail(&self.names[p], "text is not valid UTF-8".to_owned()));
        }
        self.batch.times.push(t);
        self.times.accept(t);
        self.decoded += 1;
        Ok(())
    }
}

impl Whole {
    /// Mends `record`, the copy of `r` (whose time reads as `t`, and is the format's text
    /// for it when `exact`), to what the binary encoder would write; `Some(parameter)`
    /// (from 1) when one of its texts is not UTF-8.
    fn mend(&mut self, r: &[u8], record: &mut [u8], t: Nanos, exact: bool) -> Option<usize> {
        for &(at, len, parameter) in &self.texts {
            let text = &r[at..at + len];
            let end = text.iter().position(|&b| b == 0).unwrap_or(len);
            if std::str::from_utf8(&text[..end]).is_err() {
                return Some(parameter);
            }
        }
        if !exact {
            self.text.clear();
            time::format(t, self.format, &mut self.text);
            record[..self.text.len()].copy_from_slice(&self.text);
        }
        // Read from `r`, not from the copy: loads of bytes a wide copy has just stored
        // stall (store-to-load forwarding fails), and most records need no mending.
        for &at in &self.doubles {
            let bits = u64::from_le_bytes(r[at..at + 8].try_into().expect("8 bytes"));
            if f64::from_bits(bits).is_nan() && bits != QUIET_NAN {
                record[at..at + 8].copy_from_slice(&QUIET_NAN.to_le_bytes());
            }
        }
        for &(at, len, _) in &self.texts {
            if let Some(end) = r[at..at + len].iter().position(|&b| b == 0) {
                record[at + end..at + len].fill(0);
            }
        }
        None
    }
}
