//! Opening a CDF: the magic numbers, whole-file decompression, the CDR and GDR, every
//! variable's VDR and every attribute entry. Data blocks are not touched here.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::read::{BlockCache, Extent};
use crate::records::{self, Layout};
use crate::source::Source;
use crate::types::{ByteOrder, DataType, Values, decode};
use crate::variable::{Compression, Sparse, Variable};

const MAGIC_V3: u32 = 0xCDF3_0001;
const MAGIC_V26: u32 = 0xCDF2_6002;
const PLAIN: u32 = 0x0000_FFFF;
const COMPRESSED: u32 = 0xCCCC_0001;

/// A global attribute: its entries in entry-number order.
#[derive(Debug, Clone)]
pub struct Attribute {
    /// The name.
    pub name: String,
    /// `(entry number, value)`; text entries hold one string.
    pub entries: Vec<(u32, Values)>,
}

/// An open CDF file. Opening reads the descriptors and attributes; data is read per
/// request, block by block. `Cdf` is `Send + Sync`: reads take `&self`.
#[derive(Debug)]
pub struct Cdf {
    pub(crate) src: Source,
    pub(crate) layout: Layout,
    pub(crate) order: ByteOrder,
    pub(crate) row_major: bool,
    version: (u32, u32, u32),
    whole_file_compressed: bool,
    pub(crate) vars: Vec<Variable>,
    by_name: HashMap<String, usize>,
    globals: Vec<Attribute>,
    /// Each variable's leaf blocks, built on first read.
    pub(crate) index: Vec<Mutex<Option<Arc<[Extent]>>>>,
    pub(crate) cache: Mutex<BlockCache>,
}

impl Cdf {
    /// Opens the file at `path`; positioned reads fetch only what requests touch. A
    /// whole-file-compressed CDF is inflated into memory.
    pub fn open(path: impl AsRef<Path>) -> Result<Cdf> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Cdf::from_source(Source::File { file, len })
    }

    /// Reads a CDF held in memory.
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Result<Cdf> {
        Cdf::from_source(Source::Memory(bytes.into()))
    }

    fn from_source(src: Source) -> Result<Cdf> {
        let magic = src
            .bytes("file", 0, "magic numbers", 0, 8)
            .map_err(|_| Error::corrupt("file", 0, format!("{} bytes, too short for a CDF", src.len())))?;
        let m1 = u32::from_be_bytes(magic[..4].try_into().expect("4 bytes"));
        let m2 = u32::from_be_bytes(magic[4..8].try_into().expect("4 bytes"));
        let layout = match m1 {
            MAGIC_V3 => Layout { v3: true },
            MAGIC_V26 => Layout { v3: false },
            _ => {
                return Err(Error::corrupt(
                    "file",
                    0,
                    format!("magic number {m1:08x} is not a CDF 2.6+ or 3.x"),
                ));
            }
        };
        match m2 {
            PLAIN => Cdf::parse(src, layout, false),
            COMPRESSED => {
                let inflated = inflate_file(&src, layout, m1)?;
                Cdf::parse(Source::Memory(inflated.into()), layout, true)
            }
            _ => Err(Error::corrupt("file", 4, format!("second magic number {m2:08x} unknown"))),
        }
    }

    fn parse(src: Source, layout: Layout, whole_file_compressed: bool) -> Result<Cdf> {
        let cdr = records::cdr(&src, layout, 8)?;
        let order = ByteOrder::of_encoding(cdr.encoding)?;
        let gdr = records::gdr(&src, layout, cdr.gdr)?;
        let mut vars = Vec::new();
        for (z, head, count) in [(false, gdr.rvdr_head, gdr.n_rvars), (true, gdr.zvdr_head, gdr.n_zvars)] {
            let mut at = head;
            let mut seen = HashSet::new();
            for _ in 0..count {
                if at == 0 {
                    break;
                }
                if !seen.insert(at) {
                    return Err(Error::corrupt(records_name(z), at, "VDRnext loops back to this VDR"));
                }
                let vdr = records::vdr(&src, layout, at, z, &gdr.r_dims)?;
                let next = vdr.next;
                vars.push(variable(&src, layout, order, vdr, z, at)?);
                at = next;
            }
        }
        let mut by_name = HashMap::new();
        for (i, v) in vars.iter().enumerate() {
            by_name.entry(v.name.clone()).or_insert(i);
        }
        let globals = attributes(&src, layout, order, gdr.adr_head, gdr.n_attrs, &mut vars)?;
        let index = vars.iter().map(|_| Mutex::new(None)).collect();
        Ok(Cdf {
            src,
            layout,
            order,
            row_major: cdr.row_major,
            version: (cdr.version, cdr.release, cdr.increment),
            whole_file_compressed,
            vars,
            by_name,
            globals,
            index,
            cache: Mutex::new(BlockCache::default()),
        })
    }

    /// The variables, r then z, in file order.
    pub fn variables(&self) -> &[Variable] {
        &self.vars
    }

    /// The variable named `name`.
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.by_name.get(name).map(|&i| &self.vars[i])
    }

    /// The index of the variable named `name` in [`Cdf::variables`].
    pub fn variable_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Global attributes, in file order.
    pub fn global_attributes(&self) -> &[Attribute] {
        &self.globals
    }

    /// The global attribute `name`.
    pub fn global_attribute(&self, name: &str) -> Option<&Attribute> {
        self.globals.iter().find(|a| a.name == name)
    }

    /// CDF version, release, increment (e.g. 3.9.0).
    pub fn version(&self) -> (u32, u32, u32) {
        self.version
    }

    /// The byte order of the data.
    pub fn byte_order(&self) -> ByteOrder {
        self.order
    }

    /// Whether multi-dimensional records are stored row-major (else column-major; reads
    /// return row-major either way).
    pub fn row_major(&self) -> bool {
        self.row_major
    }

    /// Whether the whole file was compressed (and is held inflated in memory).
    pub fn whole_file_compressed(&self) -> bool {
        self.whole_file_compressed
    }
}

fn records_name(z: bool) -> &'static str {
    if z { "zVDR" } else { "rVDR" }
}

/// Inflates a whole-file-compressed CDF (a CCR at offset 8, its CPR) into the plain
/// file it stands for: the magic numbers, then the inflated bytes.
fn inflate_file(src: &Source, layout: Layout, m1: u32) -> Result<Vec<u8>> {
    let (_, mut r) = records::read(src, layout, 8, "CCR", &[records::CCR])?;
    let cpr = r.off("CPRoffset", src.len())?;
    let usize_field = if layout.v3 {
        r.off("uSize", u64::MAX >> 1)?
    } else {
        u64::from(r.count("uSize", u64::from(u32::MAX))?)
    };
    r.skip(4, "rfuA")?;
    let data = r.rest().to_vec();
    let ctype = records::cpr(src, layout, cpr)?;
    if ctype != 5 {
        return Err(Error::Unsupported(format!(
            "whole-file compression {} (only GZIP is read)",
            compression_name(ctype)
        )));
    }
    let body = crate::inflate::gunzip(&data, usize_field, usize_field, "CCR", 8)?;
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&m1.to_be_bytes());
    out.extend_from_slice(&PLAIN.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

pub(crate) fn compression_name(ctype: i32) -> String {
    match ctype {
        1 => "RLE".to_owned(),
        2 => "Huffman".to_owned(),
        3 => "adaptive Huffman".to_owned(),
        5 => "GZIP".to_owned(),
        c => format!("type {c}"),
    }
}

/// `bytes` (one element per `unit` bytes, little-endian) in `order`.
fn to_order(bytes: &[u8], dt: DataType, order: ByteOrder) -> Vec<u8> {
    let mut b = bytes.to_vec();
    if order == ByteOrder::Big && !dt.is_text() {
        // EPOCH16 is two doubles, each swapped on its own.
        let unit = if dt == DataType::Epoch16 { 8 } else { dt.size() };
        b.chunks_mut(unit).for_each(<[u8]>::reverse);
    }
    b
}

fn variable(
    src: &Source,
    layout: Layout,
    order: ByteOrder,
    vdr: records::Vdr,
    z: bool,
    at: u64,
) -> Result<Variable> {
    let block = records_name(z);
    let data_type = DataType::from_code(vdr.data_type)
        .ok_or_else(|| Error::corrupt(block, at, format!("DataType {} is not a CDF type", vdr.data_type)))?;
    let sparse = match vdr.sparse {
        0 => Sparse::No,
        1 => Sparse::Pad,
        2 => Sparse::Previous,
        s => return Err(Error::corrupt(block, at, format!("SRecords {s} is not 0, 1 or 2"))),
    };
    let compression = if vdr.flags & 4 != 0 {
        if vdr.cpr == 0 {
            return Err(Error::corrupt(block, at, "compressed, but CPRorSPRoffset is 0"));
        }
        match records::cpr(src, layout, vdr.cpr)? {
            5 => Compression::Gzip,
            c => Compression::Unsupported(c),
        }
    } else {
        Compression::None
    };
    let value_len = data_type.size() * vdr.num_elems as usize;
    let pad = match &vdr.pad {
        Some(p) if p.len() >= value_len => p[..value_len].to_vec(),
        _ if data_type.is_text() => vec![b' '; value_len],
        _ => to_order(&data_type.default_pad(), data_type, order).repeat(vdr.num_elems as usize),
    };
    Ok(Variable {
        name: vdr.name,
        z,
        number: vdr.num,
        data_type,
        num_elems: vdr.num_elems,
        dims: vdr.dims,
        dim_varys: vdr.dim_varys,
        rec_vary: vdr.flags & 1 != 0,
        records: u64::try_from(i64::from(vdr.max_rec) + 1).unwrap_or(0),
        sparse,
        compression,
        attributes: Vec::new(),
        at,
        vxr_head: vdr.vxr_head,
        pad,
    })
}

/// Reads every ADR and its entries: global attributes are returned, variable ones are
/// attached to their variables.
fn attributes(
    src: &Source,
    layout: Layout,
    order: ByteOrder,
    head: u64,
    count: u32,
    vars: &mut [Variable],
) -> Result<Vec<Attribute>> {
    let mut globals = Vec::new();
    let lookup: HashMap<(bool, u32), usize> =
        vars.iter().enumerate().map(|(i, v)| ((v.z, v.number), i)).collect();
    let mut seen = HashSet::new();
    let mut at = head;
    for _ in 0..count {
        if at == 0 {
            break;
        }
        if !seen.insert(at) {
            return Err(Error::corrupt("ADR", at, "ADRnext loops back to this ADR"));
        }
        let adr = records::adr(src, layout, at)?;
        let mut entries = Vec::new();
        for (z, head) in [(false, adr.agr_head), (true, adr.az_head)] {
            let mut e = head;
            while e != 0 {
                if !seen.insert(e) {
                    return Err(Error::corrupt(
                        if z { "AzEDR" } else { "AgrEDR" },
                        e,
                        format!("AEDRnext loops back (attribute {})", adr.name),
                    ));
                }
                let aedr = records::aedr(src, layout, e, z)?;
                let dt = DataType::from_code(aedr.data_type).ok_or_else(|| {
                    Error::corrupt("AEDR", e, format!("DataType {} is not a CDF type", aedr.data_type))
                })?;
                let n = if dt.is_text() { aedr.value.len() } else { aedr.num_elems as usize };
                let bytes =
                    &aedr.value[..(n * if dt.is_text() { 1 } else { dt.size() }).min(aedr.value.len())];
                let value = decode(dt, bytes, order, bytes.len());
                entries.push((z, aedr.num, value));
                e = aedr.next;
            }
        }
        if adr.global {
            let mut entries: Vec<(u32, Values)> = entries.into_iter().map(|(_, n, v)| (n, v)).collect();
            entries.sort_by_key(|(n, _)| *n);
            globals.push(Attribute { name: adr.name, entries });
        } else {
            for (z, num, value) in entries {
                if let Some(&i) = lookup.get(&(z, num)) {
                    vars[i].attributes.push((adr.name.clone(), value));
                }
            }
        }
        at = adr.next;
    }
    Ok(globals)
}
