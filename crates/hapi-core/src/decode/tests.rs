use super::*;
use crate::encode::tests::{self as enc, T0, dataset, param};
use crate::encode::{Encoder, Format};

/// Time (24), x double, n integer, s string(8), when isotime(24), v double[2]: 7 fields.
fn info() -> DatasetInfo {
    dataset(vec![
        param("x", ParamType::Double, &[], None, Some("-1e31")),
        param("n", ParamType::Integer, &[], None, Some("-1")),
        param("s", ParamType::String, &[], Some(8), Some("")),
        param("when", ParamType::IsoTime, &[], Some(24), Some("0001-01-01T00:00:00.000Z")),
        param("v", ParamType::Double, &[2], None, Some("-1e31")),
    ])
}

const WHEN: &str = "2020-02-03T04:05:06.789Z";

/// A valid line at `2020-01-01T00:00:0{sec}.000Z` with `x = sec`.
fn good(sec: u32) -> String {
    format!("2020-01-01T00:00:0{sec}.000Z,{sec}.5,{sec},s{sec},{WHEN},1,2")
}

/// Feeds `text` split at `\n` as ingest does (a final newline leaves a blank last line).
fn feed(d: &mut CsvDecoder<'_>, text: &str) -> Result<(), DecodeError> {
    for (i, line) in text.split('\n').enumerate() {
        d.line(i + 1, line.as_bytes())?;
    }
    Ok(())
}

fn decode(text: &str) -> Result<Batch, DecodeError> {
    let info = info();
    let mut d = CsvDecoder::new(&info, None);
    feed(&mut d, text)?;
    Ok(d.take_batch())
}

fn error(text: &str) -> DecodeError {
    decode(text).expect_err("the input must be refused")
}

/// Asserts the error of a one-record input whose field `column` holds `field`.
fn field_error(column: usize, field: &str, name: &str, contains: &str) {
    let mut fields: Vec<String> = good(1).split(',').map(str::to_owned).collect();
    fields[column - 1] = field.to_owned();
    let line = format!("{}\n{}\n", good(0), fields.join(","));
    let e = error(&line);
    assert_eq!((e.line, e.column, e.name.as_deref()), (2, Some(column), Some(name)), "{field:?}: {e}");
    assert!(e.message.contains(contains), "{field:?}: {e}");
}

#[test]
fn decodes_records() {
    let b = decode(&format!("{}\n{}\n", good(0), good(1))).expect("valid");
    assert_eq!(b.times, [T0, T0 + 1_000_000_000]);
    assert_eq!(b.columns[0], Column::Double { width: 1, values: vec![0.5, 1.5] });
    assert_eq!(b.columns[1], Column::Integer { width: 1, values: vec![0, 1] });
    assert_eq!(b.columns[2].text(1), Some(&b"s1"[..]));
    assert_eq!(b.columns[3].text(0), Some(WHEN.as_bytes()));
    assert_eq!(b.columns[4], Column::Double { width: 2, values: vec![1.0, 2.0, 1.0, 2.0] });
}

#[test]
fn quoted_fields() {
    let text = [
        "2020-01-01T00:00:00.000Z,1,1,\"a,b\",0001-01-01T00:00:00.000Z,1,2",
        "2020-01-01T00:00:01.000Z,1,1,\"say \"\"hi\"\"\",0001-01-01T00:00:00.000Z,1,2",
        "2020-01-01T00:00:02.000Z,1,1,\"\",0001-01-01T00:00:00.000Z,1,2",
        "2020-01-01T00:00:03.000Z,1,1, pad ,0001-01-01T00:00:00.000Z,1,2",
        "2020-01-01T00:00:04.000Z,1,1,☃é,0001-01-01T00:00:00.000Z,\"3\",2",
        "2020-01-01T00:00:05.000Z, NaN ,1,,0001-01-01T00:00:00.000Z,nan,-1e31",
    ]
    .join("\n");
    let b = decode(&text).expect("valid");
    let texts: Vec<&[u8]> = (0..6).map(|i| b.columns[2].text(i).expect("text")).collect();
    assert_eq!(texts, [&b"a,b"[..], b"say \"hi\"", b"", b" pad ", "☃é".as_bytes(), b""]);
    let Column::Double { values, .. } = &b.columns[4] else { panic!("double column") };
    assert_eq!(values[8], 3.0);
    assert!(values[10].is_nan());
    assert_eq!(values[11], -1e31);
}

#[test]
fn header_lines_are_skipped_before_the_first_record() {
    let text = format!("#{{\"HAPI\":\"3.3\",\"format\":\"csv\"}}\n# more\n{}\n", good(0));
    assert_eq!(decode(&text).expect("valid").len(), 1);
    let e = error(&format!("{}\n#late\n", good(0)));
    assert_eq!((e.line, e.column), (2, None));
    assert!(e.message.contains("header line after the first record"), "{e}");
}

#[test]
fn crlf_bom_and_blank_lines() {
    let text = format!("\u{feff}{}\r\n{}\r\n", good(0), good(1));
    assert_eq!(decode(&text).expect("valid").len(), 2);
    // Trailing blank lines are fine, a blank line between records is not.
    assert_eq!(decode(&format!("{}\n\n\n", good(0))).expect("valid").len(), 1);
    let e = error(&format!("{}\n\n{}\n", good(0), good(1)));
    assert_eq!((e.line, e.column), (2, None));
    assert!(e.message.contains("blank line between records"), "{e}");
}

#[test]
fn chunked_take_batch_keeps_ordering() {
    let info = info();
    let mut d = CsvDecoder::new(&info, None);
    let mut all = Vec::new();
    for sec in 0..5 {
        d.line(sec as usize + 1, good(sec).as_bytes()).expect("valid");
        if d.rows() == 2 {
            all.push(d.take_batch());
            assert_eq!(d.rows(), 0);
        }
    }
    all.push(d.take_batch());
    assert_eq!(all.iter().map(Batch::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(all[2].times, [T0 + 4_000_000_000]);
    assert_eq!(all[2].columns[2].text(0), Some(&b"s4"[..]));
    let e = d.line(6, good(3).as_bytes()).expect_err("earlier than a taken record");
    assert!(e.message.contains("not after the previous record (2020-01-01T00:00:04.000Z)"), "{e}");
}

#[test]
fn after_the_stored_time() {
    let info = info();
    let mut d = CsvDecoder::new(&info, Some(T0 + 1_000_000_000));
    let e = d.line(1, good(1).as_bytes()).expect_err("equal to the stored time");
    assert_eq!((e.line, e.column, e.name.as_deref()), (1, Some(1), Some("Time")));
    assert!(e.message.contains("not after the last stored time (2020-01-01T00:00:01.000Z)"), "{e}");
    d.line(2, good(2).as_bytes()).expect("later");
    assert_eq!(d.rows(), 1);
}

#[test]
fn field_count() {
    let e = error(&format!("{}\n{},9\n", good(0), good(1)));
    assert_eq!((e.line, e.column, e.name), (2, None, None));
    assert_eq!(e.message, "expected 7 fields (the time and 6 values), found 8");
    let e = error("2020-01-01T00:00:00.000Z,1,2\n");
    assert_eq!(e.message, "expected 7 fields (the time and 6 values), found 3");
}

#[test]
fn time_errors() {
    field_error(1, "2020-01-01 00:00:01", "Time", "not a HAPI time");
    field_error(1, "2020-02-30T00:00:00.000Z", "Time", "not a HAPI time");
    field_error(
        1,
        "2020-01-01T00:00:01.0001Z",
        "Time",
        "finer than the dataset's 24-character times resolve (1 ms)",
    );
    field_error(1, "2020-01-01T00:00:00.000Z", "Time", "not after the previous record");
    field_error(1, "2019-12-31T23:59:59.999Z", "Time", "times must increase strictly");
    field_error(1, "1600-01-01T00:00:00.000Z", "Time", "outside");
    field_error(1, "", "Time", "not a HAPI time");
}

#[test]
fn lenient_times() {
    // A missing Z, truncation and surrounding spaces all name an exactly representable instant.
    let text = format!(
        "2020-01-01T00:00:00.000,1,1,,{WHEN},1,2\n2020-001T00:01Z,1,1,,{WHEN},1,2\n 2020-01-01T00:02 ,1,1,,{WHEN},1,2\n"
    );
    let b = decode(&text).expect("valid");
    assert_eq!(b.times, [T0, T0 + 60_000_000_000, T0 + 120_000_000_000]);
}

#[test]
fn value_errors() {
    field_error(2, "abc", "x", "not a double: \"abc\"");
    field_error(2, "", "x", "not a double");
    field_error(2, "inf", "x", "not a finite double");
    field_error(2, "-Infinity", "x", "not a finite double");
    field_error(2, "1e400", "x", "not a finite double");
    field_error(3, "1.5", "n", "not an integer");
    field_error(3, "2147483648", "n", "out of the 32-bit range");
    field_error(3, "-2147483649", "n", "out of the 32-bit range");
    field_error(4, "123456789", "s", "9 bytes exceed the parameter's length of 8");
    field_error(4, "☃☃☃", "s", "9 bytes exceed");
    field_error(5, "2020-01-01T00:00:00Z", "when", "exactly 24 characters, found 20");
    field_error(5, "2020-13-01T00:00:00.000Z", "when", "not a HAPI time");
    field_error(5, "2020-01-01T00:00:00.0000", "when", "not a HAPI time");
    field_error(5, "N/A", "when", "not a HAPI time");
    field_error(7, "x", "v[1]", "not a double");
}

#[test]
fn byte_errors() {
    let info = info();
    let mut d = CsvDecoder::new(&info, None);
    let e = d
        .line(1, b"2020-01-01T00:00:00.000Z,1,1,\xff\xfe,0001-01-01T00:00:00.000Z,1,2")
        .expect_err("bad utf-8");
    assert_eq!((e.column, e.message.as_str()), (Some(4), "not valid UTF-8"));
    let e = d.line(2, b"2020-01-01T00:00:00.000Z,1,1,a\0b,0001-01-01T00:00:00.000Z,1,2").expect_err("NUL");
    assert_eq!((e.column, e.message.as_str()), (Some(4), "contains a NUL character"));
    let e = d.line(3, b"\xff2020,1,1,a,0001-01-01T00:00:00.000Z,1,2").expect_err("bad utf-8 time");
    assert_eq!((e.column, e.message.as_str()), (Some(1), "time is not valid UTF-8"));
}

#[test]
fn quoting_errors() {
    let e = error(&format!("{}\n2020-01-01T00:00:01.000Z,1,1,\"open,x,1,2\n", good(0)));
    assert_eq!((e.line, e.column, e.name.as_deref()), (2, Some(4), Some("s")));
    assert!(e.message.contains("line breaks inside quoted fields are not supported"), "{e}");
    let e = error("2020-01-01T00:00:01.000Z,1,1,\"a\"b,x,1,2\n");
    assert_eq!(e.column, Some(4));
    assert!(e.message.contains("after a closing quote"), "{e}");
    let e = error("2020-01-01T00:00:01.000Z,1,1,a\"b,x,1,2\n");
    assert_eq!(e.column, Some(4));
    assert!(e.message.contains("quote inside an unquoted field"), "{e}");
}

#[test]
fn refused_lines_leave_nothing_behind() {
    let info = info();
    let mut d = CsvDecoder::new(&info, None);
    d.line(1, good(0).as_bytes()).expect("valid");
    // Every column but the last is appended before the last one fails.
    let bad = format!("2020-01-01T00:00:01.000Z,1,1,abc,{WHEN},1,oops");
    assert_eq!(d.line(2, bad.as_bytes()).expect_err("bad v[1]").column, Some(7));
    d.line(3, good(2).as_bytes()).expect("valid");
    let b = d.take_batch();
    assert_eq!(b.len(), 2);
    assert!(b.columns.iter().all(|c| c.rows() == 2), "{b:?}");
    assert_eq!(b.columns[2].text(1), Some(&b"s2"[..]));
}

#[test]
fn display() {
    let e = error(&format!("{}\n{}\nx\n", good(0), good(1).replace("1.5", "feio")));
    assert_eq!(e.to_string(), "line 2, column 2 (x): not a double: \"feio\"");
    let e = error("1,2\n");
    assert_eq!(e.to_string(), "line 1: expected 7 fields (the time and 6 values), found 2");
    let long = "y".repeat(100);
    let e = error(&good(1).replace("1.5", &long));
    assert!(e.to_string().ends_with(&format!("not a double: \"{}\"…", "y".repeat(40))), "{e}");
}

#[test]
fn array_field_names() {
    let info = dataset(vec![param("m", ParamType::Integer, &[2, 3], None, None)]);
    let d = CsvDecoder::new(&info, None);
    let names: Vec<String> = (0..8).map(|f| d.field_name(f)).collect();
    assert_eq!(names, ["Time", "m[0,0]", "m[0,1]", "m[0,2]", "m[1,0]", "m[1,1]", "m[1,2]", "field 8"]);
}

#[test]
fn resolution_words() {
    assert_eq!(describe(1), "1 ns");
    assert_eq!(describe(100), "100 ns");
    assert_eq!(describe(1_000_000), "1 ms");
    assert_eq!(describe(100_000_000), "100 ms");
    assert_eq!(describe(1_000_000_000), "1 s");
    assert_eq!(describe(86_400_000_000_000), "1 day");
}

/// What the encoder writes, the decoder reads back to the same records.
#[test]
fn round_trip_through_the_encoder() {
    let info = enc::fixture();
    let rows = enc::fixture_rows();
    // The last fixture row holds a line break inside a quoted string, which a
    // line-by-line reader cannot take.
    let original = enc::fixture_batch(&rows[..5]);
    let selection = enc::all_params(&info);
    let csv = enc::encode(Format::Csv, &info, &selection, std::slice::from_ref(&original), true);
    let text = String::from_utf8(csv).expect("utf-8");
    let mut d = CsvDecoder::new(&info, None);
    feed(&mut d, &text).expect("decodes");
    let decoded = d.take_batch();
    assert_eq!(decoded.len(), 5);
    for format in [Format::Csv, Format::Binary] {
        let again =
            enc::encode(format, &info, &selection, std::slice::from_ref(&decoded), format == Format::Csv);
        let first =
            enc::encode(format, &info, &selection, std::slice::from_ref(&original), format == Format::Csv);
        assert!(again == first, "{format:?} differs after the round trip");
    }
    // Binary is bit-exact apart from NaN payloads, so the doubles survived unchanged.
    let mut e = Encoder::new(Format::Binary, &info, &selection);
    assert_eq!(e.record_bound() * 5, enc::encode(Format::Binary, &info, &selection, &[decoded], false).len());
    let mut out = Vec::new();
    e.finish(&mut out);
    assert!(out.is_empty());
}

#[test]
fn times_of_one_minute_decode_as_a_full_parse_does() {
    // The decoder reuses the previous record's minute; every shape and every boundary
    // must still give what the full parser gives.
    let mut texts = Vec::new();
    for (minute, seconds) in [
        ("2016-12-31T23:59:", vec!["58.5Z", "59.5Z"]),
        ("2017-01-01T00:00:", vec!["00Z", "00.001Z"]),
        ("2017-01-01T00:01", vec!["Z"]),
        ("2017-01-01T00:02:", vec!["01Z"]),
        ("2020-01-01T00:00:", vec!["05Z", "05.1Z", "05.12Z", "05.123Z", "06.123000Z", "59.999Z"]),
        ("2020-01-01T00:01:", vec!["00Z", "00.5Z"]),
        ("2020-001T00:01:", vec!["01.5Z", "02Z"]),
        ("2020-01-01T00:01:", vec!["03Z"]),
    ] {
        for s in seconds {
            texts.push(format!("{minute}{s}"));
        }
    }
    let info = info();
    let mut d = CsvDecoder::new(&info, None);
    for (i, t) in texts.iter().enumerate() {
        d.line(i + 1, format!("{t},1,1,s,{WHEN},1,2").as_bytes()).unwrap_or_else(|e| panic!("{t}: {e}"));
    }
    let got = d.take_batch().times;
    let want: Vec<Nanos> = texts.iter().map(|t| time::parse(t).unwrap()).collect();
    assert_eq!(got, want, "{texts:?}");
    // A shape the shortcut does not take still meets the full parser's checks.
    let mut d = CsvDecoder::new(&info, None);
    d.line(1, format!("2020-01-01T00:00:05Z,1,1,s,{WHEN},1,2").as_bytes()).unwrap();
    for bad in ["2020-01-01T00:00:6Z", "2020-01-01T00:00:61Z", "2020-01-01T00:00:07.0001Z"] {
        assert!(d.line(2, format!("{bad},1,1,s,{WHEN},1,2").as_bytes()).is_err(), "{bad}");
    }
}

/// Text pushed in pieces split anywhere decodes as its lines do one by one, with the
/// same line numbers in errors; a last line without its break waits for `finish_line`.
#[test]
fn pushed_text_decodes_as_its_lines_whatever_the_pieces() {
    let info = info();
    let text =
        format!("#{{\"header\": 1}}\r\n{}\r\n\"{}\n{}", good(1), good(2).replacen(',', "\",", 1), good(3));
    let mut whole = CsvDecoder::new(&info, None);
    feed(&mut whole, &text.replace('\r', "")).expect("decodes line by line");
    let want = whole.take_batch();
    for step in [1, 2, 5, 64, text.len()] {
        let mut d = CsvDecoder::new(&info, None);
        for piece in text.as_bytes().chunks(step) {
            d.push(piece).expect("decodes");
        }
        assert!(d.in_line(), "the last line has no break yet");
        assert_eq!(d.rows(), 2);
        d.finish_line().expect("the last line decodes");
        assert!(!d.in_line());
        assert_eq!(d.take_batch(), want, "pushed {step} bytes at a time");
    }
    let bad = format!("{}\n{}\n{}\n", good(1), good(3), good(2));
    for step in [1, 7, bad.len()] {
        let mut d = CsvDecoder::new(&info, None);
        let e = bad.as_bytes().chunks(step).try_for_each(|p| d.push(p)).expect_err("out of order");
        assert_eq!(e.line, 3, "pushed {step} bytes at a time: {e}");
    }
    // A line that never ends is refused once it is longer than any record can be.
    let mut d = CsvDecoder::new(&info, None);
    let endless = vec![b'1'; 4096];
    let e = (0..1000).try_for_each(|_| d.push(&endless)).expect_err("a runaway line");
    assert!(e.message.starts_with("a line longer than") && e.line == 1, "{e}");
}

/// Binary from the encoder, fed in pieces split anywhere, decodes to the same records.
#[test]
fn binary_decodes_what_the_encoder_writes_whatever_the_read_sizes() {
    let info = enc::fixture();
    let original = enc::fixture_batch(&enc::fixture_rows());
    let selection = enc::all_params(&info);
    let wire = enc::encode(Format::Binary, &info, &selection, std::slice::from_ref(&original), false);
    for step in [1, 3, 7, wire.len()] {
        let mut d = BinaryDecoder::new(&info);
        assert_eq!(wire.len() % d.record_len(), 0);
        for piece in wire.chunks(step) {
            d.push(piece).expect("decodes");
        }
        d.finish().expect("ends on a record");
        let decoded = d.take_batch();
        assert_eq!(decoded.len(), original.len(), "read {step} bytes at a time");
        let again = enc::encode(Format::Binary, &info, &selection, &[decoded], false);
        assert!(again == wire, "read {step} bytes at a time: the records differ");
    }
}

/// Decodes `bytes` fed `step` bytes at a time.
fn binary_batch(mut d: BinaryDecoder, bytes: &[u8], step: usize) -> Batch {
    for piece in bytes.chunks(step) {
        d.push(piece).expect("decodes");
    }
    d.finish().expect("ends on a record");
    d.take_batch()
}

/// Records kept whole encode, in every format and cut anywhere, exactly as their
/// columns do; what an upstream may send that the encoder never writes is rewritten.
#[test]
fn whole_records_encode_as_their_columns_do() {
    let info = enc::fixture();
    let original = enc::fixture_batch(&enc::fixture_rows());
    let selection = enc::all_params(&info);
    let mut sent = enc::encode(Format::Binary, &info, &selection, std::slice::from_ref(&original), false);
    let n = BinaryDecoder::new(&info).record_len();
    // Record 1's time as day of year, NUL-padded: the same instant, another text.
    let t = time::format_string(original.times[0], time::TimeFormat::doy(22).unwrap());
    sent[..24].copy_from_slice(format!("{t}\0\0").as_bytes());
    // Record 2's scalar (after the 24-byte time) is a NaN with a sign and a payload.
    sent[n + 24..n + 32].copy_from_slice(&0xFFF0_0000_0000_0001u64.to_le_bytes());
    // Record 3's label (after the scalar and the count) has bytes after its first NUL.
    let label = 2 * n + 36;
    let nul = sent[label..label + 20].iter().position(|&b| b == 0).expect("a short label") + label;
    sent[nul + 1..label + 20].fill(b'x');
    let columns = binary_batch(BinaryDecoder::new(&info), &sent, sent.len());
    for step in [1, 7, n, sent.len()] {
        let whole = binary_batch(BinaryDecoder::wire(&info), &sent, step);
        assert!(whole.columns.is_empty() && whole.wire.is_some(), "records are kept whole");
        assert_eq!(whole.times, columns.times);
        for format in Format::ALL {
            let want = enc::encode(format, &info, &selection, std::slice::from_ref(&columns), true);
            let got = enc::encode(format, &info, &selection, std::slice::from_ref(&whole), true);
            assert!(got == want, "{format:?}, read {step} bytes at a time: the output differs");
        }
        let mut cut = whole.clone();
        cut.keep(2..4);
        let mut want = columns.clone();
        want.keep(2..4);
        for format in Format::ALL {
            let a = enc::encode(format, &info, &selection, std::slice::from_ref(&cut), false);
            assert!(
                a == enc::encode(format, &info, &selection, &[want.clone()], false),
                "{format:?} after keep"
            );
        }
    }
    let fixed = binary_batch(BinaryDecoder::wire(&info), &sent, sent.len()).wire.unwrap().bytes;
    assert_eq!(&fixed[..24], time::format_string(original.times[0], info.time_format).as_bytes());
    assert_eq!(fixed[n + 24..n + 32], hapi_nan(), "the NaN is the canonical one");
    assert!(fixed[nul..label + 20].iter().all(|&b| b == 0), "padding is NUL");

    // A text that is not UTF-8 is refused, naming its parameter, and nothing is kept.
    let mut bad = sent.clone();
    bad[label] = 0xFF;
    let mut d = BinaryDecoder::wire(&info);
    let e = d.push(&bad).expect_err("text must be UTF-8");
    assert_eq!(e, "record 3 (label): text is not valid UTF-8");
    assert_eq!(d.rows(), 2);
    assert_eq!(d.take_batch().wire.unwrap().bytes.len(), 2 * n, "nothing of the refused record is kept");
}

/// A leap second shares its minute's text up to the seconds but is not what the encoder
/// writes for the instant it reads as: kept whole, it is rewritten.
#[test]
fn a_whole_record_at_a_leap_second_gets_the_encoders_time() {
    let mut info = dataset(vec![param("x", ParamType::Double, &[], None, None)]);
    info.parameters[0].length = Some(30);
    info.time_format = time::TimeFormat::YMD_NANOS;
    let mut sent = Vec::new();
    let times = ["2016-12-31T23:59:59.000000000Z", "2016-12-31T23:59:60.000000000Z"];
    for t in times {
        sent.extend_from_slice(t.as_bytes());
        sent.extend_from_slice(&1.0f64.to_le_bytes());
    }
    let whole = binary_batch(BinaryDecoder::wire(&info), &sent, sent.len());
    let second = time::format_string(whole.times[1], info.time_format);
    assert_ne!(second, times[1]);
    let bytes = whole.wire.expect("kept whole").bytes;
    assert_eq!(&bytes[..30], times[0].as_bytes());
    assert_eq!(&bytes[38..68], second.as_bytes());
}

fn hapi_nan() -> [u8; 8] {
    crate::encode::QUIET_NAN.to_le_bytes()
}

#[test]
fn binary_refuses_a_cut_record_unordered_times_and_bad_text() {
    let info = info();
    let rows: Vec<String> = (1..=3).map(good).collect();
    let mut d = CsvDecoder::new(&info, None);
    feed(&mut d, &rows.join("\n")).expect("decodes");
    let batch = d.take_batch();
    let selection: Vec<usize> = (0..info.parameters.len()).collect();
    let wire = enc::encode(Format::Binary, &info, &selection, std::slice::from_ref(&batch), false);
    let n = wire.len() / 3;

    let mut d = BinaryDecoder::new(&info);
    d.push(&wire[..wire.len() - 5]).expect("whole records decode");
    assert_eq!(d.rows(), 2);
    let e = d.finish().expect_err("a cut record is an error");
    assert!(e.contains("ends inside record 3"), "{e}");

    // Record 2 sent twice: its time does not increase.
    let mut twice = wire[..2 * n].to_vec();
    twice.extend_from_slice(&wire[n..2 * n]);
    let e = BinaryDecoder::new(&info).push(&twice).expect_err("times must increase");
    assert!(e.starts_with("record 3 (Time)") && e.contains("not after the previous record"), "{e}");

    // The string `s` (after the time, x and n) is not UTF-8 in record 1.
    let mut bad = wire.clone();
    bad[24 + 8 + 4] = 0xFF;
    let mut d = BinaryDecoder::new(&info);
    let e = d.push(&bad).expect_err("text must be UTF-8");
    assert_eq!(e, "record 1 (s): text is not valid UTF-8");
    assert_eq!(d.rows(), 0);
    assert!(d.take_batch().columns.iter().all(|c| c.rows() == 0), "nothing of the refused record is kept");

    // A time that is not a time.
    let mut bad = wire.clone();
    bad[..4].copy_from_slice(b"abcd");
    let e = BinaryDecoder::new(&info).push(&bad).expect_err("not a time");
    assert!(e.starts_with("record 1 (Time): not a HAPI time"), "{e}");
}

#[test]
fn records_before_skip_before_are_dropped_with_their_time_still_checked() {
    let info = info();
    let from = time::parse("2020-01-01T00:00:03Z").unwrap();
    let mut d = CsvDecoder::new(&info, None);
    d.skip_before(from);
    // Lines 1-2 have a broken value: never parsed, since they are before `from`.
    let text = format!("{},oops\n{},oops\n{}\n{}", good(1), good(2), good(3), good(4));
    feed(&mut d, &text).expect("values before the range are not read");
    let b = d.take_batch();
    assert_eq!(b.times, [from, from + 1_000_000_000]);

    // But a time out of order before the range is still an error.
    let mut d = CsvDecoder::new(&info, None);
    d.skip_before(from);
    let e = feed(&mut d, &format!("{}\n{}", good(2), good(1))).expect_err("times must increase");
    assert_eq!((e.line, e.column), (2, Some(1)), "{e}");
    assert!(e.message.contains("not after the previous record"), "{e}");
}

proptest::proptest! {
    /// The short-decimal path gives exactly what `str::parse` gives.
    #[test]
    fn short_decimals_parse_as_std_does(int in "[-+]?[0-9]{0,15}", frac in proptest::option::of("[0-9]{0,15}")) {
        let text = match &frac { Some(f) => format!("{int}.{f}"), None => int };
        let std = text.parse::<f64>().ok();
        if let Some(v) = short_decimal(text.as_bytes()) {
            proptest::prop_assert_eq!(Some(v.to_bits()), std.map(f64::to_bits), "{}", text);
        }
    }

    /// The short-integer path gives exactly what `str::parse` gives.
    #[test]
    fn short_integers_parse_as_std_does(text in "[-+]?[0-9]{0,12}|[-+0-9a ]{0,4}") {
        if let Some(v) = short_integer(text.as_bytes()) {
            proptest::prop_assert_eq!(Ok(v), text.parse::<i32>(), "{}", text);
        } else {
            proptest::prop_assert!(text.len() > 9 || text.parse::<i32>().is_err(), "{} is refused by the fast path only when long", text);
        }
    }

    /// Lines of numbers read in one pass give exactly what the general path gives:
    /// the same values, and the same error for whatever the one-pass reader declines.
    #[test]
    fn plain_lines_decode_as_the_general_path_does(
        lines in proptest::collection::vec(
            (proptest::collection::vec(proptest::sample::select(vec![
                "1", "-2.5", "+3", "1.", ".5", "-.5", " 4", "5 ", "1e3", "", "x", "1234567890123456",
                "123456789012345", "12345678901", "123456789", "-0", "0.000", "--1", "1.2.3", "\"7\"", "+", "-", "NaN", "-1e31", "9999999999", "-2147483648",
            ]), 3..6), 0u32..3),
            1..12,
        )
    ) {
        let info = dataset(vec![
            param("x", ParamType::Double, &[2], None, None),
            param("n", ParamType::Integer, &[], None, None),
            param("y", ParamType::Double, &[], None, None),
        ]);
        let mut fast = CsvDecoder::new(&info, None);
        let mut general = CsvDecoder::new(&info, None);
        proptest::prop_assert!(fast.numeric);
        general.numeric = false;
        let mut second = 0;
        for (number, (fields, step)) in lines.iter().enumerate() {
            second += step;
            let line = format!("2020-01-01T00:00:{:02}.000Z,{}", second.min(59), fields.join(","));
            let a = fast.line(number + 1, line.as_bytes());
            let b = general.line(number + 1, line.as_bytes());
            proptest::prop_assert_eq!(&a, &b, "{}", line);
        }
        // Debug text, since NaN is not equal to itself.
        proptest::prop_assert_eq!(format!("{:?}", fast.take_batch()), format!("{:?}", general.take_batch()));
    }

    /// The division-free multiple check agrees with `%`, for every resolution a time
    /// format has and any divisor, on multiples and on anything.
    #[test]
    fn divisor_agrees_with_the_remainder(d in 1u64.., k in 0u64.., n in 0u64.., pick in 0usize..16) {
        const RESOLUTIONS: [u64; 14] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000,
            100_000_000, 1_000_000_000, 60_000_000_000, 3_600_000_000_000, 86_400_000_000_000, 3];
        let d = RESOLUTIONS.get(pick).copied().unwrap_or(d);
        let div = Divisor::new(d);
        proptest::prop_assert_eq!(div.divides(n), n % d == 0, "{} % {}", n, d);
        let multiple = (k % (u64::MAX / d)) * d;
        proptest::prop_assert!(div.divides(multiple), "{} is a multiple of {}", multiple, d);
        proptest::prop_assert_eq!(div.divides(multiple.wrapping_add(1)), multiple.wrapping_add(1) % d == 0);
    }
}

#[test]
fn short_decimals_at_their_edges() {
    for t in [
        "0",
        "-0",
        "-0.000",
        "5.",
        ".5",
        "+1.25",
        "999999999999999",
        "0.000000000000001",
        "123456789.012345",
        "-1e31",
    ] {
        let std = t.parse::<f64>().unwrap();
        if let Some(v) = short_decimal(t.as_bytes()) {
            assert_eq!(v.to_bits(), std.to_bits(), "{t}");
        }
    }
    assert_eq!(short_decimal(b"1.5"), Some(1.5));
    for t in ["", "-", ".", "1.2.3", "1e5", "nan", "1234567890123456", "0x10", "1,5"] {
        assert_eq!(short_decimal(t.as_bytes()), None, "{t}");
    }
}
