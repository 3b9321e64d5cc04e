use serde_json::{Value, json};

use super::*;

/// The digest's fixture `ds1` (table 4.4).
pub(crate) fn ds1_json() -> Value {
    json!({
        "startDate": "2016-01-01T00:00:00.000Z",
        "stopDate": "2016-02-01T00:00:00.000Z",
        "cadence": "PT1M",
        "parameters": [
            {"name": "Time", "type": "isotime", "units": "UTC", "fill": null, "length": 24},
            {"name": "Bx", "type": "double", "units": "nT", "fill": "-1e31"},
            {"name": "By", "type": "double", "units": "nT", "fill": "-1e31"},
            {"name": "Bz", "type": "double", "units": "nT", "fill": "-1e31"}
        ]
    })
}

pub(crate) fn ds1() -> DatasetInfo {
    match DatasetInfo::from_json("ds1", &ds1_json()) {
        Ok(info) => info,
        Err(errors) => panic!("ds1 fixture rejected: {}", join(&errors)),
    }
}

fn join(errors: &[MetaError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

fn time_param() -> Value {
    json!({"name": "Time", "type": "isotime", "units": "UTC", "fill": null, "length": 24})
}

/// An info with the primary time plus `params`, and no dates, so that it does
/// not depend on the time grammar.
fn with_params(params: &[Value]) -> Value {
    let mut all = vec![time_param()];
    all.extend(params.iter().cloned());
    json!({ "parameters": all })
}

/// The same with one extra dataset-level key.
fn with_key(key: &str, value: Value) -> Value {
    let mut info = with_params(&[json!({"name": "Bx", "type": "double", "units": "nT", "fill": null})]);
    info[key] = value;
    info
}

fn double(extra: Value) -> Value {
    let mut p = json!({"name": "p", "type": "double", "units": "nT", "fill": null});
    merge(&mut p, extra);
    p
}

fn merge(target: &mut Value, extra: Value) {
    if let (Value::Object(t), Value::Object(e)) = (target, extra) {
        for (k, v) in e {
            t.insert(k, v);
        }
    }
}

fn errors(info: &Value) -> Vec<String> {
    match DatasetInfo::from_json("dsX", info) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

/// Some error contains every one of `parts`.
#[track_caller]
fn assert_error(info: &Value, parts: &[&str]) {
    let errors = errors(info);
    assert!(
        errors.iter().any(|e| parts.iter().all(|p| e.contains(p))),
        "no error containing {parts:?}; got {errors:#?}"
    );
}

#[track_caller]
fn assert_valid(info: &Value) -> DatasetInfo {
    match DatasetInfo::from_json("dsX", info) {
        Ok(info) => info,
        Err(errors) => panic!("expected valid, got:\n{}", join(&errors)),
    }
}

/// Checks one rule on a parameter named "p": the message names the dataset, the
/// parameter and the rule.
#[track_caller]
fn assert_param_error(p: Value, rule: &str) {
    assert_error(&with_params(&[p]), &["dataset \"dsX\": parameter \"p\": ", rule]);
}

// ---- the fixture and the published JSON ----

#[test]
fn ds1_fixture_is_valid() {
    let info = ds1();
    assert_eq!(info.parameters.len(), 4);
    assert_eq!(info.start_date, time::parse_strict("2016-01-01T00:00:00.000Z").ok());
    assert_eq!(info.stop_date, time::parse_strict("2016-02-01T00:00:00.000Z").ok());
    assert_eq!(info.cadence, Some(60_000_000_000));
    assert_eq!(info.time_format, TimeFormat::ymd(24).unwrap());
    assert_eq!(info.parameters[1].fill_f64(), Some(-1e31));
    assert!(info.unresolved.is_none());
    assert_eq!(Value::Object(info.json), ds1_json());
}

#[test]
fn hapi_and_status_are_dropped_and_key_order_kept() {
    let info = json!({
        "HAPI": "3.3",
        "status": {"code": 1200, "message": "OK"},
        "x_b": 1,
        "parameters": [time_param()],
        "description": "d",
        "x_a": 2
    });
    let info = assert_valid(&info);
    let keys: Vec<&str> = info.json.keys().map(String::as_str).collect();
    assert_eq!(keys, ["x_b", "parameters", "description", "x_a"]);
}

#[test]
fn display_names_dataset_parameter_and_rule() {
    let info = with_params(&[json!({"name": "feio_1", "type": "double", "units": null, "fill": "abc"})]);
    let errors = DatasetInfo::from_json("X", &info).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "dataset \"X\": parameter \"feio_1\": fill of a double must be a JSON string holding a number or NaN"
    );
    assert_eq!(errors[0].parameter.as_deref(), Some("feio_1"));
    assert_eq!(errors[0].index, Some(1));
}

#[test]
fn parameter_without_name_is_named_by_position() {
    let errs = errors(&with_params(&[json!({"type": "double", "units": null, "fill": null})]));
    assert!(errs.contains(&"dataset \"dsX\": parameters[1]: name is required".to_owned()), "{errs:?}");
}

#[test]
fn every_error_is_collected() {
    let info = json!({
        "format": "csv",
        "foo": 1,
        "parameters": [
            time_param(),
            {"name": "a", "type": "double", "units": "", "fill": -1e31},
            {"name": "b", "type": "integer", "units": null, "fill": "1.5", "length": 3}
        ]
    });
    let errs = errors(&info);
    assert!(errs.len() >= 6, "{errs:#?}");
}

// ---- dataset level ----

#[test]
fn info_must_be_an_object_with_parameters() {
    assert_error(&json!([]), &["dataset \"dsX\": ", "must be a JSON object"]);
    assert_error(&json!({}), &["dataset \"dsX\": parameters is required"]);
    assert_error(&json!({"parameters": []}), &["parameters must have at least one item"]);
    assert_error(&json!({"parameters": {}}), &["parameters must be an array"]);
}

#[test]
fn format_is_not_allowed_in_info() {
    assert_error(&with_key("format", json!("csv")), &["dataset \"dsX\": format is not allowed"]);
}

#[test]
fn unknown_dataset_keys_need_x_prefix() {
    assert_error(&with_key("description ", json!("d")), &["unknown key \"description \"", "x_"]);
    assert_error(&with_key("$schema", json!("s")), &["unknown key \"$schema\""]);
    assert_valid(&with_key("x_mine", json!({"anything": [1, 2]})));
}

#[test]
fn start_and_stop_dates_are_optional_but_must_be_valid_and_ordered() {
    assert_valid(&with_params(&[]));
    assert_error(&with_key("startDate", json!("2016-13-01T00:00Z")), &["startDate", "not a valid HAPI time"]);
    assert_error(&with_key("stopDate", json!(20160101)), &["stopDate must be a string"]);
    let mut info = with_key("startDate", json!("2016-02-01T00:00:00.000Z"));
    info["stopDate"] = json!("2016-01-01T00:00:00.000Z");
    assert_error(&info, &["startDate must be before stopDate"]);
    // Metadata times must carry their Z.
    assert_error(&with_key("startDate", json!("2016-01-01T00:00:00.000")), &["startDate"]);
}

#[test]
fn sample_dates_come_in_ordered_pairs_inside_the_range() {
    assert_error(&with_key("sampleStartDate", json!("2016-01-01Z")), &["given together"]);
    let mut info = with_key("sampleStartDate", json!("2016-01-02Z"));
    info["sampleStopDate"] = json!("2016-01-01Z");
    assert_error(&info, &["sampleStartDate must be before sampleStopDate"]);
    info["sampleStopDate"] = json!("2016-01-03Z");
    assert_valid(&info);
    info["stopDate"] = json!("2016-01-02T12:00Z");
    assert_error(&info, &["sample range must lie within"]);
}

#[test]
fn cadence_and_max_request_duration_are_iso_durations() {
    assert_error(&with_key("cadence", json!("1 minute")), &["cadence must be a positive ISO 8601 duration"]);
    assert_error(&with_key("maxRequestDuration", json!(86400)), &["maxRequestDuration must be"]);
    let mut info = with_key("cadence", json!("PT1M"));
    info["maxRequestDuration"] = json!("P10D");
    let info = assert_valid(&info);
    assert_eq!(info.cadence, Some(60_000_000_000));
    assert_eq!(info.max_request_duration, Some(10 * 86_400_000_000_000));
}

#[test]
fn time_stamp_location_values() {
    assert_error(&with_key("timeStampLocation", json!("middle")), &["timeStampLocation must be one of"]);
    assert_valid(&with_key("timeStampLocation", json!("begin")));
    assert_valid(&with_key("timeStampLocation", json!("CENTER")));
}

#[test]
fn units_schema_values() {
    assert_error(&with_key("unitsSchema", json!("si")), &["unitsSchema must be one of"]);
    assert_valid(&with_key("unitsSchema", json!("vounits1.1")));
}

#[test]
fn location_and_geo_location() {
    let mut info = with_key("geoLocation", json!([10.0, 50.0]));
    assert_valid(&info);
    info["location"] = json!({"point": [1, 2, 3], "vectorComponents": ["x", "y", "z"], "units": "km",
        "coordinateSystemName": "GEO"});
    assert_error(&info, &["location and geoLocation cannot both be given"]);
    assert_error(&with_key("geoLocation", json!([10.0])), &["geoLocation must be"]);
    assert_valid(&with_key(
        "location",
        json!({"point": [1, 2, 3], "vectorComponents": ["x", "y", "z"], "units": "km", "coordinateSystemName": "GEO"}),
    ));
    assert_error(
        &with_key(
            "location",
            json!({"point": [1, 2], "vectorComponents": ["x", "y", "z"], "units": "km",
            "coordinateSystemName": "GEO"}),
        ),
        &["same number of items"],
    );
    assert_valid(&with_key("location", json!({"parameters": [["Bx"]]})));
    assert_error(&with_key("location", json!({"parameters": [["nope"]]})), &["location.parameters"]);
}

#[test]
fn additional_metadata_needs_exactly_one_of_content_and_content_url() {
    assert_valid(&with_key("additionalMetadata", json!({"name": "SPASE", "contentURL": "https://x"})));
    assert_valid(&with_key(
        "additionalMetadata",
        json!([{"name": "CF", "content": {"a": 1}}, {"content": "<xml/>", "schemaURL": "https://s"}]),
    ));
    assert_error(
        &with_key("additionalMetadata", json!([{"content": "a", "contentURL": "b"}])),
        &["additionalMetadata[0] must have exactly one of content and contentURL"],
    );
    assert_error(&with_key("additionalMetadata", json!({"name": "x"})), &["exactly one of"]);
    assert_error(&with_key("additionalMetadata", json!("text")), &["additionalMetadata must be"]);
}

#[test]
fn note_warning_and_license_are_strings_or_string_arrays() {
    assert_valid(&with_key("note", json!(["2024-01-01T00Z fixed", "more"])));
    assert_valid(&with_key("warning", json!("down tomorrow")));
    assert_valid(&with_key("licenseURL", json!(["https://a", "https://b"])));
    assert_error(&with_key("note", json!([1])), &["note must be a string or an array of strings"]);
    assert_error(&with_key("licenseURL", json!(1)), &["licenseURL must be"]);
    assert_error(&with_key("description", json!(["a"])), &["description must be a string"]);
}

// ---- the primary time ----

#[test]
fn primary_time_rules() {
    let bx = json!({"name": "Bx", "type": "double", "units": null, "fill": null});
    let first = |t: Value| json!({"parameters": [t, bx.clone()]});
    assert_error(
        &first(json!({"name": "Time", "type": "double", "units": null, "fill": null})),
        &["parameter \"Time\": the first parameter must be the primary time"],
    );
    assert_error(
        &first(json!({"name": "Time", "type": "isotime", "units": "ms", "fill": null, "length": 24})),
        &["parameter \"Time\": units of an isotime parameter must be \"UTC\""],
    );
    assert_error(
        &first(json!({"name": "Time", "type": "isotime", "units": "UTC", "fill": "2000-01-01T00:00:00.000Z",
            "length": 24})),
        &["parameter \"Time\": the primary time must have fill null"],
    );
    assert_error(
        &first(json!({"name": "Time", "type": "isotime", "units": "UTC", "fill": null})),
        &["parameter \"Time\": length is required"],
    );
    assert_error(
        &first(
            json!({"name": "Time", "type": "isotime", "units": "UTC", "fill": null, "length": 24, "size": [2]}),
        ),
        &["the primary time must be a scalar"],
    );
}

#[test]
fn primary_time_length_must_be_a_time_format() {
    let info = json!({"parameters": [{"name": "Time", "type": "isotime", "units": "UTC", "fill": null, "length": 7}]});
    assert_error(
        &info,
        &["parameter \"Time\": length 7 is not a supported length", "supported lengths: ", "24"],
    );
}

// ---- parameter keys, names and types ----

#[test]
fn unknown_parameter_keys_need_x_prefix() {
    assert_param_error(double(json!({"description ": "d"})), "unknown key \"description \"");
    assert_param_error(double(json!({"format": "%f"})), "unknown key \"format\"");
    assert_valid(&with_params(&[double(json!({"x_mine": 1}))]));
}

#[test]
fn parameter_names() {
    let p = |name: Value| json!({"name": name, "type": "double", "units": null, "fill": null});
    assert_error(&with_params(&[p(json!(""))]), &["parameter \"\": name must not be empty"]);
    assert_error(&with_params(&[p(json!("a,b"))]), &["parameter \"a,b\": name must not contain a comma"]);
    assert_error(&with_params(&[p(json!("a\tb"))]), &["control characters"]);
    assert_error(&with_params(&[p(json!(5))]), &["parameters[1]: name must be a string"]);
    assert_error(
        &with_params(&[p(json!("Bx")), p(json!("Bx"))]),
        &["parameter \"Bx\": name is used by an earlier"],
    );
    assert_error(
        &with_params(&[p(json!("Bx")), p(json!("bX"))]),
        &["parameter \"bX\": name differs only by case from parameter \"Bx\""],
    );
    assert_valid(&with_params(&[p(json!("dataset1-Aα☃ with+/:"))]));
}

#[test]
fn parameter_types() {
    assert_param_error(
        double(json!({"type": "float"})),
        "type must be one of double, integer, string, isotime",
    );
    let mut p = double(json!({}));
    p.as_object_mut().unwrap().remove("type");
    assert_param_error(p, "type is required");
}

#[test]
fn length_rules() {
    assert_param_error(
        json!({"name": "p", "type": "string", "units": null, "fill": null}),
        "length is required",
    );
    assert_param_error(double(json!({"length": 8})), "length is not allowed for double and integer");
    assert_param_error(
        json!({"name": "p", "type": "integer", "units": null, "fill": null, "length": 4}),
        "length is not allowed",
    );
    assert_param_error(
        json!({"name": "p", "type": "string", "units": null, "fill": null, "length": 0}),
        "length must be a positive integer",
    );
    assert_param_error(
        json!({"name": "p", "type": "string", "units": null, "fill": null, "length": 2.5}),
        "length must be a positive integer",
    );
}

#[test]
fn size_rules() {
    assert_param_error(double(json!({"size": []})), "size must be a non-empty array of positive integers");
    assert_param_error(double(json!({"size": [3, 0]})), "size must be");
    assert_param_error(double(json!({"size": [-1]})), "size must be");
    assert_param_error(double(json!({"size": 3})), "size must be");
    assert_param_error(double(json!({"size": [1000, 1000]})), "has more than 100000 values per record");
    let info = assert_valid(&with_params(&[double(json!({"size": [100, 1000]}))]));
    assert_eq!(info.parameters[1].width(), 100_000);
}

// ---- units and label ----

#[test]
fn units_rules() {
    let mut p = double(json!({}));
    p.as_object_mut().unwrap().remove("units");
    assert_param_error(p, "units is required");
    assert_param_error(double(json!({"units": ""})), "units must not be an empty string");
    assert_param_error(double(json!({"units": " "})), "units must not be an empty string");
    assert_param_error(double(json!({"units": ["nT"]})), "units of a scalar parameter");
    assert_param_error(double(json!({"units": 5})), "units of a scalar parameter");
    // Shape [3] for size [2,3] is a partial broadcast, which is not allowed (P-34).
    assert_param_error(
        double(json!({"size": [2, 3], "units": ["a", "b", "c"]})),
        "exactly the shape of size [2, 3]",
    );
    assert_param_error(double(json!({"size": [2], "units": ["a", ""]})), "exactly the shape of size [2]");
    assert_param_error(double(json!({"size": [2], "units": ["a", 1]})), "exactly the shape of size [2]");
    assert_param_error(
        json!({"name": "p", "type": "isotime", "units": "ms", "fill": null, "length": 24}),
        "units of an isotime parameter must be \"UTC\"",
    );
    assert_valid(&with_params(&[double(json!({"size": [2, 3], "units": ["nT"]}))]));
    assert_valid(&with_params(&[double(json!({"size": [2, 3], "units": "nT"}))]));
    assert_valid(&with_params(&[double(json!({"size": [2], "units": ["nT", null]}))]));
    assert_valid(&with_params(&[double(json!({"units": "dimensionless"}))]));
}

#[test]
fn label_rules() {
    assert_param_error(double(json!({"label": null})), "label must not be null");
    assert_param_error(double(json!({"label": ""})), "label must not be an empty string");
    assert_param_error(double(json!({"label": ["a"]})), "label of a scalar parameter");
    assert_param_error(
        double(json!({"size": [2, 2], "label": [["a", "b"]]})),
        "label must be a non-empty string or nested",
    );
    assert_param_error(double(json!({"size": [2], "label": ["a", null]})), "label must be");
    assert_valid(&with_params(&[double(json!({"size": [2, 2], "label": [["a", "b"], ["c", "d"]]}))]));
    assert_valid(&with_params(&[double(json!({"size": [2], "label": "B"}))]));
}

// ---- fill ----

#[test]
fn fill_is_a_string_or_null() {
    let mut p = double(json!({}));
    p.as_object_mut().unwrap().remove("fill");
    assert_param_error(p, "fill is required");
    assert_param_error(double(json!({"fill": -1e31})), "fill must be a JSON string or null, never a number");
    assert_param_error(double(json!({"fill": true})), "fill must be a JSON string or null");
}

#[test]
fn double_fill() {
    for bad in ["abc", "inf", "-Infinity", "1e999", " 1", "1,5", ""] {
        assert_param_error(
            double(json!({"fill": bad})),
            "fill of a double must be a JSON string holding a number or NaN",
        );
    }
    for good in ["-1e31", "-1.0E30", "NaN", "nan", "-999", "0"] {
        let info = assert_valid(&with_params(&[double(json!({"fill": good}))]));
        assert!(info.parameters[1].fill_f64().is_some(), "{good}");
    }
}

#[test]
fn integer_fill() {
    let int = |fill: &str| json!({"name": "p", "type": "integer", "units": null, "fill": fill});
    for bad in ["1.5", "-1.0", "NaN", "3000000000", "1e3", ""] {
        assert_param_error(int(bad), "fill of an integer must be a JSON string holding a 32-bit integer");
    }
    let info = assert_valid(&with_params(&[int("-2147483648")]));
    assert_eq!(info.parameters[1].fill_i32(), Some(i32::MIN));
    assert_eq!(info.parameters[1].fill_f64(), None);
}

#[test]
fn string_fill_fits_length_in_bytes() {
    let s = |fill: &str| json!({"name": "p", "type": "string", "units": null, "fill": fill, "length": 5});
    // "ααα" is 3 characters but 6 bytes.
    assert_param_error(s("ααα"), "fill is 6 bytes long, more than length 5");
    assert_valid(&with_params(&[s("αα")]));
}

#[test]
fn isotime_fill_is_a_time_of_exactly_length() {
    let t = |fill: &str| json!({"name": "p", "type": "isotime", "units": "UTC", "fill": fill, "length": 24});
    assert_param_error(t("0001-01-01T00:00Z"), "fill of an isotime parameter must be a valid HAPI time");
    assert_param_error(t("not a time at all, 24 ch"), "fill of an isotime parameter must be");
    assert_valid(&with_params(&[t("0001-01-01T00:00:00.000Z")]));
}

// ---- bins ----

fn binned(bins: Value) -> Value {
    double(json!({"size": [3], "bins": bins}))
}

#[test]
fn bins_only_on_arrays_one_per_dimension() {
    assert_param_error(
        double(json!({"bins": [{"name": "e", "units": "keV", "centers": [1]}]})),
        "bins are only allowed on array parameters",
    );
    assert_param_error(
        double(json!({"size": [2, 3], "bins": [{"name": "e", "units": "keV", "centers": [1, 2]}]})),
        "bins must have one object per dimension of size [2, 3], not 1",
    );
    assert_param_error(binned(json!({"name": "e"})), "bins must be an array");
}

#[test]
fn bin_objects() {
    assert_param_error(binned(json!([{"units": "keV", "centers": [1, 2, 3]}])), "bins[0]: name is required");
    assert_param_error(binned(json!([{"name": "e", "centers": [1, 2, 3]}])), "bins[0]: units is required");
    assert_param_error(
        binned(json!([{"name": "e", "units": "", "centers": [1, 2, 3]}])),
        "bins[0]: units must be",
    );
    assert_param_error(binned(json!([{"name": "e", "units": "keV"}])), "bins[0] needs centers or ranges");
    assert_param_error(
        binned(json!([{"name": "e", "units": "keV", "centers": [1, 2, 3], "unit": "x"}])),
        "bins[0]: unknown key \"unit\"",
    );
    assert_param_error(
        binned(json!([{"name": "e", "units": "keV", "centers": [1, 2]}])),
        "centers must be an array of 3 numbers",
    );
    assert_param_error(
        binned(json!([{"name": "e", "units": "keV", "centers": [1, null, 3]}])),
        "centers must be an array of 3 numbers (no nulls)",
    );
    assert_param_error(
        binned(json!([{"name": "e", "units": "keV", "ranges": [[0, 1], [1, 2], [2]]}])),
        "ranges must be an array of 3 [min, max] pairs",
    );
    assert_param_error(
        binned(json!([{"name": "e", "units": "keV", "centers": null, "ranges": [[0, 1], [1, 2], [2, 3]]}])),
        "ranges are not allowed when centers is null",
    );
    assert_valid(&with_params(&[binned(json!([{"name": "e", "units": "keV", "centers": null}]))]));
    assert_valid(&with_params(&[binned(
        json!([{"name": "e", "units": "keV", "label": "E", "description": "d",
        "centers": [1, 2, 3.5], "ranges": [[0, 1], [1, 2], [2, 3]], "x_note": 1}]),
    )]));
}

#[test]
fn time_varying_bins_name_a_parameter_of_the_right_size() {
    let centers = json!({"name": "ec", "type": "double", "units": "keV", "fill": null, "size": [3]});
    let ranges = json!({"name": "er", "type": "double", "units": "keV", "fill": null, "size": [3, 2]});
    let p = binned(json!([{"name": "e", "units": "keV", "centers": "ec", "ranges": "er"}]));
    assert_valid(&with_params(&[centers.clone(), ranges, p]));
    let p = binned(json!([{"name": "e", "units": "keV", "centers": "nope"}]));
    assert_param_error(p, "bins[0]: centers names \"nope\", which is not a parameter of this dataset");
    let p = binned(json!([{"name": "e", "units": "keV", "ranges": "ec"}]));
    assert_error(
        &with_params(&[centers, p]),
        &["parameter \"p\": bins[0]: ranges parameter \"ec\" must have size [3, 2]"],
    );
    let p = binned(json!([{"name": "e", "units": "keV", "centers": "p"}]));
    assert_param_error(p, "cannot name the parameter itself");
}

// ---- vectors and stringType ----

#[test]
fn vector_components() {
    assert_valid(&with_params(&[double(json!({"size": [3], "coordinateSystemName": "GSE",
        "vectorComponents": ["x", "y", "z"]}))]));
    assert_valid(&with_params(&[double(json!({"vectorComponents": "altitude"}))]));
    assert_param_error(double(json!({"vectorComponents": "w"})), "vectorComponents must be one of x, y, z");
    assert_param_error(
        double(json!({"size": [3], "vectorComponents": ["x", "y", "q"]})),
        "vectorComponents items",
    );
    assert_param_error(double(json!({"size": [2], "vectorComponents": ["x", "y", "z"]})), "needs size [3]");
    assert_param_error(
        double(json!({"size": [3, 1], "vectorComponents": ["x", "y", "z"]})),
        "needs size [3]",
    );
    assert_param_error(
        double(json!({"size": [3], "vectorComponents": "x"})),
        "must be an array with one name per element",
    );
    assert_param_error(double(json!({"vectorComponents": ["x"]})), "needs size [1]");
    assert_param_error(double(json!({"coordinateSystemName": 5})), "coordinateSystemName must be a string");
}

#[test]
fn string_type() {
    let s = |st: Value| json!({"name": "p", "type": "string", "units": null, "fill": null, "length": 80, "stringType": st});
    assert_valid(&with_params(&[s(json!("uri"))]));
    assert_valid(&with_params(&[s(
        json!({"uri": {"mediaType": "image/png", "scheme": "https", "base": "https://x/"}}),
    )]));
    assert_param_error(s(json!("url")), "stringType must be \"uri\"");
    assert_param_error(s(json!({"uri": {"mime": "image/png"}})), "stringType must be");
    assert_param_error(
        double(json!({"stringType": "uri"})),
        "stringType is only allowed on string parameters",
    );
}

// ---- references ----

#[test]
fn references_resolve_and_unresolved_form_is_kept() {
    let info = json!({
        "definitions": {"nT": "nT", "ebins": {"name": "e", "units": "keV", "centers": [1, 2, 3]}},
        "parameters": [
            time_param(),
            {"name": "p", "type": "double", "units": {"$ref": "#/definitions/nT"}, "fill": null, "size": [3],
             "bins": [{"$ref": "#/definitions/ebins"}]}
        ]
    });
    let parsed = assert_valid(&info);
    assert_eq!(parsed.parameters[1].json["units"], json!("nT"));
    assert_eq!(parsed.parameters[1].json["bins"][0]["units"], json!("keV"));
    assert!(!parsed.json.contains_key("definitions"));
    assert_eq!(parsed.unresolved.as_ref().map(|u| Value::Object(u.clone())), Some(info));
}

#[test]
fn reference_errors() {
    let refd = |defs: Value, units: Value| {
        json!({"definitions": defs, "parameters": [time_param(),
            {"name": "p", "type": "double", "units": units, "fill": null}]})
    };
    assert_error(
        &refd(json!({"nT": "nT"}), json!({"$ref": "#/definitions/nt"})),
        &["parameter \"p\": units: $ref \"#/definitions/nt\" names no entry of definitions"],
    );
    assert_error(
        &refd(json!({"nT": "nT"}), json!({"$ref": "other.json#/nT"})),
        &["must start with \"#/definitions/\""],
    );
    assert_error(&refd(json!({"nT": "nT"}), json!({"$ref": "#/definitions/"})), &["must start with"]);
    assert_error(&refd(json!({"nT": "nT"}), json!({"$ref": "#/definitions/nT", "x": 1})), &["no other keys"]);
    assert_error(
        &refd(json!({"nT": "nT", "u": {"$ref": "#/definitions/nT"}}), json!({"$ref": "#/definitions/nT"})),
        &["definition \"u\" contains a $ref"],
    );
    assert_error(
        &refd(json!({"nT": "nT", "unused": 1}), json!({"$ref": "#/definitions/nT"})),
        &["definition \"unused\" is never used"],
    );
    assert_error(&refd(json!([]), json!("nT")), &["definitions must be a JSON object"]);
    // Without definitions any reference is unknown.
    assert_error(
        &with_params(&[double(json!({"units": {"$ref": "#/definitions/nT"}}))]),
        &["names no entry of definitions"],
    );
    let name_ref = json!({"definitions": {"n": "Bx"}, "parameters": [time_param(),
        {"name": {"$ref": "#/definitions/n"}, "type": "double", "units": null, "fill": null}]});
    assert_error(&name_ref, &["parameters[1]: the parameter name cannot be a $ref"]);
    let whole = json!({"definitions": {"p": double(json!({}))}, "parameters": [time_param(), {"$ref": "#/definitions/p"}]});
    assert_error(&whole, &["a whole parameter cannot be a $ref"]);
    let top = json!({"definitions": {"d": "text"}, "description": {"$ref": "#/definitions/d"}, "parameters": [time_param()]});
    assert_error(&top, &["description: $ref is only allowed inside parameters"]);
}

// ---- a complex valid info, subsets and views ----

fn complex() -> Value {
    json!({
        "description": "a dataset exercising most of the metadata",
        "x_custom": {"a": 1},
        "timeStampLocation": "begin",
        "definitions": {
            "nT": "nT",
            "energy_bins": {"name": "energy", "units": "keV", "centers": [1, 2, 3]}
        },
        "parameters": [
            {"name": "Time", "type": "isotime", "units": "UTC", "fill": null, "length": 24},
            {"name": "spectra", "type": "double", "size": [2, 3], "fill": "-1e31",
             "units": [["a", "b", "c"], ["d", null, "f"]],
             "label": [["l1", "l2", "l3"], ["l4", "l5", "l6"]],
             "bins": [{"name": "look", "units": "deg", "centers": null}, {"$ref": "#/definitions/energy_bins"}]},
            {"name": "B", "type": "double", "units": {"$ref": "#/definitions/nT"}, "fill": "NaN", "size": [3],
             "coordinateSystemName": "GSE", "vectorComponents": ["x", "y", "z"]},
            {"name": "quality", "type": "integer", "units": null, "fill": "-1", "description": "0 is good"},
            {"name": "site", "type": "string", "units": null, "fill": "none", "length": 8,
             "stringType": {"uri": {"mediaType": "image/png"}}},
            {"name": "ebins", "type": "double", "units": "keV", "fill": null, "size": [3]},
            {"name": "flux", "type": "double", "units": "1/cm2", "fill": "-1e31", "size": [3],
             "bins": [{"name": "energy", "units": "keV", "centers": "ebins"}]},
            {"name": "other_time", "type": "isotime", "units": "UTC", "fill": null, "length": 24}
        ]
    })
}

#[test]
fn complex_info_is_valid() {
    let info = assert_valid(&complex());
    let kinds: Vec<ParamType> = info.parameters.iter().map(|p| p.kind).collect();
    use ParamType::*;
    assert_eq!(kinds, [IsoTime, Double, Double, Integer, String, Double, Double, IsoTime]);
    assert_eq!(info.parameters[1].size, [2, 3]);
    assert_eq!(info.parameters[4].length, Some(8));
    assert_eq!(info.parameters[3].fill_i32(), Some(-1));
    assert!(info.parameters[2].fill_f64().is_some_and(f64::is_nan));
    assert_eq!(info.parameter("flux"), Some(6));
    assert_eq!(info.parameter("Flux"), None);
    let all: Vec<usize> = (0..8).collect();
    // 1 + 6 + 3 + 1 + 1 + 3 + 3 + 1
    assert_eq!(info.values_per_record(&all), 19);
    // 24 + 48 + 24 + 4 + 8 + 24 + 24 + 24
    assert_eq!(info.binary_record_size(&all), 180);
    assert_eq!(info.binary_record_size(&[0, 3]), 28);
}

#[test]
fn subset_info_repeats_keys_and_parameter_objects_verbatim() {
    let info = assert_valid(&complex());
    let full = info.info_json(&(0..8).collect::<Vec<_>>(), true);
    let sub = info.info_json(&[0, 2, 6], true);
    let keys = |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&full), keys(&sub));
    for (k, v) in &full {
        if k != "parameters" {
            assert_eq!(sub[k], *v, "{k}");
        }
    }
    let fp = full["parameters"].as_array().unwrap();
    let sp = sub["parameters"].as_array().unwrap();
    assert_eq!(sp.len(), 3);
    assert_eq!(sp[0], fp[0]);
    assert_eq!(sp[1], fp[2]);
    assert_eq!(sp[2], fp[6]);
    assert!(!full.contains_key("format"));
}

fn has_ref(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.contains_key("$ref") || o.values().any(has_ref),
        Value::Array(a) => a.iter().any(has_ref),
        _ => false,
    }
}

#[test]
fn resolve_false_keeps_definitions_and_refs() {
    let info = assert_valid(&complex());
    let resolved = Value::Object(info.info_json(&[0, 1, 2], true));
    assert!(resolved.get("definitions").is_none());
    assert!(!has_ref(&resolved));
    let raw = Value::Object(info.info_json(&[0, 1, 2], false));
    assert_eq!(raw["definitions"], complex()["definitions"]);
    assert_eq!(raw["parameters"][2]["units"], json!({"$ref": "#/definitions/nT"}));
    assert_eq!(raw["parameters"].as_array().unwrap().len(), 3);
    // The full unresolved view is the configuration itself.
    assert_eq!(Value::Object(info.info_json(&(0..8).collect::<Vec<_>>(), false)), complex());
}

#[test]
fn resolve_false_without_definitions_is_the_resolved_view() {
    let info = assert_valid(&with_params(&[double(json!({}))]));
    assert_eq!(info.info_json(&[0, 1], false), info.info_json(&[0, 1], true));
}

#[test]
fn fill_dates_adds_missing_dates_first() {
    let mut info = assert_valid(&complex());
    let start = time::parse_strict("2016-01-01T00:00:00.000Z").unwrap();
    let stop = time::parse_strict("2016-02-01T00:00:00.000Z").unwrap();
    info.fill_dates(start, stop);
    assert_eq!((info.start_date, info.stop_date), (Some(start), Some(stop)));
    let keys: Vec<&str> = info.json.keys().take(3).map(String::as_str).collect();
    assert_eq!(keys, ["startDate", "stopDate", "description"]);
    assert_eq!(info.json["startDate"], json!("2016-01-01T00:00:00.000Z"));
    assert_eq!(info.info_json(&[0], false)["stopDate"], json!("2016-02-01T00:00:00.000Z"));
    // Configured dates win.
    let mut d = ds1();
    d.fill_dates(0, 1);
    assert_eq!(d.start_date, Some(start));
    assert_eq!(Value::Object(d.json), ds1_json());
}

// ---- select ----

#[test]
fn select_all_when_absent_or_empty() {
    let info = assert_valid(&complex());
    let all: Vec<usize> = (0..8).collect();
    assert_eq!(info.select(None).unwrap(), all);
    assert_eq!(info.select(Some("")).unwrap(), all);
}

#[test]
fn select_subsets_always_start_with_time() {
    let info = assert_valid(&complex());
    assert_eq!(info.select(Some("B")).unwrap(), [0, 2]);
    assert_eq!(info.select(Some("Time")).unwrap(), [0]);
    assert_eq!(info.select(Some("Time,B,flux")).unwrap(), [0, 2, 6]);
    assert_eq!(info.select(Some("spectra,other_time")).unwrap(), [0, 1, 7]);
}

#[test]
fn select_errors() {
    let info = assert_valid(&complex());
    let code = |s: &str| info.select(Some(s)).unwrap_err().status.code();
    assert_eq!(code("nope"), 1407);
    assert_eq!(code("B,"), 1407);
    assert_eq!(code(",B"), 1407);
    assert_eq!(code(" B"), 1407);
    assert_eq!(code("b"), 1407);
    assert_eq!(code("flux,B"), 1411);
    assert_eq!(code("B,B"), 1411);
    assert_eq!(code("B,Time"), 1411);
    // Unknown names are reported before order problems (REQ-145).
    assert_eq!(code("flux,B,nope"), 1407);
    let e = info.select(Some("flux,B")).unwrap_err();
    assert!(e.message().contains("without repeats: Time, spectra, B, quality"), "{}", e.message());
    let e = info.select(Some("secret_name")).unwrap_err();
    assert!(!e.message().contains("secret_name"));
}

// ---- issue 6 item 11: sizes and durations an operator never means ----

#[test]
fn absurd_lengths_sizes_and_durations_are_refused() {
    let s =
        |length: u64| json!({"name": "p", "type": "string", "units": null, "fill": null, "length": length});
    assert_param_error(s(4_000_000_000), "length must be at most 1048576 bytes");
    assert_valid(&with_params(&[s(1 << 20)]));
    // Each parameter within its bounds, but one record of gigabytes.
    let wide = |n: &str| json!({"name": n, "type": "string", "units": null, "fill": null, "length": 1 << 20, "size": [100]});
    assert_error(&with_params(&[wide("a")]), &["dataset \"dsX\"", "more than 67108864 bytes"]);
    let many: Vec<Value> =
        (0..700).map(|i| double(json!({"name": format!("p{i}"), "size": [100_000]}))).collect();
    assert_error(&with_params(&many), &["more than 67108864 bytes"]);
    assert_param_error(
        double(json!({"size": [100_000, 100_000, 100_000, 100_000, 100_000]})),
        "more than 100000 values",
    );
    for key in ["cadence", "maxRequestDuration"] {
        assert_error(&with_key(key, json!("PT0S")), &[key, "positive"]);
        assert_error(&with_key(key, json!("P200Y")), &[key, "at most P100Y"]);
        assert_valid(&with_key(key, json!("P100Y")));
    }
}

#[test]
fn bin_units_are_strings_never_null() {
    let p = binned(json!([{"name": "e", "units": null, "centers": [1, 2, 3]}]));
    assert_param_error(p, "bins[0]: units must be a non-empty string");
    let p = binned(json!([{"name": "e", "units": ["keV", "keV", "keV"], "centers": [1, 2, 3]}]));
    assert_param_error(p, "bins[0]: units must be a non-empty string");
    assert_valid(&with_params(&[binned(
        json!([{"name": "e", "units": "dimensionless", "centers": [1, 2, 3]}]),
    )]));
}
