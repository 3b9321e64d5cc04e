//! Reader benchmark (issue 11's three rows), on a daily file such as the one the
//! generator writes with `--day` (86,400 records, about 26 MB):
//!
//! ```text
//! .venv/bin/python crates/hapi-cdf/tests/python/gen_cdf.py /tmp/cdfbench --day
//! cargo run --release -p hapi-cdf --example bench -- /tmp/cdfbench/day.cdf
//! ```
//!
//! 1. whole-file decode: every variable of the file read and decoded, in MB/s of file;
//! 2. two variables (the epoch as Unix ns, and the first other record-varying variable)
//!    of ten daily files: the FILE arguments, or ten copies of the one FILE made next to
//!    it, each opened anew;
//! 3. one hour (10:00-11:00 of the first record's day) of every record-varying variable:
//!    open, binary search, read.
//!
//! Best and median of repeated runs; the files are in the page cache (warm).

use std::time::{Duration, Instant};

use hapi_cdf::Cdf;

fn stats(mut runs: Vec<Duration>) -> String {
    runs.sort();
    format!("best {:.2} ms, median {:.2} ms", ms(runs[0]), ms(runs[runs.len() / 2]))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        return Err("usage: bench FILE [FILE...]".into());
    }
    let first = files[0].clone();
    let size = std::fs::metadata(&first)?.len();
    if files.len() == 1 {
        for i in 1..10 {
            let copy = format!("{first}.copy{i}");
            if !std::path::Path::new(&copy).is_file() {
                std::fs::copy(&first, &copy)?;
            }
            files.push(copy);
        }
    }
    let files = &files[..files.len().min(10)];

    // 1. Whole-file decode.
    let mut runs = Vec::new();
    let mut values = 0;
    for _ in 0..7 {
        let t = Instant::now();
        let cdf = Cdf::open(&first)?;
        values = 0;
        for (i, v) in cdf.variables().iter().enumerate() {
            values += cdf.read(i, 0..v.records)?.len();
        }
        runs.push(t.elapsed());
    }
    let best = runs.iter().min().copied().unwrap_or_default();
    println!(
        "whole-file decode: {first} ({:.1} MB, {values} values): {:.0} MB/s ({})",
        size as f64 / 1e6,
        size as f64 / 1e6 / best.as_secs_f64(),
        stats(runs)
    );

    // 2. Two variables of ten daily files.
    let mut runs = Vec::new();
    let mut names = (String::new(), String::new());
    for _ in 0..7 {
        let t = Instant::now();
        for f in files {
            let cdf = Cdf::open(f)?;
            let epoch = cdf.variables().iter().position(|v| v.data_type.is_time()).ok_or("no epoch")?;
            let other = cdf
                .variables()
                .iter()
                .position(|v| !v.data_type.is_time() && v.rec_vary && v.records > 1)
                .ok_or("no record-varying variable")?;
            let n = cdf.variables()[epoch].records;
            std::hint::black_box(cdf.read_times(epoch, 0..n)?);
            std::hint::black_box(cdf.read(other, 0..cdf.variables()[other].records)?);
            names = (cdf.variables()[epoch].name.clone(), cdf.variables()[other].name.clone());
        }
        runs.push(t.elapsed());
    }
    println!("two variables ({}, {}) of {} daily files: {}", names.0, names.1, files.len(), stats(runs));

    // 3. One hour from a day file.
    let mut runs = Vec::new();
    let mut got = 0;
    for _ in 0..21 {
        let t = Instant::now();
        let cdf = Cdf::open(&first)?;
        let epoch = cdf.variables().iter().position(|v| v.data_type.is_time()).ok_or("no epoch")?;
        let t0 = cdf.read_times(epoch, 0..1)?[0];
        let day = t0 - t0.rem_euclid(86_400_000_000_000);
        let hour = 3_600_000_000_000;
        let range = cdf.time_range(epoch, day + 10 * hour, day + 11 * hour)?;
        got = range.end - range.start;
        std::hint::black_box(cdf.read_times(epoch, range.clone())?);
        for (i, v) in cdf.variables().iter().enumerate() {
            if v.rec_vary && i != epoch && v.records >= range.end {
                std::hint::black_box(cdf.read(i, range.clone())?);
            }
        }
        runs.push(t.elapsed());
    }
    println!("one hour ({got} records of every variable) from {first}: {}", stats(runs));
    Ok(())
}
