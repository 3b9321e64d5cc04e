//! Dataset-level checks of configured `/info` metadata (REQ-080..082, REQ-112,
//! REQ-113, REQ-120) and assembly of the [`DatasetInfo`].

use serde_json::{Map, Value};

use super::{DatasetInfo, MetaError, Parameter, param, refs};
use crate::duration;
use crate::time::{self, Nanos, TimeFormat};

/// Collects the problems of one dataset's metadata.
#[derive(Debug)]
pub(super) struct Report<'a> {
    dataset: &'a str,
    errors: Vec<MetaError>,
}

impl<'a> Report<'a> {
    fn new(dataset: &'a str) -> Self {
        Self { dataset, errors: Vec::new() }
    }

    pub(super) fn len(&self) -> usize {
        self.errors.len()
    }

    /// A problem with a dataset-level key.
    pub(super) fn dataset(&mut self, message: impl Into<String>) {
        self.push(None, None, message.into());
    }

    /// A problem inside parameter number `index`, called `name` if it has a usable name.
    pub(super) fn param(&mut self, index: usize, name: Option<&str>, message: impl Into<String>) {
        self.push(name.map(str::to_owned), Some(index), message.into());
    }

    fn push(&mut self, parameter: Option<String>, index: Option<usize>, message: String) {
        self.errors.push(MetaError { dataset: self.dataset.to_owned(), parameter, index, message });
    }
}

/// Keys an info object may have besides `x_*` ones: the REQ-082 table plus the
/// required ones. `HAPI` and `status` are dropped before this check and `format`
/// gets its own message.
const DATASET_KEYS: &[&str] = &[
    "startDate",
    "stopDate",
    "parameters",
    "definitions",
    "timeStampLocation",
    "cadence",
    "sampleStartDate",
    "sampleStopDate",
    "maxRequestDuration",
    "description",
    "unitsSchema",
    "coordinateSystemSchema",
    "location",
    "geoLocation",
    "resourceURL",
    "resourceID",
    "creationDate",
    "modificationDate",
    "citation",
    "datasetCitation",
    "licenseURL",
    "provenance",
    "contact",
    "contactID",
    "additionalMetadata",
    "note",
    "warning",
];

/// Keys whose value is free text.
const TEXT_KEYS: &[&str] = &[
    "description",
    "coordinateSystemSchema",
    "resourceURL",
    "resourceID",
    "citation",
    "datasetCitation",
    "provenance",
    "contact",
    "contactID",
];

const TIME_STAMP_LOCATIONS: &[&str] = &["begin", "center", "end", "other"];
const UNITS_SCHEMAS: &[&str] = &["udunits2", "astropy3", "cdf-cluster", "vounits1.1"];
const METADATA_KEYS: &[&str] = &["name", "content", "contentURL", "schemaURL", "aboutURL"];
const LOCATION_KEYS: &[&str] = &["point", "vectorComponents", "units", "coordinateSystemName", "parameters"];

pub(super) fn build(id: &str, info: &Value) -> Result<DatasetInfo, Vec<MetaError>> {
    let mut r = Report::new(id);
    let Some(obj) = info.as_object() else {
        r.dataset("the info must be a JSON object");
        return Err(r.errors);
    };
    let configured: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "HAPI" && k.as_str() != "status")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let Some(resolved) = refs::resolve(&configured, &mut r) else {
        return Err(r.errors);
    };

    check_keys(&resolved, &mut r);
    let start_date = date(&resolved, "startDate", &mut r);
    let stop_date = date(&resolved, "stopDate", &mut r);
    if let (Some(a), Some(b)) = (start_date, stop_date)
        && a >= b
    {
        r.dataset("startDate must be before stopDate");
    }
    let sample = sample_range(&resolved, start_date, stop_date, &mut r);
    let cadence = positive_duration(&resolved, "cadence", &mut r);
    let max_request_duration = positive_duration(&resolved, "maxRequestDuration", &mut r);
    for key in ["creationDate", "modificationDate"] {
        date(&resolved, key, &mut r);
    }
    check_values(&resolved, &mut r);

    let parameters = match resolved.get("parameters") {
        None => {
            r.dataset("parameters is required");
            Vec::new()
        }
        Some(Value::Array(items)) if items.is_empty() => {
            r.dataset("parameters must have at least one item");
            Vec::new()
        }
        Some(Value::Array(items)) => param::check_all(items, &mut r),
        Some(_) => {
            r.dataset("parameters must be an array");
            Vec::new()
        }
    };
    check_record_size(&parameters, &mut r);
    if let Some(Value::Object(loc)) = resolved.get("location") {
        check_location(loc, resolved.get("parameters"), &mut r);
    }

    let time_format = parameters.first().and_then(|p| p.length).and_then(TimeFormat::ymd);
    match time_format {
        Some(time_format) if r.len() == 0 => Ok(DatasetInfo {
            id: id.to_owned(),
            parameters,
            start_date,
            stop_date,
            cadence,
            time_format,
            max_request_duration,
            sample,
            unresolved: configured.contains_key("definitions").then_some(configured),
            json: resolved,
        }),
        // Without a usable primary time the parameter checks have said why.
        _ => {
            if r.len() == 0 {
                r.dataset("the first parameter must be the primary time");
            }
            Err(r.errors)
        }
    }
}

fn check_keys(obj: &Map<String, Value>, r: &mut Report<'_>) {
    for key in obj.keys() {
        if key == "format" {
            r.dataset("format is not allowed in /info (only a data header carries it)");
        } else if !DATASET_KEYS.contains(&key.as_str()) && !key.starts_with("x_") {
            r.dataset(format!("unknown key {key:?} (extension keys must start with x_)"));
        }
    }
}

/// A restricted ISO 8601 time with its `Z`, as metadata must write it.
fn date(obj: &Map<String, Value>, key: &str, r: &mut Report<'_>) -> Option<Nanos> {
    match obj.get(key)? {
        Value::String(s) => match time::parse_strict(s) {
            Ok(t) => Some(t),
            Err(e) => {
                r.dataset(format!("{key} {s:?} is not a valid HAPI time ending in Z ({e})"));
                None
            }
        },
        _ => {
            r.dataset(format!("{key} must be a string holding a HAPI time"));
            None
        }
    }
}

fn sample_range(
    obj: &Map<String, Value>,
    start_date: Option<Nanos>,
    stop_date: Option<Nanos>,
    r: &mut Report<'_>,
) -> Option<(Nanos, Nanos)> {
    let (has_start, has_stop) = (obj.contains_key("sampleStartDate"), obj.contains_key("sampleStopDate"));
    if has_start != has_stop {
        r.dataset("sampleStartDate and sampleStopDate must be given together");
    }
    let start = date(obj, "sampleStartDate", r);
    let stop = date(obj, "sampleStopDate", r);
    let (start, stop) = (start?, stop?);
    if start >= stop {
        r.dataset("sampleStartDate must be before sampleStopDate");
        return None;
    }
    // A sample outside the dataset's range makes the verifier's own request fail with 1405.
    if start_date.is_some_and(|d| start < d) || stop_date.is_some_and(|d| stop > d) {
        r.dataset("the sample range must lie within startDate..stopDate");
    }
    Some((start, stop))
}

/// Longest `cadence` or `maxRequestDuration`: 100 nominal years. HAPI times span
/// 1678..2261 here (i64 nanoseconds), so anything longer is a typo, and products of it
/// (cadence × records) would overflow.
const MAX_DURATION: Nanos = 100 * 365 * time::NANOS_PER_DAY;

/// Bytes of one record in the binary format, all parameters: 64 MiB. A record must fit
/// in one response (`max_bytes`) and in an encoder's buffer.
const MAX_RECORD_BYTES: usize = 64 << 20;

fn positive_duration(obj: &Map<String, Value>, key: &str, r: &mut Report<'_>) -> Option<Nanos> {
    let value = obj.get(key)?;
    match value.as_str().and_then(duration::parse) {
        Some(d) if d > MAX_DURATION => {
            r.dataset(format!("{key} must be at most P100Y"));
            None
        }
        Some(d) if d > 0 => Some(d),
        _ => {
            r.dataset(format!("{key} must be a positive ISO 8601 duration such as PT1M or P1D"));
            None
        }
    }
}

/// Each parameter is bounded (`length`, `size`); so must their sum be.
fn check_record_size(parameters: &[Parameter], r: &mut Report<'_>) {
    let total = parameters.iter().try_fold(0usize, |acc, p| acc.checked_add(p.binary_width()));
    if total.is_none_or(|t| t > MAX_RECORD_BYTES) {
        r.dataset(format!(
            "one record of all parameters is more than {MAX_RECORD_BYTES} bytes in the binary format (length × size)"
        ));
    }
}

/// The remaining dataset-level keys, whose values have a simple shape.
fn check_values(obj: &Map<String, Value>, r: &mut Report<'_>) {
    for key in TEXT_KEYS {
        if obj.get(*key).is_some_and(|v| !v.is_string()) {
            r.dataset(format!("{key} must be a string"));
        }
    }
    for key in ["note", "warning", "licenseURL"] {
        if obj.get(key).is_some_and(|v| !string_or_strings(v)) {
            r.dataset(format!("{key} must be a string or an array of strings"));
        }
    }
    if let Some(v) = obj.get("timeStampLocation") {
        // Upper case is the deprecated 2.0 spelling, still accepted (REQ-082).
        let ok =
            v.as_str().is_some_and(|s| TIME_STAMP_LOCATIONS.iter().any(|l| s == *l || s == l.to_uppercase()));
        if !ok {
            r.dataset("timeStampLocation must be one of begin, center, end, other");
        }
    }
    if obj.get("unitsSchema").is_some_and(|v| !v.as_str().is_some_and(|s| UNITS_SCHEMAS.contains(&s))) {
        r.dataset(format!("unitsSchema must be one of {}", UNITS_SCHEMAS.join(", ")));
    }
    if obj.contains_key("location") && obj.contains_key("geoLocation") {
        r.dataset("location and geoLocation cannot both be given");
    }
    if let Some(v) = obj.get("geoLocation") {
        let ok = v.as_array().is_some_and(|a| (2..=3).contains(&a.len()) && a.iter().all(Value::is_number));
        if !ok {
            r.dataset(
                "geoLocation must be [longitude, latitude] or [longitude, latitude, altitude] in numbers",
            );
        }
    }
    if obj.get("location").is_some_and(|v| !v.is_object()) {
        r.dataset("location must be an object");
    }
    match obj.get("additionalMetadata") {
        None => {}
        Some(Value::Object(item)) => check_metadata_item(None, item, r),
        Some(Value::Array(items)) => {
            for (n, item) in items.iter().enumerate() {
                match item {
                    Value::Object(item) => check_metadata_item(Some(n), item, r),
                    _ => r.dataset(format!("additionalMetadata[{n}] must be an object")),
                }
            }
        }
        Some(_) => r.dataset("additionalMetadata must be an object or an array of objects"),
    }
}

fn string_or_strings(v: &Value) -> bool {
    match v {
        Value::String(_) => true,
        Value::Array(items) => items.iter().all(Value::is_string),
        _ => false,
    }
}

fn check_metadata_item(n: Option<usize>, item: &Map<String, Value>, r: &mut Report<'_>) {
    let at = match n {
        Some(n) => format!("additionalMetadata[{n}]"),
        None => "additionalMetadata".to_owned(),
    };
    for key in item.keys() {
        if !METADATA_KEYS.contains(&key.as_str()) && !key.starts_with("x_") {
            r.dataset(format!("{at}: unknown key {key:?} (extension keys must start with x_)"));
        }
    }
    if item.contains_key("content") == item.contains_key("contentURL") {
        r.dataset(format!("{at} must have exactly one of content and contentURL"));
    }
    if item.get("content").is_some_and(|c| !c.is_string() && !c.is_object()) {
        r.dataset(format!("{at}: content must be a string or an object"));
    }
    for key in ["name", "contentURL", "schemaURL", "aboutURL"] {
        if item.get(key).is_some_and(|v| !v.is_string()) {
            r.dataset(format!("{at}: {key} must be a string"));
        }
    }
}

/// `location`: a fixed point `{point, vectorComponents, units, coordinateSystemName}`
/// or the time-varying `{"parameters": [[names…], …]}` form (REQ-113).
fn check_location(loc: &Map<String, Value>, parameters: Option<&Value>, r: &mut Report<'_>) {
    for key in loc.keys() {
        if !LOCATION_KEYS.contains(&key.as_str()) && !key.starts_with("x_") {
            r.dataset(format!("location: unknown key {key:?} (extension keys must start with x_)"));
        }
    }
    if let Some(groups) = loc.get("parameters") {
        let names: Vec<&str> = parameters
            .and_then(Value::as_array)
            .map(|ps| ps.iter().filter_map(|p| p.get("name").and_then(Value::as_str)).collect())
            .unwrap_or_default();
        let ok = groups.as_array().is_some_and(|gs| {
            gs.iter().all(|g| {
                g.as_array().is_some_and(|g| {
                    !g.is_empty() && g.iter().all(|n| n.as_str().is_some_and(|n| names.contains(&n)))
                })
            })
        });
        if !ok {
            r.dataset("location.parameters must be an array of non-empty arrays of parameter names");
        }
        return;
    }
    for key in ["point", "vectorComponents", "units", "coordinateSystemName"] {
        if !loc.contains_key(key) {
            r.dataset(format!("location needs {key} (or the time-varying parameters form)"));
        }
    }
    let points = match loc.get("point") {
        Some(Value::Number(_)) => Some(1),
        Some(Value::Array(a)) if (2..=3).contains(&a.len()) && a.iter().all(Value::is_number) => {
            Some(a.len())
        }
        None => None,
        Some(_) => {
            r.dataset("location.point must be a number or an array of 2 or 3 numbers");
            None
        }
    };
    if let Some(vc) = loc.get("vectorComponents") {
        let count = match vc {
            Value::String(s) if param::is_vector_component(s) => Some(1),
            Value::Array(a) if a.iter().all(|c| c.as_str().is_some_and(param::is_vector_component)) => {
                Some(a.len())
            }
            _ => {
                r.dataset("location.vectorComponents must be a component name or an array of them");
                None
            }
        };
        if let (Some(points), Some(count)) = (points, count)
            && points != count
        {
            r.dataset("location.point and location.vectorComponents must have the same number of items");
        }
    }
    if loc.get("coordinateSystemName").is_some_and(|v| !v.is_string()) {
        r.dataset("location.coordinateSystemName must be a string");
    }
}
