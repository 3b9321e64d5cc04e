//! NASA CDF granules (ISTP conventions), read with `hapi-cdf`.
//!
//! - Each parameter after the primary time is the variable of the same name; the primary
//!   time is the epoch variable: the one the source configuration names (`epoch`), else
//!   the `DEPEND_0` the parameters' variables share, else a variable named as the primary
//!   time parameter.
//! - A file that contradicts the info (a missing variable, a type that does not convert
//!   to the parameter's, another shape or string length, a variable that does not vary by
//!   record, fewer records than the epoch) is [`ErrorKind::Corrupt`], naming the file and
//!   the variable. [`check`] reads only the descriptors, so the scan can refuse before
//!   the first byte.
//! - A read takes only the requested variables and only the records of the request (a
//!   binary search on the epoch), in batches of bounded size.
//! - Values equal to the variable's `FILLVAL` are written as the info's `fill` when the
//!   two differ (a `CDF_REAL4` fill of -1e31 is not the double -1e31, and fills may
//!   change across an archive's years); with a `null` fill values pass as they are.

use std::path::Path;

use hapi_cdf::{Cdf, DataType, Values, Variable};
use hapi_core::batch::push_text;
use hapi_core::info::{DatasetInfo, ParamType, Parameter};
use hapi_core::time::{self, TimeFormat};
use hapi_core::{Batch, Column, Nanos};
use hapi_source::{ErrorKind, SourceError};

/// How a dataset's parameters are found in each of its files.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    epoch: usize,
    /// The variable of each parameter after the primary time.
    vars: Vec<usize>,
    /// Per parameter after the primary time: the file's fill and what to write instead.
    fills: Vec<Fill>,
}

/// What replaces a value equal to the file's `FILLVAL`.
#[derive(Debug, Clone)]
enum Fill {
    None,
    Double(f64, f64),
    Integer(i32, i32),
    Text(String, String),
    Time(Nanos, String),
}

fn corrupt(path: &Path, why: impl std::fmt::Display) -> SourceError {
    SourceError::msg(ErrorKind::Corrupt, format!("{}: {why}", path.display()))
}

/// A `hapi-cdf` error on `path`.
pub(crate) fn cdf_error(path: &Path, e: hapi_cdf::Error) -> SourceError {
    match e {
        hapi_cdf::Error::Io(io) => crate::io_error(path, io),
        e => SourceError::new(ErrorKind::Corrupt, format!("reading {}", path.display()), e),
    }
}

pub(crate) fn open(path: &Path) -> Result<Cdf, SourceError> {
    Cdf::open(path).map_err(|e| cdf_error(path, e))
}

/// The epoch variable, found as the module docs say; `strict` refuses parameters'
/// variables that disagree on their `DEPEND_0`.
fn epoch_of(
    cdf: &Cdf,
    info: &DatasetInfo,
    epoch: Option<&str>,
    path: &Path,
    strict: bool,
) -> Result<usize, SourceError> {
    let name = match epoch {
        Some(e) => e.to_owned(),
        None => {
            let mut found: Option<&str> = None;
            for p in &info.parameters[1..] {
                let Some(d) = cdf.variable(&p.name).and_then(|v| v.attr_text("DEPEND_0")) else { continue };
                match found {
                    None => found = Some(d),
                    Some(f) if f != d && strict => {
                        return Err(corrupt(
                            path,
                            format!(
                                "variable {:?} depends on {d:?}, others on {f:?}: name the epoch in the source",
                                p.name
                            ),
                        ));
                    }
                    Some(_) => {}
                }
                if !strict {
                    break;
                }
            }
            found.unwrap_or(&info.parameters[0].name).to_owned()
        }
    };
    let i = cdf.variable_index(&name).ok_or_else(|| corrupt(path, format!("no epoch variable {name:?}")))?;
    let v = &cdf.variables()[i];
    if !v.data_type.is_time() || v.values_per_record() != 1 || !v.rec_vary {
        return Err(corrupt(
            path,
            format!(
                "variable {name:?} is {} of shape {:?}, not a scalar epoch",
                v.data_type.name(),
                v.shape()
            ),
        ));
    }
    Ok(i)
}

/// Whether values of `dt` are served as `kind`.
fn converts(dt: DataType, kind: ParamType) -> bool {
    use DataType::*;
    match kind {
        ParamType::Double => !dt.is_text() && !dt.is_time(),
        // What always fits an i32; wider integers are served as doubles.
        ParamType::Integer => matches!(dt, Int1 | Int2 | Int4 | Uint1 | Uint2 | Byte),
        ParamType::String => dt.is_text(),
        ParamType::IsoTime => dt.is_time(),
    }
}

/// Checks the file against the info and plans its reads: only descriptors are read.
pub(crate) fn check(
    cdf: &Cdf,
    info: &DatasetInfo,
    epoch: Option<&str>,
    path: &Path,
) -> Result<Plan, SourceError> {
    let epoch = epoch_of(cdf, info, epoch, path, true)?;
    let records = cdf.variables()[epoch].records;
    let mut vars = Vec::new();
    let mut fills = Vec::new();
    for p in &info.parameters[1..] {
        let bad = |why: String| corrupt(path, format!("variable {:?}: {why}", p.name));
        let i = cdf.variable_index(&p.name).ok_or_else(|| bad("not in the file".to_owned()))?;
        let v = &cdf.variables()[i];
        if !converts(v.data_type, p.kind) {
            return Err(bad(format!("{} does not convert to {}", v.data_type.name(), p.kind.as_str())));
        }
        let shape: Vec<usize> = v.shape().iter().map(|&d| d as usize).collect();
        if shape != p.size {
            return Err(bad(format!("shape {shape:?}, the info says size {:?}", p.size)));
        }
        if p.kind == ParamType::String && v.num_elems as usize > p.length.unwrap_or(0) {
            return Err(bad(format!(
                "strings of {} bytes, the info says length {:?}",
                v.num_elems, p.length
            )));
        }
        if !v.rec_vary {
            return Err(bad("does not vary by record".to_owned()));
        }
        if v.records < records {
            return Err(bad(format!("{} records, the epoch has {records}", v.records)));
        }
        vars.push(i);
        fills.push(fill(v, p));
    }
    Ok(Plan { epoch, vars, fills })
}

fn fill(v: &Variable, p: &Parameter) -> Fill {
    let (Some(file), Some(info)) = (v.fill(), p.fill.as_deref()) else { return Fill::None };
    match p.kind {
        ParamType::Double => {
            let (Some(a), Some(b)) = (file.get_f64(0), p.fill_f64()) else { return Fill::None };
            if a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()) {
                Fill::None
            } else {
                Fill::Double(a, b)
            }
        }
        ParamType::Integer => match (file.get_f64(0), p.fill_i32()) {
            (Some(a), Some(b)) if a != f64::from(b) => Fill::Integer(a as i32, b),
            _ => Fill::None,
        },
        ParamType::String => match &file {
            Values::Text(t) if t.first().is_some_and(|t| t != info) => {
                Fill::Text(t[0].clone(), info.to_owned())
            }
            _ => Fill::None,
        },
        ParamType::IsoTime => match file.to_nanos().and_then(|n| n.first().copied()) {
            Some(n) => Fill::Time(n, info.to_owned()),
            None => Fill::None,
        },
    }
}

/// First and last record time, from the epoch variable alone.
pub(crate) fn ends(
    info: &DatasetInfo,
    epoch: Option<&str>,
    path: &Path,
) -> Result<Option<(Nanos, Nanos)>, SourceError> {
    let cdf = open(path)?;
    let e = epoch_of(&cdf, info, epoch, path, false)?;
    let n = cdf.variables()[e].records;
    if n == 0 {
        return Ok(None);
    }
    let at = |r: u64| -> Result<Nanos, SourceError> {
        let t = cdf.read_times(e, r..r + 1).map_err(|err| cdf_error(path, err))?;
        t.first().copied().ok_or_else(|| corrupt(path, "an epoch record reads as nothing"))
    };
    Ok(Some((at(0)?, at(n - 1)?)))
}

/// Records of one CDF granule in a time range, batch after batch.
pub(crate) struct CdfGranule {
    cdf: Cdf,
    path: std::path::PathBuf,
    /// Epoch, then the requested columns' variables.
    read: Vec<usize>,
    /// The requested parameters (info indices) and their fills.
    params: Vec<(Parameter, Fill)>,
    next: u64,
    end: u64,
    period: (Nanos, Nanos),
    after: Option<Nanos>,
    rows: u64,
}

impl CdfGranule {
    #[allow(clippy::too_many_arguments, reason = "the granule's place in the scan")]
    pub(crate) fn open(
        info: &DatasetInfo,
        epoch: Option<&str>,
        path: &Path,
        period: (Nanos, Nanos),
        columns: &[usize],
        range: (Nanos, Nanos),
        after: Option<Nanos>,
        rows: usize,
    ) -> Result<CdfGranule, SourceError> {
        let cdf = open(path)?;
        let plan = check(&cdf, info, epoch, path)?;
        let mut read = vec![plan.epoch];
        let mut params = Vec::new();
        for &c in columns {
            let (Some(&v), Some(f)) = (plan.vars.get(c), plan.fills.get(c)) else {
                return Err(SourceError::msg(ErrorKind::Internal, format!("no column {c}")));
            };
            read.push(v);
            params.push((info.parameters[c + 1].clone(), f.clone()));
        }
        let found = cdf.time_range(plan.epoch, range.0, range.1).map_err(|e| cdf_error(path, e))?;
        Ok(CdfGranule {
            cdf,
            path: path.to_owned(),
            read,
            params,
            next: found.start,
            end: found.end,
            period,
            after,
            rows: rows as u64,
        })
    }

    pub(crate) fn next_batch(&mut self) -> Result<Option<Batch>, SourceError> {
        if self.next >= self.end {
            return Ok(None);
        }
        let path = &self.path;
        let b = self
            .cdf
            .batches(&self.read, self.next..self.end, self.rows)
            .and_then(|mut b| {
                b.next().unwrap_or(Ok(hapi_cdf::Batch { first: self.next, len: 0, columns: vec![] }))
            })
            .map_err(|e| cdf_error(path, e))?;
        if b.len == 0 {
            return Err(corrupt(path, "a read of records returned none"));
        }
        self.next += b.len;
        let mut columns = b.columns.into_iter();
        let times = columns.next().and_then(|t| t.to_nanos()).unwrap_or_default();
        let (a, z) = self.period;
        for (k, &t) in times.iter().enumerate() {
            let at = || time::format_string(t, TimeFormat::YMD_NANOS);
            if t < a || t >= z {
                return Err(corrupt(
                    path,
                    format!("record {} at {} lies outside the file's period", b.first + k as u64, at()),
                ));
            }
            if self.after.is_some_and(|p| t <= p) {
                return Err(corrupt(
                    path,
                    format!("record {} at {} is not after the record before it", b.first + k as u64, at()),
                ));
            }
            self.after = Some(t);
        }
        let mut out = Vec::with_capacity(self.params.len());
        for (values, (p, f)) in columns.zip(&self.params) {
            out.push(
                column(values, p, f).map_err(|why| corrupt(path, format!("variable {:?}: {why}", p.name)))?,
            );
        }
        Ok(Some(Batch { times, columns: out, wire: None }))
    }
}

/// Values of one variable as the column of parameter `p`.
fn column(values: Values, p: &Parameter, fill: &Fill) -> Result<Column, String> {
    let width = p.width();
    Ok(match p.kind {
        ParamType::Double => {
            let mut v: Vec<f64> = match values {
                Values::F64(v) => v,
                Values::F32(v) => v.into_iter().map(f64::from).collect(),
                other => (0..other.len()).map(|i| other.get_f64(i).unwrap_or(f64::NAN)).collect(),
            };
            if let Fill::Double(file, info) = *fill {
                let nan = file.is_nan();
                v.iter_mut().filter(|x| **x == file || (nan && x.is_nan())).for_each(|x| *x = info);
            }
            Column::Double { width, values: v }
        }
        ParamType::Integer => {
            let mut v: Vec<i32> = match values {
                Values::I32(v) => v,
                Values::I8(v) => v.into_iter().map(i32::from).collect(),
                Values::I16(v) => v.into_iter().map(i32::from).collect(),
                Values::U8(v) => v.into_iter().map(i32::from).collect(),
                Values::U16(v) => v.into_iter().map(i32::from).collect(),
                _ => return Err("not an integer type".to_owned()),
            };
            if let Fill::Integer(file, info) = *fill {
                v.iter_mut().filter(|x| **x == file).for_each(|x| *x = info);
            }
            Column::Integer { width, values: v }
        }
        ParamType::String => {
            let Values::Text(v) = values else { return Err("not text".to_owned()) };
            let len = p.length.unwrap_or(0);
            let mut bytes = Vec::with_capacity(v.len() * len);
            for s in &v {
                let s = match fill {
                    Fill::Text(file, info) if s == file => info.as_str(),
                    _ => s.as_str(),
                };
                if !push_text(&mut bytes, s.as_bytes(), len) {
                    return Err(format!("a string of {} bytes is longer than length {len}", s.len()));
                }
            }
            Column::Text { width, len, bytes }
        }
        ParamType::IsoTime => {
            let times = values.to_nanos().ok_or("not an epoch type")?;
            let len = p.length.unwrap_or(0);
            let fmt = time_format(len);
            let mut bytes = Vec::with_capacity(times.len() * len);
            let mut s = Vec::with_capacity(32);
            for t in times {
                s.clear();
                match fill {
                    Fill::Time(file, info) if t == *file => s.extend_from_slice(info.as_bytes()),
                    _ => time::format(t, fmt, &mut s),
                }
                if !push_text(&mut bytes, &s, len) {
                    return Err(format!("a time longer than length {len}"));
                }
            }
            Column::Text { width, len, bytes }
        }
    })
}

/// The longest year-month-day format that fits `len` characters.
pub(crate) fn time_format(len: usize) -> TimeFormat {
    (11..=len.min(30)).rev().find_map(TimeFormat::ymd).unwrap_or(TimeFormat::YMD_MILLIS)
}
