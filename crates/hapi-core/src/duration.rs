//! ISO 8601 durations (`cadence`, `maxRequestDuration`).
//!
//! Grammar: `P[nY][nM][nW][nD][T[nH][nM][n[.f]S]]`, designators upper case and in this
//! order, at least one component, a `T` only when a time component follows, a fraction
//! (1..=9 digits, `.` only) only on seconds, no sign. Calendar units have no fixed length,
//! so they take nominal values: `Y` = 365 days, `M` = 30 days, `W` = 7 days, `D` = 24 h.
//! That is what cadence and request limits need: an order of magnitude, not calendar
//! arithmetic.

use crate::time::{NANOS_PER_DAY, NANOS_PER_HOUR, NANOS_PER_MINUTE, NANOS_PER_SECOND, Nanos};

/// Date designators in their required order and their nominal lengths.
const DATE_UNITS: [(u8, Nanos); 4] = [
    (b'Y', 365 * NANOS_PER_DAY),
    (b'M', 30 * NANOS_PER_DAY),
    (b'W', 7 * NANOS_PER_DAY),
    (b'D', NANOS_PER_DAY),
];
/// Time designators in their required order.
const TIME_UNITS: [(u8, Nanos); 3] =
    [(b'H', NANOS_PER_HOUR), (b'M', NANOS_PER_MINUTE), (b'S', NANOS_PER_SECOND)];

/// Parses an ISO 8601 duration such as `PT1M30S` or `P1D` into nanoseconds.
///
/// `None` for anything outside the grammar above, more than 9 fraction digits, or a total
/// that does not fit in `i64` nanoseconds (about 292 years).
pub fn parse(s: &str) -> Option<Nanos> {
    let b = s.as_bytes();
    let rest = b.strip_prefix(b"P")?;
    let (date, time) = match rest.iter().position(|&c| c == b'T') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut components = 0;
    let mut total = components_sum(date, &DATE_UNITS, &mut components)?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        total = total.checked_add(components_sum(time, &TIME_UNITS, &mut components)?)?;
    }
    (components > 0).then_some(total)
}

/// Sums `n<unit>` components of one part (date or time), each unit at most once and in order.
fn components_sum(mut b: &[u8], units: &[(u8, Nanos)], count: &mut usize) -> Option<Nanos> {
    let mut total: Nanos = 0;
    let mut next_unit = 0;
    while !b.is_empty() {
        let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let whole = b[..digits]
            .iter()
            .try_fold(0 as Nanos, |v, &c| v.checked_mul(10)?.checked_add(Nanos::from(c - b'0')))?;
        b = &b[digits..];
        // A fraction is kept as nanoseconds; only seconds may carry one.
        let mut fraction: Option<Nanos> = None;
        if let Some(after_dot) = b.strip_prefix(b".") {
            let k = after_dot.iter().take_while(|c| c.is_ascii_digit()).count();
            if k == 0 || k > 9 {
                return None;
            }
            let v = after_dot[..k].iter().fold(0, |v, &c| v * 10 + Nanos::from(c - b'0'));
            fraction = Some(v * 10i64.pow(9 - k as u32));
            b = &after_dot[k..];
        }
        let (&designator, tail) = b.split_first()?;
        let offset = units[next_unit..].iter().position(|&(u, _)| u == designator)?;
        let (unit, len) = units[next_unit + offset];
        if fraction.is_some() && unit != b'S' {
            return None;
        }
        next_unit += offset + 1;
        total = total.checked_add(whole.checked_mul(len)?.checked_add(fraction.unwrap_or(0))?)?;
        *count += 1;
        b = tail;
    }
    Some(total)
}

/// Writes a duration in the shortest ISO 8601 form, e.g. `P10DT10H` or `PT1M30S`.
///
/// Uses days, hours, minutes and seconds only (never the nominal `Y`/`M`/`W`), so
/// [`parse`] returns exactly `d`. Zero is `PT0S`; fraction digits are trimmed
/// (`PT0.5S`). A negative duration gets a leading `-`, which [`parse`] does not accept.
pub fn format(d: Nanos) -> String {
    use std::fmt::Write as _;

    let mut out = String::new();
    if d < 0 {
        out.push('-');
    }
    // unsigned_abs: i64::MIN has no positive i64 counterpart.
    let d = d.unsigned_abs();
    let unit = |n: Nanos| n.unsigned_abs();
    let days = d / unit(NANOS_PER_DAY);
    let hours = d % unit(NANOS_PER_DAY) / unit(NANOS_PER_HOUR);
    let minutes = d % unit(NANOS_PER_HOUR) / unit(NANOS_PER_MINUTE);
    let seconds = d % unit(NANOS_PER_MINUTE) / unit(NANOS_PER_SECOND);
    let nanos = d % unit(NANOS_PER_SECOND);
    out.push('P');
    if days > 0 {
        let _ = write!(out, "{days}D");
    }
    if d.is_multiple_of(unit(NANOS_PER_DAY)) && days > 0 {
        return out;
    }
    out.push('T');
    if hours > 0 {
        let _ = write!(out, "{hours}H");
    }
    if minutes > 0 {
        let _ = write!(out, "{minutes}M");
    }
    if seconds > 0 || nanos > 0 || d == 0 {
        let _ = write!(out, "{seconds}");
        if nanos > 0 {
            let digits = format!("{nanos:09}");
            let _ = write!(out, ".{}", digits.trim_end_matches('0'));
        }
        out.push('S');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Nanos = NANOS_PER_SECOND;

    #[test]
    fn parses_examples() {
        let cases = [
            ("PT1M30S", 90 * S),
            ("P1D", NANOS_PER_DAY),
            ("P10DT10H", 10 * NANOS_PER_DAY + 10 * NANOS_PER_HOUR),
            ("PT0S", 0),
            ("PT0.5S", S / 2),
            ("PT1.000000001S", S + 1),
            ("PT0.1S", S / 10),
            ("P1Y", 365 * NANOS_PER_DAY),
            ("P1M", 30 * NANOS_PER_DAY),
            ("PT1M", NANOS_PER_MINUTE),
            ("P2W", 14 * NANOS_PER_DAY),
            (
                "P1Y2M3W4DT5H6M7.8S",
                (365 + 60 + 21 + 4) * NANOS_PER_DAY
                    + 5 * NANOS_PER_HOUR
                    + 6 * NANOS_PER_MINUTE
                    + 7 * S
                    + 800_000_000,
            ),
            ("PT36H", 36 * NANOS_PER_HOUR),
            ("PT90M", 90 * NANOS_PER_MINUTE),
            ("PT0001S", S),
            ("P0D", 0),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s), Some(want), "{s}");
        }
    }

    #[test]
    fn rejects_malformed() {
        let listed = "P PT P1DT T1H 1D p1d P1d pT1S PT1s P1H PT1D PT1Y PT1W P1.5D PT1.5M PT1,5S PT.5S PT1.S \
            PT1.0000000001S P-1D -P1D +P1D P1D1D P1DT1H1H PT1S1M P1D2Y P1M1Y PT1HX PD PTS P1DT1HT1M \
            PT1H1 P1 P１D PT1é P1DTT1H";
        for s in listed.split_whitespace().chain(["", "PT1H ", " PT1H", "P1D T1H"]) {
            assert_eq!(parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn overflow_is_none() {
        assert_eq!(parse("P9999999999999999999999D"), None);
        assert_eq!(parse("P300Y"), None);
        assert_eq!(parse("P106751D"), Some(106_751 * NANOS_PER_DAY));
        assert_eq!(parse("P106752D"), None);
        assert_eq!(parse("P106751DT23H47M16.854775807S"), Some(Nanos::MAX));
        assert_eq!(parse("P106751DT23H47M16.854775808S"), None);
        assert_eq!(parse("PT9223372036S"), Some(9_223_372_036 * S));
        assert_eq!(parse("PT9223372037S"), None);
    }

    #[test]
    fn formats_shortest() {
        let cases = [
            (90 * S, "PT1M30S"),
            (NANOS_PER_DAY, "P1D"),
            (10 * NANOS_PER_DAY + 10 * NANOS_PER_HOUR, "P10DT10H"),
            (0, "PT0S"),
            (S / 2, "PT0.5S"),
            (S + 1, "PT1.000000001S"),
            (NANOS_PER_HOUR, "PT1H"),
            (NANOS_PER_DAY + S, "P1DT1S"),
            (365 * NANOS_PER_DAY, "P365D"),
            (1_250_000, "PT0.00125S"),
            (-90 * S, "-PT1M30S"),
            (Nanos::MAX, "P106751DT23H47M16.854775807S"),
            (Nanos::MIN, "-P106751DT23H47M16.854775808S"),
        ];
        for (d, want) in cases {
            assert_eq!(format(d), want, "{d}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(d in 0..=Nanos::MAX) {
            prop_assert_eq!(parse(&format(d)), Some(d));
        }

        #[test]
        fn round_trip_whole_seconds(secs in 0i64..10_000_000) {
            let d = secs * S;
            let s = format(d);
            prop_assert!(!s.contains('.'));
            prop_assert_eq!(parse(&s), Some(d));
        }

        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            let _ = parse(&s);
        }

        #[test]
        fn near_valid_strings_never_panic(s in "P[0-9YMWDTHS.]{0,24}") {
            if let Some(d) = parse(&s) {
                prop_assert!(d >= 0);
            }
        }
    }
}
