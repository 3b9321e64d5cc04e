//! Opens arbitrary bytes as a CDF and reads everything: every variable's records (up to
//! 100,000 and 16 MB of them, in batches), its fill value, its times and a time search.
//! The byte bound keeps a run's time per input small: a file may legally declare
//! billions of unwritten records, which read as pad values.
//! Run: `cargo +nightly fuzz run open -- -max_total_time=600` from crates/hapi-cdf.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(cdf) = hapi_cdf::Cdf::from_bytes(data.to_vec()) else { return };
    for (i, v) in cdf.variables().iter().enumerate() {
        let _ = v.fill();
        let rb = v.record_bytes().unwrap_or(u64::MAX).max(1);
        let n = v.records.min(100_000).min((16 << 20) / rb).max(v.records.min(1));
        if let Ok(batches) = cdf.batches(&[i], 0..n, 4096) {
            for b in batches {
                if b.is_err() {
                    break;
                }
            }
        }
        if v.data_type.is_time() {
            let _ = cdf.read_times(i, 0..n.min(16));
            let _ = cdf.time_range(i, 0, i64::MAX);
        }
    }
});
