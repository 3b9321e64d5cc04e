//! Property test: the SQLite store answers exactly like the in-memory store for random
//! times, append splits, block sizes and ranges.

use hapi_core::Nanos;
use hapi_store::{MemoryStore, Store};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::common::{collect, full_layout, records, sqlite};

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_answers_like_memory(
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
        for store in [&memory as &dyn Store, &sqlite] {
            store.open_dataset("ds", &layout).unwrap();
            // Splits alternate between separate appends and batches of one append, so
            // partial blocks are both resumed and filled within a transaction.
            let mut rest = times.as_slice();
            let mut pending = Vec::new();
            for (i, &size) in splits.iter().enumerate() {
                let (head, tail) = rest.split_at(size.min(rest.len()));
                pending.push(records(&layout, head));
                rest = tail;
                if i % 2 == 1 {
                    store.append("ds", &mut pending.drain(..)).unwrap();
                }
            }
            pending.push(records(&layout, rest));
            store.append("ds", &mut pending.into_iter()).unwrap();
        }

        prop_assert_eq!(sqlite.extent("ds").unwrap(), memory.extent("ds").unwrap());
        for &(start, stop) in &ranges {
            prop_assert_eq!(sqlite.count("ds", start, stop).unwrap(), memory.count("ds", start, stop).unwrap());
            for columns in [&[0, 1, 2, 3, 4][..], &[1, 3]] {
                let (got, lengths) = collect(sqlite.scan("ds", columns, start, stop).unwrap()).unwrap();
                let (want, _) = collect(memory.scan("ds", columns, start, stop).unwrap()).unwrap();
                prop_assert_eq!(got, want);
                prop_assert!(lengths.iter().all(|&n| n > 0 && n <= block_rows));
            }
            for &n in &ns {
                prop_assert_eq!(sqlite.nth_time("ds", start, n).unwrap(), memory.nth_time("ds", start, n).unwrap());
            }
        }
    }
}
