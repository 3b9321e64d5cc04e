//! Primary-time writing for the encoders, caching the date part.
//!
//! Records of one batch almost always share their day, and the calendar conversion is
//! the costly part of [`time::format`] (about a third of the csv encoding time). So the
//! date is taken from `time::format` once per day and only the time of day is written
//! per record. The proptest below checks the output equals `time::format` byte for byte.

use crate::time::{self, Nanos, TimeFormat};

const NANOS_PER_SECOND: Nanos = 1_000_000_000;
const NANOS_PER_DAY: Nanos = 86_400 * NANOS_PER_SECOND;
/// `Thh:mm:ss.fffffffff`.
const TIME_PART: usize = 19;
/// The buffer is copied whole (a fixed-size copy the compiler inlines) and the output
/// truncated, which is cheaper than a variable-length `memcpy` call per record.
const BUF: usize = 32;

use crate::time::PAIRS;

#[derive(Debug, Clone)]
pub(super) struct TimeWriter {
    fmt: TimeFormat,
    date_len: usize,
    /// Whether the cache applies: the format has its date part whole and fits the buffer.
    cached: bool,
    /// The day whose date sits in `buf[..date_len]`.
    day: Option<i64>,
    buf: [u8; BUF],
    scratch: Vec<u8>,
}

impl TimeWriter {
    pub(super) fn new(fmt: TimeFormat) -> TimeWriter {
        let date_len = if fmt.doy { 8 } else { 10 };
        TimeWriter {
            fmt,
            date_len,
            cached: fmt.len > date_len && fmt.len <= date_len + TIME_PART + 1,
            day: None,
            buf: [0; BUF],
            scratch: Vec::with_capacity(BUF),
        }
    }

    /// The format written.
    pub(super) fn format(&self) -> TimeFormat {
        self.fmt
    }

    /// Appends `t` exactly as `time::format(t, fmt, out)` does.
    #[inline]
    pub(super) fn write(&mut self, t: Nanos, out: &mut Vec<u8>) {
        if !self.cached {
            time::format(t, self.fmt, out);
            return;
        }
        let day = t.div_euclid(NANOS_PER_DAY);
        if self.day != Some(day) {
            self.new_day(t, day);
        }
        let in_day = t.rem_euclid(NANOS_PER_DAY);
        let secs = (in_day / NANOS_PER_SECOND) as u32;
        let nanos = (in_day % NANOS_PER_SECOND) as u32;
        // Copy the cached date first, then write the digits straight into `out`: writing
        // them into `buf` and copying that would stall on store-to-load forwarding.
        let start = out.len();
        out.extend_from_slice(&self.buf);
        let at = start + self.date_len;
        let b: &mut [u8; TIME_PART + 1] =
            (&mut out[at..at + TIME_PART + 1]).try_into().expect("the buffer holds a whole time part");
        b[0] = b'T';
        put2(b, 1, secs / 3600);
        b[3] = b':';
        put2(b, 4, secs / 60 % 60);
        b[6] = b':';
        put2(b, 7, secs % 60);
        b[9] = b'.';
        b[10] = b'0' + (nanos / 100_000_000) as u8;
        let low = nanos % 100_000_000;
        put2(b, 11, low / 1_000_000);
        put2(b, 13, low / 10_000 % 100);
        put2(b, 15, low / 100 % 100);
        put2(b, 17, low % 100);
        let end = start + self.fmt.len;
        out[end - 1] = b'Z';
        out.truncate(end);
    }

    #[cold]
    fn new_day(&mut self, t: Nanos, day: i64) {
        self.scratch.clear();
        // The full form of any instant of the day starts with the day's date.
        let full = TimeFormat { doy: self.fmt.doy, len: self.date_len + TIME_PART + 1 };
        time::format(t, full, &mut self.scratch);
        let n = self.date_len.min(self.scratch.len());
        self.buf[..n].copy_from_slice(&self.scratch[..n]);
        self.day = Some(day);
    }
}

#[inline(always)]
fn put2(b: &mut [u8; TIME_PART + 1], at: usize, v: u32) {
    let i = (v as usize % 100) * 2;
    b[at] = PAIRS[i];
    b[at + 1] = PAIRS[i + 1];
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn formats() -> Vec<TimeFormat> {
        (1..=32).flat_map(|len| [TimeFormat { doy: false, len }, TimeFormat { doy: true, len }]).collect()
    }

    proptest! {
        #[test]
        fn equals_time_format(start in any::<i64>(), steps in proptest::collection::vec(0i64..4 * 3_600_000_000_000, 1..20)) {
            for fmt in formats() {
                let mut w = TimeWriter::new(fmt);
                let mut t = start;
                for &step in &steps {
                    let mut ours = Vec::new();
                    let mut theirs = Vec::new();
                    w.write(t, &mut ours);
                    time::format(t, fmt, &mut theirs);
                    prop_assert_eq!(&ours, &theirs, "{:?} at {}", fmt, t);
                    t = t.saturating_add(step);
                }
            }
        }
    }

    #[test]
    fn edges() {
        for fmt in formats() {
            let mut w = TimeWriter::new(fmt);
            for t in
                [i64::MIN, i64::MIN + 1, -1, 0, 1, NANOS_PER_DAY - 1, NANOS_PER_DAY, i64::MAX - 1, i64::MAX]
            {
                let mut ours = Vec::new();
                let mut theirs = Vec::new();
                w.write(t, &mut ours);
                time::format(t, fmt, &mut theirs);
                assert_eq!(ours, theirs, "{fmt:?} at {t}");
            }
        }
    }
}
