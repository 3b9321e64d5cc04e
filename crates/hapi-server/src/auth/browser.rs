//! Browser login: the OIDC authorization-code flow with PKCE, `state` and `nonce`
//! against the external provider, or a login form for local accounts of the built-in
//! issuer; both end in a session cookie. Logout ends it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hapi_auth::LoginRefused;
use hapi_core::percent::{self, encode as url_component};
use serde::{Deserialize, Serialize};

use super::csrf::{self, FormToken};
use super::session::{LOGIN, Sessions};
use super::{Builtin, Oidc, Site};
use crate::html::{esc, page};

/// What a login in progress remembers between the redirect out and the callback.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    return_to: String,
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Only local paths: a login must never redirect elsewhere (open redirect).
fn safe_return(site: &Site, to: Option<&str>) -> String {
    match to {
        Some(t) if crate::urls::is_local_path(t) => t.to_owned(),
        _ => site.path("/hapi"),
    }
}

pub(super) fn random_token() -> Option<String> {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).ok()?;
    Some(URL_SAFE_NO_PAD.encode(b))
}

/// The form-encoded pairs of a query or body (the workspace's one decoder); a
/// malformed one counts as empty.
pub(super) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(super) fn of(text: Option<&str>) -> Fields {
        Fields(text.and_then(percent::form_pairs).unwrap_or_default())
    }

    /// The first value of `name`.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub(super) fn take(&mut self, name: &str) -> Option<String> {
        let i = self.0.iter().position(|(k, _)| k == name)?;
        Some(self.0.swap_remove(i).1)
    }
}

/// `GET /auth/login` with the built-in issuer: the local login form.
pub async fn login_form(
    State(b): State<Arc<Builtin>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Fields::of(q.as_deref());
    let return_to = safe_return(&b.site, q.get("return_to"));
    form(&b, &headers, &return_to, None)
}

/// `GET /auth/login` with an external provider: off to its authorization endpoint.
pub async fn login_oidc(State(o): State<Arc<Oidc>>, RawQuery(q): RawQuery) -> Response {
    let return_to = safe_return(&o.site, Fields::of(q.as_deref()).get("return_to"));
    let Some(client) = &o.login else { return super::Denied::Missing.into_response() };
    let v = &o.validator;
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
        url_component(&o.site.url("/auth/callback")),
        url_component(&scope),
    );
    let pending = Pending { state, nonce, verifier, return_to };
    let mut r = redirect(&url);
    if let Some(c) = o.browser.cookies.seal(LOGIN, &pending, 600) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    id_token: Option<String>,
}

/// `GET /auth/callback`: checks `state`, exchanges the code (with the PKCE verifier),
/// checks the ID token's `nonce` and the access token, and starts the session.
pub async fn callback(State(o): State<Arc<Oidc>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let mut cb = Fields::of(q.as_deref());
    let Some(client) = &o.login else { return super::Denied::Missing.into_response() };
    let (sessions, v) = (&o.browser.cookies, &o.validator);
    let fail = |why: &str| -> Response {
        tracing::warn!(reason = why, "browser login failed");
        let mut r = (
            StatusCode::UNAUTHORIZED,
            Html(page("Login failed", &format!("<p>{}</p>", esc(why)), &o.site.prefix)),
        )
            .into_response();
        if let Some(c) = sessions.clear(LOGIN) {
            r.headers_mut().append(header::SET_COOKIE, c);
        }
        r
    };
    let Some(pending) = sessions.open_cookie::<Pending>(&headers, LOGIN) else {
        return fail("the login expired or did not start here; try again");
    };
    if cb.get("error").is_some() {
        return fail("the identity provider refused the login");
    }
    let (Some(code), Some(state)) = (cb.take("code"), cb.take("state")) else {
        return fail("the provider sent no code");
    };
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
            ("redirect_uri", o.site.url("/auth/callback").as_str()),
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
    let o2 = o.clone();
    let started = tokio::task::spawn_blocking(move || o2.browser.start_blocking(identity, false)).await;
    let Ok(Some(session)) = started else { return fail("the session could not be recorded") };
    let mut r = redirect(&pending.return_to);
    for c in [Some(session), sessions.clear(LOGIN)].into_iter().flatten() {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// Why the login form is shown again, with its status.
enum Again {
    Wrong,
    Pending,
}

fn form(b: &Builtin, headers: &HeaderMap, return_to: &str, again: Option<Again>) -> Response {
    let site = &b.site;
    let Some(FormToken { token, set_cookie }) = b.browser.cookies.form_token(headers) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let (status, msg) = match again {
        None => (StatusCode::OK, ""),
        Some(Again::Wrong) => {
            (StatusCode::UNAUTHORIZED, "<p role=\"alert\" id=\"notice\">Wrong user name or password.</p>")
        }
        Some(Again::Pending) => (
            StatusCode::FORBIDDEN,
            "<p role=\"alert\" id=\"notice\">Your account waits for an operator's approval. \
You can log in once it is approved.</p>",
        ),
    };
    let sign_up = if b.registration {
        format!("<p>No account yet? <a href=\"{}\">Ask for one</a>.</p>", esc(&site.path("/auth/register")))
    } else {
        String::new()
    };
    let html = page(
        "Log in",
        &format!(
            "{msg}<form class=\"stacked\" method=\"post\" action=\"{a}\">\
<input type=\"hidden\" name=\"{field}\" value=\"{t}\">\
<input type=\"hidden\" name=\"return_to\" value=\"{r}\">\
<label for=\"username\">User</label><input id=\"username\" name=\"username\" autocomplete=\"username\" required>\
<label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\">Log in</button></form>{sign_up}",
            a = esc(&site.path("/auth/login")),
            field = csrf::FIELD,
            t = esc(&token),
            r = esc(return_to)
        ),
        &site.prefix,
    );
    with_cookie((status, Html(html)).into_response(), set_cookie)
}

pub(super) fn with_cookie(mut r: Response, c: Option<HeaderValue>) -> Response {
    if let Some(c) = c {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// 403 for a form post whose CSRF token is missing or not the browser's: forged, or a
/// form older than its cookie. Nothing was changed.
pub(crate) fn forged(site: &Site, again: &str) -> Response {
    let body = page(
        "Form refused",
        &format!(
            "<p role=\"alert\">This form was not sent from a page of this server, or it has expired. \
Nothing was changed. <a href=\"{}\">Open it again</a>.</p>",
            esc(&site.path(again))
        ),
        &site.prefix,
    );
    tracing::warn!(target: "audit", event = "csrf_refused", "form post without its CSRF token");
    (StatusCode::FORBIDDEN, Html(body)).into_response()
}

/// 429 for too many `what` ("failed logins"), with a link to try `again` there.
pub(super) fn too_many(site: &Site, wait: std::time::Duration, what: &str, again: &str) -> Response {
    let body = page(
        "Too many attempts",
        &format!(
            "<p role=\"alert\">Too many {what}. Wait a little and <a href=\"{}\">try again</a>.</p>",
            esc(&site.path(again))
        ),
        &site.prefix,
    );
    let mut r = (StatusCode::TOO_MANY_REQUESTS, Html(body)).into_response();
    r.headers_mut().insert(header::RETRY_AFTER, super::throttle::retry_after(wait));
    r.extensions_mut().insert(crate::metrics::RateLimited("auth_throttle"));
    r
}

/// `POST /auth/login`: local accounts of the built-in issuer (the form's `username`,
/// `password` and `return_to`).
pub async fn login_submit(
    State(b): State<Arc<Builtin>>,
    super::throttle::PeerAddr(peer): super::throttle::PeerAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut f = Fields::of(std::str::from_utf8(&body).ok());
    let return_to = safe_return(&b.site, f.get("return_to"));
    if !b.browser.cookies.csrf_ok(&headers, f.get(csrf::FIELD)) {
        return forged(&b.site, "/auth/login");
    }
    let (Some(name), Some(password)) = (f.take("username"), f.take("password")) else {
        return (StatusCode::BAD_REQUEST, "the form needs username and password").into_response();
    };
    let ticket = match b.throttle.admit(&name, peer) {
        Ok(t) => t,
        Err(wait) => return too_many(&b.site, wait, "failed logins", "/auth/login"),
    };
    // Password hashing is deliberately slow: off the async workers, a few at a time.
    let Some(_slot) = b.hash_slot(Some(&ticket)).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let b2 = b.clone();
    let started = tokio::task::spawn_blocking(move || {
        let mut identity = b2.issuer.verify_user(&name, &password)?;
        identity.expires_at = 0;
        tracing::info!(target: "audit", who = %identity.subject, event = "login", "local login");
        Ok(b2.browser.start_blocking(identity, true))
    })
    .await
    .unwrap_or(Err(LoginRefused::Wrong));
    match started {
        Err(LoginRefused::Pending) => {
            // The right password: not a failure to count, but no session either.
            b.throttle.refund(ticket);
            tracing::info!(target: "audit", event = "login_pending", "login of an account that waits for approval");
            form(&b, &headers, &return_to, Some(Again::Pending))
        }
        Ok(cookie) => {
            b.throttle.succeeded(ticket);
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&return_to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            match cookie {
                Some(c) => {
                    r.headers_mut().append(header::SET_COOKIE, c);
                }
                None => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
            r
        }
        Err(LoginRefused::Wrong) => {
            drop(ticket);
            tracing::warn!(target: "audit", event = "login_failed", "local login refused");
            form(&b, &headers, &return_to, Some(Again::Wrong))
        }
    }
}

/// `GET /auth/logout`: a page with the logout button. Ending a session changes state,
/// so it takes a POST with the form's CSRF token: a link or image elsewhere cannot log
/// a browser out.
pub async fn logout_page(State(b): State<Arc<Browsing>>, headers: HeaderMap) -> Response {
    let Some(FormToken { token, set_cookie }) = b.cookies().form_token(&headers) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let site = b.site();
    let body = page(
        "Log out",
        &format!(
            "<form method=\"post\" action=\"{a}\"><input type=\"hidden\" name=\"{field}\" value=\"{t}\">\
<button type=\"submit\">Log out</button></form><p><a href=\"{back}\">Back to the datasets</a></p>",
            a = esc(&site.path("/auth/logout")),
            field = csrf::FIELD,
            t = esc(&token),
            back = esc(&site.path("/hapi")),
        ),
        &site.prefix,
    );
    with_cookie(Html(body).into_response(), set_cookie)
}

/// Either mode's browser side, for the pages both have.
#[derive(Debug)]
pub enum Browsing {
    /// The built-in issuer's local accounts.
    Builtin(Arc<Builtin>),
    /// An external provider's login.
    Oidc(Arc<Oidc>),
}

impl Browsing {
    fn cookies(&self) -> &Sessions {
        match self {
            Browsing::Builtin(b) => &b.browser.cookies,
            Browsing::Oidc(o) => &o.browser.cookies,
        }
    }

    fn site(&self) -> &Site {
        match self {
            Browsing::Builtin(b) => &b.site,
            Browsing::Oidc(o) => &o.site,
        }
    }
}

/// The posted form's fields, if its CSRF token is the browser's.
fn checked_form(cookies: &Sessions, headers: &HeaderMap, body: &[u8]) -> Option<Fields> {
    let f = Fields::of(std::str::from_utf8(body).ok());
    cookies.csrf_ok(headers, f.get(csrf::FIELD)).then_some(f)
}

/// `POST /auth/logout` with the built-in issuer: ends the session on the server, so a
/// copy of the cookie is worth nothing either.
pub async fn logout_local(State(b): State<Arc<Builtin>>, headers: HeaderMap, body: Bytes) -> Response {
    if checked_form(&b.browser.cookies, &headers, &body).is_none() {
        return forged(&b.site, "/auth/logout");
    }
    let mut r = Html(logged_out(&b.site)).into_response();
    if let Some(c) = b.browser.end(&headers).await {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// `POST /auth/logout` with an external provider: ends the session here and, through
/// OIDC RP-initiated logout, there too, or the provider's session would log the browser
/// straight back in.
pub async fn logout_oidc(State(o): State<Arc<Oidc>>, headers: HeaderMap, body: Bytes) -> Response {
    if checked_form(&o.browser.cookies, &headers, &body).is_none() {
        return forged(&o.site, "/auth/logout");
    }
    let end_session = o.login.as_ref().and_then(|client| {
        let e = o.validator.discovery().and_then(|d| d["end_session_endpoint"].as_str())?;
        Some(format!(
            "{e}?client_id={}&post_logout_redirect_uri={}",
            url_component(&client.client_id),
            url_component(&o.site.url("/hapi"))
        ))
    });
    // A 303, so the browser follows with a GET.
    let mut r = match end_session {
        Some(url) => {
            let mut r = redirect(&url);
            *r.status_mut() = StatusCode::SEE_OTHER;
            r
        }
        None => Html(logged_out(&o.site)).into_response(),
    };
    if let Some(c) = o.browser.end(&headers).await {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

fn logged_out(site: &Site) -> String {
    page(
        "Logged out",
        &format!(
            "<p>Your session has ended.</p><p><a href=\"{}\">Log in again</a></p>",
            esc(&site.path("/auth/login"))
        ),
        &site.prefix,
    )
}
