//! `/hapi`: the human landing page (REQ-003, REQ-030) and the portal's catalog: every
//! dataset the caller may read, searchable by id, title and description (our script
//! filters the list as one types; without it, the whole list is there), each linked to
//! its dataset page (`routes/dataset_page.rs`).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use hapi_core::percent::encode_query_value as url_component;
use hapi_core::{HAPI_VERSION, request};
use serde_json::Value;

use super::portal::{self, Nav};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::html::esc;
use crate::state::{AppState, fmt_time};

/// The page: what the server is, the catalog with its search, the endpoints and the
/// client tools.
pub(crate) async fn page(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    request::no_params(&request::parse_query(q.as_deref().unwrap_or(""))?)?;
    let site = &st.access.site;
    let base = esc(&site.path("/hapi"));
    let text = |k: &str| st.about.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let title = text("title");
    let mut h = String::with_capacity(16384);
    h.push_str(&portal::open(&st, &caller, &title, Nav::Catalog));
    let _ = write!(
        h,
        "<h1>{t}</h1>\n<p>{desc}</p>\n\
<p>This is a <a href=\"https://hapi-server.org/\">HAPI</a> server implementing version {HAPI_VERSION} of the \
<a href=\"https://github.com/hapi-server/data-specification\">HAPI data access specification</a>. \
Server id <code>{id}</code>; contact: {contact}.</p>\n\
<section aria-labelledby=\"catalog-h\"><h2 id=\"catalog-h\">Datasets</h2>\n\
<form role=\"search\" class=\"search\" id=\"search-form\"><label for=\"search\">Search by id, title or description</label>\
<input id=\"search\" name=\"q\" type=\"search\" autocomplete=\"off\" aria-controls=\"catalog\"></form>\n\
<p id=\"search-count\" role=\"status\" aria-live=\"polite\"></p>\n<ul id=\"catalog\" class=\"catalog\">\n",
        t = esc(&title),
        desc = esc(&text("description")),
        id = esc(&text("id")),
        contact = esc(&text("contact")),
    );
    for v in st.visible(&caller) {
        let d = st.of(&v);
        let info = &d.spec.info;
        let fmt = info.time_format;
        let description = info.json.get("description").and_then(Value::as_str).unwrap_or("");
        // What the search matches, lower-cased once here rather than in the script.
        let haystack = format!("{}\n{}\n{}", info.id, d.spec.title, description).to_lowercase();
        // The HAPI links too (REQ-030): the info, and the sample range as csv and json.
        let q = url_component(&info.id);
        let mut links = format!("<a href=\"{base}/info?dataset={q}\">info</a>");
        if let Some((a, b)) = v.sample {
            let (a, b) = (fmt_time(a, fmt), fmt_time(b, fmt));
            let _ = write!(
                links,
                " · <a href=\"{base}/data?dataset={q}&amp;start={a}&amp;stop={b}\">sample data</a> \
(<a href=\"{base}/data?dataset={q}&amp;start={a}&amp;stop={b}&amp;format=json\">json</a>)"
            );
        }
        let _ = writeln!(
            h,
            "<li data-search=\"{hay}\"><a href=\"{page}\"><code>{id}</code></a> {title}\
<br><span class=\"dim\">{start} to {stop}</span> <span class=\"links\">{links}</span><p class=\"desc\">{desc}</p></li>",
            hay = esc(&haystack),
            page = esc(&portal::dataset_path(site, &info.id)),
            id = esc(&info.id),
            title = esc(&d.spec.title),
            start = fmt_time(v.dates.start, fmt),
            stop = fmt_time(v.dates.stop, fmt),
            desc = esc(description),
        );
    }
    let _ = write!(
        h,
        "</ul></section>\n<section aria-labelledby=\"endpoints-h\"><h2 id=\"endpoints-h\">Endpoints</h2>\n<ul>\n\
<li><a href=\"{base}/about\">{base}/about</a>: server description</li>\n\
<li><a href=\"{base}/capabilities\">{base}/capabilities</a>: output formats (csv, binary, json)</li>\n\
<li><a href=\"{base}/catalog\">{base}/catalog</a>: the datasets (<a href=\"{base}/catalog?depth=all\">with their info</a>)</li>\n\
<li><code>{base}/info?dataset=ID[&amp;parameters=P1,P2]</code>: a dataset's parameters</li>\n\
<li><code>{base}/data?dataset=ID&amp;start=T1&amp;stop=T2[&amp;parameters=..][&amp;format=csv|binary|json][&amp;include=header]</code>: the records</li>\n\
</ul></section>\n"
    );
    h.push_str(&portal::tools(site));
    h.push_str(&portal::close(site, "catalog.js"));
    Ok(portal::respond(h))
}
