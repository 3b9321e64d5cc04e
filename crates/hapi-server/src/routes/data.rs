//! `/hapi/data`: validate everything, check the limits, pull the first batch,
//! and only then commit the status line and stream the rest.
//!
//! The store is blocking (SQLite), so one blocking task per response scans and
//! encodes, and hands chunks of about [`CHUNK`] bytes to hyper through a bounded
//! channel: memory per response stays constant and a slow client slows the scan.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use hapi_core::encode::{Encoder, Format};
use hapi_core::request::{self, DataRequest};
use hapi_core::{HapiStatus, StatusError, duration};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::Caller;
use crate::error::{ApiError, reason_phrase};
use crate::state::{AppState, Dataset, View, fmt_time, max_records};

/// Bytes handed to hyper at a time.
const CHUNK: usize = 128 * 1024;
/// Chunks buffered between the scan and the socket.
const QUEUE: usize = 4;

/// What the producer reports before the first byte is committed.
enum Start {
    /// No records: 1201 with this (possibly empty) body.
    Empty(Vec<u8>),
    /// The first chunk; the rest follows on the channel.
    Stream(Vec<u8>),
}

/// One audit line per `/data` request: who, what, how it ended (never a credential).
#[derive(Debug)]
struct Audit {
    who: String,
    client: String,
    dataset: String,
    parameters: String,
    start: String,
    stop: String,
    format: &'static str,
    t0: Instant,
}

impl Audit {
    fn log(&self, status: u16, bytes: u64, complete: bool) {
        tracing::info!(
            target: "audit",
            // Debug quotes and escapes what the request supplied: no forged log lines.
            who = ?self.who,
            client = ?self.client,
            endpoint = "data",
            dataset = ?self.dataset,
            parameters = ?self.parameters,
            start = ?self.start,
            stop = ?self.stop,
            format = self.format,
            status,
            bytes,
            complete,
            ms = self.t0.elapsed().as_millis() as u64,
        );
    }
}

/// `GET|HEAD /hapi/data`.
pub(crate) async fn data(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    method: Method,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let mut audit = Audit {
        who: caller.who().to_owned(),
        client: caller.client().to_owned(),
        dataset: String::new(),
        parameters: String::new(),
        start: String::new(),
        stop: String::new(),
        format: "csv",
        t0: Instant::now(),
    };
    let checked = check(&st, &caller, q.as_deref(), &mut audit);
    let (view, req) = match checked {
        Ok(v) => v,
        Err(e) => {
            audit.log(e.0.status.code(), 0, true);
            return Err(e);
        }
    };
    if method == Method::HEAD {
        // Same headers as GET, without opening the store (REQ-009, P-33).
        return Ok(stream_response(req.format, HapiStatus::Ok, Body::empty()));
    }

    let (start_tx, start_rx) = oneshot::channel();
    let (tx, rx) = mpsc::channel(QUEUE);
    let format = req.format;
    let state = st.clone();
    let audit = Arc::new(audit);
    let a = audit.clone();
    tokio::task::spawn_blocking(move || produce(state.of(&view), &state, &view, &req, start_tx, &tx, &a));
    match start_rx.await {
        Ok(Ok(Start::Empty(body))) => {
            audit.log(HapiStatus::NoData.code(), body.len() as u64, true);
            Ok(stream_response(format, HapiStatus::NoData, Body::from(body)))
        }
        Ok(Ok(Start::Stream(first))) => {
            let rest = ReceiverStream::new(rx);
            let body = futures::stream::once(async move { Ok(Bytes::from(first)) }).chain(rest);
            Ok(stream_response(format, HapiStatus::Ok, Body::from_stream(body)))
        }
        Ok(Err(e)) => {
            audit.log(e.0.status.code(), 0, true);
            Err(e)
        }
        Err(_) => Err(ApiError::internal(HapiStatus::Internal, &"data producer ended without a word")),
    }
}

/// Every check before any work: names, dataset and the caller's right to it, parameters,
/// times (within the caller's view), format, include.
fn check(
    st: &AppState,
    caller: &Caller,
    q: Option<&str>,
    audit: &mut Audit,
) -> Result<(View, DataRequest), ApiError> {
    let pairs = request::parse_query(q.unwrap_or(""))?;
    let query = request::data(&pairs)?;
    audit.dataset.clone_from(&query.dataset);
    audit.parameters = query.parameters.clone().unwrap_or_default();
    audit.start = query.start.clone().unwrap_or_default();
    audit.stop = query.stop.clone().unwrap_or_default();
    // A dataset the caller may not read answers exactly like one that does not exist.
    let view = st.view(caller, &query.dataset).ok_or(HapiStatus::UnknownDataset)?;
    let req = request::check_data(&query, &st.of(&view).spec.info, view.dates.start, view.dates.stop)?;
    audit.format = req.format.as_str();
    Ok((view, req))
}

fn stream_response(format: Format, status: HapiStatus, body: Body) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Some(p) = reason_phrase(status) {
        r.extensions_mut().insert(p);
    }
    r
}

/// Runs on a blocking thread: limits, scan, encode, send.
fn produce(
    ds: &Dataset,
    st: &AppState,
    view: &View,
    req: &DataRequest,
    start: oneshot::Sender<Result<Start, ApiError>>,
    tx: &mpsc::Sender<Result<Bytes, io::Error>>,
    audit: &Audit,
) {
    let info = &ds.spec.info;
    let id = info.id.as_str();
    let count = match st.store.count(id, req.start, req.stop) {
        Ok(c) => c,
        Err(e) => {
            let _ = start.send(Err(ApiError::internal(HapiStatus::Internal, &e)));
            return;
        }
    };
    let mut enc = Encoder::new(req.format, info, &req.selection);
    let status = if count == 0 { HapiStatus::NoData } else { HapiStatus::Ok };
    let mut buf = Vec::with_capacity(CHUNK + CHUNK / 4);
    if req.header || req.format == Format::Json {
        enc.header(&header_json(st, view, req, status), &mut buf);
    }
    if let Err(e) = check_limits(ds, st, req, count, enc.record_bound() as u64, buf.len() as u64) {
        let _ = start.send(Err(e));
        return;
    }
    if count == 0 {
        enc.finish(&mut buf);
        let _ = start.send(Ok(Start::Empty(buf)));
        return;
    }
    let columns: Vec<usize> = req.selection[1..].iter().map(|i| i - 1).collect();
    let mut batches = match st.store.scan(id, &columns, req.start, req.stop) {
        Ok(it) => it,
        Err(e) => {
            let _ = start.send(Err(ApiError::internal(HapiStatus::Internal, &e)));
            return;
        }
    };
    // The first batch decides the status line: a failure here is still a clean 1500.
    match batches.next() {
        Some(Ok(b)) => enc.batch(&b, &mut buf),
        Some(Err(e)) => {
            let _ = start.send(Err(ApiError::internal(HapiStatus::Internal, &e)));
            return;
        }
        None => {}
    }
    // `start` is taken when the first chunk goes out: until then a failure can still
    // be a clean 1500; after it only an aborted connection tells the client (REQ-210).
    let mut start = Some(start);
    let sent = std::cell::Cell::new(0u64);
    let send = |start: &mut Option<oneshot::Sender<_>>, chunk: Vec<u8>| -> bool {
        sent.set(sent.get() + chunk.len() as u64);
        let ok = match start.take() {
            Some(s) => s.send(Ok(Start::Stream(chunk))).is_ok(),
            None => tx.blocking_send(Ok(Bytes::from(chunk))).is_ok(),
        };
        if !ok {
            audit.log(HapiStatus::Ok.code(), sent.get(), false);
        }
        ok
    };
    for b in batches {
        match b {
            Ok(b) => {
                enc.batch(&b, &mut buf);
                if buf.len() >= CHUNK
                    && !send(&mut start, std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + CHUNK / 4)))
                {
                    return; // the client went away: dropping the scan is all there is to do
                }
            }
            Err(e) => {
                if let Some(s) = start.take() {
                    let _ = s.send(Err(ApiError::internal(HapiStatus::Internal, &e)));
                    return;
                }
                tracing::error!(dataset = id, error = %e, "data stream failed after the first byte");
                if !buf.is_empty() && !send(&mut start, std::mem::take(&mut buf)) {
                    return;
                }
                audit.log(HapiStatus::Internal.code(), sent.get(), false);
                let _ = tx.blocking_send(Err(io::Error::other("store failed mid-stream")));
                return;
            }
        }
    }
    enc.finish(&mut buf);
    if (!buf.is_empty() || start.is_some()) && !send(&mut start, buf) {
        return;
    }
    audit.log(HapiStatus::Ok.code(), sent.get(), true);
}

/// The info header of a data response (REQ-200/201): the caller's view of the subset
/// info plus `format` and this request's status.
fn header_json(st: &AppState, view: &View, req: &DataRequest, status: HapiStatus) -> Map<String, Value> {
    let mut m = crate::envelope::header(status.code(), status.message());
    m.insert("format".to_owned(), Value::String(req.format.as_str().to_owned()));
    m.extend(st.info_json(view, &req.selection, true));
    m
}

/// 1408 before the first byte, saying which limit, its value, and the longest span that fits.
fn check_limits(
    ds: &Dataset,
    st: &AppState,
    req: &DataRequest,
    count: u64,
    record_bound: u64,
    header_bytes: u64,
) -> Result<(), ApiError> {
    let info = &ds.spec.info;
    let limits = ds.spec.limits;
    let elements = count.saturating_mul(info.values_per_record(&req.selection) as u64);
    let bytes = count.saturating_mul(record_bound).saturating_add(header_bytes);
    let what = if elements > limits.max_elements {
        format!(
            "this request needs {elements} data elements ({count} records) but one response may hold at most {} data elements",
            limits.max_elements
        )
    } else if bytes > limits.max_bytes {
        format!(
            "this request may need up to {bytes} bytes but one response may hold at most {} bytes ({} kB)",
            limits.max_bytes,
            limits.max_bytes / 1024
        )
    } else {
        return Ok(());
    };
    let fit = max_records(info, &req.selection, limits);
    let fmt = info.time_format;
    let advice = match st.store.nth_time(&info.id, req.start, fit) {
        Ok(Some(t)) if fit > 0 => format!(
            "; for these parameters the longest request that fits from this start is stop={} ({} records, {})",
            fmt_time(t, fmt),
            fit,
            duration::format(t - req.start)
        ),
        Ok(_) => "; even one record does not fit: request fewer parameters".to_owned(),
        Err(e) => return Err(ApiError::internal(HapiStatus::Internal, &e)),
    };
    Err(ApiError(StatusError::with(HapiStatus::TooMuchData, format!("{what}{advice}"))))
}
