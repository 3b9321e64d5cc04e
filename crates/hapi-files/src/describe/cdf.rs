//! `hapi-server describe FILE.cdf`: a draft info from one CDF granule's ISTP attributes.
//!
//! - The primary time is the epoch most data variables name as `DEPEND_0` (those with
//!   `VAR_TYPE` `data` first), else the first scalar epoch that varies by record. Its
//!   `length` is the resolution the times need (milliseconds, micro- or nanoseconds).
//! - Every record-varying variable that depends on it is a parameter (all of them, when
//!   no variable has a `DEPEND_0`): numbers to `double`, integers that fit 32 bits to
//!   `integer`, text to `string` of the variable's length, epochs to `isotime`; array
//!   shapes to `size`; `UNITS`, `FILLVAL`, `LABLAXIS` (or the `LABL_PTR_1` texts) and
//!   `CATDESC` to `units`, `fill`, `label` and `description`; numeric `DEPEND_1`..`n` to
//!   `bins` (fixed values, or the name of a record-varying parameter).
//! - The cadence is the most common step of the epoch, startDate its first record and
//!   stopDate one cadence after its last.

use std::collections::{HashMap, HashSet};

use hapi_cdf::{Cdf, DataType, Values, Variable};
use hapi_core::time::{self, TimeFormat};
use hapi_core::{Nanos, duration};
use serde_json::{Map, Value, json};

/// Epoch records read for the cadence and the time resolution.
const SAMPLE: u64 = 100_000;

/// The draft info of the CDF file at `path`, or why none can be made.
pub fn describe_cdf_file(path: &std::path::Path) -> Result<Value, String> {
    describe_cdf(&Cdf::open(path).map_err(|e| e.to_string())?)
}

/// The draft info of the CDF `cdf`, or why none can be made.
pub fn describe_cdf(cdf: &Cdf) -> Result<Value, String> {
    let vars = cdf.variables();
    let is_epoch = |v: &Variable| v.data_type.is_time() && v.values_per_record() == 1 && v.rec_vary;
    let mut votes: HashMap<&str, (usize, usize)> = HashMap::new();
    for v in vars.iter().filter(|v| v.rec_vary) {
        if let Some(d) = v.attr_text("DEPEND_0").filter(|d| cdf.variable(d).is_some_and(is_epoch)) {
            let e = votes.entry(d).or_default();
            e.0 += usize::from(v.attr_text("VAR_TYPE") == Some("data"));
            e.1 += 1;
        }
    }
    let epoch = match votes.iter().max_by_key(|(name, n)| (**n, std::cmp::Reverse(*name))) {
        Some((name, _)) => cdf.variable(name).expect("voted for an existing variable"),
        None => {
            vars.iter().find(|v| is_epoch(v)).ok_or("the file has no record-varying scalar epoch variable")?
        }
    };
    let ei = cdf.variable_index(&epoch.name).expect("a variable of the file");
    if epoch.records == 0 {
        return Err(format!("the epoch variable {:?} has no records", epoch.name));
    }
    let sample = cdf.read_times(ei, 0..epoch.records.min(SAMPLE)).map_err(|e| e.to_string())?;
    let last = cdf.read_times(ei, epoch.records - 1..epoch.records).map_err(|e| e.to_string())?[0];
    let length = if sample.iter().all(|t| t % 1_000_000 == 0) {
        24
    } else if sample.iter().all(|t| t % 1000 == 0) {
        27
    } else {
        30
    };
    let fmt = TimeFormat::ymd(length).expect("a ymd length");

    let any_depend = votes.contains_key(epoch.name.as_str());
    let members: Vec<&Variable> = vars
        .iter()
        .filter(|v| v.name != epoch.name && v.rec_vary && !v.name.contains(','))
        .filter(|v| match v.attr_text("DEPEND_0") {
            Some(d) => d == epoch.name,
            None => !any_depend && v.records == epoch.records,
        })
        .collect();
    let names: HashSet<&str> = members.iter().map(|v| v.name.as_str()).collect();
    let mut seen: HashSet<String> = HashSet::from([epoch.name.to_lowercase()]);
    let mut parameters = vec![json!({
        "name": epoch.name, "type": "isotime", "units": "UTC", "fill": null, "length": length,
    })];
    if let Some(d) = text_attr(epoch, "CATDESC") {
        parameters[0]["description"] = json!(d);
    }
    for v in members {
        // Names may not differ only by case: the first wins.
        if !seen.insert(v.name.to_lowercase()) {
            continue;
        }
        parameters.push(parameter(cdf, v, &names));
    }
    if parameters.len() < 2 {
        return Err(format!("no record-varying variable depends on the epoch {:?}", epoch.name));
    }
    let cadence = super::cadence(&sample);
    let mut info = Map::new();
    info.insert("parameters".to_owned(), Value::Array(parameters));
    info.insert("startDate".to_owned(), json!(time::format_string(sample[0], fmt)));
    let stop = last.saturating_add(cadence.unwrap_or(1));
    // Rounded up, so the last record lies before stopDate in the written resolution.
    let stop = fmt.truncate(stop.saturating_add(fmt.resolution() - 1));
    info.insert("stopDate".to_owned(), json!(time::format_string(stop, fmt)));
    if let Some(c) = cadence {
        info.insert("cadence".to_owned(), json!(duration::format(c)));
    }
    Ok(Value::Object(info))
}

/// A text attribute, trimmed, when not blank.
fn text_attr(v: &Variable, name: &str) -> Option<String> {
    v.attr_text(name).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn hapi_type(dt: DataType) -> &'static str {
    use DataType::*;
    match dt {
        Int1 | Int2 | Int4 | Uint1 | Uint2 | Byte => "integer",
        Char | Uchar => "string",
        Epoch | Epoch16 | TimeTt2000 => "isotime",
        _ => "double",
    }
}

fn parameter(cdf: &Cdf, v: &Variable, members: &HashSet<&str>) -> Value {
    let kind = hapi_type(v.data_type);
    let mut p = Map::new();
    p.insert("name".to_owned(), json!(v.name));
    p.insert("type".to_owned(), json!(kind));
    let shape: Vec<usize> = v.shape().iter().map(|&d| d as usize).collect();
    let time_len = 30;
    let units = if kind == "isotime" { Some("UTC".to_owned()) } else { text_attr(v, "UNITS") };
    p.insert("units".to_owned(), json!(units));
    p.insert("fill".to_owned(), fill(v, kind, time_len));
    match kind {
        "string" => {
            p.insert("length".to_owned(), json!(v.num_elems));
        }
        "isotime" => {
            p.insert("length".to_owned(), json!(time_len));
        }
        _ => {}
    }
    if !shape.is_empty() {
        p.insert("size".to_owned(), json!(shape));
    }
    if let Some(l) = labels(cdf, v, &shape).or_else(|| text_attr(v, "LABLAXIS").map(Value::String)) {
        p.insert("label".to_owned(), l);
    }
    if let Some(d) = text_attr(v, "CATDESC") {
        p.insert("description".to_owned(), json!(d));
    }
    if let Some(b) = bins(cdf, v, &shape, members) {
        p.insert("bins".to_owned(), b);
    }
    Value::Object(p)
}

/// `FILLVAL` as the HAPI fill of a parameter of `kind`.
fn fill(v: &Variable, kind: &str, time_len: usize) -> Value {
    let Some(f) = v.fill() else { return Value::Null };
    match (&f, kind) {
        (Values::F32(x), _) if x[0].is_finite() || x[0].is_nan() => json!(format!("{:?}", x[0])),
        (_, "double") => match f.get_f64(0) {
            // Debug keeps the shortest round-trip form with an exponent (-1e31).
            Some(x) if !x.is_infinite() => json!(format!("{x:?}")),
            _ => Value::Null,
        },
        (_, "integer") => f.get_f64(0).map_or(Value::Null, |x| json!(format!("{}", x as i64))),
        (Values::Text(t), _) => t.first().filter(|s| !s.is_empty()).map_or(Value::Null, |s| json!(s)),
        (_, "isotime") => match f.to_nanos().and_then(|n| n.first().copied()) {
            // Saturated (the TT2000 fill is before 1678): no time string stands for it.
            Some(n) if n != Nanos::MIN && n != Nanos::MAX => {
                json!(time::format_string(n, crate::cdf::time_format(time_len)))
            }
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

/// `LABL_PTR_1`'s (or a text `DEPEND_1`'s) strings, one per element of a vector.
fn labels(cdf: &Cdf, v: &Variable, shape: &[usize]) -> Option<Value> {
    let [n] = shape else { return None };
    let name = v.attr_text("LABL_PTR_1").or_else(|| {
        v.attr_text("DEPEND_1").filter(|d| cdf.variable(d).is_some_and(|l| l.data_type.is_text()))
    })?;
    let i = cdf.variable_index(name)?;
    let Ok(Values::Text(t)) = cdf.read(i, 0..cdf.variables()[i].records.min(1)) else { return None };
    let t: Vec<String> = t.iter().map(|s| s.trim().to_owned()).collect();
    (t.len() == *n && t.iter().all(|s| !s.is_empty())).then(|| json!(t))
}

/// `DEPEND_1`..`DEPEND_n` as bins: fixed centers from a variable that does not vary by
/// record, or the name of a record-varying parameter (time-varying bins).
fn bins(cdf: &Cdf, v: &Variable, shape: &[usize], members: &HashSet<&str>) -> Option<Value> {
    let mut out = Vec::new();
    let mut any = false;
    for (d, &n) in shape.iter().enumerate() {
        let dep = v.attr_text(&format!("DEPEND_{}", d + 1)).and_then(|name| cdf.variable(name));
        let dep = dep.filter(|b| !b.data_type.is_text() && !b.data_type.is_time() && b.shape() == [n as u32]);
        let Some(b) = dep else {
            out.push(
                json!({"name": format!("dimension {}", d + 1), "units": "dimensionless", "centers": null}),
            );
            continue;
        };
        let centers = if b.rec_vary {
            if !members.contains(b.name.as_str()) {
                return None;
            }
            json!(b.name)
        } else {
            let i = cdf.variable_index(&b.name)?;
            let values = cdf.read(i, 0..b.records.min(1)).ok()?;
            let c: Vec<f64> = (0..values.len()).filter_map(|k| values.get_f64(k)).collect();
            if c.len() != n || !c.iter().all(|x| x.is_finite()) {
                return None;
            }
            json!(c)
        };
        any = true;
        let mut o = json!({
            "name": b.name,
            "units": text_attr(b, "UNITS").unwrap_or_else(|| "dimensionless".to_owned()),
            "centers": centers,
        });
        if let Some(l) = text_attr(b, "LABLAXIS") {
            o["label"] = json!(l);
        }
        if let Some(l) = text_attr(b, "CATDESC") {
            o["description"] = json!(l);
        }
        out.push(o);
    }
    any.then(|| Value::Array(out))
}
