//! Time ranges against brute force: inside blocks, on block edges, empty, before and after
//! the data, for scan, count and nth_time.

use hapi_core::Nanos;

use crate::common::{append_split, assert_same, collect, each_store, full_layout, records, select};

/// 40 records at 0, 10, ..., 390 in blocks of 7: block edges at 70, 140, 210, 280, 350.
fn times() -> Vec<Nanos> {
    (0..40).map(|i| i * 10).collect()
}

const RANGES: [(Nanos, Nanos); 19] = [
    (Nanos::MIN, Nanos::MAX),
    (-100, 0),
    (-100, 1),
    (0, 70),
    (70, 140),
    (69, 71),
    (70, 71),
    (61, 70),
    (65, 145),
    (11, 19),
    (50, 50),
    (60, 50),
    (390, 391),
    (391, 1000),
    (385, Nanos::MAX),
    (0, 400),
    (1, 399),
    (350, 390),
    (Nanos::MIN, Nanos::MIN + 1),
];

#[test]
fn scan_and_count_match_brute_force() {
    let layout = full_layout();
    let times = times();
    each_store(7, |store| {
        store.open_dataset("ds", &layout).unwrap();
        append_split(store, "ds", &layout, &times, &[3, 30]);
        for (start, stop) in RANGES {
            let inside: Vec<Nanos> = times.iter().copied().filter(|&t| start <= t && t < stop).collect();
            let context = format!("{store:?} [{start}, {stop})");
            assert_eq!(store.count("ds", start, stop).unwrap(), inside.len() as u64, "{context}");
            let (got, lengths) = collect(store.scan("ds", &[0, 3], start, stop).unwrap()).unwrap();
            assert_same(&got, &select(&records(&layout, &inside), &[0, 3]), &context);
            assert!(lengths.iter().all(|&n| n > 0 && n <= 7), "{context}: batch lengths {lengths:?}");
        }
    });
}

#[test]
fn nth_time_matches_brute_force() {
    let layout = full_layout();
    let times = times();
    each_store(7, |store| {
        store.open_dataset("ds", &layout).unwrap();
        append_split(store, "ds", &layout, &times, &[]);
        for start in [Nanos::MIN, -5, 0, 1, 69, 70, 71, 139, 385, 390, 391, Nanos::MAX] {
            let after: Vec<Nanos> = times.iter().copied().filter(|&t| t >= start).collect();
            for n in (0..45).chain([u64::MAX, i64::MAX as u64]) {
                let want = usize::try_from(n).ok().and_then(|n| after.get(n)).copied();
                assert_eq!(store.nth_time("ds", start, n).unwrap(), want, "{store:?} start {start} n {n}");
            }
        }
    });
}

#[test]
fn extent_of_empty_and_filled_dataset() {
    let layout = full_layout();
    each_store(7, |store| {
        store.open_dataset("ds", &layout).unwrap();
        assert_eq!(store.extent("ds").unwrap(), None);
        assert_eq!(store.count("ds", Nanos::MIN, Nanos::MAX).unwrap(), 0);
        assert_eq!(store.nth_time("ds", Nanos::MIN, 0).unwrap(), None);
        assert!(store.scan("ds", &[0], Nanos::MIN, Nanos::MAX).unwrap().next().is_none());
        append_split(store, "ds", &layout, &times(), &[]);
        assert_eq!(store.extent("ds").unwrap(), Some((0, 390)));
    });
}

/// Blocks larger than the windows ranks are read from (256 times in PostgreSQL, a binary
/// search of single times in SQLite), with times far from evenly spaced: every rank,
/// from a window that holds it or from the whole block, matches brute force.
#[test]
fn ranks_in_large_blocks_of_uneven_times() {
    // 3,000 records in blocks of 1,000: even steps, even steps after a gap, then steps
    // that grow quadratically (the even-spacing guess lands far off).
    let mut times: Vec<Nanos> = (0..1000).collect();
    times.extend((0..1000).map(|i| 1_000_000 + i * 7));
    times.extend((0..1000i64).map(|i| 2_000_000 + i * i));
    let mut probes: Vec<Nanos> = times.iter().step_by(37).flat_map(|&t| [t - 1, t, t + 1]).collect();
    probes.extend([Nanos::MIN, -1, 999, 1000, 500_000, 1_006_993, 1_500_000, 2_998_001, Nanos::MAX]);
    let before = |t: Nanos| times.iter().filter(|&&x| x < t).count() as u64;
    each_store(1000, |store| {
        let layout = full_layout();
        store.open_dataset("ds", &layout).unwrap();
        append_split(store, "ds", &layout, &times, &[]);
        for &t in &probes {
            assert_eq!(store.count("ds", Nanos::MIN, t).unwrap(), before(t), "records before {t}");
        }
        for w in probes.windows(2).step_by(5) {
            let (a, b) = (w[0].min(w[1]), w[0].max(w[1]));
            let want = before(b) - before(a);
            assert_eq!(store.count("ds", a, b).unwrap(), want, "count of [{a}, {b})");
            let (got, _) = collect(store.scan("ds", &[0], a, b).unwrap()).unwrap();
            assert_eq!(got.times.len() as u64, want, "scan of [{a}, {b})");
        }
    });
}
