//! The demo catalog: the embedded default configuration and deterministic synthetic
//! records shaped like the SWE HAPI Server's datasets (seed page): a fixed sample of
//! about 1.1 M records, and for the live generators ([`is_live`]) the records of their
//! grid up to now, appended as time passes (`crate::live`).

use std::path::Path;

use anyhow::{Context, Result};
use hapi_core::batch::push_text;
use hapi_core::info::{DatasetInfo, ParamType};
use hapi_core::{Batch, Column, Nanos, time};
use hapi_store::Store;

use crate::config::{FileConfig, Overrides};

/// Known generators, named by `demo = "..."` in a dataset's configuration.
pub use crate::config::DEMO_GENERATORS as GENERATORS;

const DEMO_TOML: &str = include_str!("../demo/demo.toml");
const FILES: [(&str, &str); 4] = [
    ("ngrm_bt.json", include_str!("../demo/ngrm_bt.json")),
    ("sosmag.json", include_str!("../demo/sosmag.json")),
    ("ngrm_gc.json", include_str!("../demo/ngrm_gc.json")),
    ("kp.json", include_str!("../demo/kp.json")),
];

/// The demo configuration, built into the binary so `hapi-server serve` works anywhere.
pub fn config(overrides: &Overrides) -> Result<crate::config::Config> {
    let mut file: FileConfig = toml::from_str(DEMO_TOML).context("built-in demo configuration")?;
    for d in &mut file.datasets {
        if let Some(name) = d.info_file.take() {
            let text = FILES.iter().find(|(n, _)| Path::new(n) == name).map(|(_, t)| *t);
            d.info = Some(text.context("demo info file missing")?.to_owned());
        }
    }
    crate::config::from_file(file, Path::new("."), overrides)
}

const SEC: Nanos = 1_000_000_000;

struct Plan {
    first: Nanos,
    step: Nanos,
    count: u64,
}

fn at(s: &str) -> Nanos {
    time::parse(s).unwrap_or(0)
}

fn plan(generator: &str) -> Plan {
    match generator {
        // Records at :40.067 offsets every 90 s, as on the seed page.
        "ngrm_bt" => span(at("2025-08-19T09:00:40.067Z"), at("2026-11-01T00:00Z"), 90 * SEC),
        "sosmag" => span(at("2026-10-25T00:00Z"), at("2026-11-01T00:00Z"), SEC),
        // The benchmark's store: 2.6 M records of the SOSMAG shape.
        "sosmag_month" => span(at("2026-09-01T00:00Z"), at("2026-10-01T00:00Z"), SEC),
        "ngrm_gc" => span(at("2026-10-01T00:00:25.500Z"), at("2026-11-01T00:00Z"), 90 * SEC),
        _ => span(at("2000-01-01T00:00Z"), at("2026-11-01T00:00Z"), 3 * 3600 * SEC),
    }
}

fn span(first: Nanos, end: Nanos, step: Nanos) -> Plan {
    Plan { first, step, count: u64::try_from((end - first + step - 1) / step).unwrap_or(0) }
}

/// Fills an empty dataset from its generator (its fixed sample). Returns the number of
/// records written.
pub fn populate(store: &dyn Store, info: &DatasetInfo, generator: &str) -> Result<u64> {
    let p = plan(generator);
    let n = store
        .append(&info.id, &mut batches(info, generator, &p, 0, p.count))
        .with_context(|| format!("loading demo data into {}", info.id))?;
    Ok(n)
}

/// The generators that keep growing in real time under `hapi-server serve`: NGRM and
/// SOSMAG, as a space-weather service's real-time datasets do.
pub fn is_live(generator: &str) -> bool {
    matches!(generator, "ngrm_bt" | "ngrm_gc" | "sosmag")
}

/// The most records one catch-up appends to a live dataset: after a long downtime (or
/// at the first start, months after the fixed sample ends) only the newest ones are
/// made, so start-up stays short. SOSMAG (1 s): the last 2 days; NGRM (90 s): 180 days.
pub const LIVE_CATCH_UP: u64 = 172_800;

/// Appends to a live dataset the records of its generator's grid after the last stored
/// record, up to `now` (at most [`LIVE_CATCH_UP`], the newest). Record `i` is at
/// `first + i * step` with the values of index `i`, so the same time always has the
/// same values, whenever and however often the server made them. Returns the number
/// appended (0 when none is due).
pub fn grow(store: &dyn Store, info: &DatasetInfo, generator: &str, now: Nanos) -> Result<u64> {
    let p = plan(generator);
    let after = store.extent(&info.id).context("reading the last demo record")?.map(|(_, b)| b);
    let Some((from, n)) = due(&p, after, now) else { return Ok(0) };
    let appended = store
        .append(&info.id, &mut batches(info, generator, &p, from, n))
        .with_context(|| format!("appending live demo records to {}", info.id))?;
    Ok(appended)
}

/// Indices of the grid records after `after` and at or before `now`: the first and how
/// many, at most [`LIVE_CATCH_UP`].
fn due(p: &Plan, after: Option<Nanos>, now: Nanos) -> Option<(u64, u64)> {
    if now < p.first {
        return None;
    }
    let last = u64::try_from((now - p.first) / p.step).ok()?;
    let next = match after {
        Some(a) if a >= p.first => u64::try_from((a - p.first) / p.step).ok()? + 1,
        _ => 0,
    };
    let from = next.max((last + 1).saturating_sub(LIVE_CATCH_UP));
    (from <= last).then(|| (from, last - from + 1))
}

/// Records `from .. from + n` of a generator's grid, 65,536 to a batch, made as the
/// store takes them.
fn batches<'a>(
    info: &'a DatasetInfo,
    generator: &'a str,
    p: &'a Plan,
    from: u64,
    n: u64,
) -> impl Iterator<Item = Batch> + 'a {
    let end = from + n;
    let mut next = from;
    std::iter::from_fn(move || {
        if next >= end {
            return None;
        }
        let n = (end - next).min(65_536);
        let b = batch(info, generator, p, next, n);
        next += n;
        Some(b)
    })
}

/// A deterministic pseudo-random number in [0, 1) for record `i`, stream `k` (splitmix64).
fn noise(i: u64, k: u64) -> f64 {
    let mut z = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Hours of UT of an instant.
fn ut_hours(t: Nanos) -> f64 {
    (t.rem_euclid(86_400 * SEC)) as f64 / (3600 * SEC) as f64
}

fn batch(info: &DatasetInfo, generator: &str, p: &Plan, from: u64, n: u64) -> Batch {
    let times: Vec<Nanos> = (from..from + n).map(|i| p.first + p.step * i as i64).collect();
    let mut columns: Vec<Column> = info.parameters[1..]
        .iter()
        .map(|par| match par.kind {
            ParamType::Double => Column::Double { width: par.width(), values: Vec::new() },
            ParamType::Integer => Column::Integer { width: par.width(), values: Vec::new() },
            ParamType::String | ParamType::IsoTime => {
                Column::Text { width: par.width(), len: par.length.unwrap_or(1), bytes: Vec::new() }
            }
        })
        .collect();
    for (r, &t) in times.iter().enumerate() {
        let i = from + r as u64;
        match generator {
            "ngrm_bt" => ngrm_bt(i, t, &mut columns),
            "sosmag" | "sosmag_month" => sosmag(i, t, &mut columns),
            "ngrm_gc" => ngrm_gc(i, t, &mut columns),
            _ => kp(i, t, &mut columns),
        }
    }
    Batch { times, columns, wire: None }
}

fn push_f64(c: &mut Column, v: f64) {
    if let Column::Double { values, .. } = c {
        values.push(v);
    }
}

fn push_i32(c: &mut Column, v: i32) {
    if let Column::Integer { values, .. } = c {
        values.push(v);
    }
}

fn push_str(c: &mut Column, s: &str) {
    if let Column::Text { bytes, len, .. } = c {
        push_text(bytes, s.as_bytes(), *len);
    }
}

const FILL: f64 = -1.0e31;

/// Magnetic local time of a spacecraft at 0° longitude: UT shifted by a constant
/// (matches the seed page's 11.6639 h at 12:00:40 UT).
fn mlt(t: Nanos) -> f64 {
    round_to((ut_hours(t) - 0.347_23).rem_euclid(24.0), 4)
}

/// A one-hour gap of fill values every ten days, so clients meet real fill.
fn in_gap(t: Nanos) -> bool {
    t.rem_euclid(10 * 86_400 * SEC) < 3600 * SEC
}

fn ngrm_bt(i: u64, t: Nanos, cols: &mut [Column]) {
    let m = mlt(t);
    let day = (std::f64::consts::TAU * (m - 12.0) / 24.0).cos();
    let gap = in_gap(t);
    for (k, c) in cols.iter_mut().take(4).enumerate() {
        let base = [7.2e5, 2.1e5, 4.5e4, 6.0e3][k];
        let v = (base * (1.0 + 0.08 * day) * (0.97 + 0.06 * noise(i, k as u64))).round();
        push_f64(c, if gap { FILL } else { v });
    }
    for (k, c) in cols.iter_mut().skip(4).take(4).enumerate() {
        let base = [12.0, 3.1, 0.62, 0.085][k];
        let v = round_to(base * (0.8 + 0.4 * noise(i, 10 + k as u64)), 4);
        push_f64(c, if gap { FILL } else { v });
    }
    push_f64(&mut cols[8], if gap { FILL } else { m });
}

fn sosmag(i: u64, t: Nanos, cols: &mut [Column]) {
    let phase = std::f64::consts::TAU * ut_hours(t) / 24.0;
    let bx = round_to(-12.0 + 18.0 * phase.sin() + 2.0 * (noise(i, 1) - 0.5), 3);
    let by = round_to(6.0 * phase.cos() + 2.0 * (noise(i, 2) - 0.5), 3);
    let bz = round_to(95.0 + 20.0 * phase.cos() + 2.0 * (noise(i, 3) - 0.5), 3);
    let bad = noise(i, 4) < 0.001;
    for v in [bx, by, bz] {
        push_f64(&mut cols[0], if bad { FILL } else { v });
    }
    push_f64(&mut cols[1], if bad { FILL } else { round_to((bx * bx + by * by + bz * bz).sqrt(), 3) });
    push_i32(&mut cols[2], if bad { 2 } else { i32::from(noise(i, 5) < 0.01) });
}

fn ngrm_gc(i: u64, t: Nanos, cols: &mut [Column]) {
    let m = mlt(t);
    let day = (std::f64::consts::TAU * (m - 12.0) / 24.0).cos();
    let gap = in_gap(t);
    for k in 0..8u64 {
        let base = 3.0e5 * (-(k as f64) * 0.9).exp();
        let v = round_to(base * (1.0 + 0.1 * day) * (0.95 + 0.1 * noise(i, k)), 2);
        push_f64(&mut cols[0], if gap { FILL } else { v });
    }
    push_f64(&mut cols[1], if gap { FILL } else { m });
}

fn kp(i: u64, _t: Nanos, cols: &mut [Column]) {
    // Skewed towards quiet conditions, as real Kp is.
    let x3 = ((noise(i, 1).powi(3) * 28.0) as i32).min(27);
    let missing = noise(i, 2) < 0.002;
    let kp = f64::from(x3) / 3.0;
    const AP: [i32; 28] = [
        0, 2, 3, 4, 5, 6, 7, 9, 12, 15, 18, 22, 27, 32, 39, 48, 56, 67, 80, 94, 111, 132, 154, 179, 207, 236,
        300, 400,
    ];
    let (g, words) = match x3 {
        0..=11 => ("G0", "quiet"),
        12..=14 => ("G0", "active"),
        15..=17 => ("G1", "minor storm"),
        18..=20 => ("G2", "moderate storm"),
        21..=23 => ("G3", "strong storm"),
        24..=26 => ("G4", "severe storm"),
        _ => ("G5", "extreme storm"),
    };
    if missing {
        push_f64(&mut cols[0], f64::NAN);
        push_i32(&mut cols[1], -1);
        push_i32(&mut cols[2], -1);
        push_str(&mut cols[3], "--");
        push_str(&mut cols[4], "unknown");
    } else {
        push_f64(&mut cols[0], round_to(kp, 3));
        push_i32(&mut cols[1], x3);
        push_i32(&mut cols[2], AP[x3 as usize]);
        push_str(&mut cols[3], g);
        push_str(&mut cols[4], words);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hapi_store::{Layout, MemoryStore};

    #[test]
    fn live_records_follow_the_grid_up_to_the_catch_up() {
        let p = plan("sosmag");
        let end = p.first + p.step * p.count as i64;
        let last_fixed = end - p.step;
        assert_eq!(due(&p, Some(last_fixed), last_fixed), None, "nothing is due yet");
        assert_eq!(due(&p, Some(last_fixed), end + SEC / 2), Some((p.count, 1)), "the next grid point");
        assert_eq!(due(&p, Some(last_fixed), end + 10 * SEC), Some((p.count, 11)));
        assert_eq!(due(&p, Some(end + 3 * SEC + 1), end + 10 * SEC), Some((p.count + 4, 7)), "off the grid");
        assert_eq!(due(&p, None, p.first - 1), None);
        // Ten days down: only the newest records, ending now.
        let now = end + 10 * 86_400 * SEC;
        let (from, n) = due(&p, Some(last_fixed), now).unwrap();
        assert_eq!(n, LIVE_CATCH_UP);
        assert_eq!(p.first + p.step * (from + n - 1) as i64, now);
    }

    #[test]
    fn the_same_time_has_the_same_values_however_it_was_made() {
        let config = config(&crate::config::Overrides::default()).unwrap();
        let d = config.datasets.iter().find(|d| d.demo.as_deref() == Some("sosmag")).unwrap();
        let (info, first) = (&d.info, plan("sosmag").first);
        let open = || {
            let store = MemoryStore::new();
            store.open_dataset(&info.id, &Layout::of(info)).unwrap();
            store
        };
        let (steps, once) = (open(), open());
        assert_eq!(grow(&steps, info, "sosmag", first + 40 * SEC).unwrap(), 41);
        assert_eq!(grow(&steps, info, "sosmag", first + 40 * SEC).unwrap(), 0, "nothing twice");
        assert_eq!(grow(&steps, info, "sosmag", first + 100 * SEC).unwrap(), 60);
        assert_eq!(grow(&once, info, "sosmag", first + 100 * SEC).unwrap(), 101);
        let all: Vec<usize> = (0..info.parameters.len() - 1).collect();
        let read = |s: &MemoryStore| -> Vec<Batch> {
            s.scan(&info.id, &all, 0, Nanos::MAX).unwrap().map(Result::unwrap).collect()
        };
        let (a, b) = (read(&steps), read(&once));
        let times = |v: &[Batch]| v.iter().flat_map(|b| b.times.clone()).collect::<Vec<_>>();
        assert_eq!(times(&a), times(&b));
        assert_eq!(times(&a).len(), 101);
        let values = |v: &[Batch]| v.iter().map(|b| format!("{:?}", b.columns)).collect::<String>();
        // Batch boundaries may differ; the values in time order may not.
        let flat = |v: &[Batch]| {
            let mut all = v[0].clone();
            for b in &v[1..] {
                all.times.extend(&b.times);
                for (c, d) in all.columns.iter_mut().zip(&b.columns) {
                    match (c, d) {
                        (Column::Double { values: x, .. }, Column::Double { values: y, .. }) => x.extend(y),
                        (Column::Integer { values: x, .. }, Column::Integer { values: y, .. }) => x.extend(y),
                        (Column::Text { bytes: x, .. }, Column::Text { bytes: y, .. }) => x.extend(y),
                        _ => unreachable!("one layout"),
                    }
                }
            }
            values(&[all])
        };
        assert_eq!(flat(&a), flat(&b));
    }
}
