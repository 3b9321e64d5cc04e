//! What only the PostgreSQL store has to show (the store's behaviour itself is tested in
//! hapi-store's tests, which run against it): a stalled scan pins no connection or
//! transaction; a tampered block is corruption, never data; appends from another store
//! over the same database reach a `PgSource`'s extent by notification.

use std::time::{Duration, Instant};

use hapi_core::info::ParamType;
use hapi_core::{Batch, Column, Nanos};
use hapi_postgres::{Database, DatabaseSettings, DatabaseUrl, PgStore};
use hapi_source::ErrorKind;
use hapi_store::{ColumnSpec, Layout, Store};

fn layout() -> Layout {
    Layout { columns: vec![ColumnSpec { kind: ParamType::Double, width: 1, len: 0 }] }
}

fn batch(times: std::ops::Range<Nanos>) -> Batch {
    let values = times.clone().map(|t| t as f64).collect();
    Batch { times: times.collect(), columns: vec![Column::Double { width: 1, values }], wire: None }
}

async fn open(url: &str, rows: usize) -> PgStore {
    let db = Database::connect(&DatabaseSettings::new(DatabaseUrl::new(url).unwrap())).await.unwrap();
    PgStore::with_max_block_rows(db, rows).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_scan_holds_no_transaction_and_keeps_its_records() {
    let Some(pg) = hapi_pgtest::shared() else { return };
    let url = pg.fresh_database();
    let store = open(&url, 4).await;
    store.open_dataset("ds", &layout()).unwrap();
    store.append("ds", &mut std::iter::once(batch(0..18))).unwrap();
    let snapshot = store.snapshot("ds", &[0], Nanos::MIN, Nanos::MAX).unwrap();
    assert_eq!(snapshot.count, 18);
    let mut scan = snapshot.batches;
    let first = scan.next().unwrap().unwrap();
    // Refills the snapshot's partial last block and adds more.
    store.append("ds", &mut std::iter::once(batch(18..40))).unwrap();
    let db = url.rsplit('/').next().unwrap();
    let open_tx = pg
        .psql(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'")
        .unwrap();
    assert_eq!(open_tx, "0", "a live scan holds no transaction between batches");
    let mut times = first.times;
    for b in scan {
        times.extend(b.unwrap().times);
    }
    assert_eq!(times, (0..18).collect::<Vec<_>>(), "exactly the records counted at the start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_block_fails_the_scan_as_corruption() {
    let Some(pg) = hapi_pgtest::shared() else { return };
    let url = pg.fresh_database();
    let store = open(&url, 4).await;
    store.open_dataset("ds", &layout()).unwrap();
    store.append("ds", &mut std::iter::once(batch(0..12))).unwrap();
    let db = url.rsplit('/').next().unwrap();
    // Block 1's times out of order: 4, 6, 5, 7 (little-endian i64s).
    let hex: String =
        [4i64, 6, 5, 7].iter().flat_map(|t| t.to_le_bytes()).map(|b| format!("{b:02x}")).collect();
    pg.psql(db, &format!("UPDATE store_blocks SET data = '\\x{hex}' WHERE col = 0 AND k = 1")).unwrap();
    let got: Vec<Result<Vec<Nanos>, ErrorKind>> = store
        .scan("ds", &[0], Nanos::MIN, Nanos::MAX)
        .unwrap()
        .map(|b| b.map(|b| b.times).map_err(|e| e.kind()))
        .collect();
    assert_eq!(got, [Ok(vec![0, 1, 2, 3]), Err(ErrorKind::Corrupt)]);
    // A column block that disagrees with the time block.
    pg.psql(db, "UPDATE store_blocks SET n = 3 WHERE col = 1 AND k = 0").unwrap();
    let first = store.scan("ds", &[0], 0, 4).unwrap().next().unwrap();
    assert_eq!(first.unwrap_err().kind(), ErrorKind::Corrupt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replicas_append_reaches_the_source_by_notification() {
    let Some(pg) = hapi_pgtest::shared() else { return };
    let url = pg.fresh_database();
    let (a, b) = (open(&url, 4096).await, open(&url, 4096).await);
    a.open_dataset("ds", &layout()).unwrap();
    b.open_dataset("ds", &layout()).unwrap();
    let source = b.source("ds").expect("PostgreSQL offers an async source");
    assert_eq!(source.extent().await.unwrap(), None);
    let started = Instant::now();
    while !b.listening() {
        assert!(started.elapsed() < Duration::from_secs(5), "the listener never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.append("ds", &mut std::iter::once(batch(5..9))).unwrap();
    let started = Instant::now();
    loop {
        // Served from the listener's cache: it changes only by the notification.
        if source.extent().await.unwrap() == Some((5, 8)) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(1), "no notification within a second");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let scan = source
        .scan(hapi_source::ScanRequest { columns: vec![0], start: 0, stop: 100, wire: false })
        .await
        .unwrap();
    assert_eq!(scan.count, hapi_source::Count::Exact(4));
}

/// The times of a small async scan of `ds`, or the kind of its error.
async fn small_scan(
    source: &dyn hapi_source::Source,
    start: Nanos,
    stop: Nanos,
) -> Result<Vec<Nanos>, ErrorKind> {
    use futures::StreamExt;
    let request = hapi_source::ScanRequest { columns: vec![0], start, stop, wire: false };
    let scan = source.scan(request).await.map_err(|e| e.kind())?;
    let hapi_source::Batches::Async(mut batches) = scan.batches else { panic!("PostgreSQL scans are async") };
    let mut times = Vec::new();
    while let Some(b) = batches.next().await {
        let b = b.map_err(|e| e.kind())?;
        assert_eq!(
            b.columns[0],
            Column::Double { width: 1, values: b.times.iter().map(|&t| t as f64).collect() }
        );
        times.extend(b.times);
    }
    Ok(times)
}

/// Connections the server has open from this store's processes to `db`.
fn backends(pg: &hapi_pgtest::Cluster, db: &str) -> usize {
    pg.psql(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'hapi-server'")
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_requests_at_once_share_one_connection_and_get_their_own_records() {
    let Some(pg) = hapi_pgtest::shared() else { return };
    let url = pg.fresh_database();
    let db = url.rsplit('/').next().unwrap();
    let store = open(&url, 4096).await;
    store.open_dataset("ds", &layout()).unwrap();
    store.append("ds", &mut std::iter::once(batch(0..4096))).unwrap();
    let before = backends(pg, db);
    let source = store.source("ds").unwrap();
    let scans: Vec<_> = (0..200)
        .map(|i| {
            let source = std::sync::Arc::clone(&source);
            let start = (i * 37) % 4000;
            tokio::spawn(async move { (start, small_scan(&*source, start, start + 30).await) })
        })
        .collect();
    for scan in scans {
        let (start, times) = scan.await.unwrap();
        assert_eq!(times, Ok((start..start + 30).collect()), "the scan from {start}");
    }
    // 200 requests at once on the pool would have opened up to its 16 connections.
    assert_eq!(backends(pg, db), before + 1, "one pipelined connection served them all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_connection_that_dies_is_replaced() {
    let Some(pg) = hapi_pgtest::shared() else { return };
    let url = pg.fresh_database();
    let db = url.rsplit('/').next().unwrap();
    let store = open(&url, 4096).await;
    store.open_dataset("ds", &layout()).unwrap();
    store.append("ds", &mut std::iter::once(batch(0..1000))).unwrap();
    let source = store.source("ds").unwrap();
    assert_eq!(small_scan(&*source, 10, 20).await, Ok((10..20).collect()));
    pg.psql(
        db,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'hapi-server'",
    )
    .unwrap();
    let started = Instant::now();
    loop {
        match small_scan(&*source, 10, 20).await {
            Ok(times) => break assert_eq!(times, (10..20).collect::<Vec<_>>()),
            // While the death is noticed: a clean failure, never other records.
            Err(kind) => assert_eq!(kind, ErrorKind::Unavailable),
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no new connection within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 0..20 {
        assert_eq!(small_scan(&*source, i, i + 5).await, Ok((i..i + 5).collect()));
    }
}
