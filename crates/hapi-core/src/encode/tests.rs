//! Encoder tests: golden files for a fixture with every type, plus unit tests of the
//! quoting, NaN, fill, nesting and size rules. Regenerate the golden files with
//! `UPDATE_GOLDEN=1 cargo test -p hapi-core --lib encode`.

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::batch::{Column, push_text};
use crate::info::{DatasetInfo, ParamType, Parameter};
use crate::time::{Nanos, TimeFormat};

/// 2020-01-01T00:00:00Z.
pub(crate) const T0: Nanos = 1_577_836_800_000_000_000;
pub(crate) const SECOND: Nanos = 1_000_000_000;

pub(crate) fn param(
    name: &str,
    kind: ParamType,
    size: &[usize],
    length: Option<usize>,
    fill: Option<&str>,
) -> Parameter {
    Parameter {
        name: name.to_owned(),
        kind,
        size: size.to_vec(),
        length,
        fill: fill.map(str::to_owned),
        json: Map::new(),
    }
}

pub(crate) fn dataset(parameters: Vec<Parameter>) -> DatasetInfo {
    let mut all = vec![param("Time", ParamType::IsoTime, &[], Some(24), None)];
    all.extend(parameters);
    DatasetInfo {
        id: "fixture".to_owned(),
        parameters: all,
        start_date: Some(T0),
        stop_date: Some(T0 + 86_400 * SECOND),
        cadence: None,
        time_format: TimeFormat { doy: false, len: 24 },
        max_request_duration: None,
        sample: None,
        json: Map::new(),
        unresolved: None,
    }
}

/// Every type: double scalar with fill, integer, string, non-primary isotime,
/// double vector [3], integer array [2,3], string array [2].
pub(crate) fn fixture() -> DatasetInfo {
    dataset(vec![
        param("scalar", ParamType::Double, &[], None, Some("-1.0e+31")),
        param("count", ParamType::Integer, &[], None, Some("-999")),
        param("label", ParamType::String, &[], Some(20), Some("N/A")),
        param("event", ParamType::IsoTime, &[], Some(24), Some("0001-01-01T00:00:00.000Z")),
        param("vec", ParamType::Double, &[3], None, Some("-1e31")),
        param("matrix", ParamType::Integer, &[2, 3], None, Some("-1")),
        param("flags", ParamType::String, &[2], Some(4), Some("")),
    ])
}

pub(crate) struct Row<'a> {
    scalar: f64,
    count: i32,
    label: &'a str,
    event: &'a str,
    vec: [f64; 3],
    matrix: [i32; 6],
    flags: [&'a str; 2],
}

pub(crate) fn fixture_rows() -> Vec<Row<'static>> {
    let event = "2020-01-01T00:00:00.500Z";
    let fill_event = "0001-01-01T00:00:00.000Z";
    vec![
        Row {
            scalar: 1.5,
            count: 0,
            label: "plain",
            event,
            vec: [1.0, -2.5, 3e-7],
            matrix: [1, 2, 3, 4, 5, 6],
            flags: ["a", "bb"],
        },
        Row {
            scalar: -1e31,
            count: -999,
            label: "with, comma",
            event: fill_event,
            vec: [f64::NAN, 1e16, -0.0],
            matrix: [i32::MIN, i32::MAX, 0, -1, 7, 8],
            flags: ["", "abcd"],
        },
        Row {
            scalar: f64::NAN,
            count: i32::MAX,
            label: "say \"hi\"",
            event,
            vec: [0.1, 123_456.789, 5e-324],
            matrix: [0; 6],
            flags: ["x,y", "\"q\""],
        },
        Row {
            scalar: 6.022_140_76e23,
            count: -7,
            label: "naïve ☃ Aα",
            event,
            vec: [-1e31, f64::MAX, f64::MIN_POSITIVE],
            matrix: [-1; 6],
            flags: ["☃", "é"],
        },
        Row {
            scalar: 0.0,
            count: 42,
            label: " padded ",
            event,
            vec: [1e-5, 1e15, 100.0],
            matrix: [9, 8, 7, 6, 5, 4],
            flags: [" a", "b "],
        },
        Row {
            scalar: -123.25,
            count: 1,
            label: "line\nbreak\ttab\\",
            event,
            vec: [2.0, 3.0, 4.0],
            matrix: [1, 1, 1, 1, 1, 1],
            flags: ["", ""],
        },
    ]
}

/// The batch of all parameters of [`fixture`] for `rows`, times 1.5 s apart.
pub(crate) fn fixture_batch(rows: &[Row<'_>]) -> Batch {
    let mut scalar = Vec::new();
    let mut count = Vec::new();
    let (mut label, mut event, mut flags) = (Vec::new(), Vec::new(), Vec::new());
    let mut vec3 = Vec::new();
    let mut matrix = Vec::new();
    for r in rows {
        scalar.push(r.scalar);
        count.push(r.count);
        assert!(push_text(&mut label, r.label.as_bytes(), 20));
        assert!(push_text(&mut event, r.event.as_bytes(), 24));
        vec3.extend_from_slice(&r.vec);
        matrix.extend_from_slice(&r.matrix);
        for f in r.flags {
            assert!(push_text(&mut flags, f.as_bytes(), 4));
        }
    }
    Batch {
        times: (0..rows.len() as i64).map(|i| T0 + i * 1_500_000_000).collect(),
        columns: vec![
            Column::Double { width: 1, values: scalar },
            Column::Integer { width: 1, values: count },
            Column::Text { width: 1, len: 20, bytes: label },
            Column::Text { width: 1, len: 24, bytes: event },
            Column::Double { width: 3, values: vec3 },
            Column::Integer { width: 6, values: matrix },
            Column::Text { width: 2, len: 4, bytes: flags },
        ],
        wire: None,
    }
}

/// Keeps the columns of `selection` (indices into the parameters, starting with 0).
fn select(b: &Batch, selection: &[usize]) -> Batch {
    Batch {
        times: b.times.clone(),
        columns: selection[1..].iter().map(|&i| b.columns[i - 1].clone()).collect(),
        wire: None,
    }
}

pub(crate) fn header_map(format: Format) -> Map<String, Value> {
    let v = json!({
        "HAPI": "3.3",
        "status": {"code": 1200, "message": "OK"},
        "startDate": "2020-01-01T00:00:00.000Z",
        "stopDate": "2020-01-02T00:00:00.000Z",
        "parameters": [{"name": "Time", "type": "isotime", "units": "UTC", "length": 24, "fill": null}],
        "format": format.as_str(),
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// The whole response for `batches`, with the header when `header` (always for json).
pub(crate) fn encode(
    format: Format,
    info: &DatasetInfo,
    selection: &[usize],
    batches: &[Batch],
    header: bool,
) -> Vec<u8> {
    let mut enc = Encoder::new(format, info, selection);
    let mut out = Vec::new();
    if header || format == Format::Json {
        enc.header(&header_map(format), &mut out);
    }
    for b in batches {
        enc.batch(b, &mut out);
    }
    enc.finish(&mut out);
    out
}

fn golden(name: &str, actual: &[u8]) {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "golden", name].iter().collect();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; regenerate with UPDATE_GOLDEN=1", path.display()));
    assert!(
        expected == actual,
        "{} differs (UPDATE_GOLDEN=1 regenerates it)\n--- expected\n{}\n--- actual\n{}",
        path.display(),
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(actual)
    );
}

pub(crate) fn all_params(info: &DatasetInfo) -> Vec<usize> {
    (0..info.parameters.len()).collect()
}

#[test]
fn golden_csv_with_header() {
    let info = fixture();
    let b = fixture_batch(&fixture_rows());
    let out = encode(Format::Csv, &info, &all_params(&info), &[b], true);
    golden("fixture.csv", &out);
}

#[test]
fn golden_binary() {
    let info = fixture();
    let b = fixture_batch(&fixture_rows());
    let out = encode(Format::Binary, &info, &all_params(&info), &[b], false);
    golden("fixture.bin", &out);
}

#[test]
fn golden_json() {
    let info = fixture();
    let rows = fixture_rows();
    // Split over two batches: the record separator must carry across them.
    let out = encode(
        Format::Json,
        &info,
        &all_params(&info),
        &[fixture_batch(&rows[..2]), fixture_batch(&rows[2..])],
        true,
    );
    golden("fixture.json", &out);
    let v: Value = serde_json::from_slice(&out).expect("valid JSON");
    let obj = v.as_object().expect("object");
    assert_eq!(obj.keys().next_back().map(String::as_str), Some("data"));
    assert_eq!(obj["data"].as_array().map(Vec::len), Some(6));
    assert_eq!(obj["data"][2][3], json!("say \"hi\""));
    assert_eq!(obj["data"][5][3], json!("line\nbreak\ttab\\"));
}

#[test]
fn csv_lines_of_fixture() {
    let info = fixture();
    let out = encode(Format::Csv, &info, &all_params(&info), &[fixture_batch(&fixture_rows())], false);
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.starts_with("2020-01-01T00:00:00.000Z,1.5,0,plain,2020-01-01T00:00:00.500Z,1.0,-2.5,3e-7,"));
    assert!(text.contains("\n2020-01-01T00:00:01.500Z,-1.0e+31,-999,\"with, comma\",0001-01-01T00:00:00.000Z,NaN,1e+16,-0.0,-2147483648,2147483647,0,-1,7,8,,abcd\n"));
    assert!(text.contains(",NaN,2147483647,\"say \"\"hi\"\"\","));
    assert!(text.contains(",\"x,y\",\"\"\"q\"\"\"\n"));
    assert!(text.contains(",\" padded \","));
    assert!(text.contains(",\" a\",\"b \"\n"));
    assert!(text.contains(",naïve ☃ Aα,"));
    // `-1e31` is the vector's fill, so its metadata text is written, not `-1e+31`.
    assert!(text.contains(",-1e31,1.7976931348623157e+308,"));
    assert!(text.ends_with("\n") && !text.ends_with("\n\n"));
    // Six records; the quoted line break inside the last label makes a seventh physical line.
    assert!(text.contains(",\"line\nbreak\ttab\\\","));
    assert_eq!(text.lines().count(), 7);
}

#[test]
fn csv_quoting() {
    let cases: &[(&str, &str)] = &[
        ("plain", "plain"),
        ("", ""),
        ("a,b", "\"a,b\""),
        ("say \"hi\"", "\"say \"\"hi\"\"\""),
        ("\"", "\"\"\"\""),
        ("cr\rlf", "\"cr\rlf\""),
        ("l\nf", "\"l\nf\""),
        (" lead", "\" lead\""),
        ("trail ", "\"trail \""),
        ("in side", "in side"),
        ("tab\t", "tab\t"),
        ("☃,α", "\"☃,α\""),
    ];
    for (value, want) in cases {
        let mut out = Vec::new();
        csv::write_text(value.as_bytes(), true, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), *want, "{value:?}");
    }
    let mut out = Vec::new();
    csv::write_text(b"a,b", false, &mut out);
    assert_eq!(out, b"a,b", "isotime values are never quoted");
}

fn one_double(fill: Option<&str>) -> DatasetInfo {
    dataset(vec![param("x", ParamType::Double, &[], None, fill)])
}

fn doubles(values: &[f64]) -> Batch {
    Batch {
        times: (0..values.len() as i64).map(|i| T0 + i * SECOND).collect(),
        columns: vec![Column::Double { width: 1, values: values.to_vec() }],
        wire: None,
    }
}

fn csv_values(info: &DatasetInfo, values: &[f64]) -> Vec<String> {
    let out = encode(Format::Csv, info, &[0, 1], &[doubles(values)], false);
    String::from_utf8(out).expect("utf-8").lines().map(|l| l[25..].to_owned()).collect()
}

fn json_values(info: &DatasetInfo, values: &[f64]) -> Vec<String> {
    let out = encode(Format::Json, info, &[0, 1], &[doubles(values)], false);
    let text = String::from_utf8(out).expect("utf-8");
    assert!(serde_json::from_str::<Value>(&text).is_ok(), "{text}");
    // The raw text, not serde's re-rendering, which would reformat the numbers.
    text.lines()
        .filter_map(|l| l.strip_prefix("[\"2020-"))
        .map(|l| l[l.find(',').expect("comma") + 1..l.rfind(']').expect("bracket")].to_owned())
        .collect()
}

#[test]
fn doubles_nan_inf_and_fill() {
    let nan_payload = f64::from_bits(0xFFF8_0000_0000_0001);
    let values = [f64::NAN, nan_payload, f64::INFINITY, f64::NEG_INFINITY, -1e31, 1e-7, 2.0, -0.0];
    let info = one_double(Some("-1e31"));
    assert_eq!(csv_values(&info, &values), ["NaN", "NaN", "NaN", "NaN", "-1e31", "1e-7", "2.0", "-0.0"]);
    assert_eq!(json_values(&info, &values), ["null", "null", "null", "null", "-1e31", "1e-7", "2.0", "-0.0"]);
}

#[test]
fn fill_text_is_written_only_when_valid_in_the_format() {
    // `+1e31` passes the verifier's csv regex but is no JSON number; `1.` passes neither.
    let info = one_double(Some("+1e31"));
    assert_eq!(csv_values(&info, &[1e31]), ["+1e31"]);
    assert_eq!(json_values(&info, &[1e31]), ["1e+31"]);
    let info = one_double(Some("1."));
    assert_eq!(csv_values(&info, &[1.0]), ["1.0"]);
    let info = one_double(Some("-1.0E30"));
    assert_eq!(csv_values(&info, &[-1e30, 5.0]), ["-1.0E30", "5.0"]);
    assert_eq!(json_values(&info, &[-1e30]), ["-1.0E30"]);
    // A NaN fill stays `NaN` in csv and `null` in json.
    let info = one_double(Some("NaN"));
    assert_eq!(csv_values(&info, &[f64::NAN]), ["NaN"]);
    assert_eq!(json_values(&info, &[f64::NAN]), ["null"]);
}

#[test]
fn number_grammars() {
    for s in ["1", "-1", "+1", "1.5", ".5", "-.5", "1e5", "1E+05", "-1.0e-310", "007"] {
        assert!(is_hapi_double(s), "{s}");
    }
    for s in ["", "1.", ".", "-", "1e", "1e1234", "1.5e+", "NaN", "inf", " 1", "1 ", "1..2", "e5"] {
        assert!(!is_hapi_double(s), "{s}");
    }
    for s in ["0", "-0", "1.5", "-1e31", "-1.0E+30", "10", "0.001"] {
        assert!(is_json_number(s), "{s}");
    }
    for s in ["", "+1", ".5", "1.", "01", "-", "1e", "NaN", "1e+", "--1"] {
        assert!(!is_json_number(s), "{s}");
    }
}

/// The json text of a one-record response's second element for a parameter of `size`.
fn json_of_size(kind: ParamType, size: &[usize]) -> String {
    let w = size.iter().product::<usize>().max(1);
    let (p, column) = match kind {
        ParamType::Double => (
            param("x", kind, size, None, None),
            Column::Double { width: w, values: (1..=w).map(|i| i as f64).collect() },
        ),
        ParamType::Integer => (
            param("x", kind, size, None, None),
            Column::Integer { width: w, values: (1..=w as i32).collect() },
        ),
        ParamType::String | ParamType::IsoTime => {
            let mut bytes = Vec::new();
            for i in 0..w {
                assert!(push_text(&mut bytes, format!("s{i}").as_bytes(), 3));
            }
            (param("x", kind, size, Some(3), None), Column::Text { width: w, len: 3, bytes })
        }
    };
    let info = dataset(vec![p]);
    let b = Batch { times: vec![T0], columns: vec![column], wire: None };
    let out = encode(Format::Json, &info, &[0, 1], &[b], false);
    let text = String::from_utf8(out).expect("utf-8");
    let v: Value = serde_json::from_str(&text).expect("valid JSON");
    let record = v["data"][0].to_string();
    let prefix = "[\"2020-01-01T00:00:00.000Z\",";
    assert!(record.starts_with(prefix), "{record}");
    // The raw line must equal serde's compact rendering: no stray whitespace.
    assert!(text.contains(&format!("\n{record}\n")), "{text}");
    record[prefix.len()..record.len() - 1].to_owned()
}

#[test]
fn json_nesting_follows_size() {
    // TV-21, REQ-191.
    assert_eq!(json_of_size(ParamType::Double, &[]), "1.0");
    assert_eq!(json_of_size(ParamType::Double, &[1]), "[1.0]");
    assert_eq!(json_of_size(ParamType::Integer, &[1, 1]), "[[1]]");
    assert_eq!(json_of_size(ParamType::Double, &[1, 2]), "[[1.0,2.0]]");
    assert_eq!(json_of_size(ParamType::Double, &[1, 2, 1]), "[[[1.0],[2.0]]]");
    assert_eq!(json_of_size(ParamType::Double, &[3]), "[1.0,2.0,3.0]");
    assert_eq!(json_of_size(ParamType::Integer, &[2, 3]), "[[1,2,3],[4,5,6]]");
    assert_eq!(json_of_size(ParamType::Integer, &[2, 2, 2]), "[[[1,2],[3,4]],[[5,6],[7,8]]]");
    assert_eq!(json_of_size(ParamType::String, &[2]), "[\"s0\",\"s1\"]");
    assert_eq!(json_of_size(ParamType::String, &[]), "\"s0\"");
    assert_eq!(json_of_size(ParamType::IsoTime, &[2, 1]), "[[\"s0\"],[\"s1\"]]");
}

#[test]
fn json_string_escapes() {
    let cases: &[(&[u8], &str)] = &[
        (b"plain", "\"plain\""),
        (b"q\"b\\", "\"q\\\"b\\\\\""),
        (b"\n\r\t\x08\x0c", "\"\\n\\r\\t\\b\\f\""),
        (b"\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\""),
        ("☃ α".as_bytes(), "\"☃ α\""),
        (b"bad\xffutf8", "\"bad\u{fffd}utf8\""),
    ];
    for (value, want) in cases {
        let mut out = Vec::new();
        json::write_str(value, &mut out);
        assert_eq!(String::from_utf8(out).expect("utf-8"), *want);
        let mut serde = Vec::new();
        json::write_str(value, &mut serde);
        assert!(serde_json::from_slice::<Value>(&serde).is_ok());
    }
}

#[test]
fn header_lines() {
    let info = fixture();
    for format in [Format::Csv, Format::Binary] {
        let mut enc = Encoder::new(format, &info, &[0, 1]);
        let mut out = Vec::new();
        enc.header(&header_map(format), &mut out);
        assert_eq!(out[0], b'#');
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|&&c| c == b'\n').count(), 1, "one line");
        let v: Value = serde_json::from_slice(&out[1..]).expect("JSON after #");
        assert_eq!(v["format"], json!(format.as_str()));
        let before = out.len();
        enc.finish(&mut out);
        assert_eq!(out.len(), before, "csv and binary finish writes nothing");
    }
    // json: `data` comes last even when the caller's map carries one.
    let mut map = header_map(Format::Json);
    map.insert("data".to_owned(), json!("stale"));
    map.insert("x_after".to_owned(), json!(1));
    let mut enc = Encoder::new(Format::Json, &info, &[0]);
    let mut out = Vec::new();
    enc.header(&map, &mut out);
    let text = String::from_utf8(out.clone()).expect("utf-8");
    assert!(text.starts_with("{\"HAPI\":\"3.3\",\"status\":{"), "{text}");
    assert!(text.ends_with(",\"x_after\":1,\"data\":["), "{text}");
    enc.finish(&mut out);
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.ends_with("\"data\":[\n]}\n"), "{text}");
    let v: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(v["data"], json!([]));
}

#[test]
fn binary_layout() {
    let info = fixture();
    let selection = all_params(&info);
    let enc = Encoder::new(Format::Binary, &info, &selection);
    let size = 24 + 8 + 4 + 20 + 24 + 3 * 8 + 6 * 4 + 2 * 4;
    assert_eq!(enc.record_bound(), size);
    let expected: usize = selection.iter().map(|&i| info.parameters[i].binary_width()).sum();
    assert_eq!(size, expected - info.parameters[0].binary_width() + 24);
    let rows = fixture_rows();
    let out = encode(Format::Binary, &info, &selection, &[fixture_batch(&rows)], false);
    assert_eq!(out.len(), rows.len() * size);
    let rec = &out[size * 2..size * 3];
    assert_eq!(&rec[..24], b"2020-01-01T00:00:03.000Z");
    assert_eq!(&rec[24..32], &[0, 0, 0, 0, 0, 0, 0xF8, 0x7F], "canonical quiet NaN");
    assert_eq!(&rec[32..36], &i32::MAX.to_le_bytes());
    assert_eq!(&rec[36..56], b"say \"hi\"\0\0\0\0\0\0\0\0\0\0\0\0");
    let rec = &out[size..size * 2];
    assert_eq!(&rec[24..32], &(-1e31f64).to_le_bytes());
    assert_eq!(&rec[80..88], &[0, 0, 0, 0, 0, 0, 0xF8, 0x7F]);
    assert_eq!(&rec[104..108], &i32::MIN.to_le_bytes());

    // A subset: time and the integer array only.
    let sub = [0, 6];
    let enc = Encoder::new(Format::Binary, &info, &sub);
    assert_eq!(enc.record_bound(), 24 + 24);
    let out = encode(Format::Binary, &info, &sub, &[select(&fixture_batch(&rows), &sub)], false);
    assert_eq!(out.len(), rows.len() * 48);
    assert_eq!(&out[24..28], &1i32.to_le_bytes());
}

#[test]
fn subset_selection_in_csv_and_json() {
    let info = fixture();
    let sub = [0, 3, 5];
    let b = select(&fixture_batch(&fixture_rows()[1..2]), &sub);
    let csv = encode(Format::Csv, &info, &sub, std::slice::from_ref(&b), false);
    assert_eq!(csv, b"2020-01-01T00:00:00.000Z,\"with, comma\",NaN,1e+16,-0.0\n");
    let json = encode(Format::Json, &info, &sub, &[b], false);
    let text = String::from_utf8(json).expect("utf-8");
    assert!(
        text.ends_with("\"data\":[\n[\"2020-01-01T00:00:00.000Z\",\"with, comma\",[null,1e+16,-0.0]]\n]}\n"),
        "{text}"
    );
}

#[test]
fn empty_batches_write_nothing() {
    let info = fixture();
    let selection = all_params(&info);
    let empty = fixture_batch(&[]);
    for format in [Format::Csv, Format::Binary] {
        assert!(encode(format, &info, &selection, std::slice::from_ref(&empty), false).is_empty());
    }
    let json = encode(
        Format::Json,
        &info,
        &selection,
        &[empty.clone(), fixture_batch(&fixture_rows()[..1]), empty],
        false,
    );
    let text = String::from_utf8(json).expect("utf-8");
    assert!(text.contains("\"data\":[\n[\"2020-01-01T00:00:00.000Z\",1.5,"), "{text}");
}

/// Cutting a batch into row ranges (how the server sizes its chunks) writes the same
/// bytes as the whole batch, in every format.
#[test]
fn row_ranges_write_what_the_whole_batch_writes() {
    let info = fixture();
    let selection = all_params(&info);
    let rows = fixture_rows();
    let batch = fixture_batch(&rows);
    let n = batch.times.len();
    for format in Format::ALL {
        let whole = encode(format, &info, &selection, std::slice::from_ref(&batch), true);
        for step in 1..=n {
            let mut enc = Encoder::new(format, &info, &selection);
            let mut out = Vec::new();
            enc.header(&header_map(format), &mut out);
            let mut at = 0;
            while at < n {
                enc.rows(&batch, at..(at + step).min(n), &mut out);
                at += step;
            }
            // Ranges past the end write nothing.
            enc.rows(&batch, n..n + 3, &mut out);
            enc.finish(&mut out);
            assert_eq!(out, whole, "{format:?} in steps of {step}");
        }
    }
}

#[test]
fn a_rewound_encoder_writes_the_same_bytes_again() {
    let info = fixture();
    let selection = all_params(&info);
    let batch = fixture_batch(&fixture_rows());
    let n = batch.times.len();
    for format in Format::ALL {
        let whole = encode(format, &info, &selection, std::slice::from_ref(&batch), true);
        // Rewinding at the very start matters for json: no record was written yet.
        for cut in 0..n {
            let mut enc = Encoder::new(format, &info, &selection);
            let mut out = Vec::new();
            enc.header(&header_map(format), &mut out);
            enc.rows(&batch, 0..cut, &mut out);
            let mark = enc.mark();
            // Made, then dropped, as a parked stream drops its read-ahead chunk.
            enc.rows(&batch, cut..n, &mut Vec::new());
            enc.rewind(mark);
            enc.rows(&batch, cut..n, &mut out);
            enc.finish(&mut out);
            assert_eq!(out, whole, "{format:?} rewound at record {cut}");
        }
    }
}

fn arb_row() -> impl Strategy<Value = (f64, i32, String, [f64; 3], [i32; 6], [String; 2])> {
    // Characters that stress quoting and escaping: quotes, separators, controls, multibyte.
    let text = |n| {
        proptest::string::string_regex(&format!("[a-z ,\"\\\\\\n\\r\\t\\x01é☃]{{0,{n}}}")).expect("regex")
    };
    (any::<f64>(), any::<i32>(), text(6), any::<[f64; 3]>(), any::<[i32; 6]>(), [text(1), text(1)])
}

proptest! {
    #[test]
    fn record_bound_holds(rows in proptest::collection::vec(arb_row(), 1..8), fill in any::<bool>()) {
        let mut info = fixture();
        if fill {
            info.parameters[1].fill = Some("-1.0000000000000000000000000000000e+31".to_owned());
        }
        let owned: Vec<_> = rows.iter().map(|(s, c, l, v, m, f)| Row {
            scalar: *s, count: *c, label: l, event: "2020-01-01T00:00:00.500Z", vec: *v, matrix: *m,
            flags: [&f[0], &f[1]],
        }).collect();
        let selection = all_params(&info);
        for format in Format::ALL {
            let mut enc = Encoder::new(format, &info, &selection);
            let mut out = Vec::new();
            enc.header(&header_map(format), &mut out);
            for r in &owned {
                let before = out.len();
                let b = fixture_batch(std::slice::from_ref(r));
                enc.batch(&b, &mut out);
                let n = out.len() - before;
                if format == Format::Binary {
                    prop_assert_eq!(n, enc.record_bound());
                } else {
                    prop_assert!(n <= enc.record_bound(), "{:?}: {} > {}", format, n, enc.record_bound());
                }
            }
            enc.finish(&mut out);
            if format == Format::Json {
                prop_assert!(serde_json::from_slice::<Value>(&out).is_ok());
            }
        }
    }
}

/// Rough single-core throughput: `cargo test --release -p hapi-core --lib encode::tests::throughput -- --ignored --nocapture`.
/// Records of time (length 24, 16 Hz) + three doubles + one integer; the doubles are either
/// short decimals (as ingested from csv) or arithmetic noise with 17 significant digits.
#[test]
#[ignore = "timing, not a check"]
fn throughput() {
    let info = dataset(vec![
        param("bx", ParamType::Double, &[], None, Some("-1e31")),
        param("by", ParamType::Double, &[], None, Some("-1e31")),
        param("bz", ParamType::Double, &[], None, Some("-1e31")),
        param("q", ParamType::Integer, &[], None, Some("-1")),
    ]);
    let n = 10_000;
    for (name, noisy) in [("short", false), ("17-digit", true)] {
        let mut b =
            Batch { times: (0..n).map(|i| T0 + i * 62_500_000).collect(), columns: Vec::new(), wire: None };
        for k in 0..3 {
            let values = (0..n)
                .map(|i| {
                    let x = ((i * 7919 + k * 104_729) % 100_000) as f64;
                    if noisy { x * 0.013_7 - 500.0 } else { x / 1000.0 - 50.0 }
                })
                .collect();
            b.columns.push(Column::Double { width: 1, values });
        }
        b.columns.push(Column::Integer { width: 1, values: (0..n as i32).map(|i| i % 4).collect() });
        let selection = all_params(&info);
        for format in Format::ALL {
            let mut enc = Encoder::new(format, &info, &selection);
            let mut out = Vec::with_capacity(n as usize * enc.record_bound());
            let start = std::time::Instant::now();
            let mut bytes = 0usize;
            let mut records = 0usize;
            while start.elapsed().as_secs_f64() < 1.5 {
                out.clear();
                enc.batch(&b, &mut out);
                bytes += out.len();
                records += n as usize;
            }
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "{name:>8} {:>6}: {:7.1} MB/s, {:5.2} M records/s ({} bytes/record)",
                format.as_str(),
                bytes as f64 / secs / 1e6,
                records as f64 / secs / 1e6,
                out.len() / n as usize
            );
        }
    }
}
