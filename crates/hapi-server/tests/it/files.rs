//! The `files` source: ds1's records as daily csv files (plain and gzip) answer byte
//! for byte as the embedded store does; a file added while serving moves `stopDate`; a
//! bad file fails the request before the first byte and names itself in the log only.

use std::path::Path;
use std::time::Duration;

use crate::support::{CONFIG, KINDS_CSV, TestServer, code, ds1_csv, files_source, write_day, write_days};

/// The fixture with ds1 read from the files under `root`.
fn files_config(root: &Path, gz: bool) -> String {
    CONFIG.replace(
        "limits = { max_elements = 10000 }",
        &format!("limits = {{ max_elements = 10000 }}\n{}", files_source(root, gz)),
    )
}

async fn answer(s: &TestServer, pq: &str) -> (u16, Vec<u8>) {
    let r = s.get(pq).await;
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn daily_csv_files_answer_as_the_store_does() {
    let store = TestServer::fixture().await;
    for gz in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        write_days(dir.path(), &ds1_csv(), gz);
        let s = TestServer::start(&files_config(dir.path(), gz), &[("all/kinds+types:α☃", KINDS_CSV)], None)
            .await;
        for format in ["csv", "binary", "json"] {
            for range in [
                "start=2016-01-01T00:00Z&stop=2016-01-03T00:00Z",
                "start=2016-01-01T23:59:30Z&stop=2016-01-02T00:10Z&parameters=Bz",
                "start=2016-01-01T12:00:00.001Z&stop=2016-01-02T12:00Z&parameters=Bx,Bz",
                "start=2016-01-10T00:00Z&stop=2016-01-11T00:00Z",
                "start=2015-12-31T00:00Z&stop=2016-02-01T00:00Z",
            ] {
                for header in ["", "&include=header"] {
                    let q = format!("/hapi/data?dataset=ds1&{range}&format={format}{header}");
                    let (want, got) = (answer(&store, &q).await, answer(&s, &q).await);
                    assert_eq!(got.0, want.0, "gz={gz} {q}");
                    assert!(got.1 == want.1, "gz={gz} {q}: {}", String::from_utf8_lossy(&got.1));
                }
            }
        }
        for q in ["/hapi/info?dataset=ds1", "/hapi/catalog"] {
            assert_eq!(answer(&s, q).await, answer(&store, q).await, "{q}");
        }
    }
}

#[tokio::test]
async fn a_file_added_while_serving_moves_the_stop_date() {
    let dir = tempfile::tempdir().unwrap();
    let csv = ds1_csv();
    write_days(dir.path(), &csv, false);
    let mut config = files_config(dir.path(), false);
    config = config
        .replace(r#""startDate":"2016-01-01T00:00:00.000Z","stopDate":"2016-02-01T00:00:00.000Z","#, "");
    let s = TestServer::start(&config, &[], None).await;
    let stop = |v: serde_json::Value| v["stopDate"].as_str().unwrap().to_owned();
    let before = stop(s.json("/hapi/info?dataset=ds1").await.1);
    // One cadence after the last record.
    assert_eq!(before, "2016-01-03T00:00:00.000Z");
    write_day(
        dir.path(),
        "20160103",
        "2016-01-03T00:00:00.000Z,1,2,3\n2016-01-03T05:00:00.000Z,1,2,3\n",
        false,
    );
    let mut after = before.clone();
    for _ in 0..50 {
        after = stop(s.json("/hapi/info?dataset=ds1").await.1);
        if after != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(after, "2016-01-03T05:01:00.000Z");
    let (status, text) =
        s.text("/hapi/data?dataset=ds1&start=2016-01-03T00:00Z&stop=2016-01-03T05:01Z").await;
    assert_eq!((status, text.lines().count()), (200, 2), "{text}");
}

#[tokio::test]
async fn a_bad_file_fails_the_request_before_the_first_byte() {
    let dir = tempfile::tempdir().unwrap();
    write_days(dir.path(), &ds1_csv(), false);
    let s = TestServer::start(&files_config(dir.path(), false), &[], None).await;
    let day2 = dir.path().join("2016/ds1_20160102.csv");
    let good = std::fs::read_to_string(&day2).unwrap();
    let q = "/hapi/data?dataset=ds1&start=2016-01-02T00:00Z&stop=2016-01-02T06:00Z";
    for bad in [
        good.replacen("2016-01-02T00:03:00.000Z,", "2016-01-02T00:03:00.000Z,x", 1),
        // A record of another day in this day's file.
        good.replacen("2016-01-02T00:03:00.000Z", "2016-01-03T00:03:00.000Z", 1),
        // Out of order.
        good.replacen("2016-01-02T00:03:00.000Z", "2016-01-02T00:01:30.000Z", 1),
    ] {
        std::fs::write(&day2, &bad).unwrap();
        let (status, v) = s.json(q).await;
        assert_eq!((status, code(&v)), (500, 1500), "{v}");
        assert!(!v.to_string().contains("ds1_2016"), "no path to the client: {v}");
        // The day before is still served.
        let (ok, _) = s.text("/hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-01T06:00Z").await;
        assert_eq!(ok, 200);
    }
}

#[test]
fn bad_archives_are_refused_at_start_up_naming_the_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let start = |config: String| {
        let overrides = hapi_server::config::Overrides {
            data_dir: Some(dir.path().join("data")),
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        };
        let config = hapi_server::config::load(&config, Path::new("."), &overrides)?;
        let store: std::sync::Arc<dyn hapi_store::Store> =
            std::sync::Arc::new(hapi_store::SqliteStore::open(&config.data_dir).unwrap());
        rt.block_on(hapi_server::App::build(&config, store)).map(|_| ())
    };
    let empty = tempfile::tempdir().unwrap();
    for (config, why) in [
        (files_config(empty.path(), false), "no file under"),
        (files_config(&empty.path().join("missing"), false), "is not a directory"),
        (files_config(empty.path(), false).replace("$Y/ds1_", "../$Y/ds1_"), "inside the root"),
        (files_config(empty.path(), false).replace("$Y$m$d", "$Y$q"), "unknown field"),
    ] {
        let e = format!("{:#}", start(config).unwrap_err());
        assert!(e.contains(why) && e.contains("ds1"), "{why}: {e}");
    }
}

#[tokio::test]
async fn describe_drafts_an_info_the_server_serves_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let sample = "time,B_x,quality,station\n\
        2024-03-01T00:00:00Z,1.25,3,KIR\n\
        2024-03-01T00:00:10Z,-0.5,2,\"A,B\"\n\
        2024-03-01T00:00:20Z,7e-3,3,KIR\n";
    std::fs::create_dir_all(dir.path().join("2024")).unwrap();
    std::fs::write(dir.path().join("2024/s_20240301.csv"), sample.split_once('\n').unwrap().1).unwrap();
    std::fs::write(dir.path().join("sample.csv"), sample).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hapi-server"))
        .args(["describe", dir.path().join("sample.csv").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info = String::from_utf8(out.stdout).unwrap();
    std::fs::write(dir.path().join("s.json"), &info).unwrap();
    let config = format!(
        "[auth]\nmode = \"open\"\n[[dataset]]\nid = \"s\"\ninfo_file = {:?}\nsource = {{ kind = \"files\", root = {:?}, template = \"$Y/s_$Y$m$d.csv\" }}\n",
        dir.path().join("s.json").display().to_string(),
        dir.path().display().to_string()
    );
    let s = TestServer::start(&config, &[], None).await;
    let (status, text) =
        s.text("/hapi/data?dataset=s&start=2024-03-01T00:00Z&stop=2024-03-01T00:00:30Z").await;
    assert_eq!(status, 200, "{info}\n{text}");
    assert_eq!(
        text,
        "2024-03-01T00:00:00Z,1.25,3,KIR\n2024-03-01T00:00:10Z,-0.5,2,\"A,B\"\n2024-03-01T00:00:20Z,0.007,3,KIR\n"
    );
}
