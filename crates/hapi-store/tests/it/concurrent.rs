//! A scan reads one snapshot while appends continue: never a torn row, never a partial
//! append, and a dropped scan releases its snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hapi_core::Nanos;
use hapi_store::{SqliteStore, Store};

use crate::common::{append_split, collect, each_persistent_store, each_store, full_layout, records};

#[test]
fn a_scan_keeps_its_snapshot_while_appends_continue() {
    let layout = full_layout();
    each_store(7, |store| {
        store.open_dataset("ds", &layout).unwrap();
        append_split(store, "ds", &layout, &(0..20).collect::<Vec<_>>(), &[]);
        let mut scan = store.scan("ds", &[0, 1, 2, 3, 4], Nanos::MIN, Nanos::MAX).unwrap();
        let first = scan.next().unwrap().unwrap();
        // Refills the scan's partial last block and adds new ones.
        append_split(store, "ds", &layout, &(20..40).collect::<Vec<_>>(), &[]);
        let (rest, _) = collect(scan).unwrap();
        let mut times = first.times.clone();
        times.extend(&rest.times);
        assert_eq!(times, (0..20).collect::<Vec<_>>(), "{store:?}");
        assert_eq!(rest, records(&layout, &(first.len() as Nanos..20).collect::<Vec<_>>()));
        assert_eq!(store.count("ds", Nanos::MIN, Nanos::MAX).unwrap(), 40);
    });
}

#[test]
fn readers_never_see_torn_rows_or_partial_appends() {
    each_persistent_store(|open| readers_never_see_torn_rows_in(Arc::from(open(64))));
}

fn readers_never_see_torn_rows_in(store: Arc<dyn Store>) {
    const PER_APPEND: i64 = 300;
    const APPENDS: i64 = 25;
    let layout = full_layout();
    store.open_dataset("ds", &layout).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, layout, done) = (Arc::clone(&store), layout.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut scans = 0;
                while !done.load(Ordering::SeqCst) || scans < 3 {
                    let count = store.count("ds", Nanos::MIN, Nanos::MAX).unwrap();
                    assert_eq!(count % PER_APPEND as u64, 0, "count saw part of an append");
                    let scan = store.scan("ds", &[0, 1, 2, 3, 4], Nanos::MIN, Nanos::MAX).unwrap();
                    let (got, _) = collect(scan).unwrap();
                    let n = got.times.len() as i64;
                    assert_eq!(n % PER_APPEND, 0, "scan saw part of an append");
                    if n > 0 {
                        assert_eq!(got, records(&layout, &(0..n).collect::<Vec<_>>()), "torn rows");
                    }
                    scans += 1;
                }
                scans
            })
        })
        .collect();
    for a in 0..APPENDS {
        let times: Vec<Nanos> = (a * PER_APPEND..(a + 1) * PER_APPEND).collect();
        append_split(&*store, "ds", &layout, &times, &[100, 100]);
    }
    done.store(true, Ordering::SeqCst);
    for reader in readers {
        assert!(reader.join().unwrap() >= 3);
    }
    assert_eq!(store.count("ds", Nanos::MIN, Nanos::MAX).unwrap(), (PER_APPEND * APPENDS) as u64);
}

/// Returns (busy, wal frames, frames checkpointed) of a full checkpoint attempt that does
/// not wait: busy = 1 while some reader still holds an old snapshot.
fn try_checkpoint(dir: &std::path::Path) -> (i64, i64, i64) {
    let conn = rusqlite::Connection::open(dir.join("hapi.sqlite3")).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
}

/// A scan whose reader stopped (a stalled client) must pin nothing: no connection, no
/// read transaction that would keep the WAL from being checkpointed; and it still
/// yields exactly the records of its snapshot, not those appended after it started.
#[test]
fn a_live_scan_pins_no_snapshot_and_keeps_its_records() {
    let layout = full_layout();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::with_max_block_rows(dir.path(), 4).unwrap();
    store.open_dataset("ds", &layout).unwrap();
    append_split(&store, "ds", &layout, &(0..18).collect::<Vec<_>>(), &[]);
    let snapshot = store.snapshot("ds", &[0], Nanos::MIN, Nanos::MAX).unwrap();
    assert_eq!(snapshot.count, 18);
    let mut scan = snapshot.batches;
    let first = scan.next().unwrap().unwrap();
    // The next appends fill the snapshot's last, partial block and add new ones.
    append_split(&store, "ds", &layout, &(18..40).collect::<Vec<_>>(), &[]);
    assert_eq!(try_checkpoint(dir.path()).0, 0, "a live scan holds no snapshot open");
    let mut times = first.times;
    for batch in scan {
        times.extend(batch.unwrap().times);
    }
    assert_eq!(times, (0..18).collect::<Vec<_>>(), "exactly the records counted at the start");
}
