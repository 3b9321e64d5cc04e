//! The `files` source: a dataset kept as granule files (one per hour, day, month or
//! year) named by a time [`Template`] under a root directory, as data centres archive
//! them.
//!
//! - An index of the granules is built by walking only the directories the template
//!   allows, again every `rescan` (files added to the past), and between walks the next
//!   few granules after the last are probed on every extent read, so a file added today
//!   moves `stopDate` within a second without walking the archive.
//! - A scan reads only the granules that overlap the request, one at a time, in batches,
//!   cut to the time range and the columns asked for: memory stays flat in the range and
//!   the archive's size. It reads the granule list and the last granule's length as they
//!   were when it opened (the snapshot).
//! - Every record must lie inside its granule's period and after the record before it,
//!   across files; a file that breaks that is [`ErrorKind::Corrupt`], named with the line.
//! - Paths are built from numbers by the template under the root, which has no `..`:
//!   nothing a request says can make the source read outside its root.
//!
//! The file format is a reader behind the source, chosen by the granule's extension:
//! NASA CDF when the name ends in `.cdf` ([`cdf`](crate::cdf) module: ISTP variables by name, only
//! the requested variables and records read, each file checked against the info before
//! the first byte), else HAPI csv (the columns in info order, `#` header lines skipped),
//! gzip-compressed when the name ends in `.gz`.

mod cdf;
pub mod describe;
mod template;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use hapi_core::decode::CsvDecoder;
use hapi_core::info::DatasetInfo;
use hapi_core::{Batch, Nanos};
use hapi_source::{Batches, BlockingSource, Count, ErrorKind, Extent, Scan, ScanRequest, SourceError};

pub use template::{Period, Template};

/// Records decoded before a batch is handed on.
const BATCH_ROWS: usize = 4096;
/// Granules after the last known one probed on each extent read.
const PROBE: usize = 4;

/// Where a dataset's granules are and how often the whole archive is listed again.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// The archive's root directory.
    pub root: PathBuf,
    /// File names under it.
    pub template: Template,
    /// How often the whole archive is listed again, for files added to its past.
    pub rescan: Duration,
    /// CDF granules: the epoch variable, when it is not the parameters' `DEPEND_0`.
    pub epoch: Option<String>,
}

/// The read side of one dataset kept as granule files.
#[derive(Debug)]
pub struct FilesSource {
    info: DatasetInfo,
    config: FilesConfig,
    index: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    granules: BTreeMap<Nanos, PathBuf>,
    walked: Option<Instant>,
    /// First and last record of granules read for the extent, by path, while the file
    /// keeps its length and modification time.
    ends: HashMap<PathBuf, (Stamp, Extent)>,
    /// CDF granules found to agree with the info, while they keep their stamp.
    checked: HashMap<PathBuf, Stamp>,
}

type Stamp = (u64, Option<SystemTime>);

impl FilesSource {
    /// The source of `info`'s records under `config.root`; the archive is listed at once,
    /// and a root that is not a directory is an error.
    pub fn open(info: DatasetInfo, config: FilesConfig) -> Result<FilesSource, SourceError> {
        if !config.root.is_dir() {
            return Err(SourceError::msg(
                ErrorKind::NotFound,
                format!(
                    "dataset {:?}: the archive root {} is not a directory",
                    info.id,
                    config.root.display()
                ),
            ));
        }
        let source = FilesSource { info, config, index: Mutex::new(Index::default()) };
        source.update();
        if source.granules() == 0 {
            // Most likely a wrong template or root; an archive starts with one file.
            return Err(SourceError::msg(
                ErrorKind::NotFound,
                format!(
                    "dataset {:?}: no file under {} matches the template {:?}",
                    source.info.id,
                    source.config.root.display(),
                    source.config.template.text()
                ),
            ));
        }
        Ok(source)
    }

    /// `info` completed from a CDF archive where it says nothing: each parameter's
    /// `label` (`LABLAXIS` or `LABL_PTR_1`) and `description` (`CATDESC`), as the
    /// archive's last file has them. `units` and `fill` are never taken, since HAPI has
    /// every info state them. `None` with nothing to add (csv archives, an info built on
    /// `definitions`, whose references must stay as written).
    pub fn completed_info(&self) -> Option<DatasetInfo> {
        let last = self.lock().granules.values().next_back().cloned()?;
        if !is_cdf(&last) {
            return None;
        }
        let all: Vec<usize> = (0..self.info.parameters.len()).collect();
        let mut json = self.info.info_json(&all, false);
        if json.contains_key("definitions") {
            return None;
        }
        let draft = match describe::describe_cdf_file(&last) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(dataset = %self.info.id, file = %last.display(), error = %e, "reading the CDF attributes for the info failed");
                return None;
            }
        };
        let drafted = draft.get("parameters").and_then(serde_json::Value::as_array)?;
        let mut added = 0;
        for p in json.get_mut("parameters")?.as_array_mut()?.iter_mut().skip(1) {
            let Some(p) = p.as_object_mut() else { continue };
            let name = p.get("name").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
            let Some(from) =
                drafted.iter().find(|d| d.get("name").and_then(serde_json::Value::as_str) == Some(&name))
            else {
                continue;
            };
            for key in ["label", "description"] {
                if !p.contains_key(key)
                    && let Some(v) = from.get(key)
                {
                    p.insert(key.to_owned(), v.clone());
                    added += 1;
                }
            }
        }
        if added == 0 {
            return None;
        }
        match DatasetInfo::from_json(&self.info.id, &serde_json::Value::Object(json)) {
            Ok(info) => Some(info),
            Err(errs) => {
                let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
                tracing::warn!(dataset = %self.info.id, errors = %errs.join("; "), "the CDF attributes do not fit the info: left out");
                None
            }
        }
    }

    /// Granules known now.
    pub fn granules(&self) -> usize {
        self.lock().granules.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lists the archive again when `rescan` has passed, else probes the granules after
    /// the last known one.
    fn update(&self) {
        let due = self.lock().walked.is_none_or(|at| at.elapsed() >= self.config.rescan);
        if due {
            // The walk runs without the lock: scans and extents go on meanwhile.
            let found = self.config.template.walk(&self.config.root);
            let mut index = self.lock();
            index.granules = found.into_iter().collect();
            index.walked = Some(Instant::now());
            let keep: std::collections::HashSet<&PathBuf> = index.granules.values().collect();
            let stale: Vec<PathBuf> = index.ends.keys().filter(|p| !keep.contains(p)).cloned().collect();
            for p in stale {
                index.ends.remove(&p);
                index.checked.remove(&p);
            }
            return;
        }
        let Some(mut t) = self.lock().granules.keys().next_back().copied() else { return };
        for _ in 0..PROBE {
            t = self.config.template.next(t);
            let path = self.config.root.join(self.config.template.path(t));
            if path.is_file() {
                self.lock().granules.insert(t, path);
            }
        }
    }

    /// First and last record of one granule, read again only when the file changed.
    fn ends(&self, start: Nanos, path: &Path) -> Result<Extent, SourceError> {
        let stamp = stamp(path)?;
        if let Some((s, e)) = self.lock().ends.get(path)
            && *s == stamp
        {
            return Ok(*e);
        }
        let extent = if is_cdf(path) {
            // The epoch's first and last record: two reads, not the whole file.
            cdf::ends(&self.info, self.config.epoch.as_deref(), path)?
        } else {
            let mut reader =
                CsvGranule::open(&self.info, start, self.config.template.next(start), path, None, None)?;
            let mut extent: Extent = None;
            while let Some(b) = reader.next_batch(&[])? {
                if let (Some(&a), Some(&z)) = (b.times.first(), b.times.last()) {
                    extent = Some((extent.map_or(a, |e| e.0), z));
                }
            }
            extent
        };
        self.lock().ends.insert(path.to_owned(), (stamp, extent));
        Ok(extent)
    }
}

impl FilesSource {
    /// Checks a CDF granule's variables against the info (descriptors only), once while
    /// the file keeps its stamp.
    fn check_cdf(&self, path: &Path) -> Result<(), SourceError> {
        let stamp = stamp(path)?;
        if self.lock().checked.get(path) == Some(&stamp) {
            return Ok(());
        }
        let file = cdf::open(path)?;
        cdf::check(&file, &self.info, self.config.epoch.as_deref(), path)?;
        self.lock().checked.insert(path.to_owned(), stamp);
        Ok(())
    }
}

impl BlockingSource for FilesSource {
    fn extent(&self) -> Result<Extent, SourceError> {
        self.update();
        let granules: Vec<(Nanos, PathBuf)> =
            self.lock().granules.iter().map(|(t, p)| (*t, p.clone())).collect();
        // Empty granules do not count: the first and last with a record do.
        let mut first = None;
        for (t, p) in &granules {
            if let Some((a, _)) = self.ends(*t, p)? {
                first = Some(a);
                break;
            }
        }
        let Some(first) = first else { return Ok(None) };
        for (t, p) in granules.iter().rev() {
            if let Some((_, z)) = self.ends(*t, p)? {
                return Ok(Some((first, z)));
            }
        }
        Ok(None)
    }

    fn scan(&self, r: ScanRequest) -> Result<Scan, SourceError> {
        let template = &self.config.template;
        let from = template.granule(r.start);
        let mut granules: VecDeque<(Nanos, PathBuf, Option<u64>)> =
            self.lock().granules.range(from..r.stop.max(from)).map(|(t, p)| (*t, p.clone(), None)).collect();
        // The last granule may be growing: read it only as long as it is now.
        if let Some(last) = granules.back_mut() {
            last.2 = Some(stamp(&last.1)?.0);
        }
        // A CDF that contradicts the info fails the request now, before the first byte.
        for (_, path, _) in &granules {
            if is_cdf(path) {
                self.check_cdf(path)?;
            }
        }
        let scan = FileScan {
            epoch: self.config.epoch.clone(),
            info: self.info.clone(),
            template: template.clone(),
            granules,
            current: None,
            after: None,
            request: r,
            done: false,
        };
        // Decoding (csv above all) costs about what encoding does: on a second core.
        Ok(Scan {
            count: Count::Unknown,
            batches: Batches::Blocking(hapi_source::read_ahead(Box::new(scan))),
        })
    }
}

/// The batches of one scan, granule after granule.
struct FileScan {
    epoch: Option<String>,
    info: DatasetInfo,
    template: Template,
    granules: VecDeque<(Nanos, PathBuf, Option<u64>)>,
    current: Option<Granule>,
    /// The last record read, which the next granule's first must follow.
    after: Option<Nanos>,
    request: ScanRequest,
    done: bool,
}

impl FileScan {
    fn next_batch(&mut self) -> Result<Option<Batch>, SourceError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let reader = match &mut self.current {
                Some(r) => r,
                None => {
                    let Some((start, path, len)) = self.granules.pop_front() else {
                        self.done = true;
                        return Ok(None);
                    };
                    let stop = self.template.next(start);
                    let r = &self.request;
                    self.current = Some(if is_cdf(&path) {
                        Granule::Cdf(Box::new(cdf::CdfGranule::open(
                            &self.info,
                            self.epoch.as_deref(),
                            &path,
                            (start, stop),
                            &r.columns,
                            (r.start, r.stop),
                            self.after,
                            BATCH_ROWS,
                        )?))
                    } else {
                        let mut g = CsvGranule::open(&self.info, start, stop, &path, len, self.after)?;
                        // A range that starts inside the file: the lines before it are
                        // checked for their time only.
                        g.decoder.skip_before(r.start);
                        Granule::Csv(Box::new(g))
                    });
                    self.current.as_mut().expect("just set")
                }
            };
            let next = match reader {
                Granule::Csv(g) => g.next_batch(&self.request.columns)?,
                Granule::Cdf(g) => g.next_batch()?,
            };
            let Some(mut batch) = next else {
                self.current = None;
                continue;
            };
            self.after = batch.times.last().copied().or(self.after);
            if batch.keep_times(self.request.start, self.request.stop) {
                self.done = true;
            }
            if batch.is_empty() {
                continue;
            }
            return Ok(Some(batch));
        }
    }
}

impl Iterator for FileScan {
    type Item = Result<Batch, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next_batch();
        if next.is_err() {
            self.done = true;
        }
        next.transpose()
    }
}

/// One granule file being read.
enum Granule {
    Csv(Box<CsvGranule>),
    Cdf(Box<cdf::CdfGranule>),
}

/// Whether `path` is read as a CDF.
fn is_cdf(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("cdf"))
}

/// One csv granule file being decoded.
struct CsvGranule {
    path: PathBuf,
    input: Box<dyn BufRead + Send>,
    decoder: CsvDecoder<'static>,
    /// The granule's period: every record must lie in it.
    period: (Nanos, Nanos),
}

impl CsvGranule {
    /// Opens `path`, read up to `len` bytes when given; every record must follow `after`.
    fn open(
        info: &DatasetInfo,
        start: Nanos,
        stop: Nanos,
        path: &Path,
        len: Option<u64>,
        after: Option<Nanos>,
    ) -> Result<CsvGranule, SourceError> {
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        let raw: Box<dyn Read + Send> = match len {
            Some(n) => Box::new(file.take(n)),
            None => Box::new(file),
        };
        let gz = path.extension().is_some_and(|e| e == "gz");
        let input: Box<dyn BufRead + Send> = if gz {
            Box::new(BufReader::with_capacity(64 * 1024, flate2::read::MultiGzDecoder::new(raw)))
        } else {
            Box::new(BufReader::with_capacity(64 * 1024, raw))
        };
        Ok(CsvGranule {
            path: path.to_owned(),
            input,
            decoder: CsvDecoder::owned(info.clone(), after),
            period: (start, stop),
        })
    }

    /// The next batch of records with the `columns` asked for, `None` at the end of the file.
    fn next_batch(&mut self, columns: &[usize]) -> Result<Option<Batch>, SourceError> {
        while self.decoder.rows() < BATCH_ROWS {
            let bytes = self.input.fill_buf().map_err(|e| io_error(&self.path, e))?;
            let n = bytes.len();
            let decoded = if n == 0 { self.decoder.finish_line() } else { self.decoder.push(bytes) };
            decoded.map_err(|e| corrupt(&self.path, e.to_string()))?;
            if n == 0 {
                break;
            }
            self.input.consume(n);
        }
        if self.decoder.rows() == 0 {
            return Ok(None);
        }
        let batch = self.decoder.take_batch();
        let (a, z) = self.period;
        if let Some(t) = batch.times.iter().find(|&&t| t < a || t >= z) {
            let at = hapi_core::time::format_string(*t, hapi_core::time::TimeFormat::YMD_NANOS);
            return Err(corrupt(&self.path, format!("a record at {at} lies outside the file's period")));
        }
        Ok(Some(batch.select(columns)))
    }
}

fn stamp(path: &Path) -> Result<Stamp, SourceError> {
    let m = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    Ok((m.len(), m.modified().ok()))
}

pub(crate) fn io_error(path: &Path, e: std::io::Error) -> SourceError {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::InvalidData => ErrorKind::Corrupt,
        _ => ErrorKind::Unavailable,
    };
    SourceError::new(kind, format!("reading {}", path.display()), e)
}

fn corrupt(path: &Path, why: String) -> SourceError {
    SourceError::msg(ErrorKind::Corrupt, format!("{}: {why}", path.display()))
}
