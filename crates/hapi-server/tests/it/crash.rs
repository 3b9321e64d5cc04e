//! A writer killed at any moment leaves the store readable, with every committed
//! append and nothing of the one in flight.

use std::process::Command;
use std::time::Duration;

use hapi_store::{SqliteStore, Store};

use crate::support::CONFIG;

#[test]
fn killed_ingest_commits_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("hapi.toml");
    std::fs::write(&cfg, format!("data_dir = {:?}\n{CONFIG}", dir.path().join("data"))).unwrap();
    // 400,000 records: long enough to be killed while it writes.
    let mut csv = String::with_capacity(400_000 * 48);
    for i in 0..400_000u64 {
        let t = 1_451_606_400 + i; // from 2016-01-01, one a second
        let (d, s) = (t / 86_400 - 16_801, t % 86_400);
        csv.push_str(&format!(
            "2016-01-{:02}T{:02}:{:02}:{:02}.000Z,1,2,3\n",
            d + 1,
            s / 3600,
            s / 60 % 60,
            s % 60
        ));
    }
    let input = dir.path().join("records.csv");
    std::fs::write(&input, csv).unwrap();
    let bin = env!("CARGO_BIN_EXE_hapi-server");
    let ingest = || {
        Command::new(bin)
            .args(["ingest", "--config", cfg.to_str().unwrap(), "--dataset", "ds1", input.to_str().unwrap()])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    for delay in [30, 120, 250, 400, 700] {
        let mut child = ingest();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL: no chance to clean up
        let _ = child.wait();
        let store = SqliteStore::open(&dir.path().join("data")).unwrap();
        match store.extent("ds1") {
            Ok(None) => {}
            Ok(Some(_)) => {
                let n = store.count("ds1", i64::MIN, i64::MAX).unwrap();
                assert_eq!(n, 400_000, "a killed append is all or nothing (after {delay} ms)");
                return;
            }
            Err(hapi_store::StoreError::UnknownDataset(_)) => {}
            Err(e) => panic!("store unreadable after a kill at {delay} ms: {e}"),
        }
    }
    // Never killed late enough: a full run still works on the survivor files.
    let status = ingest().wait().unwrap();
    assert!(status.success());
    let store = SqliteStore::open(&dir.path().join("data")).unwrap();
    assert_eq!(store.count("ds1", i64::MIN, i64::MAX).unwrap(), 400_000);
}
