//! What every request handler shares: the catalog, the store and what changes as data grows.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use hapi_core::Nanos;
use hapi_core::duration;
use hapi_core::encode::{Encoder, Format};
use hapi_core::info::DatasetInfo;
use hapi_core::time::{self, TimeFormat};
use hapi_store::{Layout, Store, StoreError};
use serde_json::{Map, Value};

use crate::auth::Auth;
use crate::config::{Config, DatasetSpec, Limits, ServerSettings};
use crate::streams::StreamGate;

/// Shared state, cloned into every handler as an `Arc`.
#[derive(Debug)]
pub struct AppState {
    /// `/about` without HAPI and status.
    pub about: Map<String, Value>,
    /// Catalog order.
    pub datasets: Vec<Dataset>,
    index: HashMap<String, usize>,
    /// The record store.
    pub store: Arc<dyn Store>,
    /// Path before `/hapi`.
    pub prefix: String,
    /// When metadata was loaded: the `Last-Modified` of server-wide metadata.
    pub loaded: SystemTime,
    /// Access control.
    pub auth: Auth,
    /// Connection and stream limits.
    pub server: ServerSettings,
    /// Caps on concurrent `/data` streams.
    pub streams: StreamGate,
}

/// One dataset: its validated metadata and what the store says about it now.
#[derive(Debug)]
pub struct Dataset {
    /// Title, info, limits.
    pub spec: DatasetSpec,
    live: RwLock<Live>,
    /// `maxRequestDuration`, fixed by the limits and the cadence.
    max_duration: Option<Nanos>,
    /// The full `/info` response and the extent it was built for.
    full_info: RwLock<Option<(Extent, Bytes)>>,
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

impl AppState {
    /// Opens every dataset in the store (creating it or checking its layout) and reads extents.
    pub fn new(config: &Config, store: Arc<dyn Store>, auth: Auth) -> Result<AppState, StoreError> {
        let loaded = SystemTime::now();
        let mut datasets = Vec::with_capacity(config.datasets.len());
        let mut index = HashMap::new();
        for spec in &config.datasets {
            store.open_dataset(&spec.info.id, &Layout::of(&spec.info))?;
            let extent = store.extent(&spec.info.id)?;
            index.insert(spec.info.id.clone(), datasets.len());
            datasets.push(Dataset {
                spec: spec.clone(),
                live: RwLock::new(Live { extent, modified: loaded }),
                max_duration: max_request_duration(spec),
                full_info: RwLock::new(None),
            });
        }
        let mut state = AppState {
            about: config.about.clone(),
            datasets,
            index,
            store,
            prefix: config.path_prefix.clone(),
            loaded,
            auth,
            server: config.server,
            streams: StreamGate::new(config.server.max_streams, config.server.max_streams_per_client),
        };
        state.add_data_test();
        Ok(state)
    }

    /// The dataset with this id.
    pub fn dataset(&self, id: &str) -> Option<&Dataset> {
        self.dataset_index(id).map(|i| &self.datasets[i])
    }

    /// The catalog position of the dataset with this id.
    pub fn dataset_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Re-reads every dataset's extent (appends may come from another process).
    pub fn refresh(&self) -> Result<(), StoreError> {
        for d in &self.datasets {
            let extent = self.store.extent(&d.spec.info.id)?;
            d.observe(extent);
        }
        Ok(())
    }

    /// `dataTest` (REQ-040, P-09): a query that returns records, unless the operator gave one.
    fn add_data_test(&mut self) {
        if self.about.contains_key("dataTest") {
            return;
        }
        let Some(d) = self.datasets.iter().find(|d| d.live().extent.is_some()) else { return };
        let dates = d.dates();
        let (start, stop) = d.sample_range(&dates);
        let fmt = d.spec.info.time_format;
        let params: Vec<&str> =
            d.spec.info.parameters.iter().skip(1).take(2).map(|p| p.name.as_str()).collect();
        let query = serde_json::json!({
            "dataset": d.spec.info.id,
            "start": time::format_string(start, fmt),
            "stop": time::format_string(stop, fmt),
            "parameters": params.join(","),
        });
        self.about
            .insert("dataTest".to_owned(), serde_json::json!({"name": "recent records", "query": query}));
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

    /// [`dates`](Self::dates) as one caller sees them: under an embargo nothing after
    /// `until` exists for them, so `stopDate` and the last record move back to it.
    pub fn dates_until(&self, until: Option<Nanos>) -> Dates {
        let mut d = self.dates();
        if let Some(until) = until.map(|u| u.max(d.start))
            && until < d.stop
        {
            d.stop = until;
            d.extent = d.extent.and_then(|(a, b)| (a < until).then_some((a, b.min(until))));
        }
        d
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

    /// The `/info` object for a parameter subset, with the dates, sample range and
    /// `maxRequestDuration` that follow the data.
    pub fn info_json(&self, selection: &[usize], resolve: bool) -> Map<String, Value> {
        let info = &self.spec.info;
        let mut m = info.info_json(selection, resolve);
        let dates = self.dates();
        let fmt = info.time_format;
        if info.start_date.is_none() {
            m.insert("startDate".to_owned(), Value::String(time::format_string(dates.start, fmt)));
        }
        if info.stop_date.is_none() {
            m.insert("stopDate".to_owned(), Value::String(time::format_string(dates.stop, fmt)));
        }
        if !m.contains_key("sampleStartDate") && dates.extent.is_some() {
            let (a, b) = self.sample_range(&dates);
            m.insert("sampleStartDate".to_owned(), Value::String(time::format_string(a, fmt)));
            m.insert("sampleStopDate".to_owned(), Value::String(time::format_string(b, fmt)));
        }
        if !m.contains_key("maxRequestDuration")
            && let Some(d) = self.max_duration
        {
            m.insert("maxRequestDuration".to_owned(), Value::String(duration::format(d)));
        }
        m
    }

    /// The full, resolved `/info` document, rebuilt only when the extent moved.
    pub fn full_info(&self) -> Bytes {
        let extent = self.live().extent;
        if let Some((at, bytes)) = &*self.full_info.read().unwrap_or_else(|e| e.into_inner())
            && *at == extent
        {
            return bytes.clone();
        }
        let all: Vec<usize> = (0..self.spec.info.parameters.len()).collect();
        let bytes = Bytes::from(crate::routes::ok_json_bytes(self.info_json(&all, true)));
        *self.full_info.write().unwrap_or_else(|e| e.into_inner()) = Some((extent, bytes.clone()));
        bytes
    }
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
