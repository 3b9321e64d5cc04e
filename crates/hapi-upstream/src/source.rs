//! One upstream dataset as a [`Source`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use hapi_core::decode::{BinaryDecoder, CsvDecoder};
use hapi_core::info::{DatasetInfo, Parameter};
use hapi_core::time::{self, TimeFormat};
use hapi_core::{Batch, Nanos, percent};
use hapi_source::{Batches, Count, ErrorKind, Extent, Scan, ScanRequest, Source, SourceError};
use serde_json::Value;

use crate::wire::{self, Header};
use crate::{Answer, Upstream};

/// Records decoded before a batch is handed on.
const BATCH_ROWS: usize = 4096;
/// A piece is halved on 1408 at most this often: 2^-20 of a range is below any limit
/// an upstream could mean.
const MAX_HALVINGS: u32 = 20;
/// The first retry after the upstream failed to give a dataset's dates.
const RETRY: Duration = Duration::from_secs(2);
/// Keys of an upstream `/info` that are ours to decide: the dates follow the
/// upstream through the extent, the request duration is our own limit's.
const OURS: [&str; 6] = ["HAPI", "status", "format", "startDate", "stopDate", "maxRequestDuration"];

/// The upstream's `/info` as our dataset's configured info: without the keys a
/// re-serving server decides itself.
pub fn local_info(raw: &Value) -> Value {
    let mut v = raw.clone();
    if let Some(m) = v.as_object_mut() {
        for k in OURS {
            m.shift_remove(k);
        }
    }
    v
}

/// A dataset of an upstream HAPI server.
#[derive(Debug)]
pub struct UpstreamSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    upstream: Arc<Upstream>,
    /// The dataset's id upstream.
    remote: String,
    info: DatasetInfo,
    binary: bool,
    /// The upstream's `maxRequestDuration`: no piece is longer.
    max_piece: Option<Nanos>,
    dates: Mutex<Dates>,
}

#[derive(Debug)]
struct Dates {
    extent: Extent,
    read: Instant,
    /// How long after `read` the next read is due: `refresh`, or less after failures.
    wait: Duration,
    refreshing: bool,
}

impl UpstreamSource {
    /// Dataset `remote` of `upstream`, whose `/info` is `raw`, served with `info`; `binary`
    /// says whether the upstream offers binary.
    pub fn new(
        upstream: Arc<Upstream>,
        remote: &str,
        info: DatasetInfo,
        raw: &Value,
        binary: bool,
    ) -> UpstreamSource {
        let max_piece =
            raw.get("maxRequestDuration").and_then(Value::as_str).and_then(hapi_core::duration::parse);
        let extent = extent_of(&info, raw);
        // Without dates yet (the upstream was down), the first extent read asks again.
        let wait = if extent.is_some() { upstream.refresh() } else { Duration::ZERO };
        let dates = Mutex::new(Dates { extent, read: Instant::now(), wait, refreshing: false });
        UpstreamSource {
            inner: Arc::new(Inner { upstream, remote: remote.to_owned(), info, binary, max_piece, dates }),
        }
    }
}

/// The upstream's published range as an extent: the last record where one cadence
/// (at least one time step) before `stopDate` is, so that our `stopDate` is the
/// upstream's.
fn extent_of(info: &DatasetInfo, raw: &Value) -> Extent {
    let date = |k: &str| raw.get(k).and_then(Value::as_str).and_then(|s| time::parse(s).ok());
    let (start, stop) = (date("startDate")?, date("stopDate")?);
    let step = info.cadence.unwrap_or(0).max(info.time_format.resolution());
    Some((start, stop.saturating_sub(step).max(start)))
}

impl Inner {
    /// Re-reads the upstream's dates when they are older than `refresh`, in the
    /// background: the extent is read every second and must not wait on the network.
    fn refresh_dates(self: &Arc<Self>) {
        {
            let mut d = self.dates.lock().unwrap_or_else(|e| e.into_inner());
            if d.refreshing || d.read.elapsed() < d.wait {
                return;
            }
            d.refreshing = true;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let fresh = me.upstream.info(&me.remote).await;
            let mut d = me.dates.lock().unwrap_or_else(|e| e.into_inner());
            d.refreshing = false;
            d.read = Instant::now();
            let refresh = me.upstream.refresh();
            match fresh {
                Ok(raw) => {
                    d.extent = extent_of(&me.info, &raw);
                    d.wait = refresh;
                }
                Err(e) => {
                    // Soon after a failure, then less and less often, up to `refresh`.
                    d.wait = if d.wait >= refresh { RETRY } else { (d.wait * 2).max(RETRY) }.min(refresh);
                    tracing::warn!(dataset = %me.info.id, error = %e, retry = ?d.wait, "re-reading the upstream's dates failed")
                }
            }
        });
    }

    fn failed(&self, what: impl std::fmt::Display) -> SourceError {
        SourceError::msg(
            ErrorKind::Upstream,
            format!(
                "dataset {:?}: upstream {} dataset {:?}: {what}",
                self.info.id,
                self.upstream.url(),
                self.remote
            ),
        )
    }

    async fn scan(self: Arc<Self>, request: ScanRequest) -> Result<Scan, SourceError> {
        let mut subset = self.info.clone();
        let kept = std::iter::once(0).chain(request.columns.iter().map(|&c| c + 1));
        subset.parameters = kept.map(|i| self.info.parameters[i].clone()).collect();
        let names: Vec<String> =
            subset.parameters.iter().map(|p| percent::encode_query_value(&p.name)).collect();
        let decoder = if self.binary && request.wire {
            // Records pass on whole: the re-serving costs little more than the checks.
            Decoder::Binary(BinaryDecoder::wire(&subset))
        } else if self.binary {
            Decoder::Binary(BinaryDecoder::new(&subset))
        } else {
            Decoder::Csv(CsvDecoder::owned(subset.clone(), None))
        };
        let span = request.stop.saturating_sub(request.start);
        let mut run = Run {
            span: self.max_piece.map_or(span, |m| m.min(span)).max(1),
            next: request.start,
            piece_end: request.start,
            body: None,
            header: Header::default(),
            checked: false,
            expected: subset.parameters,
            names: names.join(","),
            decoder,
            request,
            pieces: 0,
            source: self,
        };
        // The first piece is asked for now, so that its refusal comes before the first byte.
        run.open_piece().await?;
        let batches = futures::stream::unfold(Some(run), |run| async move {
            let mut run = run?;
            match run.next().await {
                Ok(Some(b)) => Some((Ok(b), Some(run))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        });
        Ok(Scan { count: Count::Unknown, batches: Batches::Async(batches.boxed()) })
    }
}

impl Source for UpstreamSource {
    /// The upstream's published dates, as last read.
    fn extent(&self) -> BoxFuture<'_, Result<Extent, SourceError>> {
        self.inner.refresh_dates();
        let extent = self.inner.dates.lock().unwrap_or_else(|e| e.into_inner()).extent;
        Box::pin(futures::future::ready(Ok(extent)))
    }

    fn scan(&self, request: ScanRequest) -> BoxFuture<'_, Result<Scan, SourceError>> {
        Box::pin(self.inner.clone().scan(request))
    }
}

#[allow(clippy::large_enum_variant, reason = "one per scan, which lives on the heap")]
enum Decoder {
    Binary(BinaryDecoder),
    Csv(CsvDecoder<'static>),
}

impl Decoder {
    fn rows(&self) -> usize {
        match self {
            Decoder::Binary(d) => d.rows(),
            Decoder::Csv(csv) => csv.rows(),
        }
    }

    fn take_batch(&mut self) -> Batch {
        match self {
            Decoder::Binary(d) => d.take_batch(),
            Decoder::Csv(csv) => csv.take_batch(),
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), String> {
        match self {
            Decoder::Binary(d) => d.push(bytes),
            Decoder::Csv(csv) => csv.push(bytes).map_err(|e| e.to_string()),
        }
    }

    /// A piece ended: it must end on a record.
    fn end_piece(&mut self) -> Result<(), String> {
        match self {
            Decoder::Binary(d) => d.finish(),
            Decoder::Csv(csv) if csv.in_line() => Err("the answer ends inside a line".to_owned()),
            Decoder::Csv(_) => Ok(()),
        }
    }

    fn format(&self) -> &'static str {
        match self {
            Decoder::Binary(_) => "binary",
            Decoder::Csv(_) => "csv",
        }
    }
}

/// One scan: the pieces asked for one after another.
struct Run {
    source: Arc<Inner>,
    request: ScanRequest,
    /// Length of the next piece.
    span: Nanos,
    /// Start of the next piece.
    next: Nanos,
    /// End of the piece being read.
    piece_end: Nanos,
    body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    header: Header,
    /// The piece's header was checked.
    checked: bool,
    /// The parameters asked for, the time first.
    expected: Vec<Parameter>,
    /// Their names, for the query.
    names: String,
    decoder: Decoder,
    pieces: u64,
}

impl Run {
    /// Asks for the next piece, halving it while the upstream answers 1408.
    async fn open_piece(&mut self) -> Result<(), SourceError> {
        let fmt = TimeFormat::YMD_NANOS;
        let mut halvings = 0;
        loop {
            let end = self.next.saturating_add(self.span).min(self.request.stop);
            let path = format!(
                "data?dataset={}&parameters={}&start={}&stop={}&format={}&include=header",
                percent::encode_query_value(&self.source.remote),
                self.names,
                time::format_string(self.next, fmt),
                time::format_string(end, fmt),
                self.decoder.format(),
            );
            match self.source.upstream.get(&path).await {
                Ok(Answer::Ok(r)) => {
                    self.body = Some(r.bytes_stream().boxed());
                    self.header = Header::default();
                    self.checked = false;
                    self.piece_end = end;
                    self.pieces += 1;
                    return Ok(());
                }
                Ok(Answer::Hapi(1201, _)) => {
                    self.body = None;
                    self.next = end;
                    self.pieces += 1;
                    return Ok(());
                }
                Ok(Answer::Hapi(1408, _)) if halvings < MAX_HALVINGS && self.span > 1 => {
                    halvings += 1;
                    self.span = (self.span / 2).max(1);
                    tracing::debug!(dataset = %self.source.info.id, span_ns = self.span, "the upstream answered 1408: asking for half");
                }
                Ok(Answer::Hapi(code, message)) => {
                    let what = format!("answered {code} {message}");
                    // Before any record the client's request is refused as upstream
                    // refused it; later it can only be a failure.
                    if self.pieces == 0 {
                        return Err(SourceError::msg(
                            ErrorKind::Refused(code),
                            format!("dataset {:?}: upstream {}", self.source.info.id, what),
                        ));
                    }
                    return Err(self.source.failed(what));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The next batch of records inside the request, `None` after the last.
    async fn next(&mut self) -> Result<Option<Batch>, SourceError> {
        loop {
            if self.decoder.rows() >= BATCH_ROWS
                && let Some(b) = self.batch()
            {
                return Ok(Some(b));
            }
            let Some(body) = self.body.as_mut() else {
                if self.next >= self.request.stop {
                    return Ok(self.batch());
                }
                self.open_piece().await?;
                continue;
            };
            match body.next().await {
                Some(Ok(chunk)) => {
                    let data = self.header.feed(&chunk);
                    if let Some(data) = data.filter(|d| !d.is_empty()) {
                        if self.header.text.is_empty() {
                            return Err(self.source.failed("it sent records without the header asked for"));
                        }
                        self.check_header()?;
                        self.decoder.push(&data).map_err(|e| self.source.failed(e))?;
                    }
                }
                Some(Err(e)) => {
                    return Err(self
                        .source
                        .failed(format!("the answer broke off: {}", crate::error_chain(&e))));
                }
                None => {
                    if self.header.unfinished() {
                        return Err(self.source.failed("the answer ends inside its header"));
                    }
                    if !self.header.text.is_empty() {
                        self.check_header()?;
                    }
                    self.decoder.end_piece().map_err(|e| self.source.failed(e))?;
                    self.body = None;
                    self.next = self.piece_end;
                }
            }
        }
    }

    /// Checks the header once per piece, before its first record.
    fn check_header(&mut self) -> Result<(), SourceError> {
        if !self.checked {
            wire::check(&self.header.text, &self.expected, self.decoder.format())
                .map_err(|e| self.source.failed(e))?;
            self.checked = true;
        }
        Ok(())
    }

    /// The records decoded so far, cut to the request (an upstream may send more).
    fn batch(&mut self) -> Option<Batch> {
        let mut b = self.decoder.take_batch();
        b.keep_times(self.request.start, self.request.stop);
        (!b.is_empty()).then_some(b)
    }
}
