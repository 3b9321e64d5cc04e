//! What every request handler shares: the catalog, the store and what changes as data
//! grows; and [`View`], what one caller may see of one dataset, computed in one place.
//!
//! Every document that shows a dataset (`/about`'s `dataTest`, `/catalog`, `/info`, the
//! `/data` header, the landing page) is rendered from a [`View`], so an embargo, a
//! private id or a sample range cannot be forgotten in one of them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use hapi_core::Nanos;
use hapi_core::duration;
use hapi_core::encode::{Encoder, Format};
use hapi_core::info::DatasetInfo;
use hapi_core::time::{self, TimeFormat};
use hapi_files::FilesSource;
use hapi_source::{Blocking, ErrorKind, Source, SourceError};
use hapi_store::{Layout, Store, StoreSource};
use serde_json::{Map, Value};

use crate::auth::{Access, Caller};
use crate::config::{Config, DatasetSpec, Limits, MetricsSettings, ServerSettings, SourceSpec};
use crate::metrics::Metrics;
use crate::streams::StreamGate;

/// Shared state, cloned into every handler as an `Arc`.
#[derive(Debug)]
pub struct AppState {
    /// `/about` without HAPI and status.
    pub about: Map<String, Value>,
    /// Catalog order.
    pub datasets: Vec<Dataset>,
    index: HashMap<String, usize>,
    /// The embedded record store (the source of datasets without another one, and
    /// where `hapi-server ingest` appends).
    pub store: Arc<dyn Store>,
    /// When metadata was loaded: the `Last-Modified` of server-wide metadata.
    pub loaded: SystemTime,
    /// Access control.
    pub access: Arc<Access>,
    /// Connection and stream limits.
    pub server: ServerSettings,
    /// Caps on concurrent `/data` streams; shared with the state a reload replaces, so
    /// streams that started before it still count.
    pub streams: Arc<StreamGate>,
    /// This server's metrics registry (also kept across reloads).
    pub metrics: Arc<Metrics>,
    /// Where the metrics are served.
    pub metrics_at: MetricsSettings,
    /// One writer at a time per dataset (also kept across reloads).
    pub writers: Arc<Writers>,
    /// Largest csv of one `POST /ingest`.
    pub ingest_max_bytes: u64,
}

/// The writers' queue of each dataset of the embedded store: HTTP ingest and the live
/// demo of this server append to a dataset one at a time. (The store itself refuses
/// an append that does not follow its last record, whoever wrote that.)
#[derive(Debug, Default)]
pub struct Writers(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl Writers {
    /// The queue of dataset `id` (ids are the configured ones, so the map stays small).
    fn of(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(id.to_owned()).or_default().clone()
    }
}

/// One dataset: its validated metadata and what the store says about it now.
#[derive(Debug)]
pub struct Dataset {
    /// Title, info, limits.
    pub spec: DatasetSpec,
    /// Where its records are read.
    pub source: Arc<dyn Source>,
    live: RwLock<Live>,
    /// `maxRequestDuration`, fixed by the limits and the cadence.
    max_duration: Option<Nanos>,
    /// The full `/info` response of the un-embargoed view and the extent it was built for.
    full_info: RwLock<Option<(Extent, Bytes)>>,
    /// A hash of the configured metadata and limits: part of every `/data` ETag, so a
    /// changed configuration never validates an old answer.
    pub identity: u64,
}

/// What one caller may see of one dataset now. `None` from [`AppState::view`] means
/// the dataset does not exist for them (1406).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// The dataset's catalog position.
    pub index: usize,
    /// The caller's range: under an embargo `stopDate` is the embargo line and the
    /// extent ends before it.
    pub dates: Dates,
    /// The sample range to publish: the configured one if it lies inside `dates`, else
    /// the last records the caller may read; `None` without any.
    pub sample: Option<(Nanos, Nanos)>,
    /// `maxRequestDuration`: what the limits allow, at most the caller's whole range.
    pub max_duration: Option<Nanos>,
    /// An embargo hides part of the dataset from this caller.
    pub embargoed: bool,
}

/// First and last stored record, if any.
type Extent = Option<(Nanos, Nanos)>;

#[derive(Debug, Clone, Copy)]
struct Live {
    extent: Extent,
    modified: SystemTime,
}

/// The time range a dataset publishes and accepts (REQ-081).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dates {
    /// `startDate`.
    pub start: Nanos,
    /// `stopDate`: later than the last record so that `stop=stopDate` still returns it (P-07).
    pub stop: Nanos,
    /// First and last stored record.
    pub extent: Option<(Nanos, Nanos)>,
}

impl Dates {
    /// These dates as a caller under an embargo sees them: nothing after `until`
    /// exists for them, so `stopDate` and the last record move back to it.
    pub fn until(mut self, until: Option<Nanos>) -> Dates {
        if let Some(until) = until.map(|u| u.max(self.start))
            && until < self.stop
        {
            self.stop = until;
            self.extent = self.extent.and_then(|(a, b)| (a < until).then_some((a, b.min(until))));
        }
        self
    }
}

impl AppState {
    /// Opens every dataset's source (for the embedded store: creating the dataset or
    /// checking its layout) and reads extents.
    /// `given` names datasets read from another source than `store`.
    pub async fn new(
        config: &Config,
        store: Arc<dyn Store>,
        given: &HashMap<String, Arc<dyn Source>>,
        access: Arc<Access>,
    ) -> Result<AppState, SourceError> {
        let loaded = SystemTime::now();
        let mut datasets = Vec::with_capacity(config.datasets.len());
        let mut index = HashMap::new();
        for spec in &config.datasets {
            let id = &spec.info.id;
            // What a source's own files add to the info (CDF labels and descriptions).
            let mut completed = None;
            let source: Arc<dyn Source> = match (given.get(id), &spec.source) {
                (Some(source), _) => source.clone(),
                (None, SourceSpec::Embedded) => {
                    let (s, i, layout) = (store.clone(), id.clone(), Layout::of(&spec.info));
                    // A file or a database round trip: off the runtime's threads.
                    tokio::task::spawn_blocking(move || s.open_dataset(&i, &layout)).await.map_err(
                        |e| SourceError::new(ErrorKind::Internal, "opening a dataset of the store", e),
                    )??;
                    // PostgreSQL reads asynchronously; SQLite on the blocking pool.
                    store
                        .source(id)
                        .unwrap_or_else(|| Arc::new(Blocking(Arc::new(StoreSource::new(store.clone(), id)))))
                }
                (None, SourceSpec::Files(files)) => {
                    // Opening lists the archive: a blocking walk.
                    let (info, files) = (spec.info.clone(), files.clone());
                    let opened =
                        tokio::task::spawn_blocking(move || FilesSource::open(info, files)).await.map_err(
                            |e| SourceError::new(ErrorKind::Internal, "opening a files source", e),
                        )??;
                    let opened = Arc::new(opened);
                    let o = opened.clone();
                    completed = tokio::task::spawn_blocking(move || o.completed_info()).await.ok().flatten();
                    Arc::new(Blocking(opened))
                }
                (None, SourceSpec::Command(command)) => {
                    Arc::new(hapi_command::CommandSource::new(spec.info.clone(), command.clone()))
                }
                // `crate::upstreams` opens them, with the upstream they share.
                (None, SourceSpec::Hapi { .. }) => {
                    return Err(SourceError::msg(
                        ErrorKind::Internal,
                        format!("dataset {id:?}: its upstream was not opened"),
                    ));
                }
            };
            let extent = source.extent().await?;
            index.insert(id.clone(), datasets.len());
            let mut spec = spec.clone();
            if let Some(info) = completed {
                spec.info = info;
            }
            let spec = &spec;
            datasets.push(Dataset {
                spec: spec.clone(),
                source,
                live: RwLock::new(Live { extent, modified: loaded }),
                max_duration: max_request_duration(spec),
                full_info: RwLock::new(None),
                identity: identity(spec),
            });
        }
        Ok(AppState {
            about: config.about.clone(),
            datasets,
            index,
            store,
            loaded,
            access,
            server: config.server.clone(),
            streams: Arc::new(StreamGate::new(
                config.server.max_streams,
                config.server.max_streams_per_client,
            )),
            metrics: Arc::new(Metrics::new()),
            metrics_at: config.metrics.clone(),
            writers: Arc::default(),
            ingest_max_bytes: config.ingest_max_bytes,
        })
    }

    /// Runs `write` on the embedded store for dataset `id`, on a blocking thread, once
    /// every earlier write of this server to that dataset has finished; then publishes
    /// the dataset's new extent at once (`stopDate` moves without waiting for the
    /// refresh).
    pub async fn write<T, E>(
        &self,
        id: &str,
        write: impl FnOnce(&dyn Store) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<tokio::task::JoinError> + Send + 'static,
    {
        // The guard goes into the task: a caller that gives up (a client that hangs
        // up) does not let the next writer in while this one still runs.
        let turn = self.writers.of(id).lock_owned().await;
        let (store, key) = (self.store.clone(), id.to_owned());
        let (result, extent) = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let result = write(store.as_ref());
            let extent = result.is_ok().then(|| store.extent(&key));
            (result, extent)
        })
        .await?;
        match (extent, self.dataset(id)) {
            (Some(Ok(extent)), Some(d)) => d.observe(extent),
            (Some(Err(e)), _) => {
                tracing::warn!(dataset = %id, error = %e, "reading the extent after an append failed")
            }
            _ => {}
        }
        result
    }

    /// Path before `/hapi`.
    pub fn prefix(&self) -> &str {
        &self.access.site.prefix
    }

    /// The dataset with this id.
    pub fn dataset(&self, id: &str) -> Option<&Dataset> {
        self.dataset_index(id).map(|i| &self.datasets[i])
    }

    /// The catalog position of the dataset with this id.
    pub fn dataset_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// What `who` may see of dataset `id` now; `None` if it does not exist for them.
    pub fn view(&self, who: &Caller, id: &str) -> Option<View> {
        self.view_at(self.dataset_index(id)?, who, now_nanos())
    }

    /// The datasets `who` may read, in catalog order.
    pub fn visible<'a>(&'a self, who: &'a Caller) -> impl Iterator<Item = View> + 'a {
        let now = now_nanos();
        (0..self.datasets.len()).filter_map(move |i| self.view_at(i, who, now))
    }

    fn view_at(&self, index: usize, who: &Caller, now: Nanos) -> Option<View> {
        let d = &self.datasets[index];
        let (id, rules) = (d.spec.info.id.as_str(), &self.access.rules);
        if !rules.can_read(who.identity(), id) {
            return None;
        }
        // The line in the dataset's time resolution, so that what is published is exact.
        let step = d.spec.info.time_format.resolution();
        let until = rules.embargo(who.identity(), id).map(|age| {
            let line = now.saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX));
            line - line.rem_euclid(step)
        });
        let all = d.dates();
        let dates = all.until(until);
        let info = &d.spec.info;
        let sample = match info.sample {
            Some((a, b)) if a >= dates.start && b <= dates.stop => Some((a, b)),
            _ => dates.extent.map(|_| d.sample_range(&dates)),
        };
        let span = dates.stop.saturating_sub(dates.start);
        Some(View {
            index,
            dates,
            sample,
            max_duration: d.max_duration.map(|m| m.min(span)),
            embargoed: dates != all,
        })
    }

    /// The dataset a view is of.
    pub fn of(&self, v: &View) -> &Dataset {
        &self.datasets[v.index]
    }

    /// `/about` as `who` sees it: `dataTest` (REQ-040, P-09), unless the operator gave
    /// one, is a query that returns records they may read; none if they read nothing.
    pub fn about(&self, who: &Caller) -> Map<String, Value> {
        let mut about = self.about.clone();
        if about.contains_key("dataTest") {
            return about;
        }
        let Some((v, (start, stop))) =
            self.visible(who).find_map(|v| Some((v, v.sample.filter(|_| v.dates.extent.is_some())?)))
        else {
            return about;
        };
        let info = &self.of(&v).spec.info;
        let fmt = info.time_format;
        let params: Vec<&str> = info.parameters.iter().skip(1).take(2).map(|p| p.name.as_str()).collect();
        let query = serde_json::json!({
            "dataset": info.id,
            "start": time::format_string(start, fmt),
            "stop": time::format_string(stop, fmt),
            "parameters": params.join(","),
        });
        about.insert("dataTest".to_owned(), serde_json::json!({"name": "recent records", "query": query}));
        about
    }

    /// The `/info` object of a view for a parameter subset.
    pub fn info_json(&self, v: &View, selection: &[usize], resolve: bool) -> Map<String, Value> {
        self.of(v).info_json(v, selection, resolve)
    }

    /// The full, resolved `/info` document of a view. Only the un-embargoed view is
    /// cached (rebuilt when the extent moves): an embargoed one moves with the clock.
    pub fn full_info(&self, v: &View) -> Bytes {
        let d = self.of(v);
        let all: Vec<usize> = (0..d.spec.info.parameters.len()).collect();
        let build = || Bytes::from(crate::envelope::ok(d.info_json(v, &all, true)));
        if v.embargoed {
            return build();
        }
        let extent = v.dates.extent;
        if let Some((at, bytes)) = &*d.full_info.read().unwrap_or_else(|e| e.into_inner())
            && *at == extent
        {
            return bytes.clone();
        }
        let bytes = build();
        *d.full_info.write().unwrap_or_else(|e| e.into_inner()) = Some((extent, bytes.clone()));
        bytes
    }

    /// When what `v` shows last changed, for `Last-Modified`: an embargoed view changes
    /// with the clock (and must not tell when hidden records arrived).
    pub fn modified(&self, v: &View) -> SystemTime {
        if v.embargoed { SystemTime::now() } else { self.of(v).modified() }
    }

    /// Re-reads every dataset's extent (appends may come from another process). A
    /// source that fails keeps its last extent; the first failure is returned.
    pub async fn refresh(&self) -> Result<(), SourceError> {
        let mut first = None;
        for d in &self.datasets {
            match d.source.extent().await {
                Ok(extent) => d.observe(extent),
                Err(e) => {
                    tracing::warn!(dataset = %d.spec.info.id, kind = ?e.kind(), error = %e, "reading the extent failed");
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Dataset {
    fn live(&self) -> Live {
        *self.live.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a freshly read extent; a change moves `Last-Modified`.
    pub fn observe(&self, extent: Option<(Nanos, Nanos)>) {
        let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
        if live.extent != extent {
            live.extent = extent;
            live.modified = SystemTime::now();
        }
    }

    /// When data or metadata last changed, for `Last-Modified`.
    pub fn modified(&self) -> SystemTime {
        self.live().modified
    }

    /// The published range: configured dates win; otherwise the stored records decide.
    pub fn dates(&self) -> Dates {
        let info = &self.spec.info;
        let extent = self.live().extent;
        let step = info.time_format.resolution();
        // One cadence past the last record (at least one time-format step): a request
        // up to the next nominal record time still gets the last record (P-07).
        let (first, after_last) = match extent {
            Some((a, b)) => (a, b.saturating_add(info.cadence.unwrap_or(0).max(step))),
            // An empty dataset without configured dates still needs a valid range:
            // one day ending now, which every request answers with 1201.
            None => {
                let now = now_nanos();
                let now = now - now.rem_euclid(step);
                (now - 86_400_000_000_000, now)
            }
        };
        let start = info.start_date.unwrap_or(first);
        let stop = info.stop_date.unwrap_or(after_last).max(start.saturating_add(step));
        Dates { start, stop, extent }
    }

    /// A short range that holds real data, inside the published range (P-36).
    pub fn sample_range(&self, dates: &Dates) -> (Nanos, Nanos) {
        let info = &self.spec.info;
        let step = info.time_format.resolution();
        match dates.extent {
            Some((first, last)) => {
                let span = info.cadence.unwrap_or(60_000_000_000).saturating_mul(100);
                let stop = last.saturating_add(step).min(dates.stop);
                let start = stop.saturating_sub(span).max(first).max(dates.start);
                let start = start - start.rem_euclid(step);
                (start, stop)
            }
            None => (dates.start, dates.stop),
        }
    }

    /// The `/info` object of view `v` for a parameter subset: configured values where
    /// the view shows them unchanged; otherwise the dates, sample range and
    /// `maxRequestDuration` of the view.
    fn info_json(&self, v: &View, selection: &[usize], resolve: bool) -> Map<String, Value> {
        let info = &self.spec.info;
        let mut m = info.info_json(selection, resolve);
        let fmt = info.time_format;
        let mut set = |k: &str, t: Nanos| {
            m.insert(k.to_owned(), Value::String(time::format_string(t, fmt)));
        };
        if info.start_date.is_none() {
            set("startDate", v.dates.start);
        }
        if info.stop_date.is_none() || v.embargoed {
            set("stopDate", v.dates.stop);
        }
        if v.sample != info.sample {
            match v.sample {
                Some((a, b)) => {
                    set("sampleStartDate", a);
                    set("sampleStopDate", b);
                }
                None => {
                    m.remove("sampleStartDate");
                    m.remove("sampleStopDate");
                }
            }
        }
        if info.max_request_duration.is_none()
            && let Some(d) = v.max_duration
        {
            m.insert("maxRequestDuration".to_owned(), Value::String(duration::format(d)));
        }
        m
    }
}

/// A hash of what a dataset's answers are computed from besides its records.
fn identity(spec: &DatasetSpec) -> u64 {
    use std::hash::{Hash, Hasher};
    let all: Vec<usize> = (0..spec.info.parameters.len()).collect();
    let mut h = std::hash::DefaultHasher::new();
    serde_json::to_string(&spec.info.info_json(&all, true)).unwrap_or_default().hash(&mut h);
    (spec.limits.max_elements, spec.limits.max_bytes).hash(&mut h);
    h.finish()
}

/// The longest request for all parameters that fits both limits in every format,
/// from the nominal cadence (REQ-082: "a request for all parameters longer than this will likely get 1408").
fn max_request_duration(spec: &DatasetSpec) -> Option<Nanos> {
    let info = &spec.info;
    let cadence = info.cadence?;
    let all: Vec<usize> = (0..info.parameters.len()).collect();
    let records = max_records(info, &all, spec.limits);
    Some(cadence.saturating_mul(i64::try_from(records).unwrap_or(i64::MAX)))
}

/// Most records of `selection` that one response may hold under `limits`, in any format.
pub fn max_records(info: &DatasetInfo, selection: &[usize], limits: Limits) -> u64 {
    let per_record = info.values_per_record(selection) as u64;
    let by_elements = limits.max_elements / per_record.max(1);
    let bound = Format::ALL
        .iter()
        .map(|&f| Encoder::new(f, info, selection).record_bound() as u64)
        .max()
        .unwrap_or(1);
    let by_bytes = limits.max_bytes / bound.max(1);
    by_elements.min(by_bytes)
}

/// Now on the HAPI time scale.
pub fn now_nanos() -> Nanos {
    let d = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Formats a time in a dataset's format.
pub fn fmt_time(t: Nanos, fmt: TimeFormat) -> String {
    time::format_string(t, fmt)
}

#[cfg(test)]
mod tests {
    use super::Dates;

    #[test]
    fn an_embargo_moves_the_stop_and_clips_the_extent() {
        let d = Dates { start: 0, stop: 100, extent: Some((10, 90)) };
        assert_eq!(d.until(None), d);
        assert_eq!(d.until(Some(200)), d, "a line after the stop changes nothing");
        assert_eq!(d.until(Some(50)), Dates { start: 0, stop: 50, extent: Some((10, 50)) });
        assert_eq!(d.until(Some(5)), Dates { start: 0, stop: 5, extent: None });
        assert_eq!(d.until(Some(-5)), Dates { start: 0, stop: 0, extent: None }, "never before the start");
    }
}
