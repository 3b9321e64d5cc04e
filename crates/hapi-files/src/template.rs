//! File-name templates such as `$Y/mag_$Y$m$d.csv`: which granule a path holds, and the
//! path of a granule.
//!
//! Fields as in server-java's aggregation source: `$Y` (4-digit year), `$m` (month),
//! `$d` (day of month), `$j` (3-digit day of year), `$H`, `$M`, `$S`; `$$` is a dollar.
//! The finest field sets the granule: a year, month, day, hour, minute or second.

use std::path::{Component, Path, PathBuf};

use hapi_core::Nanos;
use hapi_core::time::{self, NANOS_PER_DAY, NANOS_PER_HOUR, NANOS_PER_MINUTE, NANOS_PER_SECOND};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    Year,
    Month,
    DayOfYear,
    Day,
    Hour,
    Minute,
    Second,
}

impl Field {
    fn digits(self) -> usize {
        match self {
            Field::Year => 4,
            Field::DayOfYear => 3,
            _ => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// How long one granule lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// A calendar year.
    Year,
    /// A calendar month.
    Month,
    /// A fixed length in nanoseconds (a day or less).
    Fixed(Nanos),
}

/// A parsed template: path components of text and fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    components: Vec<Vec<Piece>>,
    period: Period,
}

/// The fields a path gave, before they are checked and turned into a time.
#[derive(Debug, Clone, Copy, Default)]
struct Parts {
    year: Option<i64>,
    month: Option<u32>,
    doy: Option<u32>,
    day: Option<u32>,
    hour: Option<u32>,
    minute: Option<u32>,
    second: Option<u32>,
}

impl Template {
    /// Parses `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Template, String> {
        if text.is_empty() {
            return Err("the template is empty".to_owned());
        }
        let path = Path::new(text);
        let mut components = Vec::new();
        for c in path.components() {
            let Component::Normal(c) = c else {
                return Err(format!(
                    "template {text:?}: only relative paths without `.` or `..` stay inside the root"
                ));
            };
            let c = c.to_str().ok_or_else(|| format!("template {text:?} is not UTF-8"))?;
            components.push(pieces(c).map_err(|e| format!("template {text:?}: {e}"))?);
        }
        let fields: Vec<Field> = components
            .iter()
            .flatten()
            .filter_map(|p| if let Piece::Field(f) = p { Some(*f) } else { None })
            .collect();
        let has = |f: Field| fields.contains(&f);
        if !has(Field::Year) {
            return Err(format!("template {text:?} has no year ($Y)"));
        }
        if has(Field::DayOfYear) && (has(Field::Month) || has(Field::Day)) {
            return Err(format!("template {text:?} mixes a day of year ($j) with a month or day"));
        }
        if has(Field::Day) && !has(Field::Month) {
            return Err(format!("template {text:?} has a day ($d) without a month ($m)"));
        }
        let chain = [Field::Hour, Field::Minute, Field::Second];
        for (i, f) in chain.iter().enumerate() {
            let day = has(Field::Day) || has(Field::DayOfYear);
            let coarser_missing = if i == 0 { !day } else { !has(chain[i - 1]) };
            if has(*f) && coarser_missing {
                return Err(format!("template {text:?}: a field finer than a missing one"));
            }
        }
        let period = match fields.iter().max() {
            Some(Field::Second) => Period::Fixed(NANOS_PER_SECOND),
            Some(Field::Minute) => Period::Fixed(NANOS_PER_MINUTE),
            Some(Field::Hour) => Period::Fixed(NANOS_PER_HOUR),
            Some(Field::Day | Field::DayOfYear) => Period::Fixed(NANOS_PER_DAY),
            Some(Field::Month) => Period::Month,
            _ => Period::Year,
        };
        Ok(Template { text: text.to_owned(), components, period })
    }

    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// How long one granule lasts.
    pub fn period(&self) -> Period {
        self.period
    }

    /// The start of the granule holding `t`.
    pub fn granule(&self, t: Nanos) -> Nanos {
        match self.period {
            Period::Fixed(n) => t - t.rem_euclid(n),
            Period::Month | Period::Year => {
                let (y, m, _) = time::civil_from_days(t.div_euclid(NANOS_PER_DAY));
                let m = if self.period == Period::Year { 1 } else { m };
                time::days_from_civil(y, m, 1) * NANOS_PER_DAY
            }
        }
    }

    /// The start of the granule after the one starting at `start`.
    pub fn next(&self, start: Nanos) -> Nanos {
        match self.period {
            Period::Fixed(n) => start.saturating_add(n),
            Period::Month | Period::Year => {
                let (y, m, _) = time::civil_from_days(start.div_euclid(NANOS_PER_DAY));
                let (y, m) = match self.period {
                    Period::Year => (y + 1, 1),
                    _ if m == 12 => (y + 1, 1),
                    _ => (y, m + 1),
                };
                time::days_from_civil(y, m, 1) * NANOS_PER_DAY
            }
        }
    }

    /// The path, relative to the root, of the granule starting at `start`.
    pub fn path(&self, start: Nanos) -> PathBuf {
        let days = start.div_euclid(NANOS_PER_DAY);
        let (y, m, d) = time::civil_from_days(days);
        let doy = days - time::days_from_civil(y, 1, 1) + 1;
        let secs = start.rem_euclid(NANOS_PER_DAY) / NANOS_PER_SECOND;
        let mut path = PathBuf::new();
        for c in &self.components {
            let mut s = String::new();
            for p in c {
                match p {
                    Piece::Text(t) => s.push_str(t),
                    Piece::Field(f) => {
                        let v = match f {
                            Field::Year => y,
                            Field::Month => i64::from(m),
                            Field::Day => i64::from(d),
                            Field::DayOfYear => doy,
                            Field::Hour => secs / 3600,
                            Field::Minute => secs / 60 % 60,
                            Field::Second => secs % 60,
                        };
                        s.push_str(&format!("{v:0width$}", width = f.digits()));
                    }
                }
            }
            path.push(s);
        }
        path
    }

    /// Path components of the template, as many as there are.
    pub(crate) fn depth(&self) -> usize {
        self.components.len()
    }

    /// Whether `name` can be component `i` of a granule's path, given the fields earlier
    /// components set; the fields with this one's added.
    fn matches(&self, i: usize, name: &str, parts: Parts) -> Option<Parts> {
        let mut parts = parts;
        let mut rest = name;
        for p in &self.components[i] {
            match p {
                Piece::Text(t) => rest = rest.strip_prefix(t.as_str())?,
                Piece::Field(f) => {
                    let n = f.digits();
                    let digits = rest.get(..n).filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?;
                    rest = &rest[n..];
                    let v: u32 = digits.parse().ok()?;
                    let slot = match f {
                        Field::Year => {
                            let y = i64::from(v);
                            if parts.year.is_some_and(|old| old != y) {
                                return None;
                            }
                            parts.year = Some(y);
                            continue;
                        }
                        Field::Month => &mut parts.month,
                        Field::Day => &mut parts.day,
                        Field::DayOfYear => &mut parts.doy,
                        Field::Hour => &mut parts.hour,
                        Field::Minute => &mut parts.minute,
                        Field::Second => &mut parts.second,
                    };
                    if slot.is_some_and(|old| old != v) {
                        return None;
                    }
                    *slot = Some(v);
                }
            }
        }
        rest.is_empty().then_some(parts)
    }

    /// The granule start of a path whose components all matched, if the fields form a
    /// real time whose path is this one (so `2020-02-30` or `$j` = 366 of 2019 do not).
    fn start_of(&self, parts: Parts) -> Option<Nanos> {
        let year = parts.year?;
        let days = match parts.doy {
            Some(doy) => {
                let len = if time::is_leap(year) { 366 } else { 365 };
                if doy == 0 || doy > len {
                    return None;
                }
                time::days_from_civil(year, 1, 1) + i64::from(doy) - 1
            }
            None => {
                let month = parts.month.unwrap_or(1);
                let day = parts.day.unwrap_or(1);
                if !(1..=12).contains(&month) || day == 0 || day > time::days_in_month(year, month) {
                    return None;
                }
                time::days_from_civil(year, month, day)
            }
        };
        let (h, m, s) = (parts.hour.unwrap_or(0), parts.minute.unwrap_or(0), parts.second.unwrap_or(0));
        if h > 23 || m > 59 || s > 59 {
            return None;
        }
        Some(days * NANOS_PER_DAY + i64::from(h * 3600 + m * 60 + s) * NANOS_PER_SECOND)
    }

    /// Every granule under `root`, by walking only the directories the template allows,
    /// in time order. Unreadable directories are skipped with a warning.
    pub fn walk(&self, root: &Path) -> Vec<(Nanos, PathBuf)> {
        let mut found = Vec::new();
        self.walk_in(root, 0, Parts::default(), &mut found);
        found.sort_unstable_by_key(|(t, _)| *t);
        found.dedup_by_key(|(t, _)| *t);
        found
    }

    fn walk_in(&self, dir: &Path, i: usize, parts: Parts, found: &mut Vec<(Nanos, PathBuf)>) {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot list an archive directory");
                return;
            }
        };
        let last = i + 1 == self.depth();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(parts) = name.to_str().and_then(|n| self.matches(i, n, parts)) else { continue };
            let path = entry.path();
            if last {
                if let Some(t) = self.start_of(parts)
                    && self.path(t).file_name() == Some(name.as_os_str())
                    && path.is_file()
                {
                    found.push((t, path));
                }
            } else if path.is_dir() {
                self.walk_in(&path, i + 1, parts, found);
            }
        }
    }
}

fn pieces(c: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = c.chars();
    while let Some(ch) = chars.next() {
        if ch != '$' {
            text.push(ch);
            continue;
        }
        let field = match chars.next() {
            Some('$') => {
                text.push('$');
                continue;
            }
            Some('Y') => Field::Year,
            Some('m') => Field::Month,
            Some('d') => Field::Day,
            Some('j') => Field::DayOfYear,
            Some('H') => Field::Hour,
            Some('M') => Field::Minute,
            Some('S') => Field::Second,
            other => return Err(format!("unknown field ${}", other.map(String::from).unwrap_or_default())),
        };
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut text)));
        }
        out.push(Piece::Field(field));
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Nanos {
        time::parse(s).unwrap()
    }

    #[test]
    fn granules_and_their_paths() {
        let day = Template::parse("$Y/mag_$Y$m$d.csv").unwrap();
        assert_eq!(day.period(), Period::Fixed(NANOS_PER_DAY));
        assert_eq!(day.granule(t("2020-03-04T05:06:07Z")), t("2020-03-04T00:00Z"));
        assert_eq!(day.path(t("2020-03-04T00:00Z")), PathBuf::from("2020/mag_20200304.csv"));
        let doy = Template::parse("$Y/$j/h$H.csv.gz").unwrap();
        assert_eq!(doy.path(t("2020-12-31T23:00Z")), PathBuf::from("2020/366/h23.csv.gz"));
        let month = Template::parse("m_$Y-$m.csv").unwrap();
        assert_eq!(month.next(t("2020-12-01T00:00Z")), t("2021-01-01T00:00Z"));
        assert_eq!(month.granule(t("2020-02-29T12:00Z")), t("2020-02-01T00:00Z"));
        let year = Template::parse("$$y_$Y.csv").unwrap();
        assert_eq!(year.path(t("1999-01-01T00:00Z")), PathBuf::from("$y_1999.csv"));
        assert_eq!(year.next(t("1999-01-01T00:00Z")), t("2000-01-01T00:00Z"));
    }

    #[test]
    fn bad_templates_say_why() {
        for (text, why) in [
            ("", "empty"),
            ("../x_$Y.csv", "inside the root"),
            ("/abs/$Y.csv", "inside the root"),
            ("a_$m$d.csv", "no year"),
            ("$Y_$j_$d.csv", "mixes"),
            ("$Y$d.csv", "without a month"),
            ("$Y$m$H.csv", "finer than a missing"),
            ("$Y$q.csv", "unknown field $q"),
        ] {
            let e = Template::parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn a_walk_finds_only_real_granules() {
        let dir = tempfile::tempdir().unwrap();
        let tpl = Template::parse("$Y/mag_$Y$m$d.csv").unwrap();
        for p in ["2020/mag_20200301.csv", "2020/mag_20200229.csv", "2021/mag_20210101.csv"] {
            std::fs::create_dir_all(dir.path().join(p).parent().unwrap()).unwrap();
            std::fs::write(dir.path().join(p), "").unwrap();
        }
        // Not granules: an impossible date, another year's file in 2020/, a stray name.
        for p in ["2020/mag_20200230.csv", "2020/mag_20190101.csv", "2020/mag_2020030.csv", "2020/notes.txt"]
        {
            std::fs::write(dir.path().join(p), "").unwrap();
        }
        let found: Vec<Nanos> = tpl.walk(dir.path()).into_iter().map(|(t, _)| t).collect();
        assert_eq!(found, vec![t("2020-02-29T00:00Z"), t("2020-03-01T00:00Z"), t("2021-01-01T00:00Z")]);
    }
}
