//! `hapi-server describe FILE`: a draft info JSON from a sample csv file (or a CDF file:
//! [`describe_cdf`]), so that an operator does not write forty parameters by hand.
//!
//! Two inputs are understood: an `include=header` response (its `#` JSON header is the
//! info; the records after it are only checked), or a csv file whose first line names
//! the columns. For the latter each column's type is the narrowest that holds every
//! value (integer, double, isotime, else string of the longest value's length); the
//! cadence is the most common step between times, and the dates are the first record
//! and one cadence after the last.

mod cdf;

use std::collections::HashMap;

pub use cdf::{describe_cdf, describe_cdf_file};

use hapi_core::Nanos;
use hapi_core::{duration, time};
use serde_json::{Map, Value, json};

/// Rows read to decide the columns' types (the whole file when it is shorter).
const SAMPLE_ROWS: usize = 100_000;

/// The draft info of `text`, or why none can be made.
pub fn describe(text: &str) -> Result<Value, String> {
    let header: String = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#'))
        .collect::<Vec<_>>()
        .join("\n");
    if !header.trim().is_empty() {
        let mut info: Map<String, Value> =
            serde_json::from_str(&header).map_err(|e| format!("the '#' header is not JSON: {e}"))?;
        for key in ["HAPI", "status", "format"] {
            info.remove(key);
        }
        return Ok(Value::Object(info));
    }
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let names: Vec<String> = split(lines.next().ok_or("the file is empty")?);
    if names.len() < 2 {
        return Err("the first line must name the time column and at least one more".to_owned());
    }
    let mut columns: Vec<Guess> = names.iter().map(|_| Guess::default()).collect();
    let mut times = Vec::new();
    for (n, line) in lines.take(SAMPLE_ROWS).enumerate() {
        let fields = split(line);
        if fields.len() != names.len() {
            return Err(format!(
                "line {}: {} fields, the first line names {}",
                n + 2,
                fields.len(),
                names.len()
            ));
        }
        let t = time::parse(fields[0].trim())
            .map_err(|e| format!("line {}: the first column is not a HAPI time ({e})", n + 2))?;
        times.push(t);
        for (g, f) in columns.iter_mut().zip(&fields) {
            g.see(f);
        }
    }
    if times.is_empty() {
        return Err("the file has names but no records".to_owned());
    }
    let mut parameters = vec![json!({
        "name": names[0].trim(),
        "type": "isotime",
        "units": "UTC",
        "fill": null,
        "length": columns[0].longest.max(20),
    })];
    for (name, g) in names.iter().zip(&columns).skip(1) {
        parameters.push(g.parameter(name.trim()));
    }
    let mut info = Map::new();
    info.insert("parameters".to_owned(), Value::Array(parameters));
    let cadence = cadence(&times);
    let (first, last) = (times[0], times[times.len() - 1]);
    let fmt = time::TimeFormat::YMD_MILLIS;
    info.insert("startDate".to_owned(), json!(time::format_string(first, fmt)));
    info.insert("stopDate".to_owned(), json!(time::format_string(last + cadence.unwrap_or(1_000_000), fmt)));
    if let Some(c) = cadence {
        info.insert("cadence".to_owned(), json!(duration::format(c)));
    }
    Ok(Value::Object(info))
}

/// The most common positive step between consecutive times (csv and CDF alike).
fn cadence(times: &[Nanos]) -> Option<Nanos> {
    let mut steps: HashMap<Nanos, usize> = HashMap::new();
    for w in times.windows(2) {
        if w[1] > w[0] {
            *steps.entry(w[1] - w[0]).or_default() += 1;
        }
    }
    steps.into_iter().max_by_key(|&(step, n)| (n, std::cmp::Reverse(step))).map(|(step, _)| step)
}

/// Fields of a csv line, quotes removed (RFC 4180, no line breaks inside quotes).
fn split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    out.push(field);
    out
}

/// What every value of one column so far allows.
#[derive(Debug)]
struct Guess {
    integer: bool,
    double: bool,
    isotime: bool,
    longest: usize,
}

impl Default for Guess {
    fn default() -> Self {
        Guess { integer: true, double: true, isotime: true, longest: 0 }
    }
}

impl Guess {
    fn see(&mut self, raw: &str) {
        let v = raw.trim();
        self.longest = self.longest.max(raw.len());
        self.integer &= v.parse::<i32>().is_ok();
        self.double &= v.parse::<f64>().is_ok_and(f64::is_finite);
        self.isotime &= time::parse_strict(v).is_ok();
    }

    fn parameter(&self, name: &str) -> Value {
        if self.integer {
            json!({"name": name, "type": "integer", "units": null, "fill": null})
        } else if self.double {
            json!({"name": name, "type": "double", "units": null, "fill": null})
        } else if self.isotime {
            json!({"name": name, "type": "isotime", "units": "UTC", "fill": null, "length": self.longest.max(1)})
        } else {
            json!({"name": name, "type": "string", "units": null, "fill": null, "length": self.longest.max(1)})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_with_names_gives_an_info_the_server_accepts() {
        let text = "time,Bx,quality,flag,when\n\
            2020-01-01T00:00:00.000Z,1.5,1,ok,2020-01-01T00:00:00Z\n\
            2020-01-01T00:01:00.000Z,-2,0,\"a,b\",2020-01-01T00:00:01Z\n\
            2020-01-01T00:02:00.000Z,1e3,3,bad,2020-01-01T00:00:02Z\n\
            2020-01-01T00:04:00.000Z,0,3,ok,2020-01-01T00:00:03Z\n";
        let info = describe(text).unwrap();
        let types: Vec<&str> =
            info["parameters"].as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["isotime", "double", "integer", "string", "isotime"]);
        assert_eq!(info["parameters"][3]["length"], 3);
        assert_eq!(info["cadence"], "PT1M");
        assert_eq!(info["startDate"], "2020-01-01T00:00:00.000Z");
        assert_eq!(info["stopDate"], "2020-01-01T00:05:00.000Z");
        hapi_core::info::DatasetInfo::from_json("x", &info).expect("the server accepts the draft");
    }

    #[test]
    fn a_header_response_gives_its_own_info() {
        let text = "#{\"HAPI\":\"3.3\",\"status\":{\"code\":1200,\"message\":\"OK\"},\"format\":\"csv\",\n\
            #\"parameters\":[{\"name\":\"Time\",\"type\":\"isotime\",\"units\":\"UTC\",\"fill\":null,\"length\":24}],\n\
            #\"startDate\":\"2020-01-01T00:00Z\",\"stopDate\":\"2020-01-02T00:00Z\"}\n\
            2020-01-01T00:00:00.000Z\n";
        let info = describe(text).unwrap();
        assert!(info.get("HAPI").is_none() && info.get("format").is_none());
        hapi_core::info::DatasetInfo::from_json("x", &info).expect("accepted");
    }

    #[test]
    fn what_cannot_be_described_says_why() {
        assert!(describe("").unwrap_err().contains("empty"));
        assert!(describe("time,x\n").unwrap_err().contains("no records"));
        assert!(describe("time,x\nyesterday,1\n").unwrap_err().contains("line 2"));
        assert!(describe("time,x\n2020-01-01T00:00Z,1,2\n").unwrap_err().contains("fields"));
    }
}
