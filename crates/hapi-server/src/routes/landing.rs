//! `/hapi`: the human landing page (REQ-003, REQ-030).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hapi_core::percent::encode_query_value as url_component;
use hapi_core::{HAPI_VERSION, request};
use serde_json::Value;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::html::esc;
use crate::state::{AppState, fmt_time};

/// The page: what the server is, its endpoints, and the catalog with working links.
pub(crate) async fn page(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    request::no_params(&request::parse_query(q.as_deref().unwrap_or(""))?)?;
    let site = &st.access.site;
    let base = esc(&site.path("/hapi"));
    let text = |k: &str| st.about.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let title = esc(&text("title"));
    let mut h = String::with_capacity(8192);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}code{{background:#eee}}\
td,th{{padding:.2em .6em;text-align:left;vertical-align:top}}</style></head><body>\n\
<h1>{title}</h1>\n<p>{desc}</p>\n\
<p>This is a <a href=\"https://hapi-server.org/\">HAPI</a> server implementing version {HAPI_VERSION} of the \
<a href=\"https://github.com/hapi-server/data-specification\">HAPI data access specification</a>. \
Server id <code>{id}</code>; contact: {contact}.</p>\n\
<h2>Endpoints</h2>\n<ul>\n\
<li><a href=\"{base}/about\">{base}/about</a>: server description</li>\n\
<li><a href=\"{base}/capabilities\">{base}/capabilities</a>: output formats (csv, binary, json)</li>\n\
<li><a href=\"{base}/catalog\">{base}/catalog</a>: the datasets (<a href=\"{base}/catalog?depth=all\">with their info</a>)</li>\n\
<li><code>{base}/info?dataset=ID[&amp;parameters=P1,P2]</code>: a dataset's parameters</li>\n\
<li><code>{base}/data?dataset=ID&amp;start=T1&amp;stop=T2[&amp;parameters=..][&amp;format=csv|binary|json][&amp;include=header]</code>: the records</li>\n\
</ul>\n<h2>Catalog</h2>\n<table><tr><th>dataset</th><th>title</th><th>range</th><th>links</th></tr>\n",
        desc = esc(&text("description")),
        id = esc(&text("id")),
        contact = esc(&text("contact")),
    );
    for v in st.visible(&caller) {
        let d = st.of(&v);
        let info = &d.spec.info;
        let fmt = info.time_format;
        let id = url_component(&info.id);
        let sample = match v.sample {
            Some((a, b)) => {
                let (s, e) = (fmt_time(a, fmt), fmt_time(b, fmt));
                format!(
                    " <a href=\"{base}/data?dataset={id}&amp;start={s}&amp;stop={e}\">sample data</a> \
(<a href=\"{base}/data?dataset={id}&amp;start={s}&amp;stop={e}&amp;format=json\">json</a>)"
                )
            }
            None => String::new(),
        };
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{} to {}</td><td><a href=\"{base}/info?dataset={id}\">info</a>{sample}</td></tr>",
            esc(&info.id),
            esc(&d.spec.title),
            fmt_time(v.dates.start, fmt),
            fmt_time(v.dates.stop, fmt),
        );
    }
    h.push_str("</table>\n<h2>Client tools</h2>\n<ul>\n");
    // Public downloads with this server filled in as their default (routes/downloads.rs).
    for name in super::downloads::names() {
        let what = match name {
            "get_hapi_access_token.sh" => "fetch an access token (bash and curl)",
            "get_hapi_access_token.py" => "fetch an access token (Python 3, standard library)",
            _ => "a Python client: tokens handled, any range fetched, data as numpy or pandas",
        };
        let _ = writeln!(
            h,
            "<li><a href=\"{0}\">{1}</a>: {what}</li>",
            esc(&site.path(&format!("/downloads/{name}"))),
            esc(name)
        );
    }
    h.push_str("</ul>\n");
    if let Some(id) = &caller.0 {
        let _ = writeln!(
            h,
            "<p>Logged in as <code>{}</code>. <a href=\"{}\">Log out</a></p>",
            esc(&id.subject),
            esc(&site.path("/auth/logout"))
        );
    }
    h.push_str("</body></html>\n");
    let mut r = h.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    Ok(r)
}
