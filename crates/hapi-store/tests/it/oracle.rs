//! Property test: the SQLite and PostgreSQL stores answer exactly like the in-memory
//! store for random times, append splits, block sizes and ranges.

use hapi_core::Nanos;
use hapi_store::{MemoryStore, Store};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::common::{Postgres, collect, full_layout, records, sqlite};

/// One database for all cases (each case opens its own store and dataset in it).
fn postgres() -> Option<&'static Postgres> {
    static PG: std::sync::OnceLock<Option<Postgres>> = std::sync::OnceLock::new();
    PG.get_or_init(Postgres::fresh).as_ref()
}

static CASE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn block_stores_answer_like_memory(
        base in -1000i64..1000,
        deltas in vec(1i64..40, 0..150),
        splits in vec(0usize..40, 0..10),
        block_rows in 1usize..10,
        ranges in vec((-1100i64..7000, -1100i64..7000), 1..10),
        ns in vec(0u64..160, 1..6),
    ) {
        let layout = full_layout();
        let times: Vec<Nanos> = deltas.iter().scan(base, |t, d| { *t += d; Some(*t) }).collect();
        let memory = MemoryStore::with_batch_rows(block_rows);
        let (_dir, sqlite) = sqlite(block_rows);
        let pg = postgres().map(|pg| pg.open(block_rows));
        let id = format!("ds{}", CASE.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let mut stores = vec![&memory as &dyn Store, &sqlite];
        stores.extend(pg.as_ref().map(|s| s as &dyn Store));
        for &store in &stores {
            store.open_dataset(&id, &layout).unwrap();
            // Splits alternate between separate appends and batches of one append, so
            // partial blocks are both resumed and filled within a transaction.
            let mut rest = times.as_slice();
            let mut pending = Vec::new();
            for (i, &size) in splits.iter().enumerate() {
                let (head, tail) = rest.split_at(size.min(rest.len()));
                pending.push(records(&layout, head));
                rest = tail;
                if i % 2 == 1 {
                    store.append(&id, &mut pending.drain(..)).unwrap();
                }
            }
            pending.push(records(&layout, rest));
            store.append(&id, &mut pending.into_iter()).unwrap();
        }

        for &store in &stores[1..] {
        prop_assert_eq!(store.extent(&id).unwrap(), memory.extent(&id).unwrap());
        for &(start, stop) in &ranges {
            prop_assert_eq!(store.count(&id, start, stop).unwrap(), memory.count(&id, start, stop).unwrap());
            for columns in [&[0, 1, 2, 3, 4][..], &[1, 3]] {
                let (got, lengths) = collect(store.scan(&id, columns, start, stop).unwrap()).unwrap();
                let (want, _) = collect(memory.scan(&id, columns, start, stop).unwrap()).unwrap();
                prop_assert_eq!(got, want);
                prop_assert!(lengths.iter().all(|&n| n > 0 && n <= block_rows));
            }
            for &n in &ns {
                prop_assert_eq!(store.nth_time(&id, start, n).unwrap(), memory.nth_time(&id, start, n).unwrap());
            }
        }
        }
    }
}
