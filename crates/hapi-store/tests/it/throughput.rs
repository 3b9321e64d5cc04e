//! Throughput of the SQLite store, run by hand in release mode:
//! `cargo test -p hapi-store --release -- --ignored --nocapture throughput`

use std::time::Instant;

use hapi_core::info::ParamType;
use hapi_core::{Batch, Column, Nanos};
use hapi_store::{ColumnSpec, Layout, Store};

use crate::common::sqlite;

const RECORDS: i64 = 2_000_000;
const BATCH: i64 = 50_000;

fn batch(layout: &Layout, from: i64, to: i64) -> Batch {
    let times: Vec<Nanos> = (from..to).map(|i| 1_600_000_000_000_000_000 + i * 1_000_000_000).collect();
    let columns = (0..layout.columns.len())
        .map(|c| Column::Double {
            width: 1,
            values: (from..to).map(|i| (i as f64).sin() + c as f64).collect(),
        })
        .collect();
    Batch { times, columns, wire: None }
}

fn rate(records: u64, started: Instant) -> String {
    let seconds = started.elapsed().as_secs_f64();
    format!("{:.2} M records/s ({seconds:.3} s)", records as f64 / seconds / 1e6)
}

#[test]
#[ignore = "measurement; run in release with --nocapture"]
fn throughput() {
    let layout = Layout { columns: vec![ColumnSpec { kind: ParamType::Double, width: 1, len: 0 }; 3] };
    let (dir, store) = sqlite(4096);
    store.open_dataset("ds", &layout).unwrap();
    let batches: Vec<Batch> =
        (0..RECORDS / BATCH).map(|b| batch(&layout, b * BATCH, (b + 1) * BATCH)).collect();

    let started = Instant::now();
    let appended = store.append("ds", &mut batches.clone().into_iter()).unwrap();
    println!("append, one transaction:      {}", rate(appended, started));

    let (_dir2, again) = sqlite(4096);
    again.open_dataset("ds", &layout).unwrap();
    let started = Instant::now();
    let mut appended = 0;
    for batch in batches {
        appended += again.append("ds", &mut std::iter::once(batch)).unwrap();
    }
    println!("append, one per 50k batch:    {}", rate(appended, started));

    for (what, columns) in
        [("time + 3 doubles", &[0, 1, 2][..]), ("time + 1 double", &[1]), ("time only", &[])]
    {
        for _ in 0..2 {
            let started = Instant::now();
            let mut rows = 0;
            for batch in store.scan("ds", columns, Nanos::MIN, Nanos::MAX).unwrap() {
                rows += batch.unwrap().len() as u64;
            }
            assert_eq!(rows, RECORDS as u64);
            println!("scan {what:<17}: {}", rate(rows, started));
        }
    }

    let started = Instant::now();
    let (first, last) = store.extent("ds").unwrap().unwrap();
    let step = (last - first) / 1000;
    for i in 0..1000 {
        store.count("ds", first + i * step / 2, first + i * step).unwrap();
        store.nth_time("ds", first + i * step / 3, 12_345).unwrap();
    }
    println!("1000 count + nth_time pairs:  {:.1} µs per pair", started.elapsed().as_secs_f64() * 1e3);
    let size = std::fs::metadata(dir.path().join("hapi.sqlite3")).unwrap().len();
    println!("file: {:.1} MB for {:.1} MB of packed data", size as f64 / 1e6, (RECORDS * 32) as f64 / 1e6);
}

#[test]
#[ignore = "measurement; run in release with --nocapture"]
fn throughput_demo_bulk_load() {
    // The demo's first start: ~1.2 M records of mixed columns in 50k-record appends.
    let layout = crate::common::full_layout();
    let (_dir, store) = sqlite(4096);
    store.open_dataset("ds", &layout).unwrap();
    let batches: Vec<Batch> = (0..24)
        .map(|b| crate::common::records(&layout, &(b * BATCH..(b + 1) * BATCH).collect::<Vec<_>>()))
        .collect();
    let started = Instant::now();
    let mut appended = 0;
    for batch in batches {
        appended += store.append("ds", &mut std::iter::once(batch)).unwrap();
    }
    println!("demo bulk load ({} B/record): {}", layout.record_bytes(), rate(appended, started));
    let started = Instant::now();
    let rows: usize =
        store.scan("ds", &[0, 1, 2, 3, 4], Nanos::MIN, Nanos::MAX).unwrap().map(|b| b.unwrap().len()).sum();
    println!("scan all columns:              {}", rate(rows as u64, started));
}
