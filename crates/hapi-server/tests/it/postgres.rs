//! The server on PostgreSQL (issue 7, item 1): replicas over one database see each
//! other's appends within a second (LISTEN/NOTIFY), reads from a hot standby, a database
//! restart under a running server, and bad input: a wrong URL, a newer schema, a write
//! sent to a standby. Each test skips with a printed reason without PostgreSQL.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{CONFIG, TestServer, code, ds1_csv};

/// ds1 records on 2016-01-03, after the fixture's.
fn more_ds1(n: u32) -> String {
    (0..n).map(|i| format!("2016-01-03T00:{:02}:00.000Z,{i}.5,2.0,3.0\n", i % 60)).collect()
}

/// `hapi-server ingest` of `csv` into ds1, with the database given as `HAPI_DATABASE_URL`.
fn cli_ingest(url: &str, csv: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let (config, input) = (dir.path().join("hapi.toml"), dir.path().join("in.csv"));
    std::fs::write(&config, CONFIG).unwrap();
    std::fs::write(&input, csv).unwrap();
    Command::new(env!("CARGO_BIN_EXE_hapi-server"))
        .args(["ingest", "--dataset", "ds1", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .arg(&input)
        .env("HAPI_DATABASE_URL", url)
        .env_remove("HAPI_CONFIG")
        .output()
        .unwrap()
}

async fn stop_date(s: &TestServer) -> String {
    let (status, v) = s.json("/hapi/info?dataset=ds1").await;
    assert_eq!(status, 200, "{v}");
    v["stopDate"].as_str().unwrap().to_owned()
}

/// Waits (at most `limit`) until `s` publishes a stopDate other than `old`.
async fn wait_moved(s: &TestServer, old: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if stop_date(s).await != old {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "stopDate still {old} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The fixture without its configured dates: then `stopDate` follows the records.
fn unpinned() -> String {
    CONFIG.replace(r#""startDate":"2016-01-01T00:00:00.000Z","stopDate":"2016-02-01T00:00:00.000Z","#, "")
}

const RECENT: &str = "/hapi/data?dataset=ds1&start=2016-01-03T00:00Z&stop=2016-01-04T00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_follow_an_ingest() {
    let Some(pg) = hapi_pgtest::shared() else { return };
    let url = pg.fresh_database();
    let a = TestServer::on_postgres(CONFIG, &url, &[("ds1", ds1_csv())]).await;
    let b = TestServer::on_postgres(CONFIG, &url, &[]).await;
    let before = stop_date(&a).await;
    assert_eq!(stop_date(&b).await, before, "both replicas read the one database");
    // Configured dates win in the fixture's info, so the records' extent shows in the
    // /data answer and the catalog's state; the listener is what moves it.
    let csv = more_ds1(30);
    let out = cli_ingest(&url, &csv);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("appended 30 records to ds1"));
    for s in [&a, &b] {
        let started = Instant::now();
        loop {
            let extent = s.state.dataset("ds1").unwrap().dates().extent;
            if extent.is_some_and(|(_, last)| last > 1_451_779_200_000_000_000) {
                break;
            }
            // Not a speed test (the replica test prints the time): well inside the 30 s
            // safety net, so only the notification can have moved it.
            assert!(started.elapsed() < Duration::from_secs(10), "extent not moved: {extent:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (status, body) = s.text(RECENT).await;
        assert_eq!(status, 200);
        assert_eq!(body, csv, "served by every replica");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_date_follows_appends_from_another_replica() {
    let Some(pg) = hapi_pgtest::shared() else { return };
    let url = pg.fresh_database();
    // Without configured dates, stopDate is the records' (issue: "stopDate moves").
    let config = unpinned();
    let a = TestServer::on_postgres(&config, &url, &[("ds1", ds1_csv())]).await;
    let b = TestServer::on_postgres(&config, &url, &[]).await;
    let before = stop_date(&b).await;
    assert_eq!(before, "2016-01-03T00:00:00.000Z", "one cadence after the last record");
    let store = a.store.clone();
    let info = a.state.dataset("ds1").unwrap().spec.info.clone();
    tokio::task::spawn_blocking(move || {
        hapi_server::ingest::ingest(
            store.as_ref(),
            &info,
            &mut std::io::Cursor::new(more_ds1(5).into_bytes()),
        )
    })
    .await
    .unwrap()
    .unwrap();
    // The notification arrives in milliseconds; the limit is far inside the listener's
    // 30 s safety net, so only the notification can have moved it (not a speed test).
    wait_moved(&b, &before, Duration::from_secs(10)).await;
    assert_eq!(stop_date(&b).await, "2016-01-03T00:05:00.000Z");
    assert_eq!(stop_date(&a).await, "2016-01-03T00:05:00.000Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_fails_requests_cleanly_and_the_server_recovers() {
    let Some(pg) = hapi_pgtest::start_or_skip() else { return };
    let url = pg.url();
    let config = unpinned();
    let s = TestServer::on_postgres(&config, &url, &[("ds1", ds1_csv())]).await;
    let day = "/hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-01T00:10Z";
    let (status, good) = s.text(day).await;
    assert_eq!(status, 200);
    pg.stop();
    let started = Instant::now();
    let (status, v) = s.json(day).await;
    assert_eq!((status, code(&v)), (500, 1500), "{v}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered quickly: {:?}", started.elapsed());
    // Metadata comes from memory: still served.
    assert_eq!(s.json("/hapi/info?dataset=ds1").await.0, 200);
    pg.restart();
    let started = Instant::now();
    loop {
        let (status, body) = s.text(day).await;
        if status == 200 {
            assert_eq!(body, good, "the same records after the restart");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no recovery: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The listener listens again: an append after the restart moves stopDate.
    let before = stop_date(&s).await;
    let out = cli_ingest(&url, &more_ds1(3));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_moved(&s, &before, Duration::from_secs(5)).await;
    assert_eq!(stop_date(&s).await, "2016-01-03T00:03:00.000Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_the_standby_and_writes_to_the_primary() {
    let Some(pg) = hapi_pgtest::start_or_skip() else { return };
    pg.psql("postgres", "CREATE DATABASE hapi").unwrap();
    let standby = pg.standby().unwrap();
    let config = format!("{}\n[store]\nread_url = \"{}\"\n", unpinned(), standby.url_of("hapi"));
    // The tables and first records, on the primary; the standby replays them.
    drop(TestServer::on_postgres(&unpinned(), &pg.url_of("hapi"), &[("ds1", ds1_csv())]).await);
    standby.wait_caught_up(&pg).unwrap();
    let s = TestServer::on_postgres(&config, &pg.url_of("hapi"), &[]).await;
    let (status, body) =
        s.text("/hapi/data?dataset=ds1&start=2016-01-02T23:58Z&stop=2016-01-03T00:00Z").await;
    assert_eq!((status, body.lines().count()), (200, 2), "{body}");
    let before = stop_date(&s).await;
    let out = cli_ingest(&pg.url_of("hapi"), &more_ds1(4));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_moved(&s, &before, Duration::from_secs(5)).await;
    let (status, body) =
        s.text("/hapi/data?dataset=ds1&start=2016-01-03T00:00Z&stop=2016-01-03T00:04Z").await;
    assert_eq!((status, body.lines().count()), (200, 4), "the standby serves the new records: {body}");
    // The reads really are the standby's: stopping the primary leaves them working.
    pg.stop();
    let (status, body) =
        s.text("/hapi/data?dataset=ds1&start=2016-01-03T00:00Z&stop=2016-01-03T00:04Z").await;
    assert_eq!((status, body.lines().count()), (200, 4), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_sent_to_a_standby_is_refused_clearly_and_writes_nothing() {
    let Some(pg) = hapi_pgtest::start_or_skip() else { return };
    pg.psql("postgres", "CREATE DATABASE hapi").unwrap();
    // The primary has the dataset and its records; the standby gets them by replication.
    drop(TestServer::on_postgres(CONFIG, &pg.url_of("hapi"), &[("ds1", ds1_csv())]).await);
    let standby = pg.standby().unwrap();
    let out = cli_ingest(&standby.url_of("hapi"), &more_ds1(2));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is read-only (a hot standby?): writes must go to the primary"), "{err}");
    assert!(!err.contains(hapi_pgtest::PASSWORD), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        pg.psql("hapi", "SELECT max(t1) FROM store_blocks WHERE col = 0").unwrap(),
        "1451779140000000000"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_url_or_a_newer_schema_stops_the_start_with_a_clear_error() {
    let Some(pg) = hapi_pgtest::shared() else { return };
    let wrong = pg.url().replace(hapi_pgtest::PASSWORD, "not-the-password");
    let out = cli_ingest(&wrong, &more_ds1(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("connecting to postgres://hapi@127.0.0.1:{}/postgres", pg.port())),
        "{err}"
    );
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("not-the-password") && !err.contains("panicked"), "{err}");
    let out = cli_ingest("postgres://x:y@127.0.0.1:notaport/db", &more_ds1(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[store] url: database URL: not a PostgreSQL connection URL"), "{err}");

    let url = pg.fresh_database();
    drop(TestServer::on_postgres(CONFIG, &url, &[]).await);
    let db = url.rsplit('/').next().unwrap();
    pg.psql(db, "INSERT INTO hapi_schema (component, version) VALUES ('store', 99)").unwrap();
    let out = cli_ingest(&url, &more_ds1(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("the database's store schema is version 99, newer than this server knows (1)"),
        "{err}"
    );
    assert_eq!(pg.psql(db, "SELECT count(*) FROM store_blocks").unwrap(), "0", "nothing written");
}

/// The catalog of a PostgreSQL-backed server answers like the embedded one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_is_the_same_as_the_embedded_stores() {
    let Some(pg) = TestServer::postgres_fixture().await else { return };
    let embedded = TestServer::fixture().await;
    for pq in
        ["/hapi/catalog", "/hapi/info?dataset=ds1", "/hapi/info?dataset=all/kinds%2Btypes:%CE%B1%E2%98%83"]
    {
        let (a, b): ((u16, Value), (u16, Value)) = (pg.json(pq).await, embedded.json(pq).await);
        assert_eq!(a, b, "{pq}");
    }
}
