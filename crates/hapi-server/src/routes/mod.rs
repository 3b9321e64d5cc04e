//! The router: which path goes to which handler, and the layers every response passes.

mod account;
mod assets;
mod credentials;
mod data;
mod dataset_page;
mod downloads;
mod health;
mod ingest;
mod landing;
mod meta;
mod metrics;
mod portal;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hapi_core::HapiStatus;
use hapi_core::status::StatusError;
use tower_http::compression::{CompressionLayer, CompressionLevel};

use crate::auth::{self, cors};

use crate::error::ApiError;
use crate::state::AppState;

/// The whole HTTP application. Tests call it without a socket.
///
/// Routes carry the prefix in their paths (rather than being nested under it), so that
/// every handler and middleware sees the path the client asked for: public paths,
/// return addresses and redirects then need no second idea of where they are.
pub fn app(state: Arc<AppState>) -> Router {
    let access = state.access.clone();
    let p = |path: &str| access.site.path(path);
    // The pages people see, with their security headers (CSP, no framing). A layer of
    // their own, so the HAPI endpoints pass no extra middleware.
    let pages: Router = Router::new()
        .route(&p("/hapi"), get(landing::page))
        .route(&p("/portal/dataset"), get(dataset_page::page))
        .route(&p("/portal/credentials"), get(credentials::page).post(credentials::submit))
        .route(&p("/portal/account"), get(account::page).post(account::submit))
        .with_state(state.clone())
        .merge(access.routes())
        .layer(middleware::map_response(page_headers));
    let mut hapi = Router::new()
        .route(&p("/hapi/about"), get(meta::about))
        .route(&p("/hapi/capabilities"), get(meta::capabilities))
        .route(&p("/hapi/catalog"), get(meta::catalog))
        .route(&p("/hapi/info"), get(meta::info))
        .route(&p("/hapi/data"), get(data::data))
        // Beside /hapi, not in it: everything under /hapi is the HAPI specification's.
        .route(&p("/ingest"), post(ingest::ingest))
        .route("/", get(root));
    if !access.site.prefix.is_empty() {
        hapi = hapi.route(&access.site.prefix, get(root));
    }
    let mut probes =
        Router::new().route(&p("/healthz"), get(health::live)).route(&p("/readyz"), get(health::ready));
    let metrics_path = p(&state.metrics_at.path);
    if state.metrics_at.public {
        probes = probes.route(&metrics_path, get(metrics::render));
    } else {
        hapi = hapi.route(&metrics_path, get(metrics::render));
    }
    // The client tools are public too, like SWE's portal downloads.
    for name in downloads::names() {
        probes = probes.route(
            &p(&format!("/downloads/{name}")),
            get(move |st: State<Arc<AppState>>| downloads::serve(st, name)),
        );
    }
    // The portal's stylesheet and scripts: public, like the login form that uses them.
    for name in assets::names() {
        probes =
            probes.route(&p(&format!("{}/{name}", crate::html::ASSETS)), get(move || assets::serve(name)));
    }
    let probes: Router = probes.with_state(state.clone());
    let registry = state.metrics.clone();
    hapi.with_state(state)
        .merge(pages)
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(access.clone(), auth::authenticate))
        // Probes and downloads are public: merged after the auth layer, which covers only the routes above.
        .merge(probes)
        .layer(middleware::from_fn(crate::conditional::revalidate))
        // The default gzip level is ~22x slower than the stream (notes/stack.md): use the fastest.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest).no_br().no_deflate())
        .layer(middleware::from_fn_with_state(access, cors::cors))
        .layer(middleware::from_fn_with_state(registry, crate::metrics::track))
        // Outermost, so that every response has an id and every log line its span.
        .layer(middleware::from_fn(crate::request_id::assign))
}

/// The security headers of a page (`html::page_headers`).
async fn page_headers(mut r: Response) -> Response {
    crate::html::page_headers(r.headers_mut());
    r
}

/// `/` (and the bare prefix) sends people to the landing page.
async fn root(State(st): State<Arc<AppState>>) -> Response {
    redirect(StatusCode::FOUND, &st.access.site.path("/hapi"))
}

/// Anything else: a trailing slash is redirected without it (REQ-004, query kept);
/// every other path is HAPI 1400 (REQ-006); methods other than GET/HEAD get 405.
async fn fallback(req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = StatusCode::METHOD_NOT_ALLOWED.into_response();
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let uri = req.uri();
    let path = uri.path();
    if path.len() > 1 && path.ends_with('/') {
        let mut target = path.trim_end_matches('/').to_owned();
        if target.is_empty() {
            target.push('/');
        }
        if let Some(q) = uri.query() {
            target.push('?');
            target.push_str(q);
        }
        // `//evil.example/` must not become `//evil.example`, another host to a browser.
        if crate::urls::is_local_path(&target) {
            return redirect(StatusCode::MOVED_PERMANENTLY, &target);
        }
    }
    ApiError(StatusError::with(HapiStatus::BadRequest, "no such endpoint; see /hapi for the list"))
        .into_response()
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}
