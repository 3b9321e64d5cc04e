//! Dataset metadata (`/info`), its validation and parameter subsetting.
//!
//! An operator configures each dataset with the JSON of an `/info` response.
//! [`DatasetInfo::from_json`] checks it against HAPI 3.3 (collecting every problem),
//! resolves JSON references, and keeps the JSON exactly as it will be published so
//! that a subset `/info` repeats every dataset-level key and parameter object
//! verbatim (REQ-074).

mod param;
mod refs;
mod validate;

#[cfg(test)]
pub(crate) mod tests;

use std::fmt;

use serde_json::{Map, Value};

use crate::status::{HapiStatus, StatusError};
use crate::time::{self, Nanos, TimeFormat};

/// The four HAPI parameter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// IEEE 754 binary64.
    Double,
    /// 32-bit signed.
    Integer,
    /// UTF-8 of at most `length` bytes.
    String,
    /// A HAPI time string of exactly `length` characters.
    IsoTime,
}

impl ParamType {
    /// The type named by a `type` value.
    pub fn parse(s: &str) -> Option<ParamType> {
        match s {
            "double" => Some(ParamType::Double),
            "integer" => Some(ParamType::Integer),
            "string" => Some(ParamType::String),
            "isotime" => Some(ParamType::IsoTime),
            _ => None,
        }
    }

    /// The `type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::Double => "double",
            ParamType::Integer => "integer",
            ParamType::String => "string",
            ParamType::IsoTime => "isotime",
        }
    }
}

/// One validated parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// `name`.
    pub name: String,
    /// `type`.
    pub kind: ParamType,
    /// `size`; empty for a scalar.
    pub size: Vec<usize>,
    /// `length` (string and isotime only), in bytes.
    pub length: Option<usize>,
    /// `fill` as written in the metadata (always a JSON string or null).
    pub fill: Option<String>,
    /// The parameter object as published, with every `$ref` resolved.
    pub json: Map<String, Value>,
}

impl Parameter {
    /// Values per record: the product of `size`, 1 for a scalar.
    pub fn width(&self) -> usize {
        self.size.iter().product::<usize>().max(1)
    }

    /// Bytes per record in the binary format.
    pub fn binary_width(&self) -> usize {
        let each = match self.kind {
            ParamType::Double => 8,
            ParamType::Integer => 4,
            ParamType::String | ParamType::IsoTime => self.length.unwrap_or(0),
        };
        each * self.width()
    }

    /// The fill of a `double` parameter as a number (`NaN` for a `"NaN"` fill).
    pub fn fill_f64(&self) -> Option<f64> {
        match self.kind {
            ParamType::Double => self.fill.as_deref().and_then(parse_fill_f64),
            _ => None,
        }
    }

    /// The fill of an `integer` parameter as a number.
    pub fn fill_i32(&self) -> Option<i32> {
        match self.kind {
            ParamType::Integer => self.fill.as_deref().and_then(|s| s.parse().ok()),
            _ => None,
        }
    }
}

/// A double fill: any finite number or NaN. Infinity is refused because csv
/// output has no spelling for it (REQ-173).
fn parse_fill_f64(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| !v.is_infinite())
}

/// A validated `/info` for one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    /// The dataset id (any UTF-8 except the comma).
    pub id: String,
    /// Parameters in info order; `parameters[0]` is the primary time.
    pub parameters: Vec<Parameter>,
    /// `startDate`, when the metadata fixes it.
    pub start_date: Option<Nanos>,
    /// `stopDate`, when the metadata fixes it.
    pub stop_date: Option<Nanos>,
    /// `cadence` in nanoseconds, when given.
    pub cadence: Option<Nanos>,
    /// How the primary time is written (from its `length`).
    pub time_format: TimeFormat,
    /// `maxRequestDuration` in nanoseconds, when given (the server answers 1408 beyond it).
    pub max_request_duration: Option<Nanos>,
    /// `sampleStartDate` and `sampleStopDate`, when given.
    pub sample: Option<(Nanos, Nanos)>,
    /// The info object as published by default: key order as configured, every
    /// `$ref` resolved, without `HAPI`, `status` and `definitions`.
    pub json: Map<String, Value>,
    /// The info object as configured, with `definitions` and `$ref`s, when the
    /// configuration uses references (served for `resolve_references=false`).
    pub unresolved: Option<Map<String, Value>>,
}

/// One problem in a dataset's configured metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaError {
    /// The dataset id.
    pub dataset: String,
    /// The parameter's name, when the problem is inside a parameter that has one.
    pub parameter: Option<String>,
    /// The parameter's position, when the problem is inside a parameter.
    pub index: Option<usize>,
    /// The rule that failed.
    pub message: String,
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dataset {:?}: ", self.dataset)?;
        match (&self.parameter, self.index) {
            (Some(name), _) => write!(f, "parameter {name:?}: ")?,
            (None, Some(i)) => write!(f, "parameters[{i}]: ")?,
            (None, None) => {}
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for MetaError {}

/// How many names a 1411 detail lists before it stops, so a dataset with
/// hundreds of parameters does not produce a huge error message.
const ORDER_HINT_NAMES: usize = 50;

impl DatasetInfo {
    /// Validates the configured `/info` JSON of dataset `id` against HAPI 3.3 and
    /// builds the dataset. `HAPI` and `status` keys are dropped, because operators
    /// paste real `/info` responses. `startDate` and `stopDate` may be left out;
    /// the server then supplies them with [`DatasetInfo::fill_dates`].
    ///
    /// Every problem found is returned, not only the first.
    pub fn from_json(id: &str, info: &Value) -> Result<DatasetInfo, Vec<MetaError>> {
        validate::build(id, info)
    }

    /// The index of the parameter called `name` (exact, case-sensitive match).
    pub fn parameter(&self, name: &str) -> Option<usize> {
        self.parameters.iter().position(|p| p.name == name)
    }

    /// The indices selected by a `parameters=` value (REQ-071, REQ-072): all of
    /// them when absent or empty; otherwise the named ones, which must follow info
    /// order without repeats. The primary time (index 0) is always included, so
    /// the result starts with 0 and is strictly ascending.
    pub fn select(&self, parameters: Option<&str>) -> Result<Vec<usize>, StatusError> {
        let Some(list) = parameters.filter(|s| !s.is_empty()) else {
            return Ok((0..self.parameters.len()).collect());
        };
        // Every name is looked up before the order is checked: 1407 comes before
        // 1411 (REQ-145). Details never quote the request (REQ-015).
        let mut wanted = Vec::new();
        for name in list.split(',') {
            if name.is_empty() {
                return Err(StatusError::with(
                    HapiStatus::UnknownParameter,
                    "parameters contains an empty name (a stray comma?)",
                ));
            }
            let Some(i) = self.parameter(name) else {
                return Err(StatusError::with(
                    HapiStatus::UnknownParameter,
                    "a requested parameter is not in this dataset (names are case-sensitive)",
                ));
            };
            wanted.push(i);
        }
        if wanted.windows(2).any(|w| w[0] >= w[1]) {
            return Err(StatusError::with(HapiStatus::ParameterOrder, self.order_hint()));
        }
        if wanted[0] != 0 {
            wanted.insert(0, 0);
        }
        Ok(wanted)
    }

    fn order_hint(&self) -> String {
        let names: Vec<&str> =
            self.parameters.iter().take(ORDER_HINT_NAMES).map(|p| p.name.as_str()).collect();
        let more = if self.parameters.len() > ORDER_HINT_NAMES { ", …" } else { "" };
        format!("names must follow the dataset's order without repeats: {}{more}", names.join(", "))
    }

    /// The `/info` object (without `HAPI`, `status` and `format`) for the selected
    /// parameters. Every other key is exactly as in the full info (REQ-074). With
    /// `resolve == false` and a configuration that uses references, the output
    /// keeps `definitions` and the `$ref` objects (REQ-131); otherwise it never
    /// contains either (REQ-130).
    pub fn info_json(&self, selection: &[usize], resolve: bool) -> Map<String, Value> {
        let unresolved = self.unresolved.as_ref().filter(|_| !resolve);
        let base = unresolved.unwrap_or(&self.json);
        let mut out = Map::new();
        for (key, value) in base {
            if key != "parameters" {
                out.insert(key.clone(), value.clone());
                continue;
            }
            let picked: Vec<Value> = match unresolved {
                Some(_) => {
                    let all = value.as_array().map(Vec::as_slice).unwrap_or_default();
                    selection.iter().filter_map(|&i| all.get(i).cloned()).collect()
                }
                None => selection
                    .iter()
                    .filter_map(|&i| self.parameters.get(i))
                    .map(|p| Value::Object(p.json.clone()))
                    .collect(),
            };
            out.insert(key.clone(), Value::Array(picked));
        }
        out
    }

    /// Values per record in csv: the sum of the widths of the selected parameters
    /// (the primary time counts as one).
    pub fn values_per_record(&self, selection: &[usize]) -> usize {
        selection.iter().filter_map(|&i| self.parameters.get(i)).map(Parameter::width).sum()
    }

    /// Bytes per record in the binary format for the selected parameters (REQ-184).
    pub fn binary_record_size(&self, selection: &[usize]) -> usize {
        selection.iter().filter_map(|&i| self.parameters.get(i)).map(Parameter::binary_width).sum()
    }

    /// Supplies `startDate` and `stopDate` where the configuration left them out
    /// (the server takes them from the store). Dates already configured are kept.
    /// They are written in the dataset's time format and placed first, where an
    /// `/info` response conventionally has them.
    pub fn fill_dates(&mut self, start: Nanos, stop: Nanos) {
        let mut missing = Vec::new();
        if self.start_date.is_none() {
            self.start_date = Some(start);
            missing.push(("startDate", time::format_string(start, self.time_format)));
        }
        if self.stop_date.is_none() {
            self.stop_date = Some(stop);
            missing.push(("stopDate", time::format_string(stop, self.time_format)));
        }
        if missing.is_empty() {
            return;
        }
        self.json = prepend(&self.json, &missing);
        if let Some(u) = &self.unresolved {
            self.unresolved = Some(prepend(u, &missing));
        }
    }
}

fn prepend(map: &Map<String, Value>, first: &[(&str, String)]) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in first {
        out.insert((*k).to_owned(), Value::String(v.clone()));
    }
    for (k, v) in map {
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    out
}
