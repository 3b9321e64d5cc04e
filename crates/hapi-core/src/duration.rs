//! ISO 8601 durations (`cadence`, `maxRequestDuration`). STUB: to be implemented.

use crate::time::Nanos;

/// Parses an ISO 8601 duration such as `PT1M30S` or `P1D` into nanoseconds.
pub fn parse(s: &str) -> Option<Nanos> {
    let _ = s;
    None
}

/// Writes a duration in the shortest ISO 8601 form, e.g. `P10DT10H` or `PT1M30S`.
pub fn format(d: Nanos) -> String {
    let _ = d;
    String::new()
}
