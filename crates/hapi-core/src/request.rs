//! Request parsing from the raw query string (REQ-010..017, REQ-140..145).
//!
//! The query is split and percent-decoded by hand rather than by a form decoder:
//! form decoding turns `+` into a space, which breaks dataset ids such as `A+B`
//! (P-14), and it hides repeated names, which must be reported (REQ-014).
//! Names are then checked per endpoint, strictly: anything unknown is 1401
//! (REQ-010). Checks that need the dataset come last, in [`check_data`], in the
//! order of REQ-145. Error details say which rule failed and never quote the
//! request (REQ-015).

#[cfg(test)]
mod tests;

use crate::encode::Format;
use crate::info::DatasetInfo;
use crate::status::{HapiStatus, StatusError};
use crate::time::{self, Nanos};

/// Splits a raw query string (without the `?`) into decoded `(name, value)`
/// pairs, in order and with repeats kept. Empty segments are skipped; a segment
/// without `=` has an empty value. `+` stays a plus sign.
pub fn parse_query(raw: &str) -> Result<Vec<(String, String)>, StatusError> {
    raw.split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            Ok((percent_decode(name)?, percent_decode(value)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Result<String, StatusError> {
    crate::percent::decode(s).ok_or_else(|| {
        StatusError::with(
            HapiStatus::BadRequest,
            "the query string has a % not followed by two hex digits, or is not UTF-8 once decoded",
        )
    })
}

/// A request parameter an endpoint accepts: its 3.x name and the deprecated
/// 2.x alias that 3.x servers must still accept (REQ-013).
#[derive(Debug, Clone, Copy)]
struct Name {
    name: &'static str,
    alias: Option<&'static str>,
}

const fn name(name: &'static str) -> Name {
    Name { name, alias: None }
}

const fn aliased(name: &'static str, alias: &'static str) -> Name {
    Name { name, alias: Some(alias) }
}

const CATALOG: &[Name] = &[name("depth"), name("resolve_references")];
const INFO: &[Name] = &[aliased("dataset", "id"), name("parameters"), name("resolve_references")];
// `resolve_references` is deliberately absent: the spec lists it for /catalog
// and /info only, so under the strict-names rule (REQ-010) it is 1401 on /data,
// even though the reference server accepts it (REQ-012, digest §3.3).
const DATA: &[Name] = &[
    aliased("dataset", "id"),
    aliased("start", "time.min"),
    aliased("stop", "time.max"),
    name("parameters"),
    name("format"),
    name("include"),
];

/// The values given for each entry of `allowed`, in the same order. Unknown
/// names are reported before repeats, so the outcome does not depend on the
/// order of the pairs.
fn collect<'p>(
    pairs: &'p [(String, String)],
    allowed: &[Name],
) -> Result<Vec<Option<(&'p str, &'p str)>>, StatusError> {
    let slot = |given: &str| allowed.iter().position(|n| n.name == given || n.alias == Some(given));
    if pairs.iter().any(|(given, _)| slot(given).is_none()) {
        let names: Vec<String> = allowed
            .iter()
            .map(|n| match n.alias {
                Some(alias) => format!("{} (or {alias})", n.name),
                None => n.name.to_owned(),
            })
            .collect();
        let detail = if names.is_empty() {
            "this endpoint takes no request parameters".to_owned()
        } else {
            format!("this endpoint accepts only {}", names.join(", "))
        };
        return Err(StatusError::with(HapiStatus::UnknownApiParameter, detail));
    }
    let mut values: Vec<Option<(&str, &str)>> = vec![None; allowed.len()];
    for (given, value) in pairs {
        let Some(k) = slot(given) else {
            continue;
        };
        if let Some((first, _)) = values[k] {
            let detail = if first == given {
                format!("{given} may be given only once")
            } else {
                let n = allowed[k];
                format!("only one of {} and {} is allowed", n.alias.unwrap_or(first), n.name)
            };
            return Err(StatusError::with(HapiStatus::BadRequest, detail));
        }
        values[k] = Some((given.as_str(), value.as_str()));
    }
    Ok(values)
}

fn value<'p>(v: Option<(&'p str, &'p str)>) -> Option<&'p str> {
    v.map(|(_, value)| value)
}

/// `/hapi`, `/hapi/about` and `/hapi/capabilities` take no parameters; any one
/// is 1401 (P-23).
pub fn no_params(pairs: &[(String, String)]) -> Result<(), StatusError> {
    collect(pairs, &[]).map(|_| ())
}

/// A `/hapi/catalog` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogRequest {
    /// `depth=all`: embed every dataset's info. Whether the server supports it
    /// (else 1413) is the server's decision.
    pub depth_all: bool,
    /// `resolve_references`, `true` unless `false` was given.
    pub resolve: bool,
}

/// Parses `/hapi/catalog`: `depth` is `dataset` or `all` (else 1413),
/// `resolve_references` is `true` or `false` (else 1412).
pub fn catalog(pairs: &[(String, String)]) -> Result<CatalogRequest, StatusError> {
    let v = collect(pairs, CATALOG)?;
    let depth_all = match value(v[0]) {
        None | Some("dataset") => false,
        Some("all") => true,
        Some(_) => return Err(StatusError::with(HapiStatus::BadDepth, "depth must be dataset or all")),
    };
    Ok(CatalogRequest { depth_all, resolve: resolve_references(value(v[1]))? })
}

fn resolve_references(v: Option<&str>) -> Result<bool, StatusError> {
    match v {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(StatusError::with(
            HapiStatus::BadResolveReferences,
            "resolve_references must be true or false",
        )),
    }
}

/// An empty `dataset=` counts as missing: no dataset has an empty id.
fn dataset(v: Option<&str>) -> Result<String, StatusError> {
    match v {
        Some(id) if !id.is_empty() => Ok(id.to_owned()),
        _ => Err(StatusError::with(HapiStatus::BadRequest, "dataset (or id) is required")),
    }
}

/// A `/hapi/info` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoRequest {
    /// `dataset` or `id`.
    pub dataset: String,
    /// `parameters` as given; see [`DatasetInfo::select`].
    pub parameters: Option<String>,
    /// `resolve_references`, `true` unless `false` was given.
    pub resolve: bool,
}

/// Parses `/hapi/info`: `dataset` (or `id`) is required (1400),
/// `resolve_references` is `true` or `false` (1412).
pub fn info(pairs: &[(String, String)]) -> Result<InfoRequest, StatusError> {
    let v = collect(pairs, INFO)?;
    Ok(InfoRequest {
        dataset: dataset(value(v[0]))?,
        parameters: value(v[1]).map(str::to_owned),
        resolve: resolve_references(value(v[2]))?,
    })
}

/// The names and raw values of a `/hapi/data` request, before the dataset is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataQuery {
    /// `dataset` or `id`.
    pub dataset: String,
    /// `parameters` as given.
    pub parameters: Option<String>,
    /// `start` or `time.min` as given.
    pub start: Option<String>,
    /// `stop` or `time.max` as given.
    pub stop: Option<String>,
    /// `format` as given.
    pub format: Option<String>,
    /// `include` as given.
    pub include: Option<String>,
}

/// Parses the names of `/hapi/data` (REQ-145 steps 2 and 3): unknown names are
/// 1401, repeats and alias clashes 1400, a missing `dataset` 1400. The values
/// are checked by [`check_data`] once the dataset is known.
pub fn data(pairs: &[(String, String)]) -> Result<DataQuery, StatusError> {
    let v = collect(pairs, DATA)?;
    let owned = |i: usize| value(v[i]).map(str::to_owned);
    Ok(DataQuery {
        dataset: dataset(value(v[0]))?,
        start: owned(1),
        stop: owned(2),
        parameters: owned(3),
        format: owned(4),
        include: owned(5),
    })
}

/// A `/hapi/data` request whose every value has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRequest {
    /// Selected parameter indices: starts with 0 (the time), ascending.
    pub selection: Vec<usize>,
    /// Inclusive start.
    pub start: Nanos,
    /// Exclusive stop.
    pub stop: Nanos,
    /// Output format, csv by default.
    pub format: Format,
    /// `include=header`.
    pub header: bool,
}

/// The dataset-dependent checks of `/hapi/data`, in the order of REQ-145:
/// parameters (1407, 1411), start (1402), stop (1403), start before stop (1404),
/// within `[start_date, stop_date]` (1405), format (1409), include (1410).
/// `start_date` and `stop_date` are the dataset's published range.
pub fn check_data(
    q: &DataQuery,
    info: &DatasetInfo,
    start_date: Nanos,
    stop_date: Nanos,
) -> Result<DataRequest, StatusError> {
    let selection = info.select(q.parameters.as_deref())?;
    let start = request_time(q.start.as_deref(), HapiStatus::BadStart, "start (or time.min)")?;
    let stop = request_time(q.stop.as_deref(), HapiStatus::BadStop, "stop (or time.max)")?;
    if start >= stop {
        return Err(StatusError::with(HapiStatus::StartNotBeforeStop, "start must be before stop"));
    }
    if start < start_date || stop > stop_date {
        // The dataset's range is metadata, not user input, so it may be shown (REQ-023 asks for it).
        let detail = format!(
            "this dataset allows start from {} and stop up to {}",
            time::format_string(start_date, info.time_format),
            time::format_string(stop_date, info.time_format)
        );
        return Err(StatusError::with(HapiStatus::OutsideRange, detail));
    }
    let format = match q.format.as_deref() {
        None => Format::Csv,
        Some(f) => Format::parse(f).ok_or_else(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
            StatusError::with(HapiStatus::BadFormat, format!("format must be one of {}", names.join(", ")))
        })?,
    };
    let header = match q.include.as_deref() {
        None => false,
        Some("header") => true,
        Some(_) => return Err(StatusError::with(HapiStatus::BadInclude, "include accepts only header")),
    };
    Ok(DataRequest { selection, start, stop, format, header })
}

fn request_time(v: Option<&str>, status: HapiStatus, what: &str) -> Result<Nanos, StatusError> {
    let Some(s) = v else {
        return Err(StatusError::with(status, format!("{what} is required")));
    };
    time::parse(s)
        .map_err(|e| StatusError::with(status, format!("{what} is not a restricted ISO 8601 time: {e}")))
}
