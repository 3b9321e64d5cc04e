//! The internal records of a CDF file (CDF Internal Format Description, v3.x and v2.x):
//! each starts with its size and type; all their integers are big-endian whatever the
//! data encoding; offsets are 8 bytes in v3 and 4 bytes in v2.
//!
//! Each parser reads one record whole (its size checked against the file first) and
//! reports a bad field as `"<record> at offset N: <field> ..."`.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::source::Source;

// Record types.
pub(crate) const CDR: i32 = 1;
pub(crate) const GDR: i32 = 2;
pub(crate) const RVDR: i32 = 3;
pub(crate) const ADR: i32 = 4;
pub(crate) const AGREDR: i32 = 5;
pub(crate) const VXR: i32 = 6;
pub(crate) const VVR: i32 = 7;
pub(crate) const ZVDR: i32 = 8;
pub(crate) const AZEDR: i32 = 9;
pub(crate) const CCR: i32 = 10;
pub(crate) const CPR: i32 = 11;
pub(crate) const CVVR: i32 = 13;

pub(crate) fn kind_name(kind: i32) -> &'static str {
    match kind {
        CDR => "CDR",
        GDR => "GDR",
        RVDR => "rVDR",
        ADR => "ADR",
        AGREDR => "AgrEDR",
        VXR => "VXR",
        VVR => "VVR",
        ZVDR => "zVDR",
        AZEDR => "AzEDR",
        CCR => "CCR",
        CPR => "CPR",
        12 => "SPR",
        CVVR => "CVVR",
        _ => "record",
    }
}

/// What differs between CDF 2.x and 3.x internal records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) v3: bool,
}

impl Layout {
    /// Bytes of an offset (and of the record-size field).
    pub(crate) fn off(self) -> u64 {
        if self.v3 { 8 } else { 4 }
    }
    /// Size field plus type field.
    pub(crate) fn header(self) -> u64 {
        self.off() + 4
    }
    fn name_len(self) -> usize {
        if self.v3 { 256 } else { 64 }
    }
}

/// One record's bytes and a cursor over its fields.
pub(crate) struct Rec<'a> {
    pub(crate) block: &'static str,
    pub(crate) at: u64,
    bytes: Cow<'a, [u8]>,
    pos: usize,
    layout: Layout,
}

impl Rec<'_> {
    pub(crate) fn err(&self, msg: impl Into<String>) -> Error {
        Error::corrupt(self.block, self.at, msg)
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.err(format!(
                "{field}: {n} bytes at +{} past the record's end (size {})",
                self.pos,
                self.bytes.len()
            )));
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn i32(&mut self, field: &str) -> Result<i32> {
        let b = self.take(4, field)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count or size that must be `0..=max`.
    pub(crate) fn count(&mut self, field: &str, max: u64) -> Result<u32> {
        let v = self.i32(field)?;
        match u32::try_from(v) {
            Ok(c) if u64::from(c) <= max => Ok(c),
            _ => Err(self.err(format!("{field} {v} is out of range 0..={max}"))),
        }
    }

    /// An offset field (8 or 4 bytes). Zero (or -1, which writers also use) means none;
    /// others must point inside the file.
    pub(crate) fn off(&mut self, field: &str, file_len: u64) -> Result<u64> {
        let v = if self.layout.v3 {
            let b = self.take(8, field)?;
            i64::from_be_bytes(b.try_into().expect("8 bytes"))
        } else {
            i64::from(self.i32(field)?)
        };
        match u64::try_from(v) {
            _ if v == -1 => Ok(0),
            Ok(o) if o < file_len => Ok(o),
            _ => Err(self.err(format!("{field} {v} beyond file size {file_len}"))),
        }
    }

    pub(crate) fn skip(&mut self, n: usize, field: &str) -> Result<()> {
        self.take(n, field).map(drop)
    }

    pub(crate) fn name(&mut self, field: &str) -> Result<String> {
        let n = self.layout.name_len();
        let b = self.take(n, field)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Ok(String::from_utf8_lossy(&b[..end]).trim_end().to_owned())
    }

    pub(crate) fn rest(&mut self) -> &[u8] {
        let s = &self.bytes[self.pos..];
        self.pos = self.bytes.len();
        s
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

/// The size and type of the record at `offset`.
pub(crate) fn header(src: &Source, layout: Layout, offset: u64, block: &'static str) -> Result<(u64, i32)> {
    let hb = src.bytes(block, offset, "record header", offset, layout.header())?;
    let size = if layout.v3 {
        i64::from_be_bytes(hb[..8].try_into().expect("8 bytes"))
    } else {
        i64::from(i32::from_be_bytes(hb[..4].try_into().expect("4 bytes")))
    };
    let o = layout.off() as usize;
    let kind = i32::from_be_bytes(hb[o..o + 4].try_into().expect("4 bytes"));
    let size = u64::try_from(size).ok().filter(|&s| s >= layout.header()).ok_or_else(|| {
        Error::corrupt(block, offset, format!("record size {size} smaller than its header"))
    })?;
    src.check(block, offset, "record size", offset, size)?;
    Ok((size, kind))
}

/// Reads the whole record at `offset`, which must be one of the `kinds`.
pub(crate) fn read<'a>(
    src: &'a Source,
    layout: Layout,
    offset: u64,
    block: &'static str,
    kinds: &[i32],
) -> Result<(i32, Rec<'a>)> {
    let (size, kind) = header(src, layout, offset, block)?;
    if !kinds.contains(&kind) {
        return Err(Error::corrupt(
            block,
            offset,
            format!("record type {kind} ({}) where a {block} was expected", kind_name(kind)),
        ));
    }
    let bytes = src.bytes(block, offset, "record", offset, size)?;
    let mut rec = Rec { block, at: offset, bytes, pos: 0, layout };
    rec.skip(layout.header() as usize, "record header")?;
    Ok((kind, rec))
}

/// The CDF descriptor record.
#[derive(Debug)]
pub(crate) struct Cdr {
    pub(crate) gdr: u64,
    pub(crate) version: u32,
    pub(crate) release: u32,
    pub(crate) increment: u32,
    pub(crate) encoding: u32,
    pub(crate) row_major: bool,
}

pub(crate) fn cdr(src: &Source, layout: Layout, offset: u64) -> Result<Cdr> {
    let (_, mut r) = read(src, layout, offset, "CDR", &[CDR])?;
    let gdr = r.off("GDRoffset", src.len())?;
    let version = r.count("Version", u64::from(u32::MAX))?;
    let release = r.count("Release", u64::from(u32::MAX))?;
    let encoding = r.count("Encoding", u64::from(u32::MAX))?;
    let flags = r.i32("Flags")?;
    r.skip(8, "rfuA, rfuB")?;
    let increment = r.count("Increment", u64::from(u32::MAX)).unwrap_or(0);
    Ok(Cdr { gdr, version, release, increment, encoding, row_major: flags & 1 == 1 })
}

/// The global descriptor record.
#[derive(Debug)]
pub(crate) struct Gdr {
    pub(crate) rvdr_head: u64,
    pub(crate) zvdr_head: u64,
    pub(crate) adr_head: u64,
    pub(crate) n_rvars: u32,
    pub(crate) n_attrs: u32,
    pub(crate) n_zvars: u32,
    pub(crate) r_dims: Vec<u32>,
}

/// CDF allows at most 10 dimensions.
pub(crate) const MAX_DIMS: u64 = 10;

pub(crate) fn gdr(src: &Source, layout: Layout, offset: u64) -> Result<Gdr> {
    let len = src.len();
    let (_, mut r) = read(src, layout, offset, "GDR", &[GDR])?;
    let rvdr_head = r.off("rVDRhead", len)?;
    let zvdr_head = r.off("zVDRhead", len)?;
    let adr_head = r.off("ADRhead", len)?;
    r.off("eof", u64::MAX >> 1)?;
    // A record is at least a dozen bytes, which bounds every count by the file size.
    let max = len / 12;
    let n_rvars = r.count("NrVars", max)?;
    let n_attrs = r.count("NumAttr", max)?;
    r.i32("rMaxRec")?;
    let n_dims = r.count("rNumDims", MAX_DIMS)?;
    let n_zvars = r.count("NzVars", max)?;
    r.off("UIRhead", len)?;
    r.skip(12, "rfuC, LeapSecondLastUpdated, rfuE")?;
    let r_dims =
        (0..n_dims).map(|i| r.count(&format!("rDimSizes[{i}]"), i32::MAX as u64)).collect::<Result<_>>()?;
    Ok(Gdr { rvdr_head, zvdr_head, adr_head, n_rvars, n_attrs, n_zvars, r_dims })
}

/// A variable descriptor record (r or z).
#[derive(Debug)]
pub(crate) struct Vdr {
    pub(crate) next: u64,
    pub(crate) data_type: i32,
    /// -1 when no record was written.
    pub(crate) max_rec: i32,
    pub(crate) vxr_head: u64,
    pub(crate) flags: i32,
    pub(crate) sparse: i32,
    pub(crate) num_elems: u32,
    pub(crate) num: u32,
    pub(crate) cpr: u64,
    pub(crate) name: String,
    pub(crate) dims: Vec<u32>,
    pub(crate) dim_varys: Vec<bool>,
    /// The pad value's raw bytes, when the file sets one.
    pub(crate) pad: Option<Vec<u8>>,
}

pub(crate) fn vdr(src: &Source, layout: Layout, offset: u64, z: bool, r_dims: &[u32]) -> Result<Vdr> {
    let len = src.len();
    let block = if z { "zVDR" } else { "rVDR" };
    let (_, mut r) = read(src, layout, offset, block, &[if z { ZVDR } else { RVDR }])?;
    let next = r.off("VDRnext", len)?;
    let data_type = r.i32("DataType")?;
    let max_rec = r.i32("MaxRec")?;
    if max_rec < -1 {
        return Err(r.err(format!("MaxRec {max_rec} is negative")));
    }
    let vxr_head = r.off("VXRhead", len)?;
    r.off("VXRtail", len)?;
    let flags = r.i32("Flags")?;
    let sparse = r.i32("SRecords")?;
    r.skip(12, "rfuB, rfuC, rfuF")?;
    let num_elems = r.count("NumElems", len.max(1))?;
    if num_elems == 0 {
        return Err(r.err("NumElems 0"));
    }
    let num = r.count("Num", len)?;
    let cpr = r.off("CPRorSPRoffset", len)?;
    r.i32("BlockingFactor")?;
    let name = r.name("Name")?;
    let dims: Vec<u32> = if z {
        let n = r.count("zNumDims", MAX_DIMS)?;
        (0..n).map(|i| r.count(&format!("zDimSizes[{i}]"), i32::MAX as u64)).collect::<Result<_>>()?
    } else {
        r_dims.to_vec()
    };
    let dim_varys =
        (0..dims.len()).map(|i| r.i32(&format!("DimVarys[{i}]")).map(|v| v != 0)).collect::<Result<_>>()?;
    let pad = if flags & 2 != 0 && r.remaining() > 0 { Some(r.rest().to_vec()) } else { None };
    Ok(Vdr {
        next,
        data_type,
        max_rec,
        vxr_head,
        flags,
        sparse,
        num_elems,
        num,
        cpr,
        name,
        dims,
        dim_varys,
        pad,
    })
}

/// One used entry of a variable index record: records `first..=last` are in the
/// VVR, CVVR or lower VXR at `offset`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VxrEntry {
    pub(crate) first: u32,
    pub(crate) last: u32,
    pub(crate) offset: u64,
}

pub(crate) fn vxr(src: &Source, layout: Layout, offset: u64) -> Result<(u64, Vec<VxrEntry>)> {
    let len = src.len();
    let (_, mut r) = read(src, layout, offset, "VXR", &[VXR])?;
    let next = r.off("VXRnext", len)?;
    let n = r.count("Nentries", len / 16)? as usize;
    let used = r.count("NusedEntries", n as u64)? as usize;
    // Entries are three arrays of `n`: First, Last, Offset.
    let mut firsts = Vec::with_capacity(used);
    for i in 0..n {
        let v = r.i32("First")?;
        if i < used {
            firsts.push((i, v));
        }
    }
    let mut lasts = Vec::with_capacity(used);
    for i in 0..n {
        let v = r.i32("Last")?;
        if i < used {
            lasts.push(v);
        }
    }
    let mut out = Vec::with_capacity(used);
    for i in 0..n {
        let o = if i < used {
            r.off(&format!("entry {i} offset"), len)?
        } else {
            r.off("unused offset", u64::MAX >> 1)?
        };
        if i < used {
            let (_, first) = firsts[i];
            let last = lasts[i];
            let (Ok(f), Ok(l)) = (u32::try_from(first), u32::try_from(last)) else {
                return Err(r.err(format!("entry {i} records {first}..={last} negative")));
            };
            if l < f {
                return Err(r.err(format!("entry {i} last record {last} before first {first}")));
            }
            out.push(VxrEntry { first: f, last: l, offset: o });
        }
    }
    Ok((next, out))
}

/// An attribute descriptor record.
#[derive(Debug)]
pub(crate) struct Adr {
    pub(crate) next: u64,
    pub(crate) agr_head: u64,
    pub(crate) global: bool,
    pub(crate) az_head: u64,
    pub(crate) name: String,
}

pub(crate) fn adr(src: &Source, layout: Layout, offset: u64) -> Result<Adr> {
    let len = src.len();
    let (_, mut r) = read(src, layout, offset, "ADR", &[ADR])?;
    let next = r.off("ADRnext", len)?;
    let agr_head = r.off("AgrEDRhead", len)?;
    let scope = r.i32("Scope")?;
    let global = match scope {
        1 | 3 => true,
        2 | 4 => false,
        s => return Err(r.err(format!("Scope {s} is not 1..=4"))),
    };
    r.count("Num", len)?;
    r.skip(12, "NgrEntries, MAXgrEntry, rfuA")?;
    let az_head = r.off("AzEDRhead", len)?;
    r.skip(12, "NzEntries, MAXzEntry, rfuE")?;
    let name = r.name("Name")?;
    Ok(Adr { next, agr_head, global, az_head, name })
}

/// An attribute entry descriptor record: the value of one attribute for one entry
/// (a global entry number, or a variable's number).
#[derive(Debug)]
pub(crate) struct Aedr {
    pub(crate) next: u64,
    pub(crate) data_type: i32,
    pub(crate) num: u32,
    pub(crate) num_elems: u32,
    pub(crate) value: Vec<u8>,
}

pub(crate) fn aedr(src: &Source, layout: Layout, offset: u64, z: bool) -> Result<Aedr> {
    let len = src.len();
    let block = if z { "AzEDR" } else { "AgrEDR" };
    let (_, mut r) = read(src, layout, offset, block, &[if z { AZEDR } else { AGREDR }])?;
    let next = r.off("AEDRnext", len)?;
    r.i32("AttrNum")?;
    let data_type = r.i32("DataType")?;
    let num = r.count("Num", len)?;
    let num_elems = r.count("NumElems", len)?;
    r.skip(20, "NumStrings, rfB, rfC, rfD, rfE")?;
    let value = r.rest().to_vec();
    Ok(Aedr { next, data_type, num, num_elems, value })
}

/// A compressed parameters record: the compression of a variable or of the whole file.
pub(crate) fn cpr(src: &Source, layout: Layout, offset: u64) -> Result<i32> {
    let (_, mut r) = read(src, layout, offset, "CPR", &[CPR])?;
    r.i32("cType")
}
