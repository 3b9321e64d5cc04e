//! The test doubles themselves.

use std::sync::Arc;

use hapi_store::testing::FailingStore;
use hapi_store::{Layout, MemoryStore, Store, StoreError};

use crate::common::append_split;

fn memory_with_ten_records() -> MemoryStore {
    let store = MemoryStore::with_batch_rows(2);
    store.open_dataset("ds", &Layout::default()).unwrap();
    append_split(&store, "ds", &Layout::default(), &(0..10).collect::<Vec<_>>(), &[]);
    store
}

#[test]
fn scans_fail_after_k_batches() {
    let store = FailingStore::failing_after(memory_with_ten_records(), 2);
    let items: Vec<_> = store.scan("ds", &[], 0, 100).unwrap().collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[1].is_ok());
    assert!(matches!(items[2], Err(StoreError::Injected(_))));

    let store = FailingStore::failing_after(memory_with_ten_records(), 0);
    let mut scan = store.scan("ds", &[], 0, 100).unwrap();
    assert!(matches!(scan.next(), Some(Err(StoreError::Injected(_)))));
    assert!(scan.next().is_none());

    // A scan shorter than k ends normally.
    let store = FailingStore::failing_after(memory_with_ten_records(), 9);
    assert!(store.scan("ds", &[], 0, 100).unwrap().all(|batch| batch.is_ok()));
}

#[test]
fn live_scans_are_counted_until_dropped() {
    let store = Arc::new(FailingStore::new(memory_with_ten_records()));
    let probe = store.probe();
    let shared: Arc<dyn Store> = store;
    let mut scan = shared.scan("ds", &[], 0, 100).unwrap();
    scan.next().unwrap().unwrap();
    let other = shared.scan("ds", &[], 0, 100).unwrap();
    assert_eq!((probe.live(), probe.started()), (2, 2));
    drop(scan);
    assert_eq!(probe.live(), 1);
    drop(other);
    assert_eq!((probe.live(), probe.started()), (0, 2));
    assert!(shared.scan("nope", &[], 0, 1).is_err());
    assert_eq!(probe.started(), 2, "a scan that failed to open is not counted");
}
