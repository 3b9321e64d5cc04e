//! Appends are all or nothing, ordered, resumable after reopen; layouts are checked.

use hapi_core::info::ParamType;
use hapi_core::{Column, Nanos};
use hapi_store::{ColumnSpec, Layout, MemoryStore, Store, StoreError};

use crate::common::{
    append_split, collect, each_persistent_store, each_store, full_layout, records, scan_all,
};

/// Everything a reader can observe about a dataset.
fn observe(store: &dyn Store) -> (Option<(Nanos, Nanos)>, u64, hapi_core::Batch) {
    (
        store.extent("ds").unwrap(),
        store.count("ds", Nanos::MIN, Nanos::MAX).unwrap(),
        scan_all(store, "ds", &[0, 1, 2, 3, 4], Nanos::MIN, Nanos::MAX),
    )
}

#[test]
fn a_bad_batch_in_the_middle_leaves_the_store_unchanged() {
    let layout = full_layout();
    each_store(4, |store| {
        store.open_dataset("ds", &layout).unwrap();
        // 10 records leave a partial last block, which a failed append must not touch.
        append_split(store, "ds", &layout, &(0..10).collect::<Vec<_>>(), &[]);
        let before = observe(store);
        let mut bad = records(&layout, &[20, 21]);
        bad.columns[1] = Column::Double { width: 2, values: vec![0.0; 4] };
        let batches = vec![records(&layout, &(10..19).collect::<Vec<_>>()), bad, records(&layout, &[30])];
        let err = store.append("ds", &mut batches.into_iter()).unwrap_err();
        assert!(matches!(err, StoreError::Shape { batch: 1, .. }), "{err}");
        assert!(err.to_string().contains("column 1: width is 2, the layout says 3"), "{err}");
        assert_eq!(observe(store), before, "{store:?}");

        let mut missing = records(&layout, &[20]);
        missing.columns.pop();
        let err = store.append("ds", &mut std::iter::once(missing)).unwrap_err();
        assert!(err.to_string().contains("4 columns, the layout has 5"), "{err}");
        let mut short = records(&layout, &[20, 21]);
        short.columns[2] = Column::Integer { width: 2, values: vec![1, 2, 3] };
        assert!(matches!(store.append("ds", &mut std::iter::once(short)), Err(StoreError::Shape { .. })));
        let mut kind = records(&layout, &[20]);
        kind.columns[0] = Column::Integer { width: 1, values: vec![1] };
        assert!(matches!(store.append("ds", &mut std::iter::once(kind)), Err(StoreError::Shape { .. })));
        let mut len = records(&layout, &[20]);
        len.columns[3] = Column::Text { width: 1, len: 11, bytes: vec![0; 11] };
        assert!(matches!(store.append("ds", &mut std::iter::once(len)), Err(StoreError::Shape { .. })));
        assert_eq!(observe(store), before, "{store:?}");
    });
}

#[test]
fn out_of_order_records_are_rejected_by_index() {
    let layout = full_layout();
    each_store(4, |store| {
        store.open_dataset("ds", &layout).unwrap();
        append_split(store, "ds", &layout, &[0, 10, 20, 30, 40], &[]);
        let before = observe(store);

        let batches = vec![records(&layout, &[50, 60, 70, 80, 90]), records(&layout, &[100, 110, 105])];
        let err = store.append("ds", &mut batches.into_iter()).unwrap_err();
        assert!(matches!(err, StoreError::OutOfOrder { index: 7, time: 105, previous: 110 }), "{err}");

        let err = store.append("ds", &mut std::iter::once(records(&layout, &[40]))).unwrap_err();
        assert!(matches!(err, StoreError::OutOfOrder { index: 0, time: 40, previous: 40 }), "{err}");
        let err = store.append("ds", &mut std::iter::once(records(&layout, &[55, 55]))).unwrap_err();
        assert!(matches!(err, StoreError::OutOfOrder { index: 1, .. }), "{err}");
        assert_eq!(observe(store), before, "{store:?}");

        assert_eq!(store.append("ds", &mut std::iter::once(records(&layout, &[41]))).unwrap(), 1);
        assert_eq!(store.append("ds", &mut std::iter::empty()).unwrap(), 0);
        assert_eq!(store.extent("ds").unwrap(), Some((0, 41)));
    });
}

#[test]
fn append_after_reopen_continues_the_last_partial_block() {
    let layout = full_layout();
    let times: Vec<Nanos> = (0..20).map(|i| i * 3).collect();
    each_persistent_store(|open| {
        {
            let store = open(7);
            store.open_dataset("ds", &layout).unwrap();
            append_split(&*store, "ds", &layout, &times[..10], &[]);
        }
        // Opened with the default block size: the dataset keeps the 7 it was created with.
        let store = open(4096);
        store.open_dataset("ds", &layout).unwrap();
        append_split(&*store, "ds", &layout, &times[10..], &[2]);
        let (got, lengths) =
            collect(store.scan("ds", &[0, 1, 2, 3, 4], Nanos::MIN, Nanos::MAX).unwrap()).unwrap();
        assert_eq!(got, records(&layout, &times), "{store:?}");
        assert_eq!(lengths, [7, 7, 6], "{store:?}: the partial block was refilled, not left behind");
    });
}

#[test]
fn reopen_keeps_data_without_open_dataset() {
    let layout = full_layout();
    let times: Vec<Nanos> = (0..30).collect();
    each_persistent_store(|open| {
        {
            let store = open(8);
            store.open_dataset("ds", &layout).unwrap();
            append_split(&*store, "ds", &layout, &times, &[]);
        }
        let store = open(4096);
        assert_eq!(store.extent("ds").unwrap(), Some((0, 29)), "{store:?}");
        assert_eq!(scan_all(&*store, "ds", &[0, 1, 2, 3, 4], 0, 30), records(&layout, &times));
    });
}

#[test]
fn layout_changes_are_detected_and_named() {
    let layout = full_layout();
    let mut changed = layout.clone();
    changed.columns[2] = ColumnSpec { kind: ParamType::Double, width: 2, len: 0 };
    let mut longer = layout.clone();
    longer.columns.push(ColumnSpec { kind: ParamType::Integer, width: 1, len: 0 });
    let mut text = layout.clone();
    text.columns[3].len = 16;

    let check = |store: &dyn Store| {
        let err = store.open_dataset("ds", &changed).unwrap_err();
        assert!(matches!(&err, StoreError::LayoutChanged { dataset, .. } if dataset == "ds"), "{err}");
        assert_eq!(
            err.to_string(),
            "dataset `ds` changed layout: column 2 (parameter 3) was integer[2], now double[2]"
        );
        let err = store.open_dataset("ds", &longer).unwrap_err();
        assert!(err.to_string().ends_with("it had 5 parameter columns, now 6"), "{err}");
        let err = store.open_dataset("ds", &text).unwrap_err();
        assert!(err.to_string().ends_with("was string(12 bytes), now string(16 bytes)"), "{err}");
        store.open_dataset("ds", &layout).unwrap();
    };

    let memory = MemoryStore::new();
    memory.open_dataset("ds", &layout).unwrap();
    check(&memory);

    each_persistent_store(|open| {
        let store = open(4096);
        store.open_dataset("ds", &layout).unwrap();
        check(&*store);
        drop(store);
        check(&*open(4096));
    });
}

#[test]
fn unknown_datasets_and_columns_are_errors() {
    each_store(4, |store| {
        assert!(matches!(store.count("nope", 0, 1), Err(StoreError::UnknownDataset(id)) if id == "nope"));
        assert!(matches!(store.extent("nope"), Err(StoreError::UnknownDataset(_))));
        assert!(matches!(store.nth_time("nope", 0, 0), Err(StoreError::UnknownDataset(_))));
        assert!(matches!(store.scan("nope", &[], 0, 1), Err(StoreError::UnknownDataset(_))));
        assert!(matches!(store.append("nope", &mut std::iter::empty()), Err(StoreError::UnknownDataset(_))));
        store.open_dataset("ds", &Layout::default()).unwrap();
        let err = store.scan("ds", &[0], 0, 1).err().unwrap();
        assert!(matches!(err, StoreError::UnknownColumn { index: 0, columns: 0 }), "{err}");
    });
}

#[test]
fn datasets_are_independent() {
    let layout = full_layout();
    each_store(5, |store| {
        store.open_dataset("a", &layout).unwrap();
        store.open_dataset("b", &Layout::default()).unwrap();
        append_split(store, "a", &layout, &[1, 2, 3, 4, 5, 6, 7], &[]);
        append_split(store, "b", &Layout::default(), &[100, 200], &[]);
        assert_eq!(store.extent("a").unwrap(), Some((1, 7)));
        assert_eq!(store.extent("b").unwrap(), Some((100, 200)));
        assert_eq!(store.count("a", 0, 1000).unwrap(), 7);
        assert_eq!(store.count("b", 0, 1000).unwrap(), 2);
    });
}
