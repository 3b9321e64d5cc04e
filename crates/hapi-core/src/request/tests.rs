use super::*;
use crate::info::tests::ds1;

fn pairs(raw: &str) -> Vec<(String, String)> {
    match parse_query(raw) {
        Ok(p) => p,
        Err(e) => panic!("query rejected: {e}"),
    }
}

fn pair(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

fn code<T: std::fmt::Debug>(r: Result<T, StatusError>) -> u16 {
    r.unwrap_err().status.code()
}

// ---- parse_query ----

#[test]
fn query_keeps_order_repeats_and_plus_signs() {
    assert_eq!(
        pairs("dataset=A+B&parameters=a&parameters=b"),
        [pair("dataset", "A+B"), pair("parameters", "a"), pair("parameters", "b")]
    );
    assert_eq!(pairs(""), []);
    assert_eq!(pairs("&&a&b=&c=x=y&"), [pair("a", ""), pair("b", ""), pair("c", "x=y")]);
    assert_eq!(pairs("time.min=2016-001Z"), [pair("time.min", "2016-001Z")]);
}

#[test]
fn query_percent_decodes_names_and_values() {
    assert_eq!(pairs("dataset=path/to/ACE_MAG"), [pair("dataset", "path/to/ACE_MAG")]);
    assert_eq!(pairs("dataset=path%2Fto%2fACE%3AMAG"), [pair("dataset", "path/to/ACE:MAG")]);
    assert_eq!(pairs("dataset=a:b%2Bc"), [pair("dataset", "a:b+c")]);
    assert_eq!(pairs("parameters=a%2Cb"), [pair("parameters", "a,b")]);
    assert_eq!(pairs("data%73et=x%20y"), [pair("dataset", "x y")]);
    assert_eq!(pairs("dataset=dataset1-A%CE%B1%E2%98%83"), [pair("dataset", "dataset1-Aα☃")]);
    // Already-decoded UTF-8 (some clients send it raw) passes through.
    assert_eq!(pairs("dataset=dataset1-Aα☃"), [pair("dataset", "dataset1-Aα☃")]);
}

#[test]
fn query_rejects_bad_escapes_and_invalid_utf8() {
    for raw in ["dataset=%", "dataset=%2", "dataset=%zz", "dataset=%G0", "dataset=%+1", "%=x", "dataset=%CE"]
    {
        let e = parse_query(raw).unwrap_err();
        assert_eq!(e.status, HapiStatus::BadRequest, "{raw}");
        assert!(e.detail.is_some(), "{raw}");
    }
    let e = parse_query("dataset=%FF").unwrap_err();
    assert!(e.message().contains("UTF-8"), "{}", e.message());
}

// ---- names per endpoint ----

#[test]
fn parameterless_endpoints_reject_every_parameter() {
    assert_eq!(no_params(&pairs("")), Ok(()));
    let e = no_params(&pairs("x=1")).unwrap_err();
    assert_eq!(e.status.code(), 1401);
    assert!(!e.message().contains("x=1"));
    assert_eq!(code(no_params(&pairs("dataset=ds1"))), 1401);
}

#[test]
fn catalog_depth_and_resolve_references() {
    assert_eq!(catalog(&pairs("")), Ok(CatalogRequest { depth_all: false, resolve: true }));
    assert_eq!(catalog(&pairs("depth=dataset")), Ok(CatalogRequest { depth_all: false, resolve: true }));
    assert_eq!(
        catalog(&pairs("depth=all&resolve_references=false")),
        Ok(CatalogRequest { depth_all: true, resolve: false })
    );
    assert_eq!(code(catalog(&pairs("depth=ALL"))), 1413);
    assert_eq!(code(catalog(&pairs("depth="))), 1413);
    assert_eq!(code(catalog(&pairs("resolve_references=maybe"))), 1412);
    assert_eq!(code(catalog(&pairs("resolve_references=1"))), 1412);
    assert_eq!(code(catalog(&pairs("include=all"))), 1401);
    assert_eq!(code(catalog(&pairs("depth=all&depth=all"))), 1400);
}

#[test]
fn info_names() {
    let by_id = info(&pairs("id=ds1")).unwrap();
    assert_eq!(by_id, info(&pairs("dataset=ds1")).unwrap());
    assert_eq!(by_id, InfoRequest { dataset: "ds1".to_owned(), parameters: None, resolve: true });
    assert_eq!(
        info(&pairs("dataset=ds1&parameters=&resolve_references=false")).unwrap(),
        InfoRequest { dataset: "ds1".to_owned(), parameters: Some(String::new()), resolve: false }
    );
    assert_eq!(code(info(&pairs(""))), 1400);
    assert_eq!(code(info(&pairs("dataset="))), 1400);
    assert_eq!(code(info(&pairs("dataset=ds1&resolve_references=maybe"))), 1412);
    assert_eq!(code(info(&pairs("dataset=ds1&depth=all"))), 1401);
    assert_eq!(code(info(&pairs("dataset=ds1&start=2016"))), 1401);
}

#[test]
fn aliases_and_repeats_are_1400_with_a_clear_detail() {
    let e = info(&pairs("id=ds1&dataset=ds1")).unwrap_err();
    assert_eq!(e.status, HapiStatus::BadRequest);
    assert_eq!(e.detail.as_deref(), Some("only one of id and dataset is allowed"));
    let e = info(&pairs("dataset=ds1&id=ds1")).unwrap_err();
    assert_eq!(e.detail.as_deref(), Some("only one of id and dataset is allowed"));
    let e = data(&pairs("id=ds1&start=2016&time.min=2016")).unwrap_err();
    assert_eq!(e.detail.as_deref(), Some("only one of time.min and start is allowed"));
    let e = data(&pairs("id=ds1&stop=2016&time.max=2016")).unwrap_err();
    assert_eq!(e.detail.as_deref(), Some("only one of time.max and stop is allowed"));
    let e = info(&pairs("dataset=ds1&parameters=Bx&parameters=By")).unwrap_err();
    assert_eq!((e.status.code(), e.detail.as_deref()), (1400, Some("parameters may be given only once")));
    // An unknown name wins over a repeat wherever it appears.
    assert_eq!(code(info(&pairs("dataset=a&dataset=b&bogus=1"))), 1401);
}

#[test]
fn data_names_and_aliases() {
    let q = data(&pairs(
        "dataset=ds1&start=2016-01-01&stop=2016-01-02&parameters=Bx&format=binary&include=header",
    ))
    .unwrap();
    assert_eq!(
        q,
        DataQuery {
            dataset: "ds1".to_owned(),
            parameters: Some("Bx".to_owned()),
            start: Some("2016-01-01".to_owned()),
            stop: Some("2016-01-02".to_owned()),
            format: Some("binary".to_owned()),
            include: Some("header".to_owned()),
        }
    );
    let old = data(&pairs(
        "id=ds1&time.min=2016-01-01&time.max=2016-01-02&parameters=Bx&format=binary&include=header",
    ))
    .unwrap();
    assert_eq!(old, q);
    let mixed = data(&pairs("dataset=ds1&time.min=2016-01-01&stop=2016-01-02")).unwrap();
    assert_eq!((mixed.start.as_deref(), mixed.stop.as_deref()), (Some("2016-01-01"), Some("2016-01-02")));
    // start and stop are checked later, with the dataset (1402/1403).
    assert!(data(&pairs("dataset=ds1")).is_ok());
    assert_eq!(code(data(&pairs("start=2016-01-01&stop=2016-01-02"))), 1400);
    // Not listed for /data in the spec: strict names make it 1401.
    assert_eq!(code(data(&pairs("dataset=ds1&resolve_references=true"))), 1401);
}

#[test]
fn unknown_data_parameter_is_1401_without_echo() {
    let e = data(&pairs("dataset=ds1&start=2016-01-01&stop=2016-01-02&averagingInterval=5s")).unwrap_err();
    assert_eq!(e.status.code(), 1401);
    assert!(!e.message().contains("averagingInterval"), "{}", e.message());
    assert!(!e.message().contains("5s"));
}

#[test]
fn ids_with_special_characters_survive() {
    for (raw, id) in [
        ("dataset=A+B", "A+B"),
        ("dataset=path/to/ACE_MAG", "path/to/ACE_MAG"),
        ("dataset=urn:x:y", "urn:x:y"),
        ("dataset=a%2Cb", "a,b"),
        ("dataset=dataset1-A%CE%B1%E2%98%83", "dataset1-Aα☃"),
    ] {
        assert_eq!(info(&pairs(raw)).unwrap().dataset, id, "{raw}");
        assert_eq!(data(&pairs(raw)).unwrap().dataset, id, "{raw}");
    }
}

// ---- check_data: the dataset-dependent rows of digest table 4.4 ----

fn check(raw: &str) -> Result<DataRequest, StatusError> {
    let info = ds1();
    let q = data(&pairs(raw))?;
    check_data(&q, &info, info.start_date.unwrap(), info.stop_date.unwrap())
}

fn t(s: &str) -> Nanos {
    time::parse_strict(s).unwrap()
}

#[test]
fn table_valid_request_and_its_legacy_doy_twin() {
    let a = check("dataset=ds1&start=2016-01-01&stop=2016-01-01T00:03").unwrap();
    assert_eq!(
        a,
        DataRequest {
            selection: vec![0, 1, 2, 3],
            start: t("2016-01-01T00:00:00.000Z"),
            stop: t("2016-01-01T00:03:00.000Z"),
            format: Format::Csv,
            header: false,
        }
    );
    let b = check("id=ds1&time.min=2016-001Z&time.max=2016-001T00:03Z").unwrap();
    assert_eq!(a, b);
    let c = check("dataset=ds1&start=2016-01-01&stop=2016-01-01T00:03&parameters=").unwrap();
    assert_eq!(a, c);
}

#[test]
fn table_start_equal_stop_is_1404() {
    assert_eq!(code(check("dataset=ds1&start=2016-01-01T00:01Z&stop=2016-01-01T00:01Z")), 1404);
    assert_eq!(code(check("dataset=ds1&start=2016-01-02&stop=2016-01-01")), 1404);
    // Both are 2016-02-01T00:00Z.
    assert_eq!(code(check("dataset=ds1&start=2016-01-31T24:00Z&stop=2016-02-01")), 1404);
}

#[test]
fn table_outside_range_is_1405_naming_the_range() {
    let e = check("dataset=ds1&start=2015-12-31&stop=2016-01-02").unwrap_err();
    assert_eq!(e.status.code(), 1405);
    let m = e.message();
    assert!(m.contains("2016-01-01T00:00:00.000Z") && m.contains("2016-02-01T00:00:00.000Z"), "{m}");
    assert_eq!(code(check("dataset=ds1&start=2016-01-31&stop=2016-02-01T00:00:00.001Z")), 1405);
    // The whole range is allowed.
    assert!(check("dataset=ds1&start=2016-01-01&stop=2016-02-01").is_ok());
}

#[test]
fn table_bad_times_are_1402_and_1403_without_echo() {
    let e = check("dataset=ds1&start=2016-13-01&stop=2016-01-02").unwrap_err();
    assert_eq!(e.status.code(), 1402);
    assert!(!e.message().contains("2016-13-01"), "{}", e.message());
    let e = check("dataset=ds1&start=2016-01-01&stop=2016-01-01T25Z").unwrap_err();
    assert_eq!(e.status.code(), 1403);
    assert!(!e.message().contains("T25"), "{}", e.message());
    assert_eq!(code(check("dataset=ds1&stop=2016-01-02")), 1402);
    assert_eq!(code(check("dataset=ds1&start=2016-01-01")), 1403);
    assert_eq!(code(check("dataset=ds1&start=&stop=2016-01-02")), 1402);
    assert_eq!(code(check("dataset=ds1&start=2016-01-01+00:00&stop=2016-01-02")), 1402);
}

#[test]
fn table_format_include_and_parameters() {
    const OK: &str = "dataset=ds1&start=2016-01-01&stop=2016-01-02";
    assert_eq!(code(check(&format!("{OK}&format=xml"))), 1409);
    assert_eq!(code(check(&format!("{OK}&format="))), 1409);
    assert_eq!(code(check(&format!("{OK}&format=CSV"))), 1409);
    assert_eq!(code(check(&format!("{OK}&include=all"))), 1410);
    assert_eq!(code(check(&format!("{OK}&include="))), 1410);
    assert_eq!(code(check(&format!("{OK}&parameters=Bz,Bx"))), 1411);
    assert_eq!(code(check(&format!("{OK}&parameters=Bx,Bx"))), 1411);
    assert_eq!(code(check(&format!("{OK}&parameters=Bq"))), 1407);
    let r = check(&format!("{OK}&format=json&include=header")).unwrap();
    assert_eq!((r.format, r.header), (Format::Json, true));
    let r = check(&format!("{OK}&parameters=Time")).unwrap();
    assert_eq!(r.selection, [0]);
}

#[test]
fn table_binary_bx_is_32_bytes_per_record() {
    let r = check("dataset=ds1&start=2016-01-01&stop=2016-01-02&format=binary&parameters=Bx").unwrap();
    assert_eq!(r.format, Format::Binary);
    assert_eq!(r.selection, [0, 1]);
    assert_eq!(ds1().binary_record_size(&r.selection), 32);
    assert_eq!(ds1().values_per_record(&r.selection), 2);
}

#[test]
fn checks_run_in_req_145_order() {
    // parameters before times, times before range, range before format, format before include.
    assert_eq!(code(check("dataset=ds1&start=bad&stop=bad&parameters=Bz,Bx")), 1411);
    assert_eq!(code(check("dataset=ds1&start=bad&stop=bad&parameters=Bq,Bz,Bx")), 1407);
    assert_eq!(code(check("dataset=ds1&start=bad&stop=bad")), 1402);
    assert_eq!(code(check("dataset=ds1&start=2016-01-02&stop=bad")), 1403);
    assert_eq!(code(check("dataset=ds1&start=2015-01-02&stop=2015-01-01&format=xml")), 1404);
    assert_eq!(code(check("dataset=ds1&start=2015-01-01&stop=2016-01-02&format=xml")), 1405);
    assert_eq!(code(check("dataset=ds1&start=2016-01-01&stop=2016-01-02&format=xml&include=x")), 1409);
}
