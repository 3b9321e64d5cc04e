//! Checks of one `/data` answer against `/info` and the piece it was asked for. Each
//! check turns a malformed answer into an error that says what was wrong, so nothing
//! malformed becomes output.

use bytes::Bytes;
use hapi_core::Nanos;
use serde_json::Value;

use crate::error::{Error, Result};

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// HAPI csv.
    Csv,
    /// Little-endian fixed-width records.
    Binary,
    /// The info header with `data` last.
    Json,
}

impl Format {
    /// The `format=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Binary => "binary",
            Format::Json => "json",
        }
    }

    /// The media type the answer must have (parameters such as `charset` aside).
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Binary => "application/octet-stream",
            Format::Json => "application/json",
        }
    }
}

/// What a parameter must look like in every answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// `isotime`, `string`, `double` or `integer`.
    pub kind: String,
    /// Bytes of a string or isotime.
    pub length: Option<u64>,
    /// The array shape (empty for a scalar).
    pub size: Vec<u64>,
}

impl Param {
    fn of(p: &Value) -> Option<Param> {
        let size = match p.get("size") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>()?,
            Some(_) => return None,
        };
        Some(Param {
            name: p.get("name")?.as_str()?.to_owned(),
            kind: p.get("type")?.as_str()?.to_owned(),
            length: p.get("length").and_then(Value::as_u64),
            size,
        })
    }

    fn elements(&self) -> u64 {
        self.size.iter().product::<u64>().max(1)
    }
}

/// The record layout of a dataset's subset, from `/info`.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The parameters, the time first.
    pub params: Vec<Param>,
    /// Bytes of a binary record.
    pub record_width: usize,
    /// Bytes of the time at the start of a binary record.
    pub time_len: usize,
    /// Values in a csv line.
    pub fields: usize,
}

impl Layout {
    /// The layout `/info` describes.
    pub fn of_info(info: &Value) -> Result<Layout> {
        let params = params_of(info).ok_or_else(|| {
            Error::Response("/info: its parameters are not a list of name, type, length and size".into())
        })?;
        let Some(time) = params.first().filter(|p| p.kind == "isotime") else {
            return Err(Error::Response("/info: the first parameter is not the isotime".into()));
        };
        let time_len = time
            .length
            .filter(|&l| l > 0)
            .ok_or_else(|| Error::Response("/info: the time parameter has no length".into()))?
            as usize;
        let mut width = 0u64;
        for p in &params {
            let each = match p.kind.as_str() {
                "isotime" | "string" => p.length.filter(|&l| l > 0).ok_or_else(|| {
                    Error::Response(format!("/info: parameter {:?} ({}) has no length", p.name, p.kind))
                })?,
                "double" => 8,
                "integer" => 4,
                other => {
                    return Err(Error::Response(format!(
                        "/info: parameter {:?} has an unknown type {other:?}",
                        p.name
                    )));
                }
            };
            width += each * p.elements();
        }
        let fields = params.iter().map(Param::elements).sum::<u64>() as usize;
        Ok(Layout { params, record_width: width as usize, time_len, fields })
    }
}

fn params_of(doc: &Value) -> Option<Vec<Param>> {
    doc.get("parameters")?.as_array()?.iter().map(Param::of).collect()
}

/// One checked piece, ready to write.
#[derive(Debug, Clone)]
pub struct Checked {
    /// csv and binary: the `#` header lines; json: everything up to and including `"data":[`.
    pub header: Bytes,
    /// csv and binary: the records; json: the records between `[` and the closing `]`.
    pub data: Bytes,
    /// json only: from the closing `]` of `data` to the end.
    pub tail: Bytes,
    /// Records in `data`.
    pub records: u64,
    /// The whole answer the three parts are cut from, for its buffer to be reused.
    pub body: Bytes,
}

/// Checks a 200 answer's body for the piece [a, b) in format `fmt`.
pub fn piece(body: Bytes, fmt: Format, layout: &Layout, a: Nanos, b: Nanos, what: &str) -> Result<Checked> {
    let bad = |m: String| Error::Response(format!("{what}: {m}"));
    if fmt == Format::Json {
        return json_piece(body, layout, a, b).map_err(bad);
    }
    let (header, doc, data) = split_header(&body).map_err(bad)?;
    let code = header_checks(&doc, fmt, layout).map_err(bad)?;
    let mut times = Times { a, b, prev: Nanos::MIN, reader: Default::default() };
    let records = match fmt {
        Format::Csv => csv_records(&data, layout, &mut times),
        _ => binary_records(&data, layout, &mut times),
    }
    .map_err(bad)?;
    if code == 1201 && records > 0 {
        return Err(bad("the header says 1201 (no data) but records follow".into()));
    }
    Ok(Checked { header, data, tail: Bytes::new(), records, body })
}

/// The `#` lines, their JSON, and what follows.
fn split_header(body: &Bytes) -> std::result::Result<(Bytes, Value, Bytes), String> {
    if !body.starts_with(b"#") {
        return Err("the answer has no data header (include=header was asked)".into());
    }
    let mut pos = 0;
    let mut text = Vec::new();
    while body.get(pos) == Some(&b'#') {
        let Some(nl) = body[pos..].iter().position(|&c| c == b'\n') else {
            return Err("the data header does not end (no newline after a # line)".into());
        };
        text.extend_from_slice(&body[pos + 1..pos + nl]);
        text.push(b'\n');
        pos += nl + 1;
    }
    let doc: Value =
        serde_json::from_slice(&text).map_err(|e| format!("the data header is not JSON: {e}"))?;
    if !doc.is_object() {
        return Err("the data header is not a JSON object".into());
    }
    Ok((body.slice(..pos), doc, body.slice(pos..)))
}

/// The header's status code (1200 or 1201) once its parameters and format agree with /info.
fn header_checks(doc: &Value, fmt: Format, layout: &Layout) -> std::result::Result<i64, String> {
    let code = doc.get("status").and_then(|s| s.get("code")).and_then(Value::as_i64);
    let Some(code) = code.filter(|c| matches!(c, 1200 | 1201)) else {
        return Err(format!("the data header's status is {}", doc.get("status").unwrap_or(&Value::Null)));
    };
    if params_of(doc).as_ref() != Some(&layout.params) {
        return Err("the data header's parameters differ from /info (names, types, lengths or sizes)".into());
    }
    if let Some(f) = doc.get("format").and_then(Value::as_str)
        && f != fmt.as_str()
    {
        return Err(format!("the data header says format {f:?} where {} was asked", fmt.as_str()));
    }
    Ok(code)
}

/// Every time must lie in [a, b) and none before the one before it.
struct Times {
    a: Nanos,
    b: Nanos,
    prev: Nanos,
    /// Times of the previous record's day are read without a full parse.
    reader: hapi_core::time::TimeReader,
}

impl Times {
    fn check(&mut self, field: &[u8], record: u64) -> std::result::Result<(), String> {
        let end = field.iter().rposition(|&c| c != 0 && c != b' ').map_or(0, |p| p + 1);
        let t = self
            .reader
            .parse(&field[..end])
            .map_err(|e| format!("record {record}: the time is not a HAPI time ({e})"))?;
        if t < self.a || t >= self.b {
            return Err(format!(
                "record {record} lies outside the requested range [{}, {})",
                fmt_time(self.a),
                fmt_time(self.b)
            ));
        }
        if t < self.prev {
            return Err(format!("record {record} is out of time order"));
        }
        self.prev = t;
        Ok(())
    }
}

/// A time as this command sends it (nanoseconds, so a piece edge is exact).
pub fn fmt_time(t: Nanos) -> String {
    hapi_core::time::format_string(t, hapi_core::time::TimeFormat::YMD_NANOS)
}

/// Counts csv records (RFC 4180 quotes may hold commas and line breaks), checking
/// each one's number of values and its time.
fn csv_records(data: &[u8], layout: &Layout, times: &mut Times) -> std::result::Result<u64, String> {
    let mut pos = 0;
    let mut n = 0u64;
    while pos < data.len() {
        n += 1;
        let start = pos;
        let mut fields = 1;
        let mut quoted = false;
        let mut first_end = None;
        loop {
            let Some(&c) = data.get(pos) else {
                return Err(format!("record {n} does not end with a newline: the body was cut"));
            };
            if quoted {
                quoted = c != b'"';
            } else if c == b'"' {
                quoted = true;
            } else if c == b',' {
                first_end.get_or_insert(pos);
                fields += 1;
            } else if c == b'\n' {
                break;
            }
            pos += 1;
        }
        let end = if pos > start && data[pos - 1] == b'\r' { pos - 1 } else { pos };
        pos += 1;
        if fields != layout.fields {
            return Err(format!("csv record {n} has {fields} values, {} expected from /info", layout.fields));
        }
        times.check(&data[start..first_end.unwrap_or(end)], n)?;
    }
    Ok(n)
}

fn binary_records(data: &[u8], layout: &Layout, times: &mut Times) -> std::result::Result<u64, String> {
    let w = layout.record_width;
    if w == 0 || !data.len().is_multiple_of(w) {
        return Err(format!(
            "{} bytes of binary data are not a whole number of {w}-byte records: the answer was cut or does not match /info",
            data.len()
        ));
    }
    for (k, rec) in data.chunks_exact(w).enumerate() {
        times.check(&rec[..layout.time_len], k as u64 + 1)?;
    }
    Ok((data.len() / w) as u64)
}

/// A json answer: parsed whole and checked, then cut into the part before the records,
/// the records, and the part after, so pieces can be joined into one document.
fn json_piece(body: Bytes, layout: &Layout, a: Nanos, b: Nanos) -> std::result::Result<Checked, String> {
    let doc: Value = serde_json::from_slice(&body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Some(obj) = doc.as_object() else { return Err("the body is not a JSON object".into()) };
    let code = header_checks(&doc, Format::Json, layout)?;
    if obj.keys().next_back().map(String::as_str) != Some("data") {
        return Err("the json answer's last key is not \"data\"".into());
    }
    let Some(rows) = obj["data"].as_array() else { return Err("\"data\" is not an array".into()) };
    let mut times = Times { a, b, prev: Nanos::MIN, reader: Default::default() };
    for (k, row) in rows.iter().enumerate() {
        let cells = row.as_array().filter(|r| r.len() == layout.params.len());
        let Some(t) = cells.and_then(|r| r[0].as_str()) else {
            return Err(format!(
                "json record {} is not an array of {} values, the time first",
                k + 1,
                layout.params.len()
            ));
        };
        times.check(t.as_bytes(), k as u64 + 1)?;
    }
    if code == 1201 && !rows.is_empty() {
        return Err("the status is 1201 (no data) but records follow".into());
    }
    // `data` is the last key, and inside arrays a string is never followed by `:`, so the
    // last `"data"` followed by `:` and `[` opens the records.
    let open = last_data_key(&body).ok_or("cannot find the \"data\" array")?;
    let close = body
        .iter()
        .rposition(|&c| c == b']')
        .filter(|&c| c >= open)
        .ok_or("the data array does not close")?;
    let mut seg_end = close;
    while seg_end > open && body[seg_end - 1].is_ascii_whitespace() {
        seg_end -= 1;
    }
    Ok(Checked {
        header: body.slice(..open),
        data: body.slice(open..seg_end),
        tail: body.slice(seg_end..),
        records: rows.len() as u64,
        body,
    })
}

/// The offset just after the `[` of the top-level `"data": [`.
fn last_data_key(body: &[u8]) -> Option<usize> {
    let key = b"\"data\"";
    let mut from = body.len();
    while let Some(i) = body[..from].windows(key.len()).rposition(|w| w == key) {
        let mut j = i + key.len();
        let skip = |j: &mut usize| {
            while body.get(*j).is_some_and(u8::is_ascii_whitespace) {
                *j += 1;
            }
        };
        skip(&mut j);
        if body.get(j) == Some(&b':') {
            j += 1;
            skip(&mut j);
            if body.get(j) == Some(&b'[') {
                return Some(j + 1);
            }
        }
        from = i;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        let info = serde_json::json!({"parameters":[
            {"name":"Time","type":"isotime","length":24},
            {"name":"x","type":"double"},
            {"name":"s","type":"string","length":4},
            {"name":"v","type":"integer","size":[2]}]});
        Layout::of_info(&info).unwrap()
    }

    const T0: Nanos = 1_704_067_200_000_000_000;
    const HOUR: Nanos = 3_600_000_000_000;

    fn header(params: &str) -> String {
        format!(
            "#{{\"HAPI\":\"3.3\",\"status\":{{\"code\":1200,\"message\":\"OK\"}},\"parameters\":{params}}}\n"
        )
    }

    const PARAMS: &str = r#"[{"name":"Time","type":"isotime","length":24},{"name":"x","type":"double"},{"name":"s","type":"string","length":4},{"name":"v","type":"integer","size":[2]}]"#;

    #[test]
    fn layout_of_info() {
        let l = layout();
        assert_eq!((l.record_width, l.time_len, l.fields), (24 + 8 + 4 + 8, 24, 5));
    }

    #[test]
    fn csv_with_quotes_counts_records() {
        let body = format!(
            "{}2024-01-01T00:00:00.000Z,1.5,\"a,\nb\",1,2\n2024-01-01T00:30:00.000Z,2,x,3,4\n",
            header(PARAMS)
        );
        let c = piece(Bytes::from(body), Format::Csv, &layout(), T0, T0 + HOUR, "t").unwrap();
        assert_eq!(c.records, 2);
        assert!(c.header.starts_with(b"#{") && c.header.ends_with(b"}\n"));
    }

    #[test]
    fn malformed_csv_fails() {
        let cases = [
            (format!("{}2024-01-01T00:00:00.000Z,1,a,1\n", header(PARAMS)), "4 values, 5 expected"),
            (format!("{}2024-01-01T00:00:00.000Z,1,a,1,2", header(PARAMS)), "was cut"),
            (format!("{}2024-01-01T02:00:00.000Z,1,a,1,2\n", header(PARAMS)), "outside the requested range"),
            (
                format!(
                    "{}2024-01-01T00:20:00.000Z,1,a,1,2\n2024-01-01T00:10:00.000Z,1,a,1,2\n",
                    header(PARAMS)
                ),
                "out of time order",
            ),
            (
                format!("{}2024-01-01T00:00:00.000Z,1,a,1,2\n", header(&PARAMS.replace("\"x\"", "\"y\""))),
                "differ",
            ),
            ("2024-01-01T00:00:00.000Z,1,a,1,2\n".to_owned(), "no data header"),
            ("{\"HAPI\":\"3.3\"}".to_owned(), "no data header"),
        ];
        for (body, words) in cases {
            let e = piece(Bytes::from(body.clone()), Format::Csv, &layout(), T0, T0 + HOUR, "t").unwrap_err();
            assert!(e.to_string().contains(words), "{body:?}: {e}");
        }
    }

    #[test]
    fn binary_must_be_whole_records() {
        let mut rec = b"2024-01-01T00:00:00.000Z".to_vec();
        rec.extend_from_slice(&[0; 20]);
        let mut body = header(PARAMS).into_bytes();
        body.extend_from_slice(&rec);
        let c = piece(Bytes::from(body.clone()), Format::Binary, &layout(), T0, T0 + HOUR, "t").unwrap();
        assert_eq!(c.records, 1);
        body.pop();
        let e = piece(Bytes::from(body), Format::Binary, &layout(), T0, T0 + HOUR, "t").unwrap_err();
        assert!(e.to_string().contains("not a whole number"), "{e}");
    }

    #[test]
    fn json_is_cut_around_its_records() {
        let body = format!(
            "{{\"HAPI\":\"3.3\",\"status\":{{\"code\":1200,\"message\":\"OK\"}},\"description\":\"a \\\"data\\\":[ b\",\"parameters\":{PARAMS},\"data\":[\n[\"2024-01-01T00:00:00.000Z\",1,\"a\",[1,2]],\n[\"2024-01-01T00:01:00.000Z\",2,\"b\",[3,4]]\n]}}\n"
        );
        let c = piece(Bytes::from(body.clone()), Format::Json, &layout(), T0, T0 + HOUR, "t").unwrap();
        assert_eq!(c.records, 2);
        assert!(c.header.ends_with(b"\"data\":["));
        assert!(c.data.starts_with(b"\n[\"2024") && c.data.ends_with(b"[3,4]]"));
        assert_eq!(&c.tail[..], b"\n]}\n");
        let whole = [c.header, c.data, c.tail].concat();
        assert_eq!(whole, body.as_bytes());
    }
}
