//! The three CDF epoch types to Unix nanoseconds ([`hapi_core::Nanos`]), exactly.
//!
//! - `CDF_EPOCH`: milliseconds since 0000-01-01T00:00:00 (proleptic Gregorian, no leap
//!   seconds), a double. The double is converted exactly and rounded once to the nearest
//!   nanosecond (ties to even).
//! - `CDF_EPOCH16`: seconds since 0000-01-01 plus picoseconds, two doubles. Each part is
//!   converted exactly; the seconds are rounded to the nanosecond, the picoseconds
//!   truncated (floor) so that a time stays in its second.
//! - `CDF_TIME_TT2000`: nanoseconds since 2000-01-01T12:00:00 TT, leap seconds counted.
//!   It needs the leap-second table, [`LEAP_SECONDS`], the only copy in this crate.
//!   A value inside a leap second (23:59:60.x UTC) becomes 23:59:59.999999999 of that
//!   day, as the server reads `:60` in requests (docs/decisions.md): the order of records
//!   is kept, where folding onto the next second (as POSIX does) would put it after the
//!   next day's first record.
//!
//! Out-of-range values saturate at `Nanos::MIN`/`Nanos::MAX` (years outside about
//! 1678..2262); NaN and the TT2000 fill and pad values (`-2^63`, `-2^63 + 1`) give
//! `Nanos::MIN`. Before 1972 (UTC with drifting "rubber" seconds) TT2000 is converted
//! with TAI - UTC = 10 s, the 1972 value, not the CDF library's drift formulas.

use hapi_core::Nanos;
use hapi_core::time::days_from_civil;

const NS: i128 = 1_000_000_000;

/// Leap seconds: the UTC date from which TAI - UTC is the given number of seconds.
/// Append a line when IERS announces a leap second (Bulletin C).
pub const LEAP_SECONDS: [(i64, u32, u32, i64); 28] = [
    (1972, 1, 1, 10),
    (1972, 7, 1, 11),
    (1973, 1, 1, 12),
    (1974, 1, 1, 13),
    (1975, 1, 1, 14),
    (1976, 1, 1, 15),
    (1977, 1, 1, 16),
    (1978, 1, 1, 17),
    (1979, 1, 1, 18),
    (1980, 1, 1, 19),
    (1981, 7, 1, 20),
    (1982, 7, 1, 21),
    (1983, 7, 1, 22),
    (1985, 7, 1, 23),
    (1988, 1, 1, 24),
    (1990, 1, 1, 25),
    (1991, 1, 1, 26),
    (1992, 7, 1, 27),
    (1993, 7, 1, 28),
    (1994, 7, 1, 29),
    (1996, 1, 1, 30),
    (1997, 7, 1, 31),
    (1999, 1, 1, 32),
    (2006, 1, 1, 33),
    (2009, 1, 1, 34),
    (2012, 7, 1, 35),
    (2015, 7, 1, 36),
    (2017, 1, 1, 37),
];

/// Milliseconds from 0000-01-01 to 1970-01-01.
const EPOCH_UNIX_MS: i128 = 62_167_219_200_000;

fn saturate(v: i128) -> Nanos {
    Nanos::try_from(v).unwrap_or(if v < 0 { Nanos::MIN } else { Nanos::MAX })
}

/// `round(v * mul / div)` for a finite double, exact (ties to even); `None` when far
/// beyond the i64 nanosecond range.
fn scaled_round(v: f64, mul: i128, div: i128) -> Option<i128> {
    if v == 0.0 {
        return Some(0);
    }
    if !v.is_finite() || v.abs() > 1e24 {
        return None;
    }
    let bits = v.to_bits();
    let neg = bits >> 63 == 1;
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = (bits & ((1 << 52) - 1)) as i128;
    // v = m * 2^e exactly.
    let (m, e) = if exp == 0 { (frac, -1074) } else { (frac | (1 << 52), exp - 1075) };
    let r = if e >= 0 {
        // |v| <= 1e24 < 2^80, so the shift and the product stay below 2^127.
        (m << e) * mul / div
    } else {
        let k = -e;
        if k > 100 {
            // |v| < 2^-47: far below half a unit for any scale used here.
            0
        } else {
            let num = m * mul;
            let den = div << k;
            let (q, rem) = (num / den, num % den);
            let twice = rem * 2;
            if twice > den || (twice == den && q % 2 == 1) { q + 1 } else { q }
        }
    };
    Some(if neg { -r } else { r })
}

/// `CDF_EPOCH` (milliseconds since year 0) to Unix nanoseconds.
pub fn epoch_to_nanos(ms: f64) -> Nanos {
    if ms.is_nan() {
        return Nanos::MIN;
    }
    match scaled_round(ms, 1_000_000, 1) {
        Some(ns) => saturate(ns - EPOCH_UNIX_MS * 1_000_000),
        None => saturate(if ms < 0.0 { i128::MIN } else { i128::MAX }),
    }
}

/// `CDF_EPOCH16` (seconds since year 0, picoseconds) to Unix nanoseconds.
pub fn epoch16_to_nanos(seconds: f64, picoseconds: f64) -> Nanos {
    if seconds.is_nan() || picoseconds.is_nan() {
        return Nanos::MIN;
    }
    let s = scaled_round(seconds, NS, 1);
    // Truncated (floor), not rounded, so that a time stays inside its second:
    // floor(floor(ps) / 1000) = floor(ps / 1000).
    let p = (picoseconds.abs() <= 1e24).then(|| (picoseconds.floor() as i128).div_euclid(1000));
    match (s, p) {
        (Some(s), Some(p)) => saturate(s - EPOCH_UNIX_MS / 1000 * NS + p),
        _ => saturate(if seconds < 0.0 || (seconds == 0.0 && picoseconds < 0.0) {
            i128::MIN
        } else {
            i128::MAX
        }),
    }
}

/// TT2000 plus this is "TAI Unix time": Unix nanoseconds plus TAI - UTC. TT2000 0 is
/// 2000-01-01T12:00:00 TT = 11:59:27.816 TAI = 11:58:55.816 UTC (946727935.816 s Unix),
/// when TAI - UTC was 32 s.
const TT2000_TO_TAI_UNIX: i128 = 946_727_935_816_000_000 + 32 * NS;

/// `CDF_TIME_TT2000` to Unix nanoseconds; a value inside a leap second gives
/// 23:59:59.999999999 of its day.
pub fn tt2000_to_nanos(tt: i64) -> Nanos {
    if tt <= i64::MIN + 1 {
        return Nanos::MIN;
    }
    let tai = i128::from(tt) + TT2000_TO_TAI_UNIX;
    // The last table entry whose leap second (the one just before its date) has begun.
    for (i, &(y, m, d, offset)) in LEAP_SECONDS.iter().enumerate().rev() {
        let start = i128::from(days_from_civil(y, m, d)) * 86_400 * NS;
        let offset = i128::from(offset) * NS;
        if tai >= start + offset {
            return saturate(tai - offset);
        }
        // The first entry (1972-01-01) has no leap second before it.
        if tai >= start + offset - NS && i > 0 {
            return saturate(start - 1);
        }
    }
    saturate(tai - 10 * NS)
}

/// Unix nanoseconds to `CDF_TIME_TT2000` (the inverse of [`tt2000_to_nanos`] outside
/// leap seconds), for callers that compare raw values.
pub fn nanos_to_tt2000(unix: Nanos) -> i64 {
    let u = i128::from(unix);
    let mut offset = 10;
    for &(y, m, d, o) in LEAP_SECONDS.iter().rev() {
        if u >= i128::from(days_from_civil(y, m, d)) * 86_400 * NS {
            offset = o;
            break;
        }
    }
    let tt = u + i128::from(offset) * NS - TT2000_TO_TAI_UNIX;
    i64::try_from(tt).unwrap_or(if tt < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(y: i64, m: u32, d: u32, hh: i64, mm: i64, ss: i64, ns: i64) -> Nanos {
        (days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000_000 + ns
    }

    #[test]
    fn j2000_is_11_58_55_816_utc() {
        assert_eq!(tt2000_to_nanos(0), unix(2000, 1, 1, 11, 58, 55, 816_000_000));
        assert_eq!(nanos_to_tt2000(unix(2000, 1, 1, 11, 58, 55, 816_000_000)), 0);
    }

    /// Around every leap second of the table: the second before it, inside it, and the
    /// day after, each from the TT2000 value a leap-second-counting clock gives.
    #[test]
    fn every_leap_second() {
        for w in LEAP_SECONDS.windows(2) {
            let (y, m, d, after) = w[1];
            let midnight = unix(y, m, d, 0, 0, 0, 0);
            let tt_midnight = nanos_to_tt2000(midnight);
            assert_eq!(tt2000_to_nanos(tt_midnight), midnight, "{y}-{m}-{d}");
            assert_eq!(after - w[0].3, 1);
            // 23:59:60.0, 23:59:60.5 and 23:59:60.999999999 of the day before.
            for inside in [1_000_000_000, 500_000_000, 1] {
                assert_eq!(tt2000_to_nanos(tt_midnight - inside), midnight - 1, "{y}-{m}-{d} -{inside}");
            }
            // 23:59:59.999999999 is one second earlier in TT2000 than 23:59:60.999999999.
            assert_eq!(tt2000_to_nanos(tt_midnight - 1_000_000_001), midnight - 1);
            assert_eq!(tt2000_to_nanos(tt_midnight - 1_500_000_000), midnight - 500_000_000);
            assert_eq!(tt2000_to_nanos(tt_midnight - 2_000_000_000), midnight - 1_000_000_000);
        }
    }

    #[test]
    fn order_is_kept_across_leap_seconds() {
        let mut prev = Nanos::MIN;
        let start = nanos_to_tt2000(unix(2016, 12, 31, 23, 59, 58, 0));
        for i in 0..40 {
            let t = tt2000_to_nanos(start + i * 100_000_000);
            assert!(t >= prev);
            prev = t;
        }
    }

    #[test]
    fn tt2000_specials() {
        assert_eq!(tt2000_to_nanos(i64::MIN), Nanos::MIN);
        assert_eq!(tt2000_to_nanos(i64::MIN + 1), Nanos::MIN);
        assert_eq!(tt2000_to_nanos(i64::MAX), Nanos::MAX);
        // Before 1972: TAI - UTC taken as 10 s.
        assert_eq!(tt2000_to_nanos(nanos_to_tt2000(unix(1970, 1, 1, 0, 0, 0, 0))), 0);
    }

    #[test]
    fn epoch_exact() {
        assert_eq!(epoch_to_nanos(62_167_219_200_000.0), 0);
        assert_eq!(epoch_to_nanos(62_167_219_200_001.0), 1_000_000);
        // 0.5 ms steps are exact in binary.
        assert_eq!(epoch_to_nanos(63_555_753_600_000.5), unix(2014, 1, 1, 0, 0, 0, 500_000));
        // The double nearest to ...000.123 is ...000.125 (steps of 1/128 ms there).
        assert_eq!(epoch_to_nanos(63_555_753_600_000.123), unix(2014, 1, 1, 0, 0, 0, 125_000));
        // A third of a millisecond past 1970: exact binary value, rounded once.
        assert_eq!(epoch_to_nanos(62_167_219_200_000.0 + 1.0 / 3.0), 335_938);
        assert_eq!(epoch_to_nanos(0.0), Nanos::MIN);
        assert_eq!(epoch_to_nanos(-1e31), Nanos::MIN);
        assert_eq!(epoch_to_nanos(f64::NAN), Nanos::MIN);
        assert_eq!(epoch_to_nanos(f64::INFINITY), Nanos::MAX);
        assert_eq!(scaled_round(2.5, 1, 1), Some(2));
        assert_eq!(scaled_round(3.5, 1, 1), Some(4));
        assert_eq!(scaled_round(-2.5, 1, 1), Some(-2));
        assert_eq!(scaled_round(f64::MIN_POSITIVE, 1_000_000, 1), Some(0));
    }

    #[test]
    fn epoch16_exact() {
        assert_eq!(epoch16_to_nanos(62_167_219_200.0, 0.0), 0);
        assert_eq!(epoch16_to_nanos(62_167_219_200.0, 999_999_999_999.0), 999_999_999);
        assert_eq!(epoch16_to_nanos(62_167_219_201.0, 1_999.0), 1_000_000_001);
        assert_eq!(epoch16_to_nanos(62_167_219_201.0, 2_500.5), 1_000_000_002);
        assert_eq!(epoch16_to_nanos(62_167_219_200.0, -1.0), -1);
        assert_eq!(epoch16_to_nanos(0.0, 0.0), Nanos::MIN);
        assert_eq!(epoch16_to_nanos(-1e31, -1e31), Nanos::MIN);
    }
}
