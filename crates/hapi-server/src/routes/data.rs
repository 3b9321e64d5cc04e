//! `/hapi/data`: validate everything, check the limits, encode the first chunk, and
//! only then commit the status line and stream the rest.
//!
//! A response is pulled: each chunk of about [`CHUNK`] bytes is read and encoded in
//! one short task, one chunk ahead of what hyper is writing. For a blocking source
//! (SQLite, files) that task reads the whole chunk on the blocking pool; for an async
//! one (network, programs) it is a runtime task. A small answer (by the cadence) from a
//! source whose reads are cheap (the embedded store) is made in the handler itself: the
//! handoff to a blocking thread would cost more than the read. A client that stops
//! reading therefore holds no thread and no store connection; after [`PARK_AFTER`] its
//! stream also gives back the chunk made ahead and the batch behind it, where they can
//! be read again (see [`Producer::park`] and ARCHITECTURE.md, "Memory").

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use hapi_core::encode::Mark;
use hapi_core::encode::{Encoder, Format};
use hapi_core::info::DatasetInfo;
use hapi_core::request::{self, DataRequest};
use hapi_core::{Batch, Nanos};
use hapi_core::{HapiStatus, StatusError, duration};
use hapi_source::{Batches, BlockingSource, Count, ErrorKind, Nth, Scan, ScanRequest, Source, SourceError};
use serde_json::{Map, Value};

use crate::auth::Caller;
use crate::error::{ApiError, mark};
use crate::metrics::{HapiCode, Metrics, RateLimited};
use crate::request_id::RequestId;
use crate::state::{AppState, Dataset, View, fmt_time, max_records};
use crate::streams::{Busy, ClientKey, StreamPermit};

/// Bytes handed to hyper at a time.
const CHUNK: usize = 128 * 1024;
/// Most a chunk may run past [`CHUNK`]: rows are encoded in steps of at most this many
/// bytes (by the encoder's bound), so a chunk's buffer never grows after it is made.
const SLACK: usize = CHUNK / 16;
/// How long a chunk made ahead may wait for its client before the stream parks. A
/// client reading at 50 MB/s takes 3 ms per chunk; one that waits longer is slow or
/// stalled, and re-reading a chunk when it reads again costs about a millisecond.
const PARK_AFTER: Duration = Duration::from_millis(250);
/// Most values (records × values per record, by the cadence) of an answer made on a
/// runtime thread when its source reads cheaply: a 60-record request of 5 values is 300.
const INLINE_VALUES: u64 = 4096;
/// Seconds a refused stream is told to wait.
const RETRY_AFTER_SECS: u64 = 2;

/// One audit line per `/data` request: who, what, how it ended (never a credential);
/// its end also counts the bytes and records sent.
#[derive(Debug, Clone)]
struct Audit {
    request_id: RequestId,
    metrics: Arc<Metrics>,
    records: u64,
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
        self.metrics.data_sent(bytes, self.records);
        tracing::info!(
            target: "audit",
            request_id = self.request_id.as_str(),
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
    Extension(request_id): Extension<RequestId>,
    method: Method,
    RawQuery(q): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    let mut audit = Audit {
        request_id,
        metrics: st.metrics.clone(),
        records: 0,
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
    let (view, req_data) = match checked {
        Ok(v) => v,
        Err(e) => {
            audit.log(e.0.status.code(), 0, true);
            return Err(e);
        }
    };
    let etag = data_etag(&st, &view, &req_data, q.as_deref().unwrap_or(""));
    if let Some(tag) = &etag
        && crate::conditional::fresh(req.headers(), Some(tag), None)
    {
        audit.log(StatusCode::NOT_MODIFIED.as_u16(), 0, true);
        return Ok(crate::conditional::not_modified(&validators(tag.clone())));
    }
    let format = req_data.format;
    let head = method == Method::HEAD;
    let pool = match st.of(&view).source.blocking() {
        Some(b) => !(b.cheap_reads() && small(&st.of(&view).spec.info, &req_data)),
        None => false,
    };
    let start = Producer::start(st.clone(), view, req_data, audit, head);
    let started = if pool {
        // The scan, the count and the first chunk in one blocking task.
        tokio::task::spawn_blocking(move || futures::executor::block_on(start))
            .await
            .map_err(|e| ApiError::internal(HapiStatus::Internal, &e))??
    } else {
        // An async source, or a small answer from cheap reads: made here, in less time
        // than the handoff to a blocking thread would take.
        start.await?
    };
    let mut r = match started {
        Start::Head(status) => stream_response(format, status, Body::empty()),
        Start::Empty(body) => stream_response(format, HapiStatus::NoData, Body::from(body)),
        Start::Stream(first, mut producer) => {
            // Only a response longer than one chunk holds a stream slot: the caps bound
            // what stays in memory, and a one-chunk answer is done at once.
            if !producer.done {
                match st.streams.try_acquire(client_key(&caller, req.extensions())) {
                    Ok(permit) => producer.permit = Some(permit),
                    Err(busy) => {
                        producer.logged = true;
                        producer.audit.log(429, 0, true);
                        return Ok(too_many_streams(busy));
                    }
                }
            }
            // One chunk is made ahead while hyper writes the last, so reading, encoding
            // and sending overlap; a stalled client then holds at most two chunks.
            let next = (!producer.done).then(|| produce_next(producer));
            let rest = futures::stream::try_unfold(next, |next| async move {
                let Some(ahead) = next else { return Ok(None) };
                let (p, chunk) = ahead.take().await?;
                let Some(chunk) = chunk? else { return Ok(None) };
                Ok(Some((chunk, (!p.done).then(|| produce_next(p)))))
            });
            let body = futures::stream::once(async move { Ok::<_, io::Error>(first) }).chain(rest);
            stream_response(format, HapiStatus::Ok, Body::from_stream(body))
        }
    };
    if let Some(tag) = etag {
        r.headers_mut().extend(validators(tag));
    }
    Ok(r)
}

/// A validator for an answer that can no longer change: its range ends at or before the
/// last stored record the caller may see, and datasets are append-only (later records
/// come after it). `None` for a range that reaches the end: it grows.
fn data_etag(st: &AppState, view: &View, req: &DataRequest, query: &str) -> Option<HeaderValue> {
    let (_, last) = view.dates.extent?;
    if req.stop > last {
        return None;
    }
    let d = st.of(view);
    // A header shows the view's dates, sample range and maxRequestDuration, which move
    // with appends and embargoes: when one is sent, they are part of the tag.
    let header = req.header || req.format == Format::Json;
    let shown = header.then_some((view.dates.start, view.dates.stop, view.sample, view.max_duration));
    Some(crate::conditional::etag((&d.spec.info.id, d.identity, query, shown)))
}

/// `ETag` and `Vary` of a cacheable `/data` answer.
fn validators(tag: HeaderValue) -> axum::http::HeaderMap {
    let mut h = axum::http::HeaderMap::new();
    h.insert(header::ETAG, tag);
    h.insert(header::VARY, crate::conditional::VARY_CALLER);
    h
}

/// A producer and the chunk it made (`None` at the end).
type Made = (Box<Producer>, io::Result<Option<Bytes>>);

/// The next chunk, made ahead, handed over when [`Ahead::take`] asks.
enum Ahead {
    /// A stream that cannot park: only the task making the chunk.
    Making(tokio::task::JoinHandle<Made>),
    /// A stream that can: a task that waits for the ask, or parks the stream if none
    /// comes within [`PARK_AFTER`].
    Waiting {
        want: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<Result<Made, tokio::task::JoinError>>,
    },
}

impl Ahead {
    async fn take(self) -> io::Result<Made> {
        match self {
            Ahead::Making(task) => task.await.map_err(io::Error::other),
            Ahead::Waiting { want, task } => {
                let _ = want.send(());
                task.await.and_then(|made| made).map_err(io::Error::other)
            }
        }
    }
}

/// Starts making the chunk after the one hyper is writing.
fn produce_next(p: Box<Producer>) -> Ahead {
    if !p.parkable() {
        return Ahead::Making(make_chunk(p));
    }
    let (want, mut wanted) = tokio::sync::oneshot::channel();
    // Started here, not in the task below: a task spawned from a worker waits in its
    // LIFO slot until the connection's task yields, and the chunk would no longer be
    // made while hyper writes the last one.
    let making = make_chunk(p);
    let task = tokio::spawn(async move {
        let (mut p, chunk) = making.await?;
        if !matches!(chunk, Ok(Some(_))) || !p.parkable() {
            return Ok((p, chunk));
        }
        tokio::select! {
            biased;
            // Asked for, or the client went away (then the result is dropped).
            _ = &mut wanted => return Ok((p, chunk)),
            () = tokio::time::sleep(PARK_AFTER) => {}
        }
        drop(chunk);
        p.park();
        if wanted.await.is_err() {
            return Ok((p, Ok(None)));
        }
        make_chunk(p).await
    });
    Ahead::Waiting { want, task }
}

/// Makes the next chunk of `p` in a task of its own: on a blocking thread for a
/// blocking source.
fn make_chunk(mut p: Box<Producer>) -> tokio::task::JoinHandle<Made> {
    let blocking = matches!(p.batches, Batches::Blocking(_));
    let work = async move {
        let t = Instant::now();
        let chunk = p.next_chunk().await;
        p.audit.metrics.store_time("chunk", t.elapsed());
        (p, chunk)
    };
    if blocking {
        tokio::task::spawn_blocking(move || futures::executor::block_on(work))
    } else {
        tokio::spawn(work)
    }
}

/// Who a stream counts against: the identity, else the peer's address.
fn client_key(caller: &Caller, ext: &axum::http::Extensions) -> ClientKey {
    match &caller.0 {
        Some(id) => ClientKey::Identity(id.subject.clone(), caller.client().to_owned()),
        None => crate::server::peer(ext).map_or(ClientKey::Unknown, |a| ClientKey::Address(a.ip())),
    }
}

/// HTTP 429 with `Retry-After` and a HAPI body saying which cap is full.
fn too_many_streams(busy: Busy) -> Response {
    let (status, why, cap) = match busy {
        Busy::Client(n) => (
            HapiStatus::BadRequest,
            format!("this client already runs {n} /data responses, the most allowed at once"),
            "streams_client",
        ),
        Busy::Server(n) => (
            HapiStatus::Internal,
            format!("the server already runs {n} /data responses, its most at once"),
            "streams_server",
        ),
    };
    let e = StatusError::with(status, format!("{why}; retry after {RETRY_AFTER_SECS} s"));
    let mut r = (StatusCode::TOO_MANY_REQUESTS, crate::error::status_body(&e)).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    r.extensions_mut().insert(HapiCode(status.code()));
    r.extensions_mut().insert(RateLimited(cap));
    r
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
    mark(&mut r, status);
    r
}

/// What the first task decides before the status line is committed.
enum Start {
    /// HEAD: the status GET would give.
    Head(HapiStatus),
    /// No records: 1201 with this (possibly empty) body.
    Empty(Vec<u8>),
    /// The first chunk, and the producer of the rest.
    Stream(Bytes, Box<Producer>),
}

/// A dataset's source as the producer calls it. `Blocking` is chosen whenever the source
/// has a blocking side, and then every call runs on a blocking thread (the handler and
/// [`produce_next`] put the producer there), except a small answer's first task when the
/// source reads cheaply (see [`small`]).
#[derive(Clone, Copy)]
enum Reader<'a> {
    Blocking(&'a dyn BlockingSource),
    Async(&'a dyn Source),
}

impl<'a> Reader<'a> {
    fn of(source: &'a dyn Source) -> Reader<'a> {
        source.blocking().map_or(Reader::Async(source), Reader::Blocking)
    }

    async fn scan(self, request: ScanRequest) -> Result<Scan, SourceError> {
        match self {
            Reader::Blocking(b) => b.scan(request),
            Reader::Async(s) => s.scan(request).await,
        }
    }

    async fn nth_time(self, start: hapi_core::Nanos, n: u64) -> Result<Nth, SourceError> {
        match self {
            Reader::Blocking(b) => b.nth_time(start, n),
            Reader::Async(s) => s.nth_time(start, n).await,
        }
    }

    /// The records of `request` by reading them all (times only): for a source that
    /// cannot count when neither its bound nor the cadence shows that a response fits.
    async fn count(self, request: &ScanRequest) -> Result<u64, SourceError> {
        let request = ScanRequest { columns: Vec::new(), ..request.clone() };
        let scan = self.scan(request).await?;
        if let Count::Exact(n) = scan.count {
            return Ok(n);
        }
        let mut n = 0;
        match scan.batches {
            Batches::Blocking(batches) => {
                for b in batches {
                    n += b?.times.len() as u64;
                }
            }
            Batches::Async(mut batches) => {
                while let Some(b) = batches.next().await {
                    n += b?.times.len() as u64;
                }
            }
        }
        Ok(n)
    }
}

/// One response's scan and encoder, moved into a task for each chunk.
struct Producer {
    enc: Encoder,
    batches: Batches,
    /// Batches read before the status was decided, streamed first.
    ahead: VecDeque<Batch>,
    /// The scan returned its last batch.
    ended: bool,
    /// The batch being encoded and the next row of it.
    current: Option<(Batch, usize)>,
    /// Rows encoded at a time: at most [`SLACK`] bytes.
    step: usize,
    buf: Vec<u8>,
    audit: Audit,
    dataset: String,
    sent: u64,
    /// The record count the limits were checked against when it came from the cadence,
    /// not from the source: more records than that are worth a warning to the operator.
    assumed: Option<u64>,
    /// The last chunk is out (or the stream failed): nothing more to produce.
    done: bool,
    /// The audit line is written.
    logged: bool,
    /// The stream's place under the caps, held until the stream ends.
    permit: Option<StreamPermit>,
    /// Where the records come from, and the request, to read the rest again after a park.
    source: Arc<dyn Source>,
    request: ScanRequest,
    /// The scan's exact record count: the snapshot a re-read must end at.
    total: Option<u64>,
    /// After a park: the records this response holds in all; a re-read stops there
    /// (records appended since lie after them) and must reach it.
    limit: Option<u64>,
    /// Time of the last record encoded.
    last: Option<Nanos>,
    /// The state before the chunk last made, for [`Producer::park`].
    resume: Option<Resume>,
    /// The scan was dropped by a park: the next chunk reads again after `last`.
    parked: bool,
}

/// What a producer was before it made a chunk: a parked stream goes back to it.
#[derive(Debug, Clone, Copy)]
struct Resume {
    records: u64,
    sent: u64,
    mark: Mark,
    last: Option<Nanos>,
}

impl Producer {
    /// Limits, then the first chunk: every failure here is still a clean HAPI error.
    async fn start(
        st: Arc<AppState>,
        view: View,
        req: DataRequest,
        audit: Audit,
        head: bool,
    ) -> Result<Start, ApiError> {
        let ds = st.of(&view);
        let info = &ds.spec.info;
        let reader = Reader::of(&*ds.source);
        let request = ScanRequest {
            columns: req.selection[1..].iter().map(|i| i - 1).collect(),
            start: req.start,
            stop: req.stop,
            // The encoders take records whole from a source that has them so.
            wire: true,
        };
        let fail = |e: &SourceError, audit: &Audit| {
            audit.log(HapiStatus::Internal.code(), 0, true);
            ApiError::source(e)
        };
        // One scan decides the limits and is what streams (REQ-145's 1408 before any byte).
        let t = Instant::now();
        let scan = reader.scan(request.clone()).await;
        st.metrics.store_time("snapshot", t.elapsed());
        let scan = match scan {
            Ok(s) => s,
            Err(e) => return Err(fail(&e, &audit)),
        };
        let enc = Encoder::new(req.format, info, &req.selection);
        let bound = enc.record_bound();
        let mut p = Producer {
            enc,
            batches: scan.batches,
            ahead: VecDeque::new(),
            ended: false,
            current: None,
            step: (SLACK / bound.max(1)).clamp(1, 4096),
            buf: Vec::new(),
            audit,
            dataset: info.id.clone(),
            sent: 0,
            assumed: None,
            done: false,
            // Every early return below writes the audit line itself.
            logged: true,
            permit: None,
            source: ds.source.clone(),
            request: request.clone(),
            total: None,
            limit: None,
            last: None,
            resume: None,
            parked: false,
        };
        // A source that cannot count is read ahead by about a chunk: a short answer is
        // then counted exactly, and a longer one at least has records (1200).
        let count = match scan.count {
            Count::Exact(n) => Count::Exact(n),
            inexact => match p.read_ahead((CHUNK / bound.max(1)) as u64).await {
                Ok(Some(n)) => Count::Exact(n),
                Ok(None) => inexact,
                Err(e) => return Err(fail(&e, &p.audit)),
            },
        };
        let status = if count == Count::Exact(0) { HapiStatus::NoData } else { HapiStatus::Ok };
        if let Count::Exact(n) = count {
            p.total = Some(n);
        }
        // A small answer gets a small buffer; a large one, a chunk and some room.
        let expected = count.bound().unwrap_or(u64::MAX);
        p.buf =
            Vec::with_capacity(expected.saturating_mul(bound as u64).min((CHUNK + SLACK) as u64) as usize);
        if req.header || req.format == Format::Json {
            p.enc.header(&header_json(&st, &view, &req, status), &mut p.buf);
        }
        let checked = match count {
            Count::Exact(n) => check_limits(ds, reader, &req, n, bound as u64, p.buf.len() as u64).await,
            inexact => p.check_inexact(ds, reader, &request, &req, inexact, bound as u64).await,
        };
        if let Err(e) = checked {
            p.audit.log(e.0.status.code(), 0, true);
            return Err(e);
        }
        if head {
            p.audit.log(status.code(), 0, true);
            return Ok(Start::Head(status));
        }
        if status == HapiStatus::NoData {
            p.enc.finish(&mut p.buf);
            p.audit.log(status.code(), p.buf.len() as u64, true);
            return Ok(Start::Empty(std::mem::take(&mut p.buf)));
        }
        p.logged = false;
        if let Err(e) = p.fill().await {
            p.logged = true;
            return Err(fail(&e, &p.audit));
        }
        let first = p.take();
        Ok(Start::Stream(first, Box::new(p)))
    }

    /// The limits of a scan whose count is not known: the source's bound or the one the
    /// cadence gives when it shows the answer fits, else a count by reading the range.
    async fn check_inexact(
        &mut self,
        ds: &Dataset,
        reader: Reader<'_>,
        request: &ScanRequest,
        req: &DataRequest,
        count: Count,
        record_bound: u64,
    ) -> Result<(), ApiError> {
        let header = self.buf.len() as u64;
        let by_cadence = cadence_bound(&ds.spec.info, req);
        let bound = match (count.bound(), by_cadence) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(n) = bound
            && over_limits(ds, req, n, record_bound, header).is_none()
        {
            if count.bound().is_none_or(|a| a > n) {
                self.assumed = Some(n);
            }
            return Ok(());
        }
        let t = Instant::now();
        let n = reader.count(request).await.map_err(|e| ApiError::source(&e))?;
        tracing::debug!(dataset = %ds.spec.info.id, records = n, ms = t.elapsed().as_millis() as u64, "counted a scan for the limits");
        check_limits(ds, reader, req, n, record_bound, header).await
    }

    /// Reads batches ahead until `rows` are held or the scan ends; `Some(total)` if it ended.
    async fn read_ahead(&mut self, rows: u64) -> Result<Option<u64>, SourceError> {
        let mut held = 0;
        while held < rows.max(1) {
            match self.pull().await {
                Some(b) => {
                    let b = b?;
                    held += b.times.len() as u64;
                    self.ahead.push_back(b);
                }
                None => return Ok(Some(held)),
            }
        }
        Ok(None)
    }

    /// The next batch from the scan itself.
    async fn pull(&mut self) -> Option<Result<Batch, SourceError>> {
        if self.ended {
            return None;
        }
        let next = match &mut self.batches {
            Batches::Blocking(batches) => batches.next(),
            Batches::Async(batches) => batches.next().await,
        };
        self.ended = next.is_none();
        next
    }

    /// The next batch to encode: those read ahead first.
    async fn next_batch(&mut self) -> Option<Result<Batch, SourceError>> {
        match self.ahead.pop_front() {
            Some(b) => Some(Ok(b)),
            None => self.pull().await,
        }
    }

    /// Encodes batches until a chunk is full or the scan ends (then the trailer too).
    async fn fill(&mut self) -> Result<(), SourceError> {
        if self.parked {
            // The rest of the same records: times strictly increase, so those after `last`.
            let start = self.last.map_or(self.request.start, |t| t.saturating_add(1));
            let request = ScanRequest { start, ..self.request.clone() };
            self.batches = Reader::of(&*self.source).scan(request).await?.batches;
            self.parked = false;
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve(CHUNK + SLACK);
        }
        while self.buf.len() < CHUNK {
            let left = self.limit.map(|n| n.saturating_sub(self.audit.records));
            let next = match (left, self.current.take()) {
                (Some(0), _) => None,
                (_, Some(c)) => Some(c),
                (_, None) => match self.next_batch().await {
                    Some(b) => Some((b?, 0)),
                    None => None,
                },
            };
            let Some((batch, at)) = next else {
                if let Some(n) = left.filter(|&n| n > 0) {
                    return Err(SourceError::msg(
                        ErrorKind::Internal,
                        format!("reading again after a park found {n} records fewer than before"),
                    ));
                }
                self.enc.finish(&mut self.buf);
                self.done = true;
                break;
            };
            let mut end = (at + self.step).min(batch.times.len());
            if let Some(n) = left {
                end = end.min(at.saturating_add(usize::try_from(n).unwrap_or(usize::MAX)));
            }
            self.enc.rows(&batch, at..end, &mut self.buf);
            self.audit.records += (end - at) as u64;
            if end > at {
                self.last = Some(batch.times[end - 1]);
            }
            if end < batch.times.len() {
                self.current = Some((batch, end));
            }
        }
        Ok(())
    }

    /// The encoded bytes so far; the buffer is allocated again only when needed, so a
    /// stalled stream holds just the chunk hyper is writing.
    fn take(&mut self) -> Bytes {
        let chunk = std::mem::take(&mut self.buf);
        self.sent += chunk.len() as u64;
        if self.done {
            self.logged = true;
            self.audit.log(HapiStatus::Ok.code(), self.sent, true);
            if let Some(n) = self.assumed.filter(|&n| self.audit.records > n) {
                tracing::warn!(
                    dataset = %self.dataset,
                    records = self.audit.records,
                    cadence_allows = n,
                    "a response held more records than the dataset's cadence allows, and its limits were checked against the cadence: correct the cadence"
                );
            }
        }
        Bytes::from(chunk)
    }

    /// The next chunk, `None` at the end; an error after the first byte aborts the
    /// connection (REQ-210: never a clean end after a failure).
    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        self.resume = Some(Resume {
            records: self.audit.records,
            sent: self.sent,
            mark: self.enc.mark(),
            last: self.last,
        });
        if let Err(e) = self.fill().await {
            tracing::error!(dataset = %self.dataset, kind = ?e.kind(), error = %e, "data stream failed after the first byte");
            self.done = true;
            self.logged = true;
            self.audit.log(HapiStatus::Internal.code(), self.sent, false);
            return Err(io::Error::other("source failed mid-stream"));
        }
        let chunk = self.take();
        Ok((!chunk.is_empty()).then_some(chunk))
    }

    /// Whether [`Producer::park`] can give this stream's memory back: its records can be
    /// read again cheaply (a blocking source) and exactly (a snapshot of known count).
    fn parkable(&self) -> bool {
        !self.done && self.total.is_some() && matches!(self.batches, Batches::Blocking(_))
    }

    /// Forgets the chunk last made (dropped by the caller) and the batches behind it,
    /// back to where that chunk began: a stalled stream then holds only the chunk hyper
    /// is writing. The next chunk reads the records after `last` again, up to the
    /// snapshot's count, so the bytes are the same as without the park.
    fn park(&mut self) {
        let Some(r) = self.resume.take() else { return };
        self.audit.records = r.records;
        self.sent = r.sent;
        self.enc.rewind(r.mark);
        self.last = r.last;
        self.ahead = VecDeque::new();
        self.current = None;
        self.batches = Batches::Blocking(Box::new(std::iter::empty()));
        self.ended = false;
        self.limit = self.total;
        self.parked = true;
        self.audit.metrics.stream_parked();
    }
}

impl Drop for Producer {
    /// A client that went away: the response ends incomplete.
    fn drop(&mut self) {
        if !self.logged {
            self.audit.log(HapiStatus::Ok.code(), self.sent, false);
        }
    }
}

/// The info header of a data response (REQ-200/201): the caller's view of the subset
/// info plus `format` and this request's status.
fn header_json(st: &AppState, view: &View, req: &DataRequest, status: HapiStatus) -> Map<String, Value> {
    let mut m = crate::envelope::header(status.code(), status.message());
    m.insert("format".to_owned(), Value::String(req.format.as_str().to_owned()));
    m.extend(st.info_json(view, &req.selection, true));
    m
}

/// Whether the cadence shows the answer is small enough to make on a runtime thread:
/// at most [`INLINE_VALUES`] values, a few tens of microseconds to read and encode.
fn small(info: &DatasetInfo, req: &DataRequest) -> bool {
    cadence_bound(info, req)
        .is_some_and(|n| n.saturating_mul(info.values_per_record(&req.selection) as u64) <= INLINE_VALUES)
}

/// The most records `start <= t < stop` can hold if they are at least a cadence apart.
fn cadence_bound(info: &DatasetInfo, req: &DataRequest) -> Option<u64> {
    let cadence = info.cadence.filter(|&c| c > 0)?;
    let span = req.stop.saturating_sub(req.start);
    Some(if span <= 0 { 0 } else { ((span - 1) / cadence) as u64 + 1 })
}

/// Which limit `count` records would pass, in words, if any.
fn over_limits(
    ds: &Dataset,
    req: &DataRequest,
    count: u64,
    record_bound: u64,
    header_bytes: u64,
) -> Option<String> {
    let limits = ds.spec.limits;
    let elements = count.saturating_mul(ds.spec.info.values_per_record(&req.selection) as u64);
    let bytes = count.saturating_mul(record_bound).saturating_add(header_bytes);
    if elements > limits.max_elements {
        Some(format!(
            "this request needs {elements} data elements ({count} records) but one response may hold at most {} data elements",
            limits.max_elements
        ))
    } else if bytes > limits.max_bytes {
        Some(format!(
            "this request may need up to {bytes} bytes but one response may hold at most {} bytes ({} kB)",
            limits.max_bytes,
            limits.max_bytes / 1024
        ))
    } else {
        None
    }
}

/// 1408 before the first byte, saying which limit, its value, and the longest span that fits.
async fn check_limits(
    ds: &Dataset,
    reader: Reader<'_>,
    req: &DataRequest,
    count: u64,
    record_bound: u64,
    header_bytes: u64,
) -> Result<(), ApiError> {
    let Some(what) = over_limits(ds, req, count, record_bound, header_bytes) else {
        return Ok(());
    };
    let info = &ds.spec.info;
    let fit = max_records(info, &req.selection, ds.spec.limits);
    let nth = match reader.nth_time(req.start, fit).await {
        Ok(Nth::Unknown) => info.cadence.map(|c| req.start.saturating_add(c.saturating_mul(fit as i64))),
        Ok(Nth::At(t)) => Some(t),
        Ok(Nth::Past) => None,
        Err(e) => return Err(ApiError::source(&e)),
    };
    let advice = match nth {
        _ if fit == 0 => "; even one record does not fit: request fewer parameters".to_owned(),
        Some(t) => format!(
            "; for these parameters the longest request that fits from this start is stop={} ({} records, {})",
            fmt_time(t, info.time_format),
            fit,
            duration::format(t - req.start)
        ),
        None => format!("; for these parameters at most {fit} records fit"),
    };
    Err(ApiError(StatusError::with(HapiStatus::TooMuchData, format!("{what}{advice}"))))
}
