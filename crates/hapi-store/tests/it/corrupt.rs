//! Corruption is never served as data (issue 6, item 9): a block whose times are out of
//! order or outside its key fails the scan; an emptied database file fails the open.

use hapi_core::Nanos;
use hapi_store::{ErrorKind, SqliteStore, Store};

use crate::common::{append_split, full_layout};

/// A store with 12 records at 0, 10, ..., 110 in blocks of 4; returns its directory.
fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::with_max_block_rows(dir.path(), 4).unwrap();
    let layout = full_layout();
    store.open_dataset("ds", &layout).unwrap();
    let times: Vec<Nanos> = (0..12).map(|i| i * 10).collect();
    append_split(&store, "ds", &layout, &times, &[]);
    (dir, store)
}

/// Rewrites the time blob of block `k` with `times`.
fn tamper(dir: &std::path::Path, k: i64, times: &[Nanos]) {
    let conn = rusqlite::Connection::open(dir.join("hapi.sqlite3")).unwrap();
    let blob: Vec<u8> = times.iter().flat_map(|t| t.to_le_bytes()).collect();
    let n = conn
        .execute("UPDATE blocks SET data = ?1 WHERE col = 0 AND k = ?2", rusqlite::params![blob, k])
        .unwrap();
    assert_eq!(n, 1);
}

fn scan_kinds(store: &SqliteStore) -> Vec<Result<Vec<Nanos>, ErrorKind>> {
    store
        .scan("ds", &[0], Nanos::MIN, Nanos::MAX)
        .unwrap()
        .map(|b| b.map(|b| b.times).map_err(|e| e.kind()))
        .collect()
}

#[test]
fn out_of_order_times_in_a_block_fail_the_scan() {
    let (dir, store) = store();
    tamper(dir.path(), 1, &[40, 60, 50, 70]);
    let got = scan_kinds(&store);
    assert_eq!(got[0], Ok(vec![0, 10, 20, 30]));
    assert_eq!(got[1], Err(ErrorKind::Corrupt), "{got:?}");
    assert_eq!(got.len(), 2, "the scan ends at the corrupt block: {got:?}");
}

#[test]
fn times_outside_the_block_key_fail_the_scan() {
    let (dir, store) = store();
    // Sorted within the block, but before its key time (t0 = 40) and before block 0's end.
    tamper(dir.path(), 1, &[5, 6, 7, 8]);
    assert_eq!(scan_kinds(&store)[1], Err(ErrorKind::Corrupt));
    // Sorted, starting at the key, but running past the next block's times.
    let (dir, store) = self::store();
    tamper(dir.path(), 1, &[40, 50, 60, 95]);
    let got = scan_kinds(&store);
    assert!(got.contains(&Err(ErrorKind::Corrupt)), "{got:?}");
}

#[test]
fn a_block_blob_of_the_wrong_length_fails_the_scan() {
    // Blocks are read in parts, so a blob's length is checked, not found by running off
    // its end: a truncated parameter block and an overlong time block.
    for (col, cut) in [(1, -1), (0, 8)] {
        let (dir, store) = store();
        let conn = rusqlite::Connection::open(dir.path().join("hapi.sqlite3")).unwrap();
        let data: Vec<u8> =
            conn.query_row("SELECT data FROM blocks WHERE col = ?1 AND k = 1", [col], |r| r.get(0)).unwrap();
        let len = (data.len() as i64 + cut) as usize;
        let data: Vec<u8> = data.iter().copied().chain(std::iter::repeat(0)).take(len).collect();
        conn.execute("UPDATE blocks SET data = ?1 WHERE col = ?2 AND k = 1", rusqlite::params![data, col])
            .unwrap();
        let got: Vec<_> = store
            .scan("ds", &[0], Nanos::MIN, Nanos::MAX)
            .unwrap()
            .map(|b| b.map(|b| b.times.len()).map_err(|e| e.kind()))
            .collect();
        assert_eq!(got, [Ok(4), Err(ErrorKind::Corrupt)], "column {col}");
        assert_eq!(
            store.count("ds", 45, 46).map_err(|e| e.kind()),
            if col == 0 { Err(ErrorKind::Corrupt) } else { Ok(0) }
        );
    }
}

#[test]
fn an_emptied_database_file_is_an_error_not_a_new_store() {
    let (dir, store) = store();
    drop(store);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("hapi.sqlite3{suffix}")));
    }
    std::fs::File::create(dir.path().join("hapi.sqlite3")).unwrap();
    let e = SqliteStore::open(dir.path()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    assert!(e.to_string().contains("0 bytes"), "{e}");
    assert_eq!(
        std::fs::metadata(dir.path().join("hapi.sqlite3")).unwrap().len(),
        0,
        "nothing was written over it"
    );
}

#[test]
fn a_new_store_is_created_whole() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".new")), "no temporary file left: {names:?}");
    assert!(std::fs::metadata(dir.path().join("hapi.sqlite3")).unwrap().len() > 0);
    // Reopening finds the schema.
    let store = SqliteStore::open(dir.path()).unwrap();
    store.open_dataset("ds", &full_layout()).unwrap();
}
