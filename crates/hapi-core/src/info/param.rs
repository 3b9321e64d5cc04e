//! Checks of parameter objects: REQ-090..103 (types, length, size, units, label,
//! fill, bins), REQ-110/111 (vectors) and REQ-115 (`stringType`).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::validate::Report;
use super::{ParamType, Parameter, parse_fill_f64};
use crate::time::{self, TimeFormat};

/// Keys a parameter may have besides `x_*` ones.
const PARAM_KEYS: &[&str] = &[
    "name",
    "type",
    "units",
    "fill",
    "length",
    "size",
    "description",
    "label",
    "bins",
    "stringType",
    "coordinateSystemName",
    "vectorComponents",
];

/// Keys a bins object may have besides `x_*` ones.
const BIN_KEYS: &[&str] = &["name", "units", "label", "description", "centers", "ranges"];

const VECTOR_COMPONENTS: &[&str] =
    &["x", "y", "z", "r", "rho", "latitude", "colatitude", "longitude", "longitude0", "altitude", "other"];

/// Our limit on values per record for one parameter: larger arrays are almost
/// certainly a typo in `size`, and would make single records enormous.
const MAX_VALUES: usize = 100_000;

/// Our limit on `length` (bytes of one string or time value): 1 MiB. Real strings
/// (names, flags, URIs) are far shorter; 4,000,000,000 is a typo that would make every
/// record gigabytes long.
const MAX_LENGTH: usize = 1 << 20;

pub(super) fn is_vector_component(s: &str) -> bool {
    VECTOR_COMPONENTS.contains(&s)
}

/// Checks every parameter and the uniqueness of their names (REQ-091: names may
/// not differ only by case). Returns the parameters that passed.
pub(super) fn check_all(items: &[Value], r: &mut Report<'_>) -> Vec<Parameter> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, &str> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(p) = check(i, item, items, r) {
            out.push(p);
        }
        let Some(name) = item.get("name").and_then(Value::as_str) else {
            continue;
        };
        match seen.get(&name.to_lowercase()) {
            Some(&first) if first == name => r.param(i, Some(name), "name is used by an earlier parameter"),
            Some(&first) => {
                r.param(i, Some(name), format!("name differs only by case from parameter {first:?}"));
            }
            None => {
                seen.insert(name.to_lowercase(), name);
            }
        }
    }
    out
}

/// Reports problems of one parameter, naming it.
struct Ctx<'r, 'a> {
    r: &'r mut Report<'a>,
    index: usize,
    name: Option<String>,
}

impl Ctx<'_, '_> {
    fn err(&mut self, message: impl Into<String>) {
        self.r.param(self.index, self.name.as_deref(), message);
    }
}

fn check(i: usize, v: &Value, all: &[Value], r: &mut Report<'_>) -> Option<Parameter> {
    let before = r.len();
    let Some(obj) = v.as_object() else {
        r.param(i, None, "a parameter must be a JSON object");
        return None;
    };
    let name = obj.get("name").and_then(Value::as_str);
    let mut c = Ctx { r, index: i, name: name.map(str::to_owned) };
    check_name(&mut c, obj);
    for key in obj.keys() {
        if !PARAM_KEYS.contains(&key.as_str()) && !key.starts_with("x_") {
            c.err(format!("unknown key {key:?} (extension keys must start with x_)"));
        }
    }
    let kind = match obj.get("type") {
        None => {
            c.err("type is required");
            None
        }
        Some(t) => {
            let kind = t.as_str().and_then(ParamType::parse);
            if kind.is_none() {
                c.err("type must be one of double, integer, string, isotime");
            }
            kind
        }
    };
    let length = check_length(&mut c, obj, kind);
    let size = check_size(&mut c, obj);
    check_units(&mut c, obj, kind, size.as_deref());
    check_label(&mut c, obj, size.as_deref());
    let fill = check_fill(&mut c, obj, kind, length, i == 0);
    if let Some(size) = &size {
        check_bins(&mut c, obj, size, all);
        check_vector_components(&mut c, obj, size);
    }
    check_string_type(&mut c, obj, kind);
    for key in ["coordinateSystemName", "description"] {
        if obj.get(key).is_some_and(|v| !v.is_string()) {
            c.err(format!("{key} must be a string"));
        }
    }
    if i == 0 {
        check_primary(&mut c, kind, length, size.as_deref(), fill.as_ref());
    }
    if c.r.len() > before {
        return None;
    }
    Some(Parameter {
        name: name?.to_owned(),
        kind: kind?,
        size: size?,
        length,
        fill: fill?,
        json: obj.clone(),
    })
}

/// REQ-016: any UTF-8 except the comma (which would split `parameters=`) and
/// control characters.
fn check_name(c: &mut Ctx<'_, '_>, obj: &Map<String, Value>) {
    match obj.get("name") {
        None => c.err("name is required"),
        Some(Value::String(s)) if s.is_empty() => c.err("name must not be empty"),
        Some(Value::String(s)) if s.contains(',') => c.err("name must not contain a comma"),
        Some(Value::String(s)) if s.chars().any(char::is_control) => {
            c.err("name must not contain control characters");
        }
        Some(Value::String(_)) => {}
        Some(_) => c.err("name must be a string"),
    }
}

/// REQ-093: required for string and isotime, forbidden for numbers, in bytes.
fn check_length(c: &mut Ctx<'_, '_>, obj: &Map<String, Value>, kind: Option<ParamType>) -> Option<usize> {
    let textual = matches!(kind, Some(ParamType::String | ParamType::IsoTime));
    match obj.get("length") {
        None if textual => {
            c.err("length is required for string and isotime parameters");
            None
        }
        None => None,
        Some(_) if kind.is_some() && !textual => {
            c.err("length is not allowed for double and integer parameters");
            None
        }
        Some(v) => {
            let n = v.as_u64().filter(|&n| n > 0).and_then(|n| usize::try_from(n).ok());
            match n {
                None => c.err("length must be a positive integer"),
                Some(n) if n > MAX_LENGTH => {
                    c.err(format!("length must be at most {MAX_LENGTH} bytes"));
                    return None;
                }
                Some(_) => {}
            }
            n
        }
    }
}

/// REQ-094. `Some(vec![])` is a scalar; `None` means `size` is unusable.
fn check_size(c: &mut Ctx<'_, '_>, obj: &Map<String, Value>) -> Option<Vec<usize>> {
    let Some(v) = obj.get("size") else {
        return Some(Vec::new());
    };
    let dims: Option<Vec<usize>> = v.as_array().filter(|a| !a.is_empty()).and_then(|a| {
        a.iter().map(|d| d.as_u64().filter(|&n| n > 0).and_then(|n| usize::try_from(n).ok())).collect()
    });
    let Some(dims) = dims else {
        c.err("size must be a non-empty array of positive integers");
        return None;
    };
    let total = dims.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
    if total.is_none_or(|t| t > MAX_VALUES) {
        c.err(format!("size {dims:?} has more than {MAX_VALUES} values per record"));
        return None;
    }
    Some(dims)
}

/// REQ-095 and REQ-097: one string broadcast to every element, a one-element
/// array (tolerated as a broadcast), or nested arrays of exactly the shape of `size`.
fn shaped_text_ok(v: &Value, size: &[usize], allow_null: bool) -> bool {
    let leaf = |v: &Value| match v {
        Value::String(s) => !s.trim().is_empty(),
        Value::Null => allow_null,
        _ => false,
    };
    if leaf(v) {
        return true;
    }
    if size.is_empty() {
        return false;
    }
    match v {
        Value::Array(items) if items.len() == 1 && leaf(&items[0]) => true,
        _ => matches_shape(v, size, &leaf),
    }
}

fn matches_shape(v: &Value, shape: &[usize], leaf: &dyn Fn(&Value) -> bool) -> bool {
    match shape.split_first() {
        None => leaf(v),
        Some((&n, rest)) => {
            v.as_array().is_some_and(|a| a.len() == n && a.iter().all(|x| matches_shape(x, rest, leaf)))
        }
    }
}

fn check_units(
    c: &mut Ctx<'_, '_>,
    obj: &Map<String, Value>,
    kind: Option<ParamType>,
    size: Option<&[usize]>,
) {
    let Some(units) = obj.get("units") else {
        c.err("units is required (null when the quantity has no units)");
        return;
    };
    if kind == Some(ParamType::IsoTime) {
        if units.as_str() != Some("UTC") {
            c.err("units of an isotime parameter must be \"UTC\"");
        }
        return;
    }
    let Some(size) = size else {
        return;
    };
    if shaped_text_ok(units, size, true) {
        return;
    }
    if units.as_str().is_some() {
        c.err("units must not be an empty string (use null or \"dimensionless\")");
    } else if size.is_empty() {
        c.err("units of a scalar parameter must be null or a non-empty string");
    } else {
        c.err(format!(
            "units must be null, a non-empty string, or nested arrays of strings or nulls with exactly the shape of size {size:?}"
        ));
    }
}

fn check_label(c: &mut Ctx<'_, '_>, obj: &Map<String, Value>, size: Option<&[usize]>) {
    let (Some(label), Some(size)) = (obj.get("label"), size) else {
        return;
    };
    if shaped_text_ok(label, size, false) {
        return;
    }
    match label {
        Value::Null => c.err("label must not be null (leave it out instead)"),
        Value::String(_) => c.err("label must not be an empty string"),
        _ if size.is_empty() => c.err("label of a scalar parameter must be a non-empty string"),
        _ => c.err(format!(
            "label must be a non-empty string or nested arrays of non-empty strings with exactly the shape of size {size:?}"
        )),
    }
}

/// REQ-096. Returns the fill (`Some(None)` for null), or `None` when unusable.
fn check_fill(
    c: &mut Ctx<'_, '_>,
    obj: &Map<String, Value>,
    kind: Option<ParamType>,
    length: Option<usize>,
    primary: bool,
) -> Option<Option<String>> {
    let s = match obj.get("fill") {
        None => {
            c.err("fill is required (null when the parameter has no fill value)");
            return None;
        }
        Some(Value::Null) => return Some(None),
        Some(Value::String(s)) => s,
        Some(Value::Number(_)) => {
            c.err("fill must be a JSON string or null, never a number (write \"-1e31\", not -1e31)");
            return None;
        }
        Some(_) => {
            c.err("fill must be a JSON string or null");
            return None;
        }
    };
    match kind {
        // The primary time's own rule (fill null) is reported by check_primary.
        _ if primary => {}
        Some(ParamType::Double) if parse_fill_f64(s).is_none() => {
            c.err("fill of a double must be a JSON string holding a number or NaN");
        }
        Some(ParamType::Integer) if s.parse::<i32>().is_err() => {
            c.err("fill of an integer must be a JSON string holding a 32-bit integer (no decimal point, not NaN)");
        }
        Some(ParamType::String) => {
            if let Some(len) = length
                && s.len() > len
            {
                c.err(format!("fill is {} bytes long, more than length {len}", s.len()));
            }
        }
        Some(ParamType::IsoTime) => {
            // The spec allows any string of `length` characters; the verifier also
            // wants a valid time, so we ask for both.
            if let Some(len) = length
                && (s.len() != len || time::parse_strict(s).is_err())
            {
                c.err(format!(
                    "fill of an isotime parameter must be a valid HAPI time ending in Z of exactly length {len} characters"
                ));
            }
        }
        _ => {}
    }
    Some(Some(s.clone()))
}

/// REQ-090: the first parameter is the primary time.
fn check_primary(
    c: &mut Ctx<'_, '_>,
    kind: Option<ParamType>,
    length: Option<usize>,
    size: Option<&[usize]>,
    fill: Option<&Option<String>>,
) {
    if kind.is_some_and(|k| k != ParamType::IsoTime) {
        c.err("the first parameter must be the primary time, of type isotime");
        return;
    }
    if size.is_some_and(|s| !s.is_empty()) {
        c.err("the primary time must be a scalar (no size)");
    }
    if fill.is_some_and(|f| f.is_some()) {
        c.err("the primary time must have fill null");
    }
    if let Some(len) = length
        && TimeFormat::ymd(len).is_none()
    {
        let supported: Vec<String> =
            (1..=64).filter(|&n| TimeFormat::ymd(n).is_some()).map(|n| n.to_string()).collect();
        c.err(format!(
            "length {len} is not a supported length for the primary time; supported lengths: {}",
            supported.join(", ")
        ));
    }
}

/// REQ-100..103.
fn check_bins(c: &mut Ctx<'_, '_>, obj: &Map<String, Value>, size: &[usize], all: &[Value]) {
    let Some(bins) = obj.get("bins") else {
        return;
    };
    let Value::Array(bins) = bins else {
        c.err("bins must be an array with one object per dimension");
        return;
    };
    if size.is_empty() {
        c.err("bins are only allowed on array parameters (with size)");
        return;
    }
    if bins.len() != size.len() {
        c.err(format!("bins must have one object per dimension of size {size:?}, not {}", bins.len()));
        return;
    }
    for (d, (bin, &n)) in bins.iter().zip(size).enumerate() {
        check_bin(c, &format!("bins[{d}]"), bin, n, all);
    }
}

fn check_bin(c: &mut Ctx<'_, '_>, at: &str, bin: &Value, n: usize, all: &[Value]) {
    let Some(b) = bin.as_object() else {
        c.err(format!("{at} must be an object"));
        return;
    };
    for key in b.keys() {
        if !BIN_KEYS.contains(&key.as_str()) && !key.starts_with("x_") {
            c.err(format!("{at}: unknown key {key:?} (extension keys must start with x_)"));
        }
    }
    if b.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
        c.err(format!("{at}: name is required and must be a non-empty string"));
    }
    // The spec (§3.6.13) and the 3.3 schema the verifier uses take a string only: no
    // null (a dimensionless bin axis says "dimensionless"), no array.
    match b.get("units") {
        None => c.err(format!("{at}: units is required")),
        Some(u) if !shaped_text_ok(u, &[], false) => {
            c.err(format!("{at}: units must be a non-empty string (\"dimensionless\" for none, never null)"));
        }
        Some(_) => {}
    }
    if b.get("label").is_some_and(|l| !shaped_text_ok(l, &[n], false)) {
        c.err(format!("{at}: label must be a non-empty string or {n} of them"));
    }
    if b.get("description").is_some_and(|v| !v.is_string()) {
        c.err(format!("{at}: description must be a string"));
    }
    let (centers, ranges) = (b.get("centers"), b.get("ranges"));
    match (centers, ranges) {
        (None, None) => {
            c.err(format!("{at} needs centers or ranges (centers: null marks a dimension without bins)"));
        }
        (Some(Value::Null), Some(_)) => {
            c.err(format!("{at}: ranges are not allowed when centers is null (a dimension without bins)"));
        }
        _ => {}
    }
    match centers {
        None | Some(Value::Null) => {}
        Some(Value::String(p)) => check_bin_parameter(c, at, "centers", p, &[n], all),
        Some(Value::Array(a)) if a.len() == n && a.iter().all(Value::is_number) => {}
        Some(_) => c.err(format!(
            "{at}: centers must be an array of {n} numbers (no nulls), null, or the name of a parameter"
        )),
    }
    let pair = |v: &Value| v.as_array().is_some_and(|p| p.len() == 2 && p.iter().all(Value::is_number));
    match ranges {
        None => {}
        Some(Value::String(p)) => check_bin_parameter(c, at, "ranges", p, &[n, 2], all),
        Some(Value::Array(a)) if a.len() == n && a.iter().all(pair) => {}
        Some(_) => c.err(format!(
            "{at}: ranges must be an array of {n} [min, max] pairs of numbers, or the name of a parameter"
        )),
    }
}

/// REQ-103: time-varying bins name another parameter of the dataset, whose
/// size has to match the dimension.
fn check_bin_parameter(
    c: &mut Ctx<'_, '_>,
    at: &str,
    key: &str,
    target: &str,
    expected: &[usize],
    all: &[Value],
) {
    if c.name.as_deref() == Some(target) {
        c.err(format!("{at}: {key} cannot name the parameter itself"));
        return;
    }
    let Some(other) = all.iter().find(|p| p.get("name").and_then(Value::as_str) == Some(target)) else {
        c.err(format!("{at}: {key} names {target:?}, which is not a parameter of this dataset"));
        return;
    };
    let size: Option<Vec<u64>> =
        other.get("size").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_u64).collect());
    let expected: Vec<u64> = expected.iter().map(|&n| n as u64).collect();
    if size.as_ref() != Some(&expected) {
        c.err(format!("{at}: {key} parameter {target:?} must have size {expected:?}"));
    }
}

/// REQ-111: a scalar takes one component name; an array takes one name per
/// element and must then be one-dimensional.
fn check_vector_components(c: &mut Ctx<'_, '_>, obj: &Map<String, Value>, size: &[usize]) {
    let Some(vc) = obj.get("vectorComponents") else {
        return;
    };
    let allowed = VECTOR_COMPONENTS.join(", ");
    match vc {
        Value::String(s) => {
            if !is_vector_component(s) {
                c.err(format!("vectorComponents must be one of {allowed}"));
            }
            if !size.is_empty() {
                c.err("vectorComponents of an array parameter must be an array with one name per element");
            }
        }
        Value::Array(items) => {
            if !items.iter().all(|v| v.as_str().is_some_and(is_vector_component)) {
                c.err(format!("vectorComponents items must be one of {allowed}"));
            }
            if size != [items.len()] {
                c.err(format!(
                    "vectorComponents with {} items needs size [{}] (one dimension, one item per component)",
                    items.len(),
                    items.len()
                ));
            }
        }
        _ => c.err("vectorComponents must be a string or an array of strings"),
    }
}

/// REQ-115.
fn check_string_type(c: &mut Ctx<'_, '_>, obj: &Map<String, Value>, kind: Option<ParamType>) {
    let Some(st) = obj.get("stringType") else {
        return;
    };
    if kind.is_some_and(|k| k != ParamType::String) {
        c.err("stringType is only allowed on string parameters");
    }
    let uri_ok = |u: &Map<String, Value>| {
        u.iter().all(|(k, v)| {
            (matches!(k.as_str(), "mediaType" | "scheme" | "base") && v.is_string()) || k.starts_with("x_")
        })
    };
    let ok = match st {
        Value::String(s) => s == "uri",
        Value::Object(o) => o.len() == 1 && o.get("uri").and_then(Value::as_object).is_some_and(uri_ok),
        _ => false,
    };
    if !ok {
        c.err("stringType must be \"uri\" or {\"uri\": {mediaType, scheme, base}} with string values");
    }
}
