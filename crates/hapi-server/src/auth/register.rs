//! Sign-up with the built-in issuer (issue 9 item 5), routed only when
//! `[auth.issuer] allow_registration` is on: an e-mail address and a password make an
//! account that waits for an operator (`hapi-server users approve`) and reads nothing
//! before. The answer is the same whether the address is new or has an account already,
//! so the form does not tell who has one. Sign-ups are throttled per source address and
//! per e-mail address ([`throttle::SIGNUP`](super::throttle::SIGNUP)), and hashed on the
//! same few slots as logins.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::Builtin;
use super::browser::{Fields, forged, too_many, with_cookie};
use super::csrf::{self, FormToken};
use super::throttle::PeerAddr;
use crate::html::{esc, page};

/// `GET /auth/register`: the sign-up form.
pub async fn form_page(State(b): State<Arc<Builtin>>, headers: HeaderMap) -> Response {
    form(&b, &headers, "", None)
}

/// The form, with the address typed so far and, after a refused post, why.
fn form(b: &Builtin, headers: &HeaderMap, email: &str, problem: Option<&str>) -> Response {
    let Some(FormToken { token, set_cookie }) = b.browser.cookies.form_token(headers) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let site = &b.site;
    let notice =
        problem.map_or_else(String::new, |p| format!("<p role=\"alert\" id=\"notice\">{}</p>", esc(p)));
    let html = page(
        "Ask for an account",
        &format!(
            "{notice}<p>An operator approves every account before it can read data.</p>\
<form class=\"stacked\" method=\"post\" action=\"{a}\"><input type=\"hidden\" name=\"{field}\" value=\"{t}\">\
<label for=\"email\">E-mail address</label>\
<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" maxlength=\"254\" value=\"{email}\" required>\
<label for=\"password\">Password (at least 8 characters)</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"8\" maxlength=\"1024\" required>\
<label for=\"confirm\">The password again</label>\
<input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" minlength=\"8\" maxlength=\"1024\" required>\
<button type=\"submit\">Ask for an account</button></form>\
<p>Have an account? <a href=\"{login}\">Log in</a>.</p>",
            a = esc(&site.path("/auth/register")),
            field = csrf::FIELD,
            t = esc(&token),
            email = esc(email),
            login = esc(&site.path("/auth/login")),
        ),
        &site.prefix,
    );
    let status = if problem.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    with_cookie((status, Html(html)).into_response(), set_cookie)
}

/// `POST /auth/register`: the form's `email`, `password` and `confirm`, with its CSRF
/// token. Cheap checks first; only a well-formed sign-up is throttled and hashed.
pub async fn submit(
    State(b): State<Arc<Builtin>>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut f = Fields::of(std::str::from_utf8(&body).ok());
    if !b.browser.cookies.csrf_ok(&headers, f.get(csrf::FIELD)) {
        return forged(&b.site, "/auth/register");
    }
    let (email, password, confirm) = (
        f.take("email").unwrap_or_default(),
        f.take("password").unwrap_or_default(),
        f.take("confirm").unwrap_or_default(),
    );
    // Shown again in the form: cut short, since the field may hold anything.
    let typed: String = email.chars().take(254).collect();
    let name = match hapi_auth::normalize_email(&email) {
        Ok(n) => n,
        Err(e) => return form(&b, &headers, &typed, Some(&e.to_string())),
    };
    if let Err(e) = hapi_auth::check_password(&password) {
        return form(&b, &headers, &typed, Some(&e.to_string()));
    }
    if password != confirm {
        return form(&b, &headers, &typed, Some("The two passwords differ."));
    }
    let ticket = match b.signup.admit(&name, peer) {
        Ok(t) => t,
        Err(wait) => return too_many(&b.site, wait, "sign-ups from here", "/auth/register"),
    };
    // Every sign-up counts, made or not: the charge stays.
    drop(ticket);
    let Some(_slot) = b.hash_slot(None).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let b2 = b.clone();
    let name2 = name.clone();
    let done = tokio::task::spawn_blocking(move || b2.issuer.register_user(&name2, &password)).await;
    match done {
        Ok(Ok(_new_or_not)) => {
            let body = page(
                "Request recorded",
                &format!(
                    "<p role=\"status\" id=\"notice\">Thank you. The account <code>{}</code> waits for an \
operator's approval; once it is approved, log in with this address and your password.</p>\
<p><a href=\"{}\">To the login</a></p>",
                    esc(&name),
                    esc(&b.site.path("/auth/login"))
                ),
                &b.site.prefix,
            );
            Html(body).into_response()
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "recording a sign-up failed");
            let body = page(
                "Not recorded",
                "<p role=\"alert\">Your request could not be recorded; try again later.</p>",
                &b.site.prefix,
            );
            (StatusCode::INTERNAL_SERVER_ERROR, Html(body)).into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
