//! Prometheus metrics: one registry per [`Metrics`] (so per server), rendered by our
//! own route in the text format.
//!
//! There is no global recorder: the `metrics` macros would need one per process, and the
//! tests run many servers in one process, each of which must count only its own requests.
//! So the registry lives in the server's state and is written through the `Recorder`
//! trait directly; the handles of fixed series are registered once.
//!
//! Handlers and middlewares that know something the counting middleware cannot see tag
//! their response with a mark ([`HapiCode`], [`RateLimited`], [`TokenCheck`]); [`track`]
//! counts every response by its matched route, status and marks. Labels are bounded:
//! route templates, status codes, HAPI codes and fixed words, never a raw path, a query
//! value, a dataset id or a credential.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Gauge, Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// The HAPI status code of a response (its body's `status.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HapiCode(pub u16);

/// A response refused by a rate limit, and which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited(pub &'static str);

/// What the check of a bearer token decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// Valid, and its client active.
    Valid,
    /// Refused (401/403).
    Refused,
}

const REQUESTS: &str = "hapi_requests_total";
const DURATION: &str = "hapi_request_duration_seconds";
const DATA_BYTES: &str = "hapi_data_bytes_total";
const DATA_RECORDS: &str = "hapi_data_records_total";
const STREAMS: &str = "hapi_streams_active";
const PARKED: &str = "hapi_streams_parked_total";
const CONNECTIONS: &str = "hapi_connections_open";
const STORE: &str = "hapi_store_seconds";
const TOKENS: &str = "hapi_token_checks_total";
const TOKEN_CACHE_HITS: &str = "hapi_token_cache_hits_total";
const JWKS_FETCHES: &str = "hapi_jwks_fetches_total";
const RATE_LIMITED: &str = "hapi_rate_limited_total";
const INGESTS: &str = "hapi_ingest_total";
const INGEST_RECORDS: &str = "hapi_ingest_records_total";

/// Seconds: from a cached `/info` (tens of µs) to a slow store (seconds).
const BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];

static META: Metadata<'static> = Metadata::new("hapi_server", Level::INFO, Some(module_path!()));

/// The registry of one server and the handles of its fixed series.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    data_bytes: Counter,
    data_records: Counter,
    /// Open connections, kept by the accept loop.
    pub connections: Gauge,
    streams: Gauge,
    parked: Counter,
    token_cache_hits: Counter,
    jwks_fetches: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// An empty registry with the descriptions of every series.
    pub fn new() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &BUCKETS)
            .map_or_else(|_| PrometheusBuilder::new().build_recorder(), PrometheusBuilder::build_recorder);
        let describe = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            recorder.describe_counter(KeyName::from_const_str(name), unit, SharedString::const_str(help));
        };
        describe(REQUESTS, None, "Responses by matched route, HTTP status and HAPI code.");
        describe(DURATION, Some(Unit::Seconds), "Time to the response head, by matched route.");
        describe(DATA_BYTES, Some(Unit::Bytes), "Body bytes sent by /data (before compression).");
        describe(DATA_RECORDS, None, "Records sent by /data.");
        describe(STREAMS, None, "/data responses streaming now (those holding a stream slot).");
        describe(PARKED, None, "Times a /data stream whose client stopped reading gave back its read-ahead.");
        describe(CONNECTIONS, None, "Open client connections.");
        describe(STORE, Some(Unit::Seconds), "Blocking store work: snapshot, one chunk, extent refresh.");
        describe(TOKENS, None, "Bearer token checks by outcome.");
        describe(TOKEN_CACHE_HITS, None, "Bearer tokens found in the validator's cache.");
        describe(JWKS_FETCHES, None, "JWKS documents fetched from the identity provider.");
        describe(RATE_LIMITED, None, "Requests refused by a rate limit or cap (429), by which.");
        describe(INGESTS, None, "POST /ingest requests by outcome.");
        describe(INGEST_RECORDS, None, "Records appended by POST /ingest.");
        let fixed = |name: &'static str| Key::from_static_name(name);
        Metrics {
            data_bytes: recorder.register_counter(&fixed(DATA_BYTES), &META),
            data_records: recorder.register_counter(&fixed(DATA_RECORDS), &META),
            connections: recorder.register_gauge(&fixed(CONNECTIONS), &META),
            streams: recorder.register_gauge(&fixed(STREAMS), &META),
            parked: recorder.register_counter(&fixed(PARKED), &META),
            token_cache_hits: recorder.register_counter(&fixed(TOKEN_CACHE_HITS), &META),
            jwks_fetches: recorder.register_counter(&fixed(JWKS_FETCHES), &META),
            handle: recorder.handle(),
            recorder,
        }
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder.register_counter(&Key::from_parts(name, labels), &META)
    }

    /// One finished `/data` response's bytes and records.
    pub fn data_sent(&self, bytes: u64, records: u64) {
        self.data_bytes.increment(bytes);
        self.data_records.increment(records);
    }

    /// One stream parked (its client stopped reading; see `routes::data`).
    pub fn stream_parked(&self) {
        self.parked.increment(1);
    }

    /// One `POST /ingest` and how it ended (a fixed word), with the records it appended.
    pub fn ingested(&self, outcome: &'static str, records: u64) {
        self.counter(INGESTS, vec![Label::from_static_parts("outcome", outcome)]).increment(1);
        if records > 0 {
            self.counter(INGEST_RECORDS, Vec::new()).increment(records);
        }
    }

    /// Time spent in one blocking store call of kind `op`.
    pub fn store_time(&self, op: &'static str, took: Duration) {
        let key = Key::from_parts(STORE, vec![Label::from_static_parts("op", op)]);
        self.recorder.register_histogram(&key, &META).record(took.as_secs_f64());
    }

    /// Drains histogram samples into their buckets: without scrapes they would pile up.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The text exposition, after setting what is read rather than counted: running
    /// streams and the token validator's cache hits and JWKS fetches.
    pub fn render(&self, streams: usize, validator: Option<(u64, u64)>) -> String {
        self.streams.set(streams as f64);
        if let Some((hits, fetches)) = validator {
            self.token_cache_hits.absolute(hits);
            self.jwks_fetches.absolute(fetches);
        }
        self.handle.render()
    }

    fn response(&self, endpoint: SharedString, r: &Response, took: Duration) {
        let ext = r.extensions();
        let code =
            ext.get::<HapiCode>().map_or_else(|| SharedString::const_str(""), |c| c.0.to_string().into());
        let labels = vec![
            Label::new("endpoint", endpoint.clone()),
            Label::new("status", r.status().as_u16().to_string()),
            Label::new("code", code),
        ];
        self.counter(REQUESTS, labels).increment(1);
        let key = Key::from_parts(DURATION, vec![Label::new("endpoint", endpoint)]);
        self.recorder.register_histogram(&key, &META).record(took.as_secs_f64());
        if let Some(RateLimited(why)) = ext.get::<RateLimited>() {
            self.counter(RATE_LIMITED, vec![Label::from_static_parts("reason", why)]).increment(1);
        }
        if let Some(check) = ext.get::<TokenCheck>() {
            let outcome = match check {
                TokenCheck::Valid => "valid",
                TokenCheck::Refused => "refused",
            };
            self.counter(TOKENS, vec![Label::from_static_parts("outcome", outcome)]).increment(1);
        }
    }
}

/// The middleware that counts every response. Its endpoint label is the matched route
/// template, or `unmatched` (the fallback's redirects and 1400s).
pub async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let endpoint: SharedString = match req.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_owned().into(),
        None => SharedString::const_str("unmatched"),
    };
    let t = Instant::now();
    let r = next.run(req).await;
    m.response(endpoint, &r, t.elapsed());
    r
}
