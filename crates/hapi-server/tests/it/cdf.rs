//! CDF granules in the `files` source: the fixture's records written as daily CDF files
//! by PyPI cdflib at test time (crates/hapi-cdf/tests/python/write_cdf.py) answer as the
//! store does (here, and in every `each_source` test); a file that contradicts the info
//! fails the request before the first byte, naming the file and the variable; a corrupt
//! file is a 1500 and the server goes on; `describe FILE.cdf` drafts an info the server
//! serves as it is.

use std::path::{Path, PathBuf};
use std::process::Command;

use hapi_core::info::{DatasetInfo, ParamType};
use hapi_source::{BlockingSource, ErrorKind, ScanRequest};
use serde_json::{Value, json};

use crate::support::{CONFIG, KINDS_CSV, TestServer, code, ds1_csv};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// The venv's python with cdflib, or `None` (and why, on stderr) under plain `cargo
/// test`; with `HAPI_REQUIRE_E2E=1` (scripts/test.sh) a missing install fails instead.
pub fn python() -> Option<PathBuf> {
    let python = repo_root().join(".venv/bin/python");
    let has = python.is_file()
        && Command::new(&python).args(["-c", "import cdflib"]).output().is_ok_and(|o| o.status.success());
    if has {
        return Some(python);
    }
    assert!(
        std::env::var_os("HAPI_REQUIRE_E2E").is_none(),
        "HAPI_REQUIRE_E2E is set but .venv has no cdflib"
    );
    // Straight to the file descriptor: the harness captures `eprintln!` of passing tests.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        b"skipped: the CDF source tests need PyPI cdflib in .venv \
          (./scripts/test.sh installs it; or `.venv/bin/pip install -r tests/python/requirements.txt`)\n",
    );
    None
}

/// Writes the files of `spec` ({"files": [...]}, see write_cdf.py) with cdflib.
pub fn write_cdf(python: &Path, spec: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spec.json");
    std::fs::write(&file, serde_json::to_vec(spec).unwrap()).unwrap();
    let out = Command::new(python)
        .arg(repo_root().join("crates/hapi-cdf/tests/python/write_cdf.py"))
        .arg(&file)
        .output()
        .expect("run write_cdf.py");
    assert!(out.status.success(), "write_cdf.py failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Fields of a csv line (RFC 4180 quotes, no line breaks inside them).
fn fields(line: &str) -> Vec<String> {
    let (mut out, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
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

/// The variables of one CDF holding the csv `lines` of a dataset with `info`: an epoch
/// `Epoch` (TT2000) that every parameter names as `DEPEND_0`, and one variable per
/// parameter of the HAPI type's natural CDF type, its fill as `FILLVAL`. Doubles are
/// GZIP-compressed when `compress`.
pub fn variables(info: &DatasetInfo, lines: &[&str], compress: bool) -> Vec<Value> {
    let rows: Vec<Vec<String>> = lines.iter().map(|l| fields(l)).collect();
    let mut vars = vec![json!({
        "name": "Epoch", "type": 33, "attrs": {"VAR_TYPE": "support_data"},
        "values": rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
    })];
    let mut col = 1;
    for p in &info.parameters[1..] {
        let w = p.width();
        let fill = p.fill.clone();
        let (ty, cdf_fill) = match p.kind {
            ParamType::Double => (45, fill.clone().map(|f| json!([f, "CDF_DOUBLE"]))),
            ParamType::Integer => (4, fill.clone().map(|f| json!([f, "CDF_INT4"]))),
            ParamType::String => (51, fill.clone().map(|f| json!(f))),
            ParamType::IsoTime => (33, fill.clone().map(|_| json!([i64::MIN, "CDF_TIME_TT2000"]))),
        };
        let values: Vec<Value> = rows
            .iter()
            .map(|r| {
                let cells: Vec<Value> = r[col..col + w]
                    .iter()
                    .map(|c| match p.kind {
                        // The info's fill time is beyond TT2000: the file stores its FILLVAL.
                        ParamType::IsoTime if Some(c) == fill.as_ref() => json!(i64::MIN),
                        _ => json!(c),
                    })
                    .collect();
                nest(&cells, &p.size)
            })
            .collect();
        col += w;
        // No CATDESC or LABLAXIS: the server would add them to the info (see
        // `labels_and_descriptions_come_from_the_files_where_the_info_has_none`), and
        // the headers would no longer be the store's.
        let mut attrs = json!({"VAR_TYPE": "data", "DEPEND_0": "Epoch"});
        if let Some(f) = cdf_fill {
            attrs["FILLVAL"] = f;
        }
        vars.push(json!({
            "name": p.name, "type": ty, "dims": p.size, "num_elems": p.length.filter(|_| ty == 51).unwrap_or(1),
            "compress": if compress && ty == 45 { 6 } else { 0 }, "attrs": attrs, "values": values,
        }));
    }
    vars
}

/// `cells` of one record nested to `size` (a scalar for `[]`).
fn nest(cells: &[Value], size: &[usize]) -> Value {
    match size {
        [] => cells[0].clone(),
        [_] => Value::Array(cells.to_vec()),
        [_, rest @ ..] => {
            let step = rest.iter().product::<usize>();
            Value::Array(cells.chunks(step).map(|c| nest(c, rest)).collect())
        }
    }
}

/// Daily CDF files `$Y/<prefix>_$Y$m$d.cdf` of the csv records under `root`.
pub fn write_cdf_days(
    python: &Path,
    root: &Path,
    prefix: &str,
    info: &DatasetInfo,
    csv: &str,
    compress: bool,
) {
    let mut days: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for line in csv.lines() {
        days.entry(line[..10].replace('-', "")).or_default().push(line);
    }
    let files: Vec<Value> = days
        .iter()
        .map(|(day, lines)| {
            let dir = root.join(&day[..4]);
            std::fs::create_dir_all(&dir).unwrap();
            json!({
                "path": dir.join(format!("{prefix}_{day}.cdf")),
                "globals": {"Project": "HAPI server tests"},
                "variables": variables(info, lines, compress),
            })
        })
        .collect();
    write_cdf(python, &json!({ "files": files }));
}

/// The `source` line of a dataset read from [`write_cdf_days`]' files.
pub fn cdf_source(root: &Path, prefix: &str) -> String {
    format!(
        "source = {{ kind = \"files\", root = {:?}, template = \"$Y/{prefix}_$Y$m$d.cdf\" }}",
        root.display().to_string()
    )
}

/// The fixture's infos, by id.
pub fn fixture_info(id: &str) -> DatasetInfo {
    let config = hapi_server::config::load(CONFIG, Path::new("."), &Default::default()).unwrap();
    config.datasets.into_iter().find(|d| d.info.id == id).expect("a fixture dataset").info
}

/// The fixture with both datasets read from daily CDF files (ds1's doubles compressed).
pub async fn cdf_fixture(python: &Path) -> TestServer {
    let archive = tempfile::tempdir().unwrap();
    let (ds1, kinds) = (archive.path().join("ds1"), archive.path().join("kinds"));
    let kinds_id = "all/kinds+types:α☃";
    write_cdf_days(python, &ds1, "ds1", &fixture_info("ds1"), &ds1_csv(), true);
    write_cdf_days(python, &kinds, "k", &fixture_info(kinds_id), KINDS_CSV, false);
    let config = CONFIG
        .replace("title = \"Fixture ds1\"", &format!("title = \"Fixture ds1\"\n{}", cdf_source(&ds1, "ds1")))
        .replace(
            "title = \"Every kind of parameter\"",
            &format!("title = \"Every kind of parameter\"\n{}", cdf_source(&kinds, "k")),
        );
    let mut s = TestServer::start(&config, &[], None).await;
    s._archive = Some(archive);
    s
}

async fn answer(s: &TestServer, pq: &str) -> (u16, Vec<u8>) {
    let r = s.get(pq).await;
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn daily_cdf_files_answer_as_the_store_does() {
    let Some(python) = python() else { return };
    let store = TestServer::fixture().await;
    let s = cdf_fixture(&python).await;
    let kinds = "all/kinds%2Btypes:%CE%B1%E2%98%83";
    for format in ["csv", "binary", "json"] {
        for q in [
            "dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-03T00:00Z",
            "dataset=ds1&start=2016-01-01T23:59:30Z&stop=2016-01-02T00:10Z&parameters=Bz",
            "dataset=ds1&start=2016-01-01T12:00:00.001Z&stop=2016-01-02T12:00Z&parameters=Bx,Bz",
            "dataset=ds1&start=2016-01-10T00:00Z&stop=2016-01-11T00:00Z",
            "dataset=ds1&start=2015-12-31T00:00Z&stop=2016-02-01T00:00Z&include=header",
            &format!("dataset={kinds}&start=2020-01-01T00:00Z&stop=2020-01-02T00:00Z"),
            &format!("dataset={kinds}&start=2020-01-01T01:00Z&stop=2020-01-01T03:00Z&parameters=s,m,t"),
        ] {
            let q = format!("/hapi/data?{q}&format={format}");
            let (want, got) = (answer(&store, &q).await, answer(&s, &q).await);
            assert_eq!(got.0, want.0, "{q}");
            assert!(
                got.1 == want.1,
                "{q}:\n{}\nwanted\n{}",
                String::from_utf8_lossy(&got.1),
                String::from_utf8_lossy(&want.1)
            );
        }
    }
    for q in ["/hapi/info?dataset=ds1", &format!("/hapi/info?dataset={kinds}"), "/hapi/catalog"] {
        assert_eq!(answer(&s, q).await, answer(&store, q).await, "{q}");
    }
}

/// ds1's two days as CDF files under a fresh root, day 2 written from `day2`'s variables.
fn ds1_with_day2(python: &Path, root: &Path, day2: impl Fn(&mut Vec<Value>)) {
    let info = fixture_info("ds1");
    let csv = ds1_csv();
    let lines: Vec<&str> = csv.lines().collect();
    let mut second = variables(&info, &lines[1440..], false);
    day2(&mut second);
    std::fs::create_dir_all(root.join("2016")).unwrap();
    write_cdf(
        python,
        &json!({"files": [
            {"path": root.join("2016/ds1_20160101.cdf"), "variables": variables(&info, &lines[..1440], false)},
            {"path": root.join("2016/ds1_20160102.cdf"), "variables": second},
        ]}),
    );
}

/// A change to a file's variables.
type Change = dyn Fn(&mut Vec<Value>);

fn ds1_server_config(root: &Path) -> String {
    CONFIG
        .replace("title = \"Fixture ds1\"", &format!("title = \"Fixture ds1\"\n{}", cdf_source(root, "ds1")))
}

#[tokio::test]
async fn a_file_contradicting_the_info_fails_before_the_first_byte_naming_file_and_variable() {
    let Some(python) = python() else { return };
    let by = |vars: &mut Vec<Value>| vars.iter().position(|v| v["name"] == "By").unwrap();
    let cases: Vec<(&str, Box<Change>)> = vec![
        (
            "not in the file",
            Box::new(move |v: &mut Vec<Value>| {
                let i = by(v);
                v.remove(i);
            }),
        ),
        (
            "does not convert",
            Box::new(move |v: &mut Vec<Value>| {
                let i = by(v);
                v[i]["type"] = json!(51);
                v[i]["num_elems"] = json!(8);
                v[i]["attrs"]["FILLVAL"] = json!("fill");
            }),
        ),
        (
            "shape [2]",
            Box::new(move |v: &mut Vec<Value>| {
                let i = by(v);
                v[i]["dims"] = json!([2]);
                let vals: Vec<Value> =
                    v[i]["values"].as_array().unwrap().iter().map(|x| json!([x, x])).collect();
                v[i]["values"] = json!(vals);
            }),
        ),
    ];
    for (why, change) in cases {
        let dir = tempfile::tempdir().unwrap();
        ds1_with_day2(&python, dir.path(), change);
        // The source's error names the file and the variable.
        let info = fixture_info("ds1");
        let config = hapi_files::FilesConfig {
            root: dir.path().to_owned(),
            template: hapi_files::Template::parse("$Y/ds1_$Y$m$d.cdf").unwrap(),
            rescan: std::time::Duration::from_secs(60),
            epoch: None,
        };
        let source = hapi_files::FilesSource::open(info, config).unwrap();
        let request = ScanRequest {
            columns: vec![0],
            start: 1_451_606_400_000_000_000,
            stop: 1_451_779_200_000_000_000,
            wire: false,
        };
        let e = source.scan(request).expect_err("the scan is refused");
        let msg = e.to_string();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{why}: {msg}");
        assert!(
            msg.contains("ds1_20160102.cdf") && msg.contains("\"By\"") && msg.contains(why),
            "{why}: {msg}"
        );
        // Over HTTP: day 1 is good, but the two-day answer is an error, not a cut stream.
        let s = TestServer::start(&ds1_server_config(dir.path()), &[], None).await;
        for format in ["csv", "binary"] {
            let (status, v) =
                s.json(&format!("/hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-03T00:00Z&parameters=Bx&format={format}")).await;
            assert_eq!((status, code(&v)), (500, 1500), "{why}: {v}");
            assert!(!v.to_string().contains("ds1_2016"), "no path to the client: {v}");
        }
        let (ok, text) =
            s.text("/hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-01T00:03Z").await;
        assert_eq!((ok, text.lines().count()), (200, 3), "{why}: day 1 is served");
    }
}

#[tokio::test]
async fn a_corrupt_cdf_granule_is_1500_and_the_server_goes_on() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    ds1_with_day2(&python, dir.path(), |_| {});
    let day2 = dir.path().join("2016/ds1_20160102.cdf");
    let good = std::fs::read(&day2).unwrap();
    let s = TestServer::start(&ds1_server_config(dir.path()), &[], None).await;
    let q = "/hapi/data?dataset=ds1&start=2016-01-02T00:00Z&stop=2016-01-02T06:00Z";
    assert_eq!(s.text(q).await.0, 200);
    let mut flipped = good.clone();
    // The GDR offset of the CDR points past the end.
    flipped[20..28].copy_from_slice(&u64::MAX.to_be_bytes());
    let mut garbage = good.clone();
    // Every data block overwritten: the epoch's VXR and VVRs are noise.
    for (i, b) in garbage.iter_mut().enumerate().skip(good.len() / 3) {
        *b = (i as u8).wrapping_mul(37);
    }
    for bad in [good[..good.len() / 2].to_vec(), flipped, garbage, b"not a CDF".to_vec()] {
        std::fs::write(&day2, &bad).unwrap();
        let (status, v) = s.json(q).await;
        assert_eq!((status, code(&v)), (500, 1500), "{v}");
        let (ok, _) = s.text("/hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-01T06:00Z").await;
        assert_eq!(ok, 200, "the day before is still served");
    }
}

#[tokio::test]
async fn describe_drafts_an_info_the_server_serves_as_it_is() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("2024")).unwrap();
    let n = 6;
    let times: Vec<String> = (0..n).map(|i| format!("2024-03-01T00:00:{:02}.000Z", i * 10)).collect();
    let epoch_attrs = json!({"VAR_TYPE": "support_data", "CATDESC": "start of the sample"});
    let data = |units: &str, label: &str| json!({"VAR_TYPE": "data", "DEPEND_0": "Epoch", "UNITS": units, "LABLAXIS": label, "CATDESC": format!("{label}, the sample's")});
    let mut spectrum = data("counts", "flux");
    spectrum["DEPEND_1"] = json!("energy");
    spectrum["FILLVAL"] = json!([-1e31, "CDF_REAL4"]);
    let mut b = data("nT", "B");
    b["LABL_PTR_1"] = json!("b_labels");
    b["FILLVAL"] = json!([-1e31, "CDF_DOUBLE"]);
    let mut q = data(" ", "quality");
    q["FILLVAL"] = json!([-128, "CDF_INT1"]);
    let vars = json!([
        {"name": "Epoch", "type": 33, "attrs": epoch_attrs, "values": times},
        {"name": "B", "type": 45, "dims": [3], "attrs": b,
         "values": (0..n).map(|i| json!([i as f64 * 0.5, -1e31, 2.25])).collect::<Vec<_>>()},
        {"name": "flux", "type": 21, "dims": [2], "compress": 6, "attrs": spectrum,
         "values": (0..n).map(|i| json!([i as f64 + 0.25, if i == 2 { -1e31 } else { 1.5 }])).collect::<Vec<_>>()},
        {"name": "quality", "type": 1, "attrs": q, "values": (0..n).map(|i| json!(i as i64 - 1)).collect::<Vec<_>>()},
        {"name": "station", "type": 51, "num_elems": 4, "attrs": data(" ", "station"),
         "values": (0..n).map(|i| json!(["KIR", "A,B", "SOD"][i % 3])).collect::<Vec<_>>()},
        {"name": "energy", "type": 21, "dims": [2], "rec_vary": false, "attrs": {"UNITS": "keV", "VAR_TYPE": "support_data"}, "values": [[10.0, 20.5]]},
        {"name": "b_labels", "type": 51, "dims": [3], "num_elems": 2, "rec_vary": false, "attrs": {"VAR_TYPE": "metadata"}, "values": [["Bx", "By", "Bz"]]},
    ]);
    let file = dir.path().join("2024/s_20240301.cdf");
    write_cdf(&python, &json!({"files": [{"path": file, "variables": vars}]}));
    let out = Command::new(env!("CARGO_BIN_EXE_hapi-server"))
        .args(["describe", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &info["parameters"];
    let names: Vec<&str> = p.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Epoch", "B", "flux", "quality", "station"], "{info:#}");
    assert_eq!(p[0]["length"], 24);
    assert_eq!((&p[1]["size"], &p[1]["units"], &p[1]["fill"]), (&json!([3]), &json!("nT"), &json!("-1e31")));
    assert_eq!(p[1]["label"], json!(["Bx", "By", "Bz"]));
    assert_eq!(p[1]["description"], "B, the sample's");
    assert_eq!(p[2]["bins"], json!([{"name": "energy", "units": "keV", "centers": [10.0, 20.5]}]));
    assert_eq!((&p[2]["type"], &p[2]["fill"]), (&json!("double"), &json!("-1e31")));
    assert_eq!(
        (&p[3]["type"], &p[3]["fill"], &p[3]["units"]),
        (&json!("integer"), &json!("-128"), &Value::Null)
    );
    assert_eq!((&p[4]["type"], &p[4]["length"]), (&json!("string"), &json!(4)));
    assert_eq!((&info["cadence"], &info["startDate"]), (&json!("PT10S"), &json!("2024-03-01T00:00:00.000Z")));
    assert_eq!(info["stopDate"], "2024-03-01T00:01:00.000Z");
    std::fs::write(dir.path().join("s.json"), serde_json::to_vec(&info).unwrap()).unwrap();
    let config = format!(
        "[auth]\nmode = \"open\"\n[[dataset]]\nid = \"s\"\ninfo_file = {:?}\n{}\n",
        dir.path().join("s.json").display().to_string(),
        cdf_source(dir.path(), "s")
    );
    let s = TestServer::start(&config, &[], None).await;
    let (status, served) = s.json("/hapi/info?dataset=s").await;
    assert_eq!(status, 200, "{served}");
    assert_eq!(served["parameters"], info["parameters"]);
    let (status, text) =
        s.text("/hapi/data?dataset=s&start=2024-03-01T00:00:10Z&stop=2024-03-01T00:00:30Z").await;
    assert_eq!(status, 200, "{text}");
    // The REAL4 fill -1e31 is written as the info's double fill, other REAL4 values exactly.
    assert_eq!(
        text,
        "2024-03-01T00:00:10.000Z,0.5,-1e31,2.25,1.25,1.5,0,\"A,B\"\n\
         2024-03-01T00:00:20.000Z,1.0,-1e31,2.25,2.25,-1e31,1,SOD\n"
    );
}

/// A `DEPEND_1` that varies by record becomes time-varying bins: `centers` names the
/// parameter that holds them, which is served beside the spectrum.
#[tokio::test]
async fn a_record_varying_depend_1_is_described_and_served_as_time_varying_bins() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("2024")).unwrap();
    let n = 4;
    let times: Vec<String> = (0..n).map(|i| format!("2024-03-01T00:00:{:02}.000Z", i * 10)).collect();
    let vars = json!([
        {"name": "Epoch", "type": 33, "attrs": {"VAR_TYPE": "support_data"}, "values": times},
        {"name": "spec", "type": 45, "dims": [2],
         "attrs": {"VAR_TYPE": "data", "DEPEND_0": "Epoch", "DEPEND_1": "chan", "UNITS": "counts", "FILLVAL": [-1e31, "CDF_DOUBLE"]},
         "values": (0..n).map(|i| json!([i as f64, 10.0 + i as f64])).collect::<Vec<_>>()},
        {"name": "chan", "type": 45, "dims": [2],
         "attrs": {"VAR_TYPE": "support_data", "DEPEND_0": "Epoch", "UNITS": "keV", "FILLVAL": [-1e31, "CDF_DOUBLE"]},
         "values": (0..n).map(|i| json!([1.0 + i as f64, 2.0 + i as f64])).collect::<Vec<_>>()},
    ]);
    let file = dir.path().join("2024/s_20240301.cdf");
    write_cdf(&python, &json!({"files": [{"path": file, "variables": vars}]}));
    let out = Command::new(env!("CARGO_BIN_EXE_hapi-server"))
        .args(["describe", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &info["parameters"];
    let names: Vec<&str> = p.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"chan"), "the bins' parameter is served: {info:#}");
    let spec = p.as_array().unwrap().iter().find(|p| p["name"] == "spec").unwrap();
    assert_eq!(spec["bins"][0]["centers"], "chan", "{info:#}");
    assert_eq!(spec["bins"][0]["units"], "keV", "{info:#}");

    std::fs::write(dir.path().join("s.json"), serde_json::to_vec(&info).unwrap()).unwrap();
    let config = format!(
        "[auth]\nmode = \"open\"\n[[dataset]]\nid = \"s\"\ninfo_file = {:?}\n{}\n",
        dir.path().join("s.json").display().to_string(),
        cdf_source(dir.path(), "s")
    );
    let s = TestServer::start(&config, &[], None).await;
    let (status, text) = s
        .text(
            "/hapi/data?dataset=s&start=2024-03-01T00:00:10Z&stop=2024-03-01T00:00:30Z&parameters=spec,chan",
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        text,
        "2024-03-01T00:00:10.000Z,1.0,11.0,2.0,3.0\n2024-03-01T00:00:20.000Z,2.0,12.0,3.0,4.0\n"
    );
}

/// Where the info says nothing of a parameter's label or description, the CDF's
/// `LABLAXIS` and `CATDESC` are served; what the info says is kept.
#[tokio::test]
async fn labels_and_descriptions_come_from_the_files_where_the_info_has_none() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("2024")).unwrap();
    let times: Vec<String> = (0..3).map(|i| format!("2024-03-01T00:00:{:02}.000Z", i * 10)).collect();
    let attrs = |label: &str, desc: &str| json!({"VAR_TYPE": "data", "DEPEND_0": "Epoch", "UNITS": "nT", "LABLAXIS": label, "CATDESC": desc, "FILLVAL": [-1e31, "CDF_DOUBLE"]});
    let vars = json!([
        {"name": "Epoch", "type": 33, "attrs": {"VAR_TYPE": "support_data"}, "values": times},
        {"name": "B", "type": 45, "attrs": attrs("B total", "field magnitude, from the file"), "values": [1.0, 2.0, 3.0]},
        {"name": "q", "type": 45, "attrs": attrs("Q file", "quality, from the file"), "values": [0.0, 1.0, 0.0]},
    ]);
    write_cdf(
        &python,
        &json!({"files": [{"path": dir.path().join("2024/s_20240301.cdf"), "variables": vars}]}),
    );
    let info = r#"{"parameters":[
      {"name":"Epoch","type":"isotime","units":"UTC","fill":null,"length":24},
      {"name":"B","type":"double","units":"nT","fill":"-1e31"},
      {"name":"q","type":"double","units":"nT","fill":"-1e31","description":"quality, as we say"}],"cadence":"PT10S"}"#;
    let config = format!(
        "[auth]\nmode = \"open\"\n[[dataset]]\nid = \"s\"\ninfo = '''{info}'''\n{}\n",
        cdf_source(dir.path(), "s")
    );
    let s = TestServer::start(&config, &[], None).await;
    let (status, served) = s.json("/hapi/info?dataset=s").await;
    assert_eq!(status, 200, "{served}");
    let p = &served["parameters"];
    assert_eq!(
        (&p[1]["label"], &p[1]["description"]),
        (&json!("B total"), &json!("field magnitude, from the file"))
    );
    assert_eq!((&p[2]["label"], &p[2]["description"]), (&json!("Q file"), &json!("quality, as we say")));
    assert_eq!(p[1]["units"], "nT");
    let (status, text) =
        s.text("/hapi/data?dataset=s&start=2024-03-01T00:00:00Z&stop=2024-03-01T00:00:20Z").await;
    assert_eq!(
        (status, text.as_str()),
        (200, "2024-03-01T00:00:00.000Z,1.0,0.0\n2024-03-01T00:00:10.000Z,2.0,1.0\n")
    );
}
