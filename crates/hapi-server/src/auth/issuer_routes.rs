//! The built-in issuer's HTTP face: discovery, JWKS and the token endpoint, so that
//! clients use it exactly as they would use Keycloak (the seed page's curl request).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use hapi_core::percent;

use super::Builtin;
use super::throttle::{self, PeerAddr};

fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // RFC 6749 §5.1: token responses must not be cached.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /.well-known/openid-configuration`.
pub async fn discovery(State(b): State<Arc<Builtin>>) -> Response {
    let doc = b.issuer.discovery_document(&b.site.url("/oauth/token"), &b.site.url("/oauth/jwks"), None);
    json(StatusCode::OK, &doc)
}

/// `GET /oauth/jwks`.
pub async fn jwks(State(b): State<Arc<Builtin>>) -> Response {
    match serde_json::to_value(b.issuer.jwks()) {
        Ok(v) => json(StatusCode::OK, &v),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// HTTP Basic client credentials, base64-decoded and split at the first `:`; the
/// issuer undoes the form-encoding inside (RFC 6749 §2.3.1), once.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// 429 for a caller with too many failed client authentications (RFC 6749 has no
/// code for it; `slow_down` is the OAuth one for "ask less often", RFC 8628 §3.5).
fn slow_down(wait: std::time::Duration) -> Response {
    let mut r = json(
        StatusCode::TOO_MANY_REQUESTS,
        &serde_json::json!({"error": "slow_down", "error_description": "too many failed client authentications; retry later"}),
    );
    r.headers_mut().insert(header::RETRY_AFTER, throttle::retry_after(wait));
    r.extensions_mut().insert(crate::metrics::RateLimited("auth_throttle"));
    r
}

/// The client id a request authenticates as, if it carries a secret to check.
fn claimed_client<'a>(form: &'a [(String, String)], basic: Option<&'a (String, String)>) -> Option<&'a str> {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match basic {
        Some((id, _)) => Some(id),
        None => field("client_secret").map(|_| field("client_id").unwrap_or("")),
    }
}

/// `POST /oauth/token`: client_credentials only.
pub async fn token(
    State(b): State<Arc<Builtin>>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let issuer = b.issuer.clone();
    let form = std::str::from_utf8(&body).ok().and_then(percent::form_pairs);
    let Some(form) = form else {
        return json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"error": "invalid_request", "error_description": "the body is not form-urlencoded UTF-8"}),
        );
    };
    let basic = basic(&headers);
    let used_basic = basic.is_some();
    // Refused before the hash: a flood must not queue for the hashing slots.
    let ticket = match claimed_client(&form, basic.as_ref()).map(|id| b.throttle.admit(id, peer)) {
        Some(Err(wait)) => return slow_down(wait),
        Some(Ok(t)) => Some(t),
        None => None,
    };
    // Secret hashes are deliberately slow: off the async workers, a few at a time.
    let Some(_slot) = b.hash_slot(ticket.as_ref()).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let result = tokio::task::spawn_blocking(move || issuer.token(&form, basic)).await;
    if let Some(t) = ticket {
        match &result {
            Ok(Ok(_)) => b.throttle.succeeded(t),
            Ok(Err(e)) if e.error != "invalid_client" => b.throttle.refund(t),
            _ => drop(t),
        }
    }
    match result {
        Ok(Ok(v)) => json(StatusCode::OK, &v),
        Ok(Err(e)) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            let mut r = json(status, &e.body());
            if e.www_authenticate_basic || (status == StatusCode::UNAUTHORIZED && used_basic) {
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"hapi\""));
            }
            r
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
