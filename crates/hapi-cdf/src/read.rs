//! Reading records: the VXR tree of one variable (built on first use), its VVR and CVVR
//! blocks (a few inflated ones cached), unwritten and sparse records filled, column-major
//! records transposed, then decoded; binary search on a sorted epoch; batches.

use std::collections::{HashSet, VecDeque};
use std::ops::Range;
use std::sync::{Arc, PoisonError};

use hapi_core::Nanos;

use crate::cdf::{Cdf, compression_name};
use crate::error::{Error, Result};
use crate::records;
use crate::types::Values;
use crate::variable::{Compression, Sparse, Variable};

/// Inflated blocks kept per file: enough for a binary search and a sequential read of
/// a few variables at once, small enough that memory stays a few blocks.
const CACHE_BLOCKS: usize = 8;
/// The largest read of [`Cdf::read`]; [`Cdf::batches`] reads anything in bounded pieces.
pub const MAX_READ_BYTES: u64 = 1 << 30;
/// The most bytes of one variable in one batch of [`Cdf::batches`].
const BATCH_BYTES: u64 = 8 << 20;
/// VXR trees are two or three levels deep in practice.
const MAX_VXR_DEPTH: u32 = 16;

/// One leaf of a variable's VXR tree: records `first..=last` (clamped to MaxRec) are in
/// the VVR or CVVR at `offset`, which holds `first..=stored_last`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extent {
    first: u64,
    last: u64,
    stored_last: u64,
    offset: u64,
    size: u64,
    compressed: bool,
}

#[derive(Debug, Default)]
pub(crate) struct BlockCache {
    blocks: VecDeque<(u64, Arc<Vec<u8>>)>,
}

/// Records of several variables, the same record range of each.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Number of the first record.
    pub first: u64,
    /// Number of records.
    pub len: u64,
    /// One column per requested variable, in request order.
    pub columns: Vec<Values>,
}

/// An iterator of [`Batch`]es, from [`Cdf::batches`].
#[derive(Debug)]
pub struct Batches<'a> {
    cdf: &'a Cdf,
    vars: Vec<usize>,
    next: u64,
    end: u64,
    step: u64,
}

impl Iterator for Batches<'_> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.end {
            return None;
        }
        let first = self.next;
        let last = (first + self.step).min(self.end);
        let columns = self.vars.iter().map(|&v| self.cdf.read(v, first..last)).collect::<Result<Vec<_>>>();
        self.next = if columns.is_ok() { last } else { self.end };
        Some(columns.map(|columns| Batch { first, len: last - first, columns }))
    }
}

impl Values {
    /// Epoch values as Unix nanoseconds (see [`crate::time`]); `None` for other types.
    pub fn to_nanos(&self) -> Option<Vec<Nanos>> {
        use crate::time::*;
        Some(match self {
            Values::Epoch(v) => v.iter().map(|&ms| epoch_to_nanos(ms)).collect(),
            Values::Epoch16(v) => v.iter().map(|p| epoch16_to_nanos(p[0], p[1])).collect(),
            Values::Tt2000(v) => v.iter().map(|&t| tt2000_to_nanos(t)).collect(),
            _ => return None,
        })
    }
}

impl Cdf {
    fn var(&self, var: usize) -> Result<&Variable> {
        self.vars.get(var).ok_or_else(|| Error::Request(format!("no variable number {var}")))
    }

    /// Bytes of one record of `v`, checked to be something the file could hold.
    fn record_bytes(&self, v: &Variable) -> Result<u64> {
        let rb = v.record_bytes().ok_or_else(|| {
            Error::corrupt(block_of(v), v.at, format!("record size of {} overflows", v.name))
        })?;
        // A stored record lies in the file, or inflates from it at most 1032:1.
        let cap = self.src.len().saturating_mul(if v.compression == Compression::None { 1 } else { 1032 });
        if rb > cap.max(1 << 16) {
            return Err(Error::corrupt(
                block_of(v),
                v.at,
                format!("record size {rb} of {} larger than the file could hold", v.name),
            ));
        }
        Ok(rb)
    }

    /// Reads records `range` of variable number `var` (see [`Cdf::variables`]).
    pub fn read(&self, var: usize, range: Range<u64>) -> Result<Values> {
        let v = self.var(var)?;
        let mut raw = Vec::new();
        self.read_raw(var, range, &mut raw)?;
        let mut out = Values::empty(v.data_type);
        out.extend_from(&raw, self.order, v.num_elems as usize);
        Ok(out)
    }

    /// Reads records `range` of an epoch variable as Unix nanoseconds.
    pub fn read_times(&self, var: usize, range: Range<u64>) -> Result<Vec<Nanos>> {
        let v = self.var(var)?;
        if !v.data_type.is_time() {
            return Err(Error::Request(format!("{} is {}, not an epoch", v.name, v.data_type.name())));
        }
        Ok(self.read(var, range)?.to_nanos().unwrap_or_default())
    }

    /// Records `range` of `vars`, `batch_records` at a time (fewer when records are
    /// large, so that a batch holds at most a few MB per variable).
    pub fn batches(&self, vars: &[usize], range: Range<u64>, batch_records: u64) -> Result<Batches<'_>> {
        let mut step = batch_records.max(1);
        for &var in vars {
            let v = self.var(var)?;
            let rb = self.record_bytes(v)?;
            step = step.min((BATCH_BYTES / rb.max(1)).max(1));
            check_range(v, &range)?;
        }
        Ok(Batches { cdf: self, vars: vars.to_vec(), next: range.start, end: range.end, step })
    }

    /// The records of a sorted epoch variable whose times are in `[start, stop)`, found by
    /// binary search (each probe reads one record, through the block cache).
    pub fn time_range(&self, var: usize, start: Nanos, stop: Nanos) -> Result<Range<u64>> {
        let v = self.var(var)?;
        if !v.data_type.is_time() || v.values_per_record() != 1 {
            return Err(Error::Request(format!("{} is not a scalar epoch variable", v.name)));
        }
        let n = v.records;
        let lower = |t: Nanos| -> Result<u64> {
            let (mut lo, mut hi) = (0, n);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let at = self.read_times(var, mid..mid + 1)?;
                if at.first().copied().unwrap_or(Nanos::MIN) < t {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            Ok(lo)
        };
        let a = lower(start)?;
        let b = if stop <= start { a } else { lower(stop)? };
        Ok(a..b)
    }

    /// The leaf blocks of variable `var`, sorted, from its VXR tree (read once).
    fn extents(&self, var: usize) -> Result<Arc<[Extent]>> {
        let mut slot = self.index[var].lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = &*slot {
            return Ok(e.clone());
        }
        let v = &self.vars[var];
        let mut out = Vec::new();
        if v.records > 0 && v.vxr_head != 0 {
            self.walk_vxr(v, v.vxr_head, 0, &mut HashSet::new(), &mut out)?;
        }
        out.sort_by_key(|e| e.first);
        for w in out.windows(2) {
            if w[1].first <= w[0].last {
                return Err(Error::corrupt(
                    "VXR",
                    w[1].offset,
                    format!(
                        "{}: block of records {}.. overlaps records ..={}",
                        v.name, w[1].first, w[0].last
                    ),
                ));
            }
        }
        let e: Arc<[Extent]> = out.into();
        *slot = Some(e.clone());
        Ok(e)
    }

    fn walk_vxr(
        &self,
        v: &Variable,
        head: u64,
        depth: u32,
        seen: &mut HashSet<u64>,
        out: &mut Vec<Extent>,
    ) -> Result<()> {
        if depth > MAX_VXR_DEPTH {
            return Err(Error::corrupt("VXR", head, format!("tree deeper than {MAX_VXR_DEPTH} levels")));
        }
        let mut at = head;
        while at != 0 {
            if !seen.insert(at) {
                return Err(Error::corrupt(
                    "VXR",
                    at,
                    format!("{}: reached twice (a loop in the VXR chain)", v.name),
                ));
            }
            let (next, entries) = records::vxr(&self.src, self.layout, at)?;
            for (i, e) in entries.iter().enumerate() {
                // Records allocated past MaxRec were never written.
                if u64::from(e.first) >= v.records {
                    continue;
                }
                let (size, kind) = records::header(&self.src, self.layout, e.offset, "VXR entry")
                    .map_err(|err| Error::corrupt("VXR", at, format!("entry {i}: {err}")))?;
                match kind {
                    records::VXR => self.walk_vxr(v, e.offset, depth + 1, seen, out)?,
                    records::VVR | records::CVVR => {
                        if !seen.insert(e.offset) {
                            return Err(Error::corrupt(
                                "VXR",
                                at,
                                format!("entry {i} offset {} used twice", e.offset),
                            ));
                        }
                        out.push(Extent {
                            first: u64::from(e.first),
                            last: u64::from(e.last).min(v.records - 1),
                            stored_last: u64::from(e.last),
                            offset: e.offset,
                            size,
                            compressed: kind == records::CVVR,
                        });
                    }
                    k => {
                        return Err(Error::corrupt(
                            "VXR",
                            at,
                            format!("entry {i} offset {} points to a {}", e.offset, records::kind_name(k)),
                        ));
                    }
                }
            }
            at = next;
        }
        Ok(())
    }

    /// Copies records `from..to` (inside `e`) into `out`.
    fn copy_records(
        &self,
        v: &Variable,
        e: &Extent,
        rb: u64,
        from: u64,
        to: u64,
        out: &mut [u8],
    ) -> Result<()> {
        // Saturating: an absurd product fails the size checks below instead of wrapping.
        let need = (to - e.first).saturating_mul(rb);
        let skip = (from - e.first).saturating_mul(rb);
        if !e.compressed {
            let head = self.layout.header();
            let held = e.size - head;
            if need > held {
                return Err(Error::corrupt(
                    "VVR",
                    e.offset,
                    format!("{}: holds {held} bytes, records {}..{to} need {need}", v.name, e.first),
                ));
            }
            return self.src.read_into("VVR", e.offset, "records", e.offset + head + skip, out);
        }
        let block = self.inflated(v, e, rb)?;
        let got = block
            .get(usize::try_from(skip).unwrap_or(usize::MAX)..usize::try_from(need).unwrap_or(usize::MAX))
            .ok_or_else(|| {
                Error::corrupt(
                    "CVVR",
                    e.offset,
                    format!("{}: inflated block too short for records ..{to}", v.name),
                )
            })?;
        out.copy_from_slice(got);
        Ok(())
    }

    /// The inflated records of the CVVR `e`, from the cache when it is there.
    fn inflated(&self, v: &Variable, e: &Extent, rb: u64) -> Result<Arc<Vec<u8>>> {
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, b)) = cache.blocks.iter().find(|(o, _)| *o == e.offset) {
                return Ok(b.clone());
            }
        }
        match v.compression {
            Compression::Gzip => {}
            Compression::None => {
                return Err(Error::corrupt(
                    "CVVR",
                    e.offset,
                    format!("{} is not compressed but has a CVVR", v.name),
                ));
            }
            Compression::Unsupported(c) => {
                return Err(Error::Unsupported(format!("{}: {} compression", v.name, compression_name(c))));
            }
        }
        // rfuA (4 bytes), then cSize, then the data.
        let off = self.layout.off();
        let fields = self.layout.header() + 4 + off;
        if e.size < fields {
            return Err(Error::corrupt(
                "CVVR",
                e.offset,
                format!("record size {} smaller than its fields", e.size),
            ));
        }
        let cb = self.src.bytes("CVVR", e.offset, "cSize", e.offset + fields - off, off)?;
        let csize = if off == 8 {
            i64::from_be_bytes(cb[..8].try_into().expect("8 bytes"))
        } else {
            i64::from(i32::from_be_bytes(cb[..4].try_into().expect("4 bytes")))
        };
        let csize = u64::try_from(csize).ok().filter(|&c| c <= e.size - fields).ok_or_else(|| {
            Error::corrupt("CVVR", e.offset, format!("cSize {csize} beyond the record size {}", e.size))
        })?;
        let data = self.src.bytes("CVVR", e.offset, "data", e.offset + fields, csize)?;
        let claimed = (e.stored_last - e.first + 1).saturating_mul(rb);
        let needed = (e.last - e.first + 1).saturating_mul(rb);
        let block = Arc::new(crate::inflate::gunzip(&data, claimed, needed, "CVVR", e.offset)?);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.blocks.len() >= CACHE_BLOCKS {
            cache.blocks.pop_front();
        }
        cache.blocks.push_back((e.offset, block.clone()));
        Ok(block)
    }

    /// Appends the raw bytes of records `range` of `var` to `out`: in the file's byte
    /// order, unwritten records filled, each record row-major.
    pub(crate) fn read_raw(&self, var: usize, range: Range<u64>, out: &mut Vec<u8>) -> Result<()> {
        let v = self.var(var)?;
        check_range(v, &range)?;
        let rb = self.record_bytes(v)?;
        let total =
            (range.end - range.start).checked_mul(rb).filter(|&t| t <= MAX_READ_BYTES).ok_or_else(|| {
                Error::Request(format!(
                    "{}: {} records of {rb} bytes exceed one read's {MAX_READ_BYTES} bytes: read in batches",
                    v.name,
                    range.end - range.start
                ))
            })?;
        if total == 0 {
            return Ok(());
        }
        let ext = self.extents(var)?;
        let base = out.len();
        out.resize(base + total as usize, 0);
        let buf = &mut out[base..];
        let at = |r: u64| ((r - range.start) * rb) as usize;
        let mut r = range.start;
        let mut i = ext.partition_point(|e| e.last < r);
        while r < range.end {
            if let Some(e) = ext.get(i).filter(|e| e.first <= r) {
                let end = range.end.min(e.last + 1);
                self.copy_records(v, e, rb, r, end, &mut buf[at(r)..at(end)])?;
                r = end;
                i += 1;
                continue;
            }
            let end = ext.get(i).map_or(range.end, |e| e.first.min(range.end));
            let gap = &mut buf[at(r)..at(end)];
            let prev = if v.sparse == Sparse::Previous { i.checked_sub(1).map(|p| ext[p]) } else { None };
            match prev {
                Some(p) => {
                    let mut one = vec![0; rb as usize];
                    self.copy_records(v, &p, rb, p.last, p.last + 1, &mut one)?;
                    fill(gap, &one);
                }
                None => fill(gap, &v.pad),
            }
            r = end;
        }
        let shape = v.shape();
        if !self.row_major && shape.len() >= 2 {
            transpose(buf, &shape, v.value_bytes() as usize);
        }
        Ok(())
    }
}

fn block_of(v: &Variable) -> &'static str {
    if v.z { "zVDR" } else { "rVDR" }
}

fn check_range(v: &Variable, range: &Range<u64>) -> Result<()> {
    if range.start > range.end || range.end > v.records {
        return Err(Error::Request(format!(
            "{}: records {}..{} outside its {} records",
            v.name, range.start, range.end, v.records
        )));
    }
    Ok(())
}

/// Fills `buf` with copies of `unit`.
fn fill(buf: &mut [u8], unit: &[u8]) {
    if unit.is_empty() {
        return;
    }
    let first = unit.len().min(buf.len());
    buf[..first].copy_from_slice(&unit[..first]);
    let mut done = first;
    while done < buf.len() {
        let n = done.min(buf.len() - done);
        buf.copy_within(..n, done);
        done += n;
    }
}

/// Reorders each record from column-major (first index fastest) to row-major (last
/// index fastest); `unit` is the bytes of one value. It walks the source in order with
/// an odometer and row-major strides, so it needs no table as large as the record.
fn transpose(buf: &mut [u8], shape: &[u32], unit: usize) {
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let n: usize = dims.iter().product();
    let rb = n * unit;
    if rb == 0 {
        return;
    }
    // Row-major stride of each dimension, in values.
    let mut stride = vec![1usize; dims.len()];
    for k in (0..dims.len().saturating_sub(1)).rev() {
        stride[k] = stride[k + 1] * dims[k + 1];
    }
    let mut tmp = vec![0; rb];
    let mut idx = vec![0usize; dims.len()];
    for rec in buf.chunks_exact_mut(rb) {
        idx.iter_mut().for_each(|i| *i = 0);
        let mut dst = 0;
        for src in rec.chunks_exact(unit) {
            tmp[dst * unit..(dst + 1) * unit].copy_from_slice(src);
            // Next column-major position: the first index moves fastest.
            for k in 0..dims.len() {
                idx[k] += 1;
                dst += stride[k];
                if idx[k] < dims[k] {
                    break;
                }
                dst -= stride[k] * dims[k];
                idx[k] = 0;
            }
        }
        rec.copy_from_slice(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_2x3() {
        // Column-major [[a,b,c],[d,e,f]] is a d b e c f.
        let mut b = *b"adbecf";
        transpose(&mut b, &[2, 3], 1);
        assert_eq!(&b, b"abcdef");
    }

    #[test]
    fn transpose_2x3x2() {
        // Value at (i,j,k) is 6i + 2j + k, stored column-major at i + 2j + 6k.
        let mut col = [0u8; 12];
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..2 {
                    col[i + 2 * j + 6 * k] = (6 * i + 2 * j + k) as u8;
                }
            }
        }
        transpose(&mut col, &[2, 3, 2], 1);
        assert_eq!(col, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    }

    #[test]
    fn fill_repeats() {
        let mut b = [0u8; 7];
        fill(&mut b, &[1, 2]);
        assert_eq!(b, [1, 2, 1, 2, 1, 2, 1]);
    }
}
