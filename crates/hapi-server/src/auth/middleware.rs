//! The middleware that resolves the caller: a bearer token, or a browser session, or
//! nobody; and refuses requests that need credentials and have none.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hapi_auth::{Identity, Revocation, TokenError, TokenValidator};
use hapi_core::percent;

use super::{Access, Browser, ByToken, Caller, Denied, Mode};

/// What a protected mode checks credentials with.
struct Credentials<'a> {
    validator: &'a TokenValidator,
    browser: &'a Browser,
    /// Tokens are the built-in issuer's: their client must still be active.
    check_clients: bool,
    /// Browsers without a session can log in here.
    can_login: bool,
}

impl Mode {
    fn credentials(&self) -> Option<Credentials<'_>> {
        match self {
            Mode::Open => None,
            Mode::Builtin(b) => Some(Credentials {
                validator: &b.validator,
                browser: &b.browser,
                check_clients: true,
                can_login: true,
            }),
            Mode::Oidc(o) => Some(Credentials {
                validator: &o.validator,
                browser: &o.browser,
                check_clients: false,
                can_login: o.login.is_some(),
            }),
        }
    }
}

/// Paths the auth layer never guards: the issuer's and the login's own endpoints.
fn is_auth_path(path: &str, prefix: &str) -> bool {
    let p = path.strip_prefix(prefix).unwrap_or(path);
    p.starts_with("/auth/") || p.starts_with("/oauth/") || p == "/.well-known/openid-configuration"
}

/// The bearer token of `Authorization`, if that is what it holds.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Denied> {
    let Some(v) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let v = v.to_str().map_err(|_| Denied::InvalidRequest("the Authorization header is not ASCII"))?;
    let (scheme, token) = v.split_once(' ').unwrap_or((v, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Denied::InvalidRequest("the bearer token is empty"));
    }
    Ok(Some(token))
}

/// The middleware: resolves the caller, or refuses the request.
pub async fn authenticate(State(access): State<Arc<Access>>, mut req: Request, next: Next) -> Response {
    let Some(creds) = access.mode.credentials() else {
        // Open: everyone is anonymous, and the rules let anonymous read everything.
        req.extensions_mut().insert(Caller(None));
        return next.run(req).await;
    };
    if req.method() == Method::OPTIONS || is_auth_path(req.uri().path(), &access.site.prefix) {
        req.extensions_mut().insert(Caller(None));
        return next.run(req).await;
    }
    // Tokens belong in the header only (RFC 6750 §2.3 is not offered: URLs end up in logs).
    if req.uri().query().is_some_and(|q| q.split('&').any(|kv| kv.split('=').next() == Some("access_token")))
    {
        return Denied::InvalidRequest("tokens are accepted only in the Authorization header")
            .into_response();
    }
    let mut token_valid = false;
    let identity = match bearer(req.headers()) {
        Err(d) => return d.into_response(),
        Ok(Some(token)) => match creds.validator.validate_shared(token).await {
            Err(e) => return Denied::Token(e).into_response(),
            Ok(id) => {
                if creds.check_clients {
                    match client_active(&creds.browser.revocation, &id).await {
                        Ok(true) => {}
                        Ok(false) => return Denied::Token(TokenError::Revoked).into_response(),
                        Err(d) => return d.into_response(),
                    }
                }
                token_valid = true;
                Some(id)
            }
        },
        Ok(None) => match creds.browser.identity(req.headers()).await {
            Ok(id) => id,
            Err(d) => return d.into_response(),
        },
    };
    let path = req.uri().path();
    if identity.is_none() && !access.is_public(path) && !access.rules.has_anonymous() {
        if creds.can_login && wants_html(req.headers()) && req.method() == Method::GET {
            return to_login(&access, req.uri());
        }
        return Denied::Missing.into_response();
    }
    req.extensions_mut().insert(Caller(identity));
    if token_valid {
        req.extensions_mut().insert(ByToken);
    }
    let mut r = next.run(req).await;
    if token_valid {
        r.extensions_mut().insert(crate::metrics::TokenCheck::Valid);
    }
    r
}

/// Whether the built-in client of a token is still active: from memory, or from the
/// database off the async workers; [`Denied::Unavailable`] when neither can tell.
async fn client_active(revocation: &Arc<Revocation>, id: &Identity) -> Result<bool, Denied> {
    // Our tokens always name their client; one that does not is not ours.
    let Some(client) = id.client_id.clone() else { return Ok(false) };
    if let Some(active) = revocation.cached_client(&client) {
        return Ok(active);
    }
    let r = revocation.clone();
    match tokio::task::spawn_blocking(move || r.client_active(&client)).await {
        Ok(Ok(active)) => Ok(active),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "checking a client in the auth database failed");
            Err(Denied::Unavailable)
        }
        Err(_) => Err(Denied::Unavailable),
    }
}

/// Sends a browser without a session to the login, which sends it back here after.
fn to_login(access: &Access, uri: &Uri) -> Response {
    let back = uri.path_and_query().map_or("/", |p| p.as_str());
    let to = access.site.path(&format!("/auth/login?return_to={}", percent::encode_query_value(back)));
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A browser navigation (rather than a script) asks for HTML first.
fn wants_html(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.starts_with("text/html"))
}
