//! The metadata endpoints: `/about`, `/capabilities`, `/catalog` and `/info`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hapi_core::encode::Format;
use hapi_core::{HapiStatus, request};
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, mark};
use crate::request_id::RequestId;
use crate::state::AppState;

/// A 1200 JSON response with `Last-Modified`, an `ETag` of its bytes (callers who see
/// different documents get different tags) and `Vary` on the credentials.
pub(crate) fn ok_json(body: Map<String, Value>, modified: SystemTime) -> Response {
    json_response(Bytes::from(crate::envelope::ok(body)), modified)
}

fn json_response(bytes: Bytes, modified: SystemTime) -> Response {
    let mut r = bytes.clone().into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(header::ETAG, crate::conditional::etag(&bytes[..]));
    h.insert(header::VARY, crate::conditional::VARY_CALLER);
    mark(&mut r, HapiStatus::Ok);
    r
}

fn pairs(q: Option<String>) -> Result<Vec<(String, String)>, ApiError> {
    Ok(request::parse_query(q.as_deref().unwrap_or(""))?)
}

/// `/hapi/about`.
/// `dataTest` is the caller's own (see [`AppState::about`]).
pub(crate) async fn about(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    request::no_params(&pairs(q)?)?;
    Ok(ok_json(st.about(&caller), st.loaded))
}

/// `/hapi/capabilities`.
pub(crate) async fn capabilities(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    request::no_params(&pairs(q)?)?;
    let formats: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
    let mut m = Map::new();
    m.insert("outputFormats".to_owned(), json!(formats));
    m.insert("catalogDepthOptions".to_owned(), json!(["dataset", "all"]));
    Ok(ok_json(m, st.loaded))
}

/// `/hapi/catalog`, with `depth=all` embedding every info (REQ-062). Lists only what
/// the caller may read.
pub(crate) async fn catalog(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let req = request::catalog(&pairs(q)?)?;
    let mut modified = st.loaded;
    let items: Vec<Value> = st
        .visible(&caller)
        .map(|v| {
            let d = st.of(&v);
            let mut item = Map::new();
            item.insert("id".to_owned(), Value::String(d.spec.info.id.clone()));
            item.insert("title".to_owned(), Value::String(d.spec.title.clone()));
            if req.depth_all {
                let all: Vec<usize> = (0..d.spec.info.parameters.len()).collect();
                item.insert("info".to_owned(), Value::Object(st.info_json(&v, &all, req.resolve)));
                modified = modified.max(st.modified(&v));
            }
            Value::Object(item)
        })
        .collect();
    let mut m = Map::new();
    m.insert("catalog".to_owned(), Value::Array(items));
    Ok(ok_json(m, modified))
}

/// `/hapi/info`. The full, resolved document is served from a cache that is rebuilt
/// when the dataset's extent changes: it is by far the most frequent request.
pub(crate) async fn info(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(id): Extension<RequestId>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let t = std::time::Instant::now();
    let mut dataset = String::new();
    let result = info_response(&st, &caller, q, &mut dataset);
    let status = match &result {
        Ok(_) => HapiStatus::Ok.code(),
        Err(e) => e.0.status.code(),
    };
    tracing::info!(
        target: "audit",
        request_id = id.as_str(),
        who = ?caller.who(),
        client = ?caller.client(),
        endpoint = "info",
        dataset = ?dataset,
        status,
        us = t.elapsed().as_micros() as u64,
    );
    result
}

fn info_response(
    st: &AppState,
    caller: &Caller,
    q: Option<String>,
    dataset: &mut String,
) -> Result<Response, ApiError> {
    let req = request::info(&pairs(q)?)?;
    dataset.clone_from(&req.dataset);
    let v = st.view(caller, &req.dataset).ok_or(HapiStatus::UnknownDataset)?;
    let info = &st.of(&v).spec.info;
    let selection = info.select(req.parameters.as_deref())?;
    if req.resolve && selection.len() == info.parameters.len() {
        return Ok(json_response(st.full_info(&v), st.modified(&v)));
    }
    Ok(ok_json(st.info_json(&v, &selection, req.resolve), st.modified(&v)))
}
