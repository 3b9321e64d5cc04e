//! `POST {prefix}/ingest?dataset=ID`: HAPI csv (plain or gzip) appended to a dataset of
//! the embedded store, all or nothing, by a bearer token with the dataset's ingest role.
//!
//! The body is read from the socket on the runtime and decoded one 128 KiB piece at a
//! time on a blocking thread ([`Upload`]), so a slow sender holds no thread and only
//! the decoded records are kept; then one append commits them, in the dataset's
//! writers' queue ([`AppState::write`]). Order of checks: the query, the dataset as the
//! caller sees it (one they may not read is unknown: 1406, as everywhere), a dataset of
//! the embedded store, an ingest role configured for it, a bearer token, the role, no
//! embargo on the caller, the body. Every request leaves one
//! audit line and counts in `hapi_ingest_total{outcome}`.

use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hapi_core::{HapiStatus, StatusError, request, time};
use serde_json::{Map, Value};

use crate::auth::{ByToken, Caller, Denied};
use crate::config::SourceSpec;
use crate::error::{ApiError, mark};
use crate::ingest::{self, Encoding, IngestError, Upload};
use crate::request_id::RequestId;
use crate::state::AppState;

/// Bytes collected from the socket before one decoding task runs.
const PIECE: usize = 128 * 1024;

/// How a request ended, for the audit line and the metric label (fixed words).
struct Refused {
    /// Boxed: a response is large, and this is the error of every step.
    response: Box<Response>,
    outcome: &'static str,
    detail: String,
}

impl Refused {
    /// A HAPI 1400 body with `detail`, under HTTP `http`.
    fn bad(http: StatusCode, outcome: &'static str, detail: impl Into<String>) -> Refused {
        let detail = detail.into();
        let e = StatusError::with(HapiStatus::BadRequest, detail.clone());
        let mut response = (http, crate::error::status_body(&e)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        mark(&mut response, HapiStatus::BadRequest);
        Refused { response: Box::new(response), outcome, detail }
    }

    fn api(e: impl Into<ApiError>, outcome: &'static str) -> Refused {
        let e: ApiError = e.into();
        let detail = e.0.message();
        Refused { response: Box::new(e.into_response()), outcome, detail }
    }

    fn internal(cause: &dyn std::fmt::Display) -> Refused {
        Refused::api(ApiError::internal(HapiStatus::Internal, cause), "error")
    }
}

impl From<IngestError> for Refused {
    fn from(e: IngestError) -> Refused {
        match &e {
            IngestError::Line(_) | IngestError::Gzip | IngestError::Empty => {
                Refused::bad(StatusCode::BAD_REQUEST, "invalid", e.to_string())
            }
            IngestError::TooLarge(_) => {
                Refused::bad(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
            }
            IngestError::Overtaken { .. } => Refused::bad(StatusCode::CONFLICT, "conflict", e.to_string()),
            IngestError::Store(_) | IngestError::Task(_) => Refused::internal(&e),
        }
    }
}

/// What one request did, for its audit line.
struct Audit {
    dataset: String,
    records: u64,
    bytes: u64,
}

/// `POST {prefix}/ingest`.
pub(crate) async fn ingest(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(request_id): Extension<RequestId>,
    by_token: Option<Extension<ByToken>>,
    RawQuery(q): RawQuery,
    req: Request,
) -> Response {
    let t0 = Instant::now();
    let mut audit = Audit { dataset: String::new(), records: 0, bytes: 0 };
    let result = run(&st, &caller, by_token.is_some(), q.as_deref(), req, &mut audit).await;
    let (response, outcome, detail) = match result {
        Ok(r) => (r, "ok", String::new()),
        Err(r) => (*r.response, r.outcome, r.detail),
    };
    st.metrics.ingested(outcome, audit.records);
    tracing::info!(
        target: "audit",
        request_id = request_id.as_str(),
        // Debug quotes and escapes what the request supplied: no forged log lines.
        who = ?caller.who(),
        client = ?caller.client(),
        endpoint = "ingest",
        dataset = ?audit.dataset,
        records = audit.records,
        bytes = audit.bytes,
        outcome,
        status = response.status().as_u16(),
        error = ?detail,
        ms = t0.elapsed().as_millis() as u64,
    );
    response
}

async fn run(
    st: &Arc<AppState>,
    caller: &Caller,
    by_token: bool,
    q: Option<&str>,
    req: Request,
    audit: &mut Audit,
) -> Result<Response, Refused> {
    let id = dataset_param(q.unwrap_or("")).map_err(|e| Refused::api(e, "invalid"))?;
    audit.dataset.clone_from(&id);
    // A dataset the caller may not read answers exactly like one that does not exist.
    let view = st.view(caller, &id).ok_or_else(|| Refused::api(HapiStatus::UnknownDataset, "not_found"))?;
    let d = st.of(&view);
    if let Some(kind) = other_source(&d.spec.source) {
        return Err(Refused::bad(
            StatusCode::BAD_REQUEST,
            "unsupported",
            format!("this dataset is read from {kind}, not the embedded store: append its records there"),
        ));
    }
    let Some(role) = d.spec.ingest_role.as_deref() else {
        return Err(Refused::bad(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this dataset takes no appends over HTTP (no ingest role is configured for it)",
        ));
    };
    let Some(who) = caller.identity() else {
        let response = Box::new(Denied::Missing.into_response());
        return Err(Refused { response, outcome: "unauthenticated", detail: "no credentials".to_owned() });
    };
    if !by_token {
        return Err(Refused::bad(
            StatusCode::FORBIDDEN,
            "forbidden",
            "ingest takes a bearer token in the Authorization header, not a browser session",
        ));
    }
    if !who.has_role(role) {
        return Err(Refused::bad(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this caller may not append to this dataset (it needs the dataset's ingest role)",
        ));
    }
    // A writer sees what it writes after: under an embargo, the refusal of a record
    // before the last stored one would tell that record's hidden time.
    if view.embargoed {
        return Err(Refused::bad(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this caller reads this dataset under an embargo; ingest needs the whole dataset (the embargo's role)",
        ));
    }
    let encoding = encoding(req.headers())?;
    let limit = st.ingest_max_bytes;
    let length = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if length.is_some_and(|n| n > limit) {
        return Err(IngestError::TooLarge(limit).into());
    }
    let info = d.spec.info.clone();
    let store = st.store.clone();
    let key = id.clone();
    let after = tokio::task::spawn_blocking(move || store.extent(&key))
        .await
        .map_err(|e| Refused::internal(&e))?
        .map_err(|e| Refused::internal(&e))?
        .map(|(_, last)| last);
    let fmt = info.time_format;
    let upload = Upload::new(info, after, encoding, limit);
    let records = receive(st, req.into_body(), upload, limit, audit).await?;
    let (first, last) = (records.first, records.last);
    let key = id.clone();
    let n = st.write(&id, move |store| ingest::append(store, &key, records)).await?;
    audit.records = n;
    let mut body = Map::new();
    body.insert("dataset".to_owned(), Value::String(id));
    body.insert("records".to_owned(), Value::from(n));
    body.insert("first".to_owned(), Value::String(time::format_string(first, fmt)));
    body.insert("last".to_owned(), Value::String(time::format_string(last, fmt)));
    let mut r = (StatusCode::OK, crate::envelope::ok(body)).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    mark(&mut r, HapiStatus::Ok);
    Ok(r)
}

/// Reads the body as it arrives and decodes it piece by piece on blocking threads.
async fn receive(
    st: &AppState,
    body: Body,
    mut upload: Upload,
    limit: u64,
    audit: &mut Audit,
) -> Result<ingest::Records, Refused> {
    let mut frames = body.into_data_stream();
    let mut piece = Vec::with_capacity(PIECE);
    loop {
        // A sender that stops for as long as a reader may stall is dropped.
        let next = tokio::time::timeout(st.server.send_timeout, frames.next()).await;
        let frame = match next {
            Err(_) => {
                return Err(Refused::bad(
                    StatusCode::REQUEST_TIMEOUT,
                    "aborted",
                    "the body stopped arriving",
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                return Err(Refused::bad(StatusCode::BAD_REQUEST, "aborted", "the body was cut off"));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        audit.bytes += frame.len() as u64;
        // Compressed bytes count too: gzip never makes csv larger by much.
        if audit.bytes > limit {
            return Err(IngestError::TooLarge(limit).into());
        }
        piece.extend_from_slice(&frame);
        if piece.len() >= PIECE {
            (upload, piece) = decode(upload, piece).await?;
        }
    }
    if !piece.is_empty() {
        (upload, _) = decode(upload, piece).await?;
    }
    let records = tokio::task::spawn_blocking(move || upload.finish()).await.map_err(IngestError::from)??;
    Ok(records)
}

/// One piece through the decoder, on a blocking thread; the emptied buffer comes back.
async fn decode(mut upload: Upload, mut piece: Vec<u8>) -> Result<(Upload, Vec<u8>), Refused> {
    let (upload, piece, result) = tokio::task::spawn_blocking(move || {
        let result = upload.feed(&piece);
        piece.clear();
        (upload, piece, result)
    })
    .await
    .map_err(IngestError::from)?;
    result?;
    Ok((upload, piece))
}

/// The one `dataset` of the query: another name is 1401, a repeat or none 1400.
fn dataset_param(q: &str) -> Result<String, StatusError> {
    let mut dataset = None;
    for (name, value) in request::parse_query(q)? {
        if name != "dataset" {
            return Err(StatusError::with(HapiStatus::UnknownApiParameter, "ingest takes only `dataset`"));
        }
        if dataset.replace(value).is_some() {
            return Err(StatusError::with(HapiStatus::BadRequest, "`dataset` is given twice"));
        }
    }
    match dataset {
        Some(d) if !d.is_empty() => Ok(d),
        _ => Err(StatusError::with(HapiStatus::BadRequest, "`dataset` is missing")),
    }
}

/// What a dataset is read from when it is not the embedded store.
fn other_source(s: &SourceSpec) -> Option<&'static str> {
    match s {
        SourceSpec::Embedded => None,
        SourceSpec::Files(_) => Some("granule files"),
        SourceSpec::Command(_) => Some("a reader program"),
        SourceSpec::Hapi { .. } => Some("another HAPI server"),
    }
}

/// `Content-Encoding`: none, `identity` or `gzip`; anything else is 415.
fn encoding(h: &HeaderMap) -> Result<Encoding, Refused> {
    let Some(v) = h.get(header::CONTENT_ENCODING) else { return Ok(Encoding::Identity) };
    let v = v.to_str().unwrap_or("").trim();
    if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") {
        Ok(Encoding::Gzip)
    } else if v.eq_ignore_ascii_case("identity") {
        Ok(Encoding::Identity)
    } else {
        Err(Refused::bad(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid",
            "Content-Encoding must be gzip or none",
        ))
    }
}
