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
