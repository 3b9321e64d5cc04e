//! Inputs the fuzzer found (crates/hapi-cdf/fuzz): each must give an error or values in
//! bounded time, never a panic.

use crate::support::{crate_dir, read_everything, within};

#[test]
fn fuzz_regressions_do_not_panic() {
    let dir = crate_dir().join("tests/fuzz-regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fuzz-regressions") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        let name = path.display().to_string();
        within(60, move || {
            let _ = read_everything(&bytes);
        });
        eprintln!("ok: {name}");
        n += 1;
    }
    eprintln!("{n} regression inputs");
}
