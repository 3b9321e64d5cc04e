//! A scan reads one snapshot while appends continue: never a torn row, never a partial
//! append, and a dropped scan releases its snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hapi_core::Nanos;
use hapi_store::{SqliteStore, Store};

use crate::common::{append_split, collect, each_store, full_layout, records, sqlite};

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
    const PER_APPEND: i64 = 300;
    const APPENDS: i64 = 25;
    let layout = full_layout();
    let (_dir, store) = sqlite(64);
    let store = Arc::new(store);
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

#[test]
fn a_dropped_scan_releases_its_snapshot() {
    let layout = full_layout();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::with_max_block_rows(dir.path(), 4).unwrap();
    store.open_dataset("ds", &layout).unwrap();
    append_split(&store, "ds", &layout, &(0..20).collect::<Vec<_>>(), &[]);
    let mut scan = store.scan("ds", &[0], Nanos::MIN, Nanos::MAX).unwrap();
    scan.next().unwrap().unwrap();
    append_split(&store, "ds", &layout, &(20..40).collect::<Vec<_>>(), &[]);
    assert_eq!(try_checkpoint(dir.path()).0, 1, "the live scan pins its snapshot");
    drop(scan);
    assert_eq!(try_checkpoint(dir.path()).0, 0, "dropping the scan released it");

    // A scan read to the end releases its snapshot before it is dropped.
    let mut scan = store.scan("ds", &[0], Nanos::MIN, Nanos::MAX).unwrap();
    scan.by_ref().for_each(|batch| drop(batch.unwrap()));
    append_split(&store, "ds", &layout, &[40], &[]);
    assert_eq!(try_checkpoint(dir.path()).0, 0);
    drop(scan);
}
