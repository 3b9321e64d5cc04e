//! `{prefix}/portal/dataset?id=ID`: one dataset's page. Its description, cadence and
//! coverage, every parameter, the time-range and parameter pickers, the plot, the
//! download links and the snippets.
//!
//! Rendered from the caller's `View` only: a dataset they may not read is the same
//! 404 as one that does not exist, and an embargo's hidden times appear nowhere. The
//! plot and the snippets are our script's (`assets/dataset.js`, `assets/plot.js`): it
//! reads the `/info` document embedded here (the caller's own, the one `/info`
//! serves) and fetches `/data` in binary with the session cookie, so the page holds
//! no credential; the coverage is read again from `/info` as the data grows.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hapi_core::percent;
use hapi_core::time::NANOS_PER_DAY;
use serde_json::Value;

use super::portal::{self, Nav};
use crate::auth::Caller;
use crate::html::esc;
use crate::state::{AppState, View, fmt_time};

/// The page, or a 404 page for an id the caller cannot read (or that does not exist).
pub(crate) async fn page(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> Response {
    let pairs = q.as_deref().and_then(percent::form_pairs).unwrap_or_default();
    let id = match pairs.as_slice() {
        [(k, v)] if k == "id" => v.as_str(),
        _ => return not_found(&st, &caller, "This page needs one dataset id (?id=...)."),
    };
    match st.view(&caller, id) {
        Some(v) => portal::respond(render(&st, &caller, &v)),
        None => not_found(&st, &caller, "There is no such dataset, or you may not read it."),
    }
}

fn not_found(st: &AppState, caller: &Caller, why: &str) -> Response {
    let site = &st.access.site;
    let mut h = portal::open(st, caller, "Dataset not found", Nav::Dataset);
    let _ = write!(
        h,
        "<h1>Dataset not found</h1><p role=\"alert\">{}</p><p><a href=\"{}\">All datasets</a></p>",
        esc(why),
        esc(&site.path("/hapi"))
    );
    h.push_str(&portal::close(site, "catalog.js"));
    let mut r = portal::respond(h);
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.into_response()
}

/// The range the pickers start with: the last day of a live dataset (no configured
/// `stopDate`: its coverage follows the data), else the sample range, else the first day.
fn default_range(st: &AppState, v: &View) -> (i64, i64) {
    let info = &st.of(v).spec.info;
    let d = v.dates;
    let day = |end: i64| ((end - NANOS_PER_DAY).max(d.start), end);
    match (info.stop_date, d.extent, v.sample) {
        (None, Some(_), _) => day(d.stop),
        (_, _, Some(s)) => s,
        _ => (d.start, (d.start + NANOS_PER_DAY).min(d.stop)),
    }
}

/// A JSON text made safe inside `<script type="application/json">`: `<`, `>` and `&`
/// occur in JSON only inside strings, where their `\u` escapes mean the same.
fn script_json(json: &[u8]) -> String {
    String::from_utf8_lossy(json).replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

/// A metadata value for a table cell: strings as they are, anything else as JSON.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => esc(s),
        Some(other) => esc(&other.to_string()),
    }
}

fn render(st: &AppState, caller: &Caller, v: &View) -> String {
    let site = &st.access.site;
    let d = st.of(v);
    let info = &d.spec.info;
    let fmt = info.time_format;
    let json = |k: &str| info.json.get(k).and_then(Value::as_str).unwrap_or("");
    let title = if d.spec.title.is_empty() { info.id.clone() } else { d.spec.title.clone() };
    let info_path = site.path(&format!("/hapi/info?dataset={}", percent::encode_query_value(&info.id)));
    let (start, stop) = default_range(st, v);
    let tools = super::downloads::defaults(&st.access);
    let full = st.full_info(v);
    let published: Value = serde_json::from_slice(&full).unwrap_or_default();
    let mut h = portal::open(st, caller, &title, Nav::Dataset);
    let _ = write!(
        h,
        "<h1>{t}</h1>\n<p><code>{id}</code></p>\n<p class=\"desc\">{desc}</p>\n<dl class=\"facts\">\
<dt>Cadence</dt><dd>{cadence}</dd>\
<dt>Coverage</dt><dd><span id=\"cov-start\">{cs}</span> to <span id=\"cov-stop\">{ce}</span></dd>\
<dt>Longest request</dt><dd>{maxd}</dd>\
<dt>Metadata</dt><dd><a href=\"{info}\">/info</a></dd></dl>\n",
        t = esc(&title),
        id = esc(&info.id),
        desc = esc(json("description")),
        cadence = match json("cadence") {
            "" => "not stated".to_owned(),
            c => esc(c),
        },
        cs = fmt_time(v.dates.start, fmt),
        ce = fmt_time(v.dates.stop, fmt),
        maxd = match published.get("maxRequestDuration").and_then(Value::as_str) {
            Some(m) => esc(m),
            None => "no limit".to_owned(),
        },
        info = esc(&info_path),
    );
    // The selection: the pickers, then the plot and what the script builds from it.
    let _ = write!(
        h,
        "<form id=\"selection\" class=\"selection\" data-dataset=\"{id}\" data-hapi=\"{hapi}\" data-server=\"{server}\" \
data-token-url=\"{token}\" data-scope=\"{scope}\" data-downloads=\"{dl}\">\n\
<fieldset><legend>Time range (UTC)</legend>\
<label for=\"start\">Start</label><input id=\"start\" name=\"start\" value=\"{s}\" required spellcheck=\"false\">\
<label for=\"stop\">Stop</label><input id=\"stop\" name=\"stop\" value=\"{e}\" required spellcheck=\"false\">\
</fieldset>\n",
        id = esc(&info.id),
        hapi = esc(&site.path("/hapi")),
        server = esc(&tools.server),
        token = esc(tools.token_url.as_deref().unwrap_or("")),
        scope = esc(tools.scope.as_deref().unwrap_or("")),
        dl = esc(&site.url("/downloads")),
        s = fmt_time(start, fmt),
        e = fmt_time(stop, fmt),
    );
    h.push_str(
        "<fieldset><legend>Parameters</legend><div class=\"table\"><table id=\"parameters\">\
<thead><tr><th scope=\"col\">Plot</th><th scope=\"col\">Name</th><th scope=\"col\">Type</th><th scope=\"col\">Size</th>\
<th scope=\"col\">Units</th><th scope=\"col\">Fill</th><th scope=\"col\">Description</th><th scope=\"col\">Bins</th></tr></thead><tbody>\n",
    );
    for (i, p) in info.parameters.iter().enumerate() {
        let name = esc(&p.name);
        // The time column is in every record; it is not picked.
        let pick = if i == 0 {
            "<td>time</td>".to_owned()
        } else {
            format!(
                "<td><input type=\"checkbox\" name=\"p\" value=\"{name}\" id=\"p{i}\" checked>\
<label for=\"p{i}\" class=\"sr-only\">plot {name}</label></td>"
            )
        };
        let size = if p.size.is_empty() {
            "1".to_owned()
        } else {
            p.size.iter().map(usize::to_string).collect::<Vec<_>>().join("×")
        };
        let bins = match p.json.get("bins").and_then(Value::as_array) {
            Some(bins) => bins
                .iter()
                .map(|b| {
                    let n = b.get("centers").and_then(Value::as_array).map_or(0, Vec::len);
                    format!("{} ({n}, {})", cell(b.get("name")), cell(b.get("units")))
                })
                .collect::<Vec<_>>()
                .join("; "),
            None => String::new(),
        };
        let _ = writeln!(
            h,
            "<tr>{pick}<th scope=\"row\"><code>{name}</code></th><td>{ty}</td><td>{size}</td><td>{units}</td>\
<td>{fill}</td><td>{desc}</td><td>{bins}</td></tr>",
            ty = esc(p.kind.as_str()),
            units = cell(p.json.get("units")),
            fill = p.fill.as_deref().map(esc).unwrap_or_default(),
            desc = cell(p.json.get("description")),
        );
    }
    h.push_str(
        "</tbody></table></div></fieldset>\n<button type=\"submit\">Plot</button>\n</form>\n\
<section aria-labelledby=\"plot-h\"><h2 id=\"plot-h\">Plot</h2>\n\
<div class=\"plot-tools\" role=\"group\" aria-label=\"Plot navigation\">\
<button type=\"button\" id=\"pan-left\">◀ Earlier</button><button type=\"button\" id=\"zoom-out\">Zoom out</button>\
<button type=\"button\" id=\"pan-right\">Later ▶</button><button type=\"button\" id=\"reset\">Reset</button></div>\n\
<p class=\"dim\">Drag across a plot to zoom in; the finer range is fetched again.</p>\n\
<p id=\"plot-status\" role=\"status\" aria-live=\"polite\"></p>\n<div id=\"plots\"></div>\n\
<noscript><p>The plot needs JavaScript; the downloads below work without it.</p></noscript></section>\n\
<section aria-labelledby=\"dl-h\"><h2 id=\"dl-h\">Download the selection</h2>\n<p class=\"downloads\">",
    );
    // Links for the default selection (all parameters); the script keeps them on the current one.
    for f in ["csv", "binary", "json"] {
        let href = site.path(&format!(
            "/hapi/data?dataset={}&start={}&stop={}&format={f}",
            percent::encode_query_value(&info.id),
            fmt_time(start, fmt),
            fmt_time(stop, fmt),
        ));
        let _ = write!(h, "<a class=\"button\" id=\"dl-{f}\" href=\"{}\" download>{f}</a> ", esc(&href));
    }
    h.push_str(
        "</p>\n<p class=\"dim\">One request: a range over the server's limit is refused (1408); \
the <code>hapi</code> command and the Python class below fetch any range in pieces.</p></section>\n\
<section aria-labelledby=\"snip-h\"><h2 id=\"snip-h\">Get it from a program</h2>\n<div id=\"snippets\"></div>\n\
<noscript><p>The snippets need JavaScript.</p></noscript></section>\n",
    );
    h.push_str(&portal::tools(site));
    let _ = writeln!(h, "<script type=\"application/json\" id=\"info-json\">{}</script>", script_json(&full));
    h.push_str(&portal::close(site, "dataset.js"));
    h
}

#[cfg(test)]
mod tests {
    #[test]
    fn script_json_cannot_close_the_script_element() {
        let s = super::script_json(br#"{"description":"</script><script>alert(1)</script>&"}"#);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'), "{s}");
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["description"], "</script><script>alert(1)</script>&");
    }
}
