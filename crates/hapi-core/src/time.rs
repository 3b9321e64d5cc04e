//! The restricted ISO 8601 grammar of HAPI (spec §3.7.6): parsing and formatting.
//!
//! Hand-written on purpose: no date crate accepts this grammar as a whole (truncation down
//! to `YYYY`, day-of-year dates, a missing `Z`, `T24`, `:60`), and each handles `24:00`
//! and `:60` differently (see the "Time parsing" section of the stack notes).
//!
//! Grammar, after an optional (request) or required (metadata, output) trailing `Z`:
//! `YYYY[-MM[-DD[Thh[:mm[:ss[.f{0,9}]]]]]]` or `YYYY-DDD[Thh[:mm[:ss[.f{0,9}]]]]`.
//! Missing fields take their smallest value.
//!
//! The parser works on bytes, never slices a `&str`, and so cannot panic on multibyte
//! UTF-8: any non-ASCII byte simply fails the character it was expected to be.

/// Nanoseconds since 1970-01-01T00:00:00Z on the POSIX scale (no leap seconds).
pub type Nanos = i64;

/// Nanoseconds in one second.
pub const NANOS_PER_SECOND: Nanos = 1_000_000_000;
/// Nanoseconds in one minute.
pub const NANOS_PER_MINUTE: Nanos = 60 * NANOS_PER_SECOND;
/// Nanoseconds in one hour.
pub const NANOS_PER_HOUR: Nanos = 60 * NANOS_PER_MINUTE;
/// Nanoseconds in one (POSIX) day.
pub const NANOS_PER_DAY: Nanos = 24 * NANOS_PER_HOUR;

/// Why a time string was refused. The message names the rule; it never echoes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimeError(pub &'static str);

/// Parses a request time: either family, any truncation, `Z` optional (a missing `Z` is UTC).
///
/// Leap seconds: `23:59:60[.f]` (accepted only on June 30 and December 31) maps to
/// `23:59:59.999999999` of that day. POSIX time has no slot for the 61st second; this
/// choice keeps the instant inside its day and keeps `:59 < :60 < next day` ordered.
/// `T24[:00[:00[.0…]]]` is midnight of the next day.
///
/// Instants outside the `i64` nanosecond range (before 1677-09-21, after 2262-04-11)
/// saturate to `i64::MIN` / `i64::MAX`, so a range check against a dataset still reports
/// "outside the range" rather than a syntax error.
pub fn parse(s: &str) -> Result<Nanos, TimeError> {
    parse_bytes(s.as_bytes(), false)
}

/// Parses a run of times that mostly share their day, as a time series' records do: a
/// time whose bytes up to the `T` are those of the last full parse, followed by
/// `hh:mm:ss[.f]Z`, costs a few digit reads instead of a parse. Gives exactly what
/// [`parse`] gives (the csv and binary decoders and the `hapi` command read every
/// record's time).
#[derive(Debug, Default, Clone)]
pub struct TimeReader {
    /// The last fully parsed time up to its `T`, and the value of its midnight.
    day: Vec<u8>,
    base: Nanos,
    /// The format whose text [`TimeReader::exact`] compares with, if any.
    format: Option<TimeFormat>,
    /// Whether `day` is the date as `format` writes it.
    day_exact: bool,
    /// Whether the last time read is the text `format` writes for its instant.
    exact: bool,
    /// `format`'s text of the last time parsed in full.
    text: Vec<u8>,
}

impl TimeReader {
    /// A reader that also tells whether each time is written exactly as `format` writes
    /// it ([`TimeReader::exact`]), for a record passed on as it came. It costs a
    /// formatting per full parse, which a run of times of one day does once.
    pub fn exact_in(format: TimeFormat) -> TimeReader {
        TimeReader { format: Some(format), ..TimeReader::default() }
    }

    /// [`parse`] of `raw`.
    pub fn parse(&mut self, raw: &[u8]) -> Result<Nanos, TimeError> {
        if let Some(rest) = self.same_day(raw)
            && let Some(s) = time_of_day(rest)
            // Past the last representable instant a full parse saturates.
            && let Some(t) = self.base.checked_add(s)
        {
            // The date is the format's, and the time of day is `hh:mm:ss[.f]Z` with as
            // many digits as the format writes: the text is the format's.
            self.exact = self.day_exact && self.format.is_some_and(|f| raw.len() == f.len);
            return Ok(t);
        }
        self.exact = false;
        let t = parse_bytes(raw, false)?;
        if t == Nanos::MIN || t == Nanos::MAX {
            // A saturated instant has no day to build on, and no text of its own.
            return Ok(t);
        }
        let new_day = if let Some(at) = raw.iter().position(|&c| c == b'T')
            && let Some(s) = time_of_day(&raw[at + 1..])
            // Nor has a midnight before the first representable instant.
            && let Some(base) = t.checked_sub(s)
        {
            self.day.clear();
            self.day.extend_from_slice(&raw[..=at]);
            self.base = base;
            true
        } else {
            false
        };
        if let Some(f) = self.format {
            self.text.clear();
            format(t, f, &mut self.text);
            self.exact = self.text == raw;
            if new_day {
                self.day_exact = self.text.starts_with(&self.day);
            }
        }
        Ok(t)
    }

    /// What follows the cached day in `raw`, if `raw` starts with it. The dates of the
    /// usual formats are compared as fixed-size arrays, which compile to two loads and
    /// compares instead of a `memcmp` call per record.
    #[inline]
    fn same_day<'a>(&self, raw: &'a [u8]) -> Option<&'a [u8]> {
        fn fixed<'a, const N: usize>(day: &[u8], raw: &'a [u8]) -> Option<&'a [u8]> {
            let (head, rest) = raw.split_first_chunk::<N>()?;
            (day.first_chunk::<N>() == Some(head)).then_some(rest)
        }
        match self.day.len() {
            0 => None,
            11 => fixed::<11>(&self.day, raw),
            9 => fixed::<9>(&self.day, raw),
            _ => raw.strip_prefix(self.day.as_slice()),
        }
    }

    /// Whether the last time parsed is exactly the text [`format`] writes for it in the
    /// format given to [`TimeReader::exact_in`]; always false for a default reader.
    pub fn exact(&self) -> bool {
        self.exact
    }
}

/// Nanoseconds into the day of `hh:mm:ss`, `hh:mm:ss.f` (1 to 9 digits) followed by `Z`;
/// `None` for anything else, hour 24 and a leap second (60) included: a full parse
/// decides those.
pub fn time_of_day(rest: &[u8]) -> Option<Nanos> {
    // Once per record of every csv and binary time: `hh:mm:ss` is checked and read as
    // one 8-byte word, the fraction's digits are summed, not raised to powers.
    const SCALE: [Nanos; 10] =
        [1_000_000_000, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];
    let (hms, tail) = rest.split_first_chunk::<8>()?;
    let x = u64::from_le_bytes(*hms);
    // Every byte is 0x3_ (digits and `:` alike), the colons' low nibbles are 0xA, and
    // the digits' are at most 9 (adding 6 carries into bit 4 otherwise; no byte
    // carries into the next, since a nibble plus 6 stays below 0x20).
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    const COLONS: u64 = 0x0000_0A00_000A_0000;
    const DIGITS: u64 = 0x1010_0010_1000_1010;
    let low = x & !HIGH;
    if x & HIGH != THREES
        || low & 0x0000_FF00_00FF_0000 != COLONS
        || (low + 0x0606_0606_0606_0606) & DIGITS != 0
    {
        return None;
    }
    let digit = |i: u32| Nanos::from((low >> (8 * i)) as u8);
    let hours = digit(0) * 10 + digit(1);
    let minutes = digit(3) * 10 + digit(4);
    let secs = digit(6) * 10 + digit(7);
    if hours > 23 || minutes > 59 || secs > 59 {
        return None;
    }
    let fraction = tail.strip_suffix(b"Z")?;
    let nanos = match fraction {
        [] => 0,
        [b'.', f @ ..] if (1..=9).contains(&f.len()) => {
            let mut n = 0;
            for &c in f {
                let d = c.wrapping_sub(b'0');
                if d > 9 {
                    return None;
                }
                n = n * 10 + Nanos::from(d);
            }
            n * SCALE[f.len()]
        }
        _ => return None,
    };
    Some(((hours * 60 + minutes) * 60 + secs) * NANOS_PER_SECOND + nanos)
}

/// Parses a time that must carry its `Z` (metadata and emitted times). Otherwise as [`parse`].
pub fn parse_strict(s: &str) -> Result<Nanos, TimeError> {
    parse_bytes(s.as_bytes(), true)
}

const POW10: [u32; 10] =
    [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

/// A read position over the input bytes.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    /// How many ASCII digits follow.
    fn run(&self) -> usize {
        self.b.get(self.i..).unwrap_or_default().iter().take_while(|c| c.is_ascii_digit()).count()
    }

    /// Exactly `n` digits (no more, no fewer) as a number; `n` is at most 9.
    fn fixed(&mut self, n: usize, err: &'static str) -> Result<u32, TimeError> {
        if self.run() != n {
            return Err(TimeError(err));
        }
        let v = self.b[self.i..self.i + n].iter().fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
        self.i += n;
        Ok(v)
    }
}

fn parse_bytes(b: &[u8], strict: bool) -> Result<Nanos, TimeError> {
    let body = match b.split_last() {
        Some((b'Z', rest)) => rest,
        _ if strict => return Err(TimeError("time must end in Z")),
        _ => b,
    };
    let mut c = Cursor { b: body, i: 0 };

    let year = i64::from(c.fixed(4, "year must be 4 digits")?);
    let (mut month, mut day) = (1u32, 1u32);
    let mut ordinal: Option<u32> = None;
    let mut full_date = false;
    if c.eat(b'-') {
        match c.run() {
            2 => {
                month = c.fixed(2, "month must be 2 digits")?;
                if !(1..=12).contains(&month) {
                    return Err(TimeError("month must be 01-12"));
                }
                if c.eat(b'-') {
                    day = c.fixed(2, "day must be 2 digits")?;
                    if day == 0 || day > days_in_month(year, month) {
                        return Err(TimeError("day does not exist in that month"));
                    }
                    full_date = true;
                }
            }
            3 => {
                let d = c.fixed(3, "day of year must be 3 digits")?;
                if d == 0 || d > 365 + u32::from(is_leap(year)) {
                    return Err(TimeError("day of year must be 001-365 (001-366 in a leap year)"));
                }
                ordinal = Some(d);
                full_date = true;
            }
            _ => return Err(TimeError("month must be 2 digits or day of year 3 digits")),
        }
    }

    let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    if !c.done() {
        if !full_date {
            return Err(TimeError(if c.peek() == Some(b'T') {
                "a time of day needs a full date"
            } else {
                "unexpected characters after the date"
            }));
        }
        if !c.eat(b'T') {
            return Err(TimeError("expected T between date and time"));
        }
        hour = c.fixed(2, "hour must be 2 digits")?;
        if c.eat(b':') {
            minute = c.fixed(2, "minute must be 2 digits")?;
            if c.eat(b':') {
                second = c.fixed(2, "second must be 2 digits")?;
                if c.eat(b'.') {
                    let k = c.run();
                    if k > 9 {
                        return Err(TimeError("fraction of a second has at most 9 digits"));
                    }
                    nanos = c.fixed(k, "fraction must be digits")? * POW10[9 - k];
                }
            }
        }
        if !c.done() {
            return Err(TimeError("unexpected characters after the time"));
        }
    }

    if hour == 24 {
        if minute != 0 || second != 0 || nanos != 0 {
            return Err(TimeError("hour 24 is allowed only as T24:00:00"));
        }
    } else if hour > 23 {
        return Err(TimeError("hour must be 00-23"));
    }
    if minute > 59 {
        return Err(TimeError("minute must be 00-59"));
    }
    if second == 60 {
        let leap = u32::from(is_leap(year));
        let leap_date = match ordinal {
            Some(d) => d == 181 + leap || d == 365 + leap,
            None => (month, day) == (6, 30) || (month, day) == (12, 31),
        };
        if !leap_date || hour != 23 || minute != 59 {
            return Err(TimeError("second 60 is allowed only at 23:59:60 on June 30 or December 31"));
        }
        second = 59;
        nanos = 999_999_999;
    } else if second > 59 {
        return Err(TimeError("second must be 00-59"));
    }

    let days = match ordinal {
        Some(d) => days_from_civil(year, 1, 1) + i64::from(d) - 1,
        None => days_from_civil(year, month, day),
    };
    let total = i128::from(days) * i128::from(NANOS_PER_DAY)
        + i128::from(hour) * i128::from(NANOS_PER_HOUR)
        + i128::from(minute) * i128::from(NANOS_PER_MINUTE)
        + i128::from(second) * i128::from(NANOS_PER_SECOND)
        + i128::from(nanos);
    Ok(Nanos::try_from(total).unwrap_or(if total < 0 { Nanos::MIN } else { Nanos::MAX }))
}

/// Gregorian leap year (proleptic).
pub fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1-12) of `year`.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 => 28 + u32::from(is_leap(year)),
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
/// Years are counted from March so that the leap day is the last day of the year.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = i64::from((month + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian `(year, month, day)` of a day count since 1970-01-01
/// (H. Hinnant's `civil_from_days`; correct for negative counts too).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// How times are written: the year-month-day or day-of-year family, truncated or with 0..=9 fraction digits.
///
/// Only the lengths accepted by [`TimeFormat::ymd`] / [`TimeFormat::doy`] are meaningful
/// (a bare `.` and the `YYYYZ` / `YYYY-MMZ` truncations are never written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeFormat {
    /// Day-of-year family (`YYYY-DDDThh:mm:ss.sssZ`) instead of `YYYY-MM-DDThh:mm:ss.sssZ`.
    pub doy: bool,
    /// Length of the written string including `Z`.
    pub len: usize,
}

/// `T00:00:00.000000000`: what follows the date in the full form; also the zero padding.
const TIME_PART: usize = 19;

impl TimeFormat {
    /// `YYYY-MM-DDThh:mm:ss.sssZ`, the recommended output form.
    pub const YMD_MILLIS: TimeFormat = TimeFormat { doy: false, len: 24 };
    /// `YYYY-MM-DDThh:mm:ss.sssssssssZ`, full nanosecond precision.
    pub const YMD_NANOS: TimeFormat = TimeFormat { doy: false, len: 30 };
    /// `YYYY-DDDThh:mm:ss.sssssssssZ`, full nanosecond precision.
    pub const DOY_NANOS: TimeFormat = TimeFormat { doy: true, len: 28 };

    /// The year-month-day format whose strings have exactly `len` characters, if there is one:
    /// 11 (`YYYY-MM-DDZ`), 14 (`…Thh`), 17 (`…:mm`), 20 (`…:ss`), 22..=30 (1..9 fraction digits).
    pub fn ymd(len: usize) -> Option<TimeFormat> {
        Self::new(false, len)
    }

    /// The day-of-year format whose strings have exactly `len` characters, if there is one:
    /// 9 (`YYYY-DDDZ`), 12 (`…Thh`), 15 (`…:mm`), 18 (`…:ss`), 20..=28 (1..9 fraction digits).
    pub fn doy(len: usize) -> Option<TimeFormat> {
        Self::new(true, len)
    }

    /// [`TimeFormat::doy`] or [`TimeFormat::ymd`].
    pub fn new(doy: bool, len: usize) -> Option<TimeFormat> {
        let f = TimeFormat { doy, len };
        f.is_valid().then_some(f)
    }

    /// The format of a strictly valid time string (`Z` required), if it is one we write.
    /// Useful to derive a dataset's format from its metadata's sample times.
    pub fn of(s: &str) -> Option<TimeFormat> {
        parse_strict(s).ok()?;
        // Both families start `YYYY-`; only the YMD one has a second `-` at index 7.
        Self::new(s.as_bytes().get(7) != Some(&b'-'), s.len())
    }

    /// Whether `len` is one of the lengths this family is written in.
    pub fn is_valid(self) -> bool {
        let Some(t) = self.len.checked_sub(self.date_len() + 1) else { return false };
        matches!(t, 0 | 3 | 6 | 9) || (11..=TIME_PART).contains(&t)
    }

    /// Characters of the date part: 10 (`YYYY-MM-DD`) or 8 (`YYYY-DDD`).
    pub fn date_len(self) -> usize {
        if self.doy { 8 } else { 10 }
    }

    /// Characters between the date and the `Z` (0 at day resolution).
    fn time_len(self) -> usize {
        self.len.saturating_sub(self.date_len() + 1)
    }

    /// Digits after the decimal point (0 when there is no fraction).
    pub fn fraction_digits(self) -> usize {
        self.time_len().saturating_sub(10).min(9)
    }

    /// The unit of the last written field: 1 day, 1 h, 1 min, 1 s or 10^(9-k) ns.
    /// A time is exactly representable iff `t.rem_euclid(resolution) == 0`.
    pub fn resolution(self) -> Nanos {
        match self.time_len() {
            0..=2 => NANOS_PER_DAY,
            3..=5 => NANOS_PER_HOUR,
            6..=8 => NANOS_PER_MINUTE,
            9 | 10 => NANOS_PER_SECOND,
            _ => Nanos::from(POW10[9 - self.fraction_digits()]),
        }
    }

    /// `t` rounded down to [`resolution`](Self::resolution), as [`format`] writes it
    /// (saturating at `i64::MIN`).
    pub fn truncate(self, t: Nanos) -> Nanos {
        let r = self.resolution();
        t.checked_sub(t.rem_euclid(r)).unwrap_or(Nanos::MIN)
    }
}

/// "00" "01" … "99", to write two digits per lookup.
pub(crate) const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

#[inline]
fn put2(buf: &mut [u8; 30], at: usize, v: u32) {
    let i = (v as usize % 100) * 2;
    buf[at] = PAIRS[i];
    buf[at + 1] = PAIRS[i + 1];
}

/// Appends `t` in format `fmt`: exactly `fmt.len` bytes, always ending in `Z`, truncated
/// (never rounded) below the format's resolution, never hour 24 or second 60.
///
/// Allocation-free: the full form is written into a stack buffer and its prefix copied.
/// A length beyond the full form (30 YMD, 28 DOY) writes the full form.
pub fn format(t: Nanos, fmt: TimeFormat, out: &mut Vec<u8>) {
    let mut buf = [0u8; 30];
    let days = t.div_euclid(NANOS_PER_DAY);
    let in_day = t.rem_euclid(NANOS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    // The i64 range spans years 1677..=2262, so the year always has 4 digits.
    let year = year as u32;
    put2(&mut buf, 0, year / 100);
    put2(&mut buf, 2, year);
    buf[4] = b'-';
    let mut i = if fmt.doy {
        let ordinal = (days - days_from_civil(i64::from(year), 1, 1) + 1) as u32;
        buf[5] = b'0' + (ordinal / 100) as u8;
        put2(&mut buf, 6, ordinal);
        8
    } else {
        put2(&mut buf, 5, month);
        buf[7] = b'-';
        put2(&mut buf, 8, day);
        10
    };
    let secs = (in_day / NANOS_PER_SECOND) as u32;
    let nanos = (in_day % NANOS_PER_SECOND) as u32;
    buf[i] = b'T';
    put2(&mut buf, i + 1, secs / 3600);
    buf[i + 3] = b':';
    put2(&mut buf, i + 4, secs / 60 % 60);
    buf[i + 6] = b':';
    put2(&mut buf, i + 7, secs % 60);
    buf[i + 9] = b'.';
    i += 10;
    buf[i] = b'0' + (nanos / 100_000_000) as u8;
    let low = nanos % 100_000_000;
    put2(&mut buf, i + 1, low / 1_000_000);
    put2(&mut buf, i + 3, low / 10_000);
    put2(&mut buf, i + 5, low / 100);
    put2(&mut buf, i + 7, low);
    let full = fmt.date_len() + TIME_PART + 1;
    let len = fmt.len.min(full);
    if len > 0 {
        buf[len - 1] = b'Z';
        out.extend_from_slice(&buf[..len]);
    }
}

/// `t` as a string in format `fmt`.
pub fn format_string(t: Nanos, fmt: TimeFormat) -> String {
    let mut v = Vec::with_capacity(fmt.len);
    format(t, fmt, &mut v);
    String::from_utf8(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_time_reader_gives_what_parse_gives_in_any_order() {
        let texts = [
            "2016-12-31T23:59:58.5Z",
            "2016-12-31T23:59:59Z",
            "2016-12-31T23:59:60Z",
            "2017-01-01T00:00:00Z",
            "2017-01-01T00:00:59.999999999Z",
            "2017-01-01T00:00",
            "2017-001T00:00:01Z",
            "2017-01-01T00:00:01",
            "2262-04-11T23:47:16.854775807Z",
            "2262-04-11T23:47:17Z",
            "2262-04-11T23:47:18Z",
            "2017-01-01T00:00:07.25Z",
            "2262-04-11T23:47:15Z",
            "2262-04-11T23:47:59Z",
            "2016-12-31T24:00:00Z",
            "2016-12-31T23:59:58.5",
            "1677-09-21T00:12:43.145224192Z",
            "1677-09-21T00:12:43.145224193Z",
            "1677-09-21T00:12:44Z",
            "2016-12-31T23:60:00Z",
            "2016-12-31T2:00:00Z",
        ];
        let mut r = TimeReader::default();
        for round in 0..2 {
            for t in texts.iter().chain(texts.iter().rev()) {
                assert_eq!(r.parse(t.as_bytes()), parse(t), "{t} (round {round})");
            }
        }
        assert!(r.parse(b"2017-01-01T00:00:6xZ").is_err());
    }

    /// digest §4.3: the verifier's valid emitted times.
    const VALID: &[&str] = &[
        "2001-01-01T00:00:00.000Z",
        "2004-123T00:00:41.667Z",
        "2000Z",
        "2000-01Z",
        "2000-001Z",
        "2000-01-01T00Z",
        "2000-01-01T00:00Z",
        "2000-01-01T00:00:00.Z",
        "2000-01-01T00:00:00.000000000Z",
        "2012-182T23:59:60Z",
        "2016-12-31T23:59:60Z",
        "2000-12-31T24:00Z",
        "2199-01-01T24:00:00Z",
        "2000-366T00Z",
        "1710-01-01T00:00:00Z",
    ];

    /// digest §4.3: the verifier's invalid emitted times, plus the digest's other rules.
    const INVALID: &[&str] = &[
        "200Z",
        "2000-00Z",
        "2000-13Z",
        "2000-02-30Z",
        "2001-02-29Z",
        "2000-04-31Z",
        "2000-0Z",
        "2000-01-01T0Z",
        "2000-01-01T00:Z",
        "2000-01-01T00:0Z",
        "2000-01-01T00:00:00.0000000000Z",
        "2011-182T23:59:60Z",
        "2012-06-30T00:00:60Z",
        "2000-12-31T24:01Z",
        "2000-12-31T24:00:00.01Z",
        "2000-367Z",
        "2001-366T00Z",
        // P-17, case, offsets, separators, formats and garbage.
        "2017-01-15TZ",
        "2017-01-15T",
        "2017-01-15t00Z",
        "2017-01-15T00z",
        "2017-01-15T00:00+01:00",
        "2017-01-15T00:00:00,5Z",
        "2017-01-15 00:00Z",
        " 2017-01-15Z",
        "2017-01-15Z ",
        "+2017-01-15Z",
        "-2017-01-15Z",
        "+02017-01-15Z",
        "20170115Z",
        "20170115T000000Z",
        "2017-W02-1Z",
        "2017-01T00Z",
        "2017T00Z",
        "2017-01-15T25Z",
        "2017-01-15T23:60Z",
        "2017-01-15T23:59:61Z",
        "2017-01-15T00:00:00.5xZ",
        "2017-01-15ZZ",
        "Z",
        "",
        "2017-1-15Z",
        "2017-01-5Z",
        "2017-0001Z",
        "2017-000Z",
        "2016-06-30T23:58:60Z",
        "2016-07-01T23:59:60Z",
        "2017-01-15T24Z0",
        "２０１７-01-15Z",
        "2017-01-15T00:00é",
        "2017-01-15T00:00:00.é",
    ];

    fn p(s: &str) -> Nanos {
        parse_strict(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn verifier_valid_list_parses_strictly_and_without_z() {
        for s in VALID {
            let t = p(s);
            let bare = s.strip_suffix('Z').unwrap();
            assert_eq!(parse(bare), Ok(t), "{bare}");
            assert_eq!(parse(s), Ok(t), "{s}");
            assert!(parse_strict(bare).is_err(), "{bare} lacks Z");
        }
    }

    #[test]
    fn verifier_invalid_list_fails() {
        for s in INVALID {
            assert!(parse_strict(s).is_err(), "{s} should be invalid");
            // The same string is no better without the strict Z rule.
            if let Some(bare) = s.strip_suffix('Z').filter(|b| !b.ends_with('Z')) {
                assert!(parse(bare).is_err(), "{bare} should be invalid");
            }
        }
    }

    #[test]
    fn digest_examples() {
        assert_eq!(p("2016-001Z"), p("2016-01-01T00:00:00.000Z"));
        assert_eq!(p("1998-001Z"), p("1998-01-01T00:00:00.000Z"));
        assert_eq!(p("2016-01-31T24:00Z"), p("2016-02-01T00:00Z"));
        assert_eq!(p("2000-060Z"), p("2000-02-29Z"));
        assert_eq!(p("2001-060Z"), p("2001-03-01Z"));
        assert_eq!(parse("2017-01-15"), parse("2017-01-15T00:00:00.000Z"));
        assert_eq!(parse("2016-01-01T00:03"), Ok(p("2016-001T00:03Z")));
        assert_eq!(p("2000-12-31T24:00Z"), p("2001-01-01Z"));
        assert_eq!(p("2000-12-31T24Z"), p("2001-01-01Z"));
        assert_eq!(p("2000-366T24:00:00.000000000Z"), p("2001-001Z"));
    }

    #[test]
    fn known_instants() {
        assert_eq!(p("1970Z"), 0);
        assert_eq!(p("1970-01-01T00:00:00.000000001Z"), 1);
        assert_eq!(p("1969-12-31T23:59:59.999999999Z"), -1);
        assert_eq!(p("2000-01-01T00:00:00Z"), 946_684_800 * NANOS_PER_SECOND);
        assert_eq!(p("2000-01-01T00:00:00.5Z"), 946_684_800 * NANOS_PER_SECOND + 500_000_000);
        assert_eq!(p("2000-01-01T00:00:00.Z"), p("2000-01-01Z"));
    }

    #[test]
    fn leap_second_maps_to_last_nanosecond_of_day() {
        assert_eq!(p("2016-12-31T23:59:60Z"), p("2016-12-31T23:59:59.999999999Z"));
        assert_eq!(p("2016-12-31T23:59:60.123Z"), p("2016-12-31T23:59:59.999999999Z"));
        assert_eq!(p("2015-06-30T23:59:60Z"), p("2015-181T23:59:59.999999999Z"));
        assert_eq!(p("2012-182T23:59:60Z"), p("2012-06-30T23:59:59.999999999Z"));
        assert_eq!(p("2016-366T23:59:60Z"), p("2016-12-31T23:59:59.999999999Z"));
        assert_eq!(p("2015-365T23:59:60Z"), p("2015-12-31T23:59:59.999999999Z"));
        // Calendar rule, not a leap-second table: any year's June 30 / Dec 31.
        assert!(parse_strict("2021-06-30T23:59:60Z").is_ok());
        assert!(parse_strict("2016-365T23:59:60Z").is_err());
        assert!(parse_strict("2015-366T23:59:60Z").is_err());
    }

    #[test]
    fn errors_name_the_rule_and_never_echo_input() {
        let cases = [
            ("2000-13Z", "month must be 01-12"),
            ("2001-02-29Z", "day does not exist in that month"),
            ("2000-12-31T24:01Z", "hour 24 is allowed only as T24:00:00"),
            ("2000-01-01T00:00:00.0000000000Z", "fraction of a second has at most 9 digits"),
            ("2000-01-01", "time must end in Z"),
            ("2001-366Z", "day of year must be 001-365 (001-366 in a leap year)"),
            ("2000-01-01T00:00:61Z", "second must be 00-59"),
        ];
        for (s, msg) in cases {
            assert_eq!(parse_strict(s), Err(TimeError(msg)), "{s}");
        }
        let e = parse_strict("9999-99-99ZsecretZ").unwrap_err().to_string();
        assert!(!e.contains("secret") && !e.contains("9999"));
    }

    #[test]
    fn out_of_range_saturates() {
        assert_eq!(p("1600-01-01Z"), Nanos::MIN);
        assert_eq!(p("0000-01-01Z"), Nanos::MIN);
        assert_eq!(p("2300Z"), Nanos::MAX);
        assert_eq!(p("9999-12-31T24:00:00Z"), Nanos::MAX);
        assert!(parse_strict("2262-04-11T23:47:16.854775807Z").is_ok_and(|t| t == Nanos::MAX));
        assert_eq!(p("2262-04-11T23:47:16.854775806Z"), Nanos::MAX - 1);
        assert_eq!(p("1677-09-21T00:12:43.145224192Z"), Nanos::MIN);
        assert_eq!(p("1677-09-21T00:12:43.145224193Z"), Nanos::MIN + 1);
    }

    #[test]
    fn format_lengths() {
        let ymd: Vec<usize> = (0..40).filter(|&n| TimeFormat::ymd(n).is_some()).collect();
        let mut want = vec![11, 14, 17, 20];
        want.extend(22..=30);
        assert_eq!(ymd, want);
        let doy: Vec<usize> = (0..40).filter(|&n| TimeFormat::doy(n).is_some()).collect();
        let mut want = vec![9, 12, 15, 18];
        want.extend(20..=28);
        assert_eq!(doy, want);
        let f = |n| TimeFormat::ymd(n).unwrap();
        assert_eq!(f(11).resolution(), NANOS_PER_DAY);
        assert_eq!(f(14).resolution(), NANOS_PER_HOUR);
        assert_eq!(f(17).resolution(), NANOS_PER_MINUTE);
        assert_eq!(f(20).resolution(), NANOS_PER_SECOND);
        assert_eq!(f(24).resolution(), 1_000_000);
        assert_eq!(f(30).resolution(), 1);
        assert_eq!(f(20).fraction_digits(), 0);
        assert_eq!(f(24).fraction_digits(), 3);
        assert_eq!(TimeFormat::doy(22).unwrap().fraction_digits(), 3);
        assert_eq!(TimeFormat::doy(22).unwrap().resolution(), 1_000_000);
        assert_eq!(TimeFormat::doy(9).unwrap().resolution(), NANOS_PER_DAY);
    }

    #[test]
    fn format_examples() {
        let t = p("2016-02-29T13:04:05.123456789Z");
        let cases = [
            (false, 11, "2016-02-29Z"),
            (false, 14, "2016-02-29T13Z"),
            (false, 17, "2016-02-29T13:04Z"),
            (false, 20, "2016-02-29T13:04:05Z"),
            (false, 22, "2016-02-29T13:04:05.1Z"),
            (false, 24, "2016-02-29T13:04:05.123Z"),
            (false, 30, "2016-02-29T13:04:05.123456789Z"),
            (true, 9, "2016-060Z"),
            (true, 12, "2016-060T13Z"),
            (true, 18, "2016-060T13:04:05Z"),
            (true, 22, "2016-060T13:04:05.123Z"),
            (true, 28, "2016-060T13:04:05.123456789Z"),
        ];
        for (doy, len, want) in cases {
            assert_eq!(format_string(t, TimeFormat::new(doy, len).unwrap()), want);
        }
        assert_eq!(
            format_string(p("2016-12-31T23:59:60Z"), TimeFormat::YMD_MILLIS),
            "2016-12-31T23:59:59.999Z"
        );
        assert_eq!(format_string(p("2016-12-31T24:00Z"), TimeFormat::YMD_MILLIS), "2017-01-01T00:00:00.000Z");
        assert_eq!(format_string(-1, TimeFormat::YMD_NANOS), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(format_string(Nanos::MIN, TimeFormat::YMD_NANOS), "1677-09-21T00:12:43.145224192Z");
        assert_eq!(format_string(Nanos::MAX, TimeFormat::DOY_NANOS), "2262-101T23:47:16.854775807Z");
        assert_eq!(format_string(p("2000-366Z"), TimeFormat::doy(9).unwrap()), "2000-366Z");
        assert_eq!(format_string(0, TimeFormat { doy: false, len: 0 }), "");
        assert_eq!(format_string(0, TimeFormat { doy: true, len: 99 }).len(), 28);
        // format appends.
        let mut out = b"x,".to_vec();
        format(0, TimeFormat::ymd(11).unwrap(), &mut out);
        assert_eq!(out, b"x,1970-01-01Z");
    }

    #[test]
    fn format_of_string() {
        assert_eq!(TimeFormat::of("2016-01-01T00:00:00.000Z"), TimeFormat::ymd(24));
        assert_eq!(TimeFormat::of("2010-001T12:01:00Z"), TimeFormat::doy(18));
        assert_eq!(TimeFormat::of("2016-01-01Z"), TimeFormat::ymd(11));
        assert_eq!(TimeFormat::of("2016-001Z"), TimeFormat::doy(9));
        assert_eq!(TimeFormat::of("2016Z"), None);
        assert_eq!(TimeFormat::of("2016-01-01T00:00:00.Z"), None);
        assert_eq!(TimeFormat::of("2016-01-01T00:00:00"), None);
    }

    #[test]
    fn civil_round_trip_over_centuries() {
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
        }
    }

    fn fmt_strategy() -> impl Strategy<Value = TimeFormat> {
        (any::<bool>(), 0usize..40).prop_filter_map("format length", |(doy, len)| TimeFormat::new(doy, len))
    }

    /// Full zero padding of a truncated string: `2017-01-15Z` -> `2017-01-15T00:00:00.000000000Z`.
    fn zero_pad(s: &str, fmt: TimeFormat) -> String {
        let zeros = "T00:00:00.000000000";
        let body = &s[..s.len() - 1];
        format!("{body}{}Z", &zeros[body.len() - fmt.date_len()..])
    }

    /// The oracle: the `time` crate's calendar.
    fn oracle(date: ::time::Date, h: u8, mi: u8, s: u8, ns: u32) -> Nanos {
        let t = ::time::Time::from_hms_nano(h, mi, s, ns).unwrap();
        ::time::PrimitiveDateTime::new(date, t).assume_utc().unix_timestamp_nanos() as Nanos
    }

    proptest! {
        /// Runs of times around a few days, in any format, and read in any order, give
        /// what a full parse gives.
        #[test]
        fn a_time_reader_gives_what_parse_gives(
            times in proptest::collection::vec((0i64..3 * 86_400_000_000_000, fmt_strategy()), 1..40)
        ) {
            let base = parse("2016-12-30T00:00:00Z").unwrap();
            let mut r = TimeReader::default();
            for (offset, fmt) in times {
                let s = format_string(base + offset, fmt);
                prop_assert_eq!(r.parse(s.as_bytes()), parse(&s), "{}", s);
            }
        }

        /// A reader told a format says of each time whether it is that format's text.
        #[test]
        fn a_time_reader_tells_a_formats_own_text(
            times in proptest::collection::vec((0i64..3 * 86_400_000_000_000, fmt_strategy(), any::<bool>()), 1..40),
            exact_in in fmt_strategy(),
        ) {
            let base = parse("2016-12-30T00:00:00Z").unwrap();
            let mut r = TimeReader::exact_in(exact_in);
            for (offset, fmt, same) in times {
                let s = format_string(base + offset, if same { exact_in } else { fmt });
                let t = r.parse(s.as_bytes()).unwrap();
                prop_assert_eq!(r.exact(), format_string(t, exact_in) == s, "{} in {:?}", s, exact_in);
            }
        }

        /// The time of day read as a word is what a full parse gives, for any bytes.
        #[test]
        fn time_of_day_is_what_parse_gives(
            (h, m, sec) in (0u32..26, 0u32..62, 0u32..62),
            corrupt in proptest::option::of((0usize..8, proptest::sample::select(b":;/Z.059".to_vec()))),
            digits in proptest::collection::vec(0u8..10, 0..11),
            tail in 0..4,
        ) {
            let mut rest = format!("{h:02}:{m:02}:{sec:02}").into_bytes();
            if let Some((i, c)) = corrupt {
                rest[i] = c;
            }
            match tail {
                0 => rest.push(b'Z'),
                1 => { rest.push(b'.'); rest.extend(digits.iter().map(|d| b'0' + d)); rest.push(b'Z'); }
                2 => rest.extend(digits.iter().map(|d| b'0' + d)),
                _ => {}
            }
            let rest = String::from_utf8(rest).unwrap();
            let full = format!("2016-12-31T{rest}");
            if let Some(s) = time_of_day(rest.as_bytes()) {
                prop_assert_eq!(Ok(parse("2016-12-31T00:00:00Z").unwrap() + s), parse(&full), "{}", full);
            } else if let Ok(t) = parse(&full) {
                // Declined: hour 24, a leap second, or a form a full parse reads (no `Z`,
                // a `.` without digits, more than 9 digits).
                let other = !rest.ends_with('Z') || rest.ends_with(".Z") || rest.len() > 19;
                prop_assert!(rest.starts_with("24") || &rest[6..8] == "60" || other, "{} = {}", full, t);
            }
        }

        #[test]
        fn round_trip_full_precision(t in any::<i64>(), doy in any::<bool>()) {
            let fmt = if doy { TimeFormat::DOY_NANOS } else { TimeFormat::YMD_NANOS };
            let s = format_string(t, fmt);
            prop_assert_eq!(s.len(), fmt.len);
            prop_assert_eq!(parse_strict(&s), Ok(t));
        }

        #[test]
        fn coarser_formats_truncate(t in any::<i64>(), fmt in fmt_strategy()) {
            let s = format_string(t, fmt);
            prop_assert_eq!(s.len(), fmt.len);
            let r = i128::from(fmt.resolution());
            let floor = i128::from(t) - i128::from(t).rem_euclid(r);
            let want = Nanos::try_from(floor).unwrap_or(Nanos::MIN);
            prop_assert_eq!(parse_strict(&s), Ok(want));
            prop_assert_eq!(fmt.truncate(t), want);
            prop_assert_eq!(TimeFormat::of(&s), Some(fmt));
        }

        #[test]
        fn truncated_equals_zero_padded(t in any::<i64>(), fmt in fmt_strategy()) {
            let s = format_string(t, fmt);
            let padded = zero_pad(&s, fmt);
            prop_assert_eq!(padded.len(), fmt.date_len() + 20);
            prop_assert_eq!(parse_strict(&s), parse_strict(&padded));
        }

        #[test]
        fn missing_z_is_the_same(t in any::<i64>(), fmt in fmt_strategy()) {
            let s = format_string(t, fmt);
            prop_assert_eq!(parse(&s[..s.len() - 1]), parse_strict(&s));
        }

        #[test]
        fn ordering_is_preserved(a in any::<i64>(), b in any::<i64>(), fmt in fmt_strategy()) {
            let (sa, sb) = (format_string(a, fmt), format_string(b, fmt));
            prop_assert_eq!(fmt.truncate(a).cmp(&fmt.truncate(b)), sa.cmp(&sb));
            if fmt.resolution() == 1 {
                prop_assert_eq!(a.cmp(&b), sa.cmp(&sb));
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            let _ = parse(&s);
            let _ = parse_strict(&s);
            let _ = TimeFormat::of(&s);
        }

        #[test]
        fn near_valid_strings_never_panic(s in "[0-9TZ:.+ -]{0,34}") {
            if let Ok(t) = parse(&s) {
                // Anything accepted also survives a format/parse round trip.
                let back = format_string(t, TimeFormat::YMD_NANOS);
                prop_assert_eq!(parse_strict(&back), Ok(t));
            }
        }

        #[test]
        fn mutated_valid_strings_never_panic(i in 0usize..16, at in 0usize..32, c in any::<char>(), replace in any::<bool>()) {
            let mut chars: Vec<char> = VALID[i % VALID.len()].chars().collect();
            let at = at % (chars.len() + 1);
            if replace && at < chars.len() { chars[at] = c } else { chars.insert(at, c) }
            let s: String = chars.into_iter().collect();
            let _ = parse(&s);
            let _ = parse_strict(&s);
        }

        #[test]
        fn agrees_with_time_crate_ymd(
            y in 1678i32..2262, m in 1u8..=12, d in 1u8..=31,
            h in 0u8..24, mi in 0u8..60, sec in 0u8..60, ns in 0u32..1_000_000_000,
        ) {
            let s = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{sec:02}.{ns:09}Z");
            let month = ::time::Month::try_from(m).unwrap();
            match ::time::Date::from_calendar_date(y, month, d) {
                Ok(date) => {
                    let want = oracle(date, h, mi, sec, ns);
                    prop_assert_eq!(parse_strict(&s), Ok(want));
                    let got = format_string(want, TimeFormat::YMD_NANOS);
                    prop_assert_eq!(got, s);
                }
                Err(_) => prop_assert_eq!(parse_strict(&s), Err(TimeError("day does not exist in that month"))),
            }
        }

        #[test]
        fn agrees_with_time_crate_doy(
            y in 1678i32..2262, d in 1u16..=366,
            h in 0u8..24, mi in 0u8..60, sec in 0u8..60, ns in 0u32..1_000_000_000,
        ) {
            let s = format!("{y:04}-{d:03}T{h:02}:{mi:02}:{sec:02}.{ns:09}Z");
            match ::time::Date::from_ordinal_date(y, d) {
                Ok(date) => {
                    let want = oracle(date, h, mi, sec, ns);
                    prop_assert_eq!(parse_strict(&s), Ok(want));
                    prop_assert_eq!(format_string(want, TimeFormat::DOY_NANOS), s);
                    // Same instant in the other family.
                    let ymd = format!("{y:04}-{:02}-{:02}T{h:02}:{mi:02}:{sec:02}.{ns:09}Z",
                        u8::from(date.month()), date.day());
                    prop_assert_eq!(parse_strict(&ymd), Ok(want));
                }
                Err(_) => prop_assert!(parse_strict(&s).is_err()),
            }
        }

        #[test]
        fn agrees_with_time_crate_formatting(t in any::<i64>()) {
            let dt = ::time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t)).unwrap();
            let want = format!(
                "{:04}-{:03}T{:02}:{:02}:{:02}.{:09}Z",
                dt.year(), dt.ordinal(), dt.hour(), dt.minute(), dt.second(), dt.nanosecond()
            );
            prop_assert_eq!(format_string(t, TimeFormat::DOY_NANOS), want);
        }
    }
}
