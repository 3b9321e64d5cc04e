//! The router: which path goes to which handler, and the layers every response passes.

mod data;
pub(crate) mod landing;
mod meta;

pub(crate) use meta::ok_json_bytes;

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

use crate::auth::{self, browser, cors, issuer_routes};

use crate::error::ApiError;
use crate::state::AppState;

/// The whole HTTP application. Tests call it without a socket.
pub fn app(state: Arc<AppState>) -> Router {
    let hapi: Router = Router::new()
        .route("/hapi", get(landing::page))
        .route("/hapi/about", get(meta::about))
        .route("/hapi/capabilities", get(meta::capabilities))
        .route("/hapi/catalog", get(meta::catalog))
        .route("/hapi/info", get(meta::info))
        .route("/hapi/data", get(data::data))
        .route("/", get(root))
        .route("/auth/login", get(browser::login_page).post(browser::login_submit))
        .route("/auth/callback", get(browser::callback))
        .route("/auth/logout", get(browser::logout))
        .route("/oauth/token", post(issuer_routes::token))
        .route("/oauth/jwks", get(issuer_routes::jwks))
        .route("/.well-known/openid-configuration", get(issuer_routes::discovery))
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .with_state(state.clone());
    let router = if state.prefix.is_empty() {
        hapi
    } else {
        Router::new().nest(&state.prefix.clone(), hapi).fallback(fallback)
    };
    router
        // The default gzip level is ~22x slower than the stream (notes/stack.md): use the fastest.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest).no_br().no_deflate())
        .layer(middleware::from_fn_with_state(state, cors::cors))
}

/// `/` sends people to the landing page.
async fn root(State(st): State<Arc<AppState>>) -> Response {
    redirect(StatusCode::FOUND, &format!("{}/hapi", st.prefix))
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
