//! Shared by the tests: read everything a file offers, and a time bound that only
//! catches hangs.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use hapi_cdf::{Cdf, Error};

/// Opens `bytes` and reads every variable (at most 100,000 records and 16 MB each, in
/// batches, as the fuzz target does),
/// its times and fill, and a time search on each epoch: the first error, if any.
pub fn read_everything(bytes: &[u8]) -> Result<(), Error> {
    let cdf = Cdf::from_bytes(bytes.to_vec())?;
    read_all_of(&cdf)
}

pub fn read_all_of(cdf: &Cdf) -> Result<(), Error> {
    let mut first_err = None;
    for (i, v) in cdf.variables().iter().enumerate() {
        let _ = v.fill();
        let rb = v.record_bytes().unwrap_or(u64::MAX).max(1);
        let n = v.records.min(100_000).min((16 << 20) / rb).max(v.records.min(1));
        let r = cdf.batches(&[i], 0..n, 4096).and_then(|mut b| b.try_for_each(|b| b.map(drop)));
        if let Err(e) = r {
            first_err.get_or_insert(e);
            continue;
        }
        if v.data_type.is_time()
            && v.values_per_record() == 1
            && let Err(e) = cdf.time_range(i, 0, i64::MAX)
        {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Runs `f` on a thread and fails if it takes longer than `secs` (a hang, not a
/// performance bound) or panics.
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => {
            h.join().expect("thread finished");
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(h.join().expect_err("the thread panicked"))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("still running after {secs} s: a hang"),
    }
}

pub fn crate_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(crate_dir().join("tests/fixtures").join(name)).expect("fixture")
}
