//! The restricted ISO 8601 grammar of HAPI (spec §3.7.6). STUB: to be implemented.

/// Nanoseconds since 1970-01-01T00:00:00Z on the POSIX scale (no leap seconds).
pub type Nanos = i64;

/// Why a time string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimeError(pub &'static str);

/// Parses a request time: either family, any truncation, `Z` optional.
pub fn parse(s: &str) -> Result<Nanos, TimeError> {
    let _ = s;
    Err(TimeError("not implemented"))
}

/// Parses a time that must carry its `Z` (metadata and emitted times).
pub fn parse_strict(s: &str) -> Result<Nanos, TimeError> {
    let _ = s;
    Err(TimeError("not implemented"))
}

/// How times are written: the year-month-day or day-of-year family, truncated or with 0..=9 fraction digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeFormat {
    /// Day-of-year family (`YYYY-DDDThh:mm:ss.sssZ`) instead of `YYYY-MM-DDThh:mm:ss.sssZ`.
    pub doy: bool,
    /// Length of the written string including `Z`.
    pub len: usize,
}

impl TimeFormat {
    /// The year-month-day format whose strings have exactly `len` characters, if there is one.
    pub fn ymd(len: usize) -> Option<TimeFormat> {
        Some(TimeFormat { doy: false, len })
    }
}

/// Appends `t` in format `fmt`: exactly `fmt.len` bytes.
pub fn format(t: Nanos, fmt: TimeFormat, out: &mut Vec<u8>) {
    let _ = (t, fmt, out);
}

/// `t` as a string in format `fmt`.
pub fn format_string(t: Nanos, fmt: TimeFormat) -> String {
    let mut v = Vec::new();
    format(t, fmt, &mut v);
    String::from_utf8(v).unwrap_or_default()
}
