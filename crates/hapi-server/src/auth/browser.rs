//! Browser login: the OIDC authorization-code flow with PKCE, `state` and `nonce`
//! against the external provider, or a login form for local accounts of the built-in
//! issuer; both end in a session cookie. Logout ends it.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::Denied;
use super::session::{LOGIN, SESSION};
use crate::config::AuthMode;
use crate::routes::landing::{esc, url_component};
use crate::state::AppState;

/// What a login in progress remembers between the redirect out and the callback.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    return_to: String,
}

/// Sends a browser without a session to the login (or refuses a script).
pub fn to_login(st: &AppState, uri: &Uri) -> Response {
    let can_login = match st.auth.mode {
        AuthMode::Builtin => st.auth.issuer.is_some(),
        AuthMode::Oidc => st.auth.oidc_client.is_some(),
        AuthMode::Open => false,
    };
    if !can_login {
        return Denied::Missing.into_response();
    }
    let back = uri.path_and_query().map_or("/", |p| p.as_str());
    redirect(&format!("{}/auth/login?return_to={}", st.prefix, url_component(back)))
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Only local paths: a login must never redirect elsewhere (open redirect).
fn safe_return(st: &AppState, to: Option<&str>) -> String {
    match to {
        Some(t) if crate::urls::is_local_path(t) => t.to_owned(),
        _ => format!("{}/hapi", st.prefix),
    }
}

fn random_token() -> Option<String> {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).ok()?;
    Some(URL_SAFE_NO_PAD.encode(b))
}

/// `?return_to=`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    error: Option<String>,
}

/// `GET /auth/login`: to the provider, or the local login form.
pub async fn login_page(State(st): State<Arc<AppState>>, Query(q): Query<LoginQuery>) -> Response {
    let return_to = safe_return(&st, q.return_to.as_deref());
    match st.auth.mode {
        AuthMode::Oidc => start_oidc(&st, return_to),
        AuthMode::Builtin => login_form(&st, &return_to, q.error.is_some()),
        AuthMode::Open => redirect(&return_to),
    }
}

fn start_oidc(st: &AppState, return_to: String) -> Response {
    let auth = &st.auth;
    let (Some(client), Some(sessions), Some(v)) = (&auth.oidc_client, &auth.sessions, &auth.validator) else {
        return Denied::Missing.into_response();
    };
    let Some(endpoint) = v.discovery().and_then(|d| d["authorization_endpoint"].as_str()) else {
        return (StatusCode::BAD_GATEWAY, "the provider has no authorization endpoint").into_response();
    };
    let (Some(state), Some(nonce), Some(verifier)) = (random_token(), random_token(), random_token()) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let challenge =
        URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()));
    let scope = match &v.config().required_scope {
        Some(s) => format!("openid {s}"),
        None => "openid".to_owned(),
    };
    let url = format!(
        "{endpoint}?response_type=code&client_id={}&redirect_uri={}&scope={}&state={state}&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
        url_component(&client.client_id),
        url_component(&callback_url(st)),
        url_component(&scope),
    );
    let pending = Pending { state, nonce, verifier, return_to };
    let mut r = redirect(&url);
    if let Some(c) = sessions.seal(LOGIN, &pending, 600) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

fn callback_url(st: &AppState) -> String {
    format!("{}{}/auth/callback", st.auth.public_url, st.prefix)
}

/// `?code=&state=` from the provider.
#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    id_token: Option<String>,
}

/// `GET /auth/callback`: checks `state`, exchanges the code (with the PKCE verifier),
/// checks the ID token's `nonce` and the access token, and starts the session.
pub async fn callback(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(cb): Query<Callback>,
) -> Response {
    let auth = &st.auth;
    let (Some(client), Some(sessions), Some(v)) = (&auth.oidc_client, &auth.sessions, &auth.validator) else {
        return Denied::Missing.into_response();
    };
    let fail = |why: &str| -> Response {
        tracing::warn!(reason = why, "browser login failed");
        let mut r = (StatusCode::UNAUTHORIZED, Html(page("Login failed", &format!("<p>{}</p>", esc(why)))))
            .into_response();
        if let Some(c) = sessions.clear(LOGIN) {
            r.headers_mut().append(header::SET_COOKIE, c);
        }
        r
    };
    let Some(pending) = sessions.open_cookie::<Pending>(&headers, LOGIN) else {
        return fail("the login expired or did not start here; try again");
    };
    if cb.error.is_some() {
        return fail("the identity provider refused the login");
    }
    let (Some(code), Some(state)) = (cb.code, cb.state) else { return fail("the provider sent no code") };
    if state != pending.state {
        return fail("state does not match");
    }
    let Some(token_endpoint) = v.discovery().and_then(|d| d["token_endpoint"].as_str()) else {
        return fail("the provider has no token endpoint");
    };
    let Ok(http) = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
    else {
        return fail("no HTTP client");
    };
    let answer = http
        .post(token_endpoint)
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", callback_url(&st).as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ])
        .send()
        .await;
    let tokens: TokenAnswer = match answer {
        Ok(r) if r.status().is_success() => match r.json().await {
            Ok(t) => t,
            Err(_) => return fail("the provider's token answer is not valid"),
        },
        _ => return fail("the provider refused the code"),
    };
    let Some(id_token) = tokens.id_token else { return fail("the provider sent no ID token") };
    if let Err(e) = v.validate_id_token(&id_token, &client.client_id, &pending.nonce).await {
        return fail(e.description());
    }
    let mut identity = match v.validate(&tokens.access_token).await {
        Ok(id) => id,
        Err(e) => return fail(e.description()),
    };
    // The session outlives the short access token; its own lifetime is the session ttl.
    identity.expires_at = 0;
    tracing::info!(target: "audit", who = %identity.subject, event = "login", "browser login");
    let mut r = redirect(&pending.return_to);
    for c in [sessions.start(identity), sessions.clear(LOGIN)].into_iter().flatten() {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
<style>body{{font-family:sans-serif;max-width:30em;margin:3em auto}}label{{display:block;margin:.5em 0}}</style>\
</head><body><h1>{t}</h1>\n{body}\n</body></html>\n",
        t = esc(title)
    )
}

fn login_form(st: &AppState, return_to: &str, failed: bool) -> Response {
    let msg = if failed { "<p role=\"alert\">Wrong user name or password.</p>" } else { "" };
    let html = page(
        "Log in",
        &format!(
            "{msg}<form method=\"post\" action=\"{p}/auth/login\">\
<input type=\"hidden\" name=\"return_to\" value=\"{r}\">\
<label>User <input name=\"username\" autocomplete=\"username\" required></label>\
<label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
<button type=\"submit\">Log in</button></form>",
            p = st.prefix,
            r = esc(return_to)
        ),
    );
    let status = if failed { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    (status, Html(html)).into_response()
}

/// The local login form's fields.
#[derive(Deserialize)]
pub struct LocalLogin {
    username: String,
    password: String,
    return_to: Option<String>,
}

impl std::fmt::Debug for LocalLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLogin").field("username", &self.username).finish_non_exhaustive()
    }
}

/// 429 for a browser with too many failed logins.
fn too_many_logins(wait: std::time::Duration) -> Response {
    let body = page("Too many attempts", "<p>Too many failed logins. Wait a little and try again.</p>");
    let mut r = (StatusCode::TOO_MANY_REQUESTS, Html(body)).into_response();
    r.headers_mut().insert(header::RETRY_AFTER, super::throttle::retry_after(wait));
    r
}

/// `POST /auth/login`: local accounts of the built-in issuer.
pub async fn login_submit(
    State(st): State<Arc<AppState>>,
    super::throttle::PeerAddr(peer): super::throttle::PeerAddr,
    Form(f): Form<LocalLogin>,
) -> Response {
    let return_to = safe_return(&st, f.return_to.as_deref());
    let (Some(issuer), Some(sessions)) = (st.auth.issuer.clone(), &st.auth.sessions) else {
        return Denied::Missing.into_response();
    };
    let ticket = match st.auth.throttle.admit(&f.username, peer) {
        Ok(t) => t,
        Err(wait) => return too_many_logins(wait),
    };
    // Password hashing is deliberately slow: off the async workers, a few at a time.
    let lane = if ticket.trusted() { &st.auth.throttle.trusted_lane } else { &st.auth.hashing };
    let Ok(_slot) = lane.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let (name, password) = (f.username, f.password);
    let who = tokio::task::spawn_blocking(move || issuer.verify_user(&name, &password)).await.ok().flatten();
    match who {
        Some(mut identity) => {
            st.auth.throttle.succeeded(ticket);
            identity.expires_at = 0;
            tracing::info!(target: "audit", who = %identity.subject, event = "login", "local login");
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&return_to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            if let Some(c) = sessions.start(identity) {
                r.headers_mut().append(header::SET_COOKIE, c);
            }
            r
        }
        None => {
            drop(ticket);
            tracing::warn!(target: "audit", event = "login_failed", "local login refused");
            login_form(&st, &return_to, true)
        }
    }
}

/// `GET /auth/logout`: ends the session here and, with an external provider, there too
/// (OIDC RP-initiated logout), or the provider's session would log the browser straight
/// back in.
pub async fn logout(State(st): State<Arc<AppState>>) -> Response {
    let end_session = match (&st.auth.oidc_client, &st.auth.validator) {
        (Some(client), Some(v)) => v.discovery().and_then(|d| d["end_session_endpoint"].as_str()).map(|e| {
            format!(
                "{e}?client_id={}&post_logout_redirect_uri={}",
                url_component(&client.client_id),
                url_component(&format!("{}{}/hapi", st.auth.public_url, st.prefix))
            )
        }),
        _ => None,
    };
    let mut r = match end_session {
        Some(url) => redirect(&url),
        None => {
            let body = page(
                "Logged out",
                &format!(
                    "<p>Your session has ended.</p><p><a href=\"{}/auth/login\">Log in again</a></p>",
                    st.prefix
                ),
            );
            Html(body).into_response()
        }
    };
    if let Some(c) = st.auth.sessions.as_ref().and_then(|s| s.clear(SESSION)) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}
