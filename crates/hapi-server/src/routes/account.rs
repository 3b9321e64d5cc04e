//! `/portal/account`: a local account's password change (issue 9 item 5). The current
//! password is checked like a login (the same throttle and hashing slots); a new one
//! ends every session of the account, on every replica (the sessions live in the auth
//! database), and this browser gets a new session at once. A bearer-token caller (a
//! machine client) has no password to change here; with an external provider the
//! account is the provider's.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hapi_core::percent;

use super::portal::{self, Nav};
use crate::auth::throttle::PeerAddr;
use crate::auth::{Builtin, ByToken, Caller, Mode, browser, csrf};
use crate::html::esc;
use crate::state::AppState;

/// What a POST did, shown above the form.
enum Notice {
    Changed,
    Refused(StatusCode, String),
}

/// `GET /portal/account`.
pub(crate) async fn page(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    by_token: Option<Extension<ByToken>>,
    headers: HeaderMap,
) -> Response {
    answer(&st, &caller, by_token.is_some(), &headers, None)
}

/// `POST /portal/account`: `current`, `password` and `confirm`, with the CSRF token.
pub(crate) async fn submit(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    by_token: Option<Extension<ByToken>>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (Mode::Builtin(b), Some(id), false) = (&st.access.mode, caller.identity(), by_token.is_some()) else {
        let mut r = answer(&st, &caller, by_token.is_some(), &headers, None);
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    };
    let form = std::str::from_utf8(&body).ok().and_then(percent::form_pairs).unwrap_or_default();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    if !b.browser.cookies.csrf_ok(&headers, Some(&field(csrf::FIELD))) {
        return browser::forged(&b.site, "/portal/account");
    }
    let (current, new, confirm) = (field("current"), field("password"), field("confirm"));
    let refused = |m: &str| Notice::Refused(StatusCode::BAD_REQUEST, m.to_owned());
    let notice = if let Err(e) = hapi_auth::check_password(&new) {
        refused(&e.to_string())
    } else if new != confirm {
        refused("The two new passwords differ.")
    } else {
        match change(b, &id.subject, current, new, peer).await {
            Ok(()) => {
                // Every session of the account ended, this one too: a new one for this browser.
                let (b2, mut who) = (b.clone(), id.clone());
                who.expires_at = 0;
                let cookie = tokio::task::spawn_blocking(move || b2.browser.start_blocking(who, true)).await;
                let mut r = answer(&st, &caller, false, &headers, Some(Notice::Changed));
                if let Ok(Some(c)) = cookie {
                    r.headers_mut().append(header::SET_COOKIE, c);
                }
                return r;
            }
            Err(n) => n,
        }
    };
    answer(&st, &caller, false, &headers, Some(notice))
}

/// Checks `current` (throttled as a login) and sets `new`.
async fn change(
    b: &Arc<Builtin>,
    user: &str,
    current: String,
    new: String,
    peer: Option<std::net::IpAddr>,
) -> Result<(), Notice> {
    let ticket = b.throttle.admit(user, peer).map_err(|wait| {
        Notice::Refused(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many wrong passwords; try again in {} s.", wait.as_secs().max(1)),
        )
    })?;
    let Some(_slot) = b.hash_slot(Some(&ticket)).await else {
        return Err(Notice::Refused(StatusCode::SERVICE_UNAVAILABLE, "Try again.".to_owned()));
    };
    let (b2, user2) = (b.clone(), user.to_owned());
    match tokio::task::spawn_blocking(move || b2.issuer.change_password(&user2, &current, &new)).await {
        Ok(Ok(true)) => {
            b.throttle.succeeded(ticket);
            Ok(())
        }
        Ok(Ok(false)) => {
            drop(ticket);
            tracing::warn!(target: "audit", who = %user, event = "password_change_refused", "wrong current password");
            Err(Notice::Refused(StatusCode::UNAUTHORIZED, "The current password is wrong.".to_owned()))
        }
        Ok(Err(hapi_auth::IssuerError::Invalid(m))) => {
            b.throttle.refund(ticket);
            Err(Notice::Refused(StatusCode::BAD_REQUEST, m))
        }
        other => {
            b.throttle.refund(ticket);
            if let Ok(Err(e)) = other {
                tracing::error!(error = %e, "changing a password failed");
            }
            Err(Notice::Refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The password could not be changed; try again.".to_owned(),
            ))
        }
    }
}

/// The page in every mode, after `notice`.
fn answer(
    st: &AppState,
    caller: &Caller,
    by_token: bool,
    headers: &HeaderMap,
    notice: Option<Notice>,
) -> Response {
    let site = &st.access.site;
    let mut h = portal::open(st, caller, "Account", Nav::Account);
    h.push_str("<h1>Your account</h1>\n");
    let mut status = StatusCode::OK;
    let mut set_cookie = None;
    match (&st.access.mode, caller.identity().filter(|_| !by_token)) {
        (Mode::Open, _) => h.push_str("<p>This server is open: it has no accounts.</p>\n"),
        (Mode::Oidc(_), _) => h.push_str(
            "<p>Your account is kept by this server's identity provider: change its password there.</p>\n",
        ),
        (Mode::Builtin(_), None) => {
            h.push_str(&portal::login_link(site, "/portal/account", "to change your password"))
        }
        (Mode::Builtin(b), Some(id)) => {
            let Some(t) = b.browser.cookies.form_token(headers) else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            set_cookie = t.set_cookie;
            match notice {
                Some(Notice::Changed) => h.push_str(
                    "<p role=\"status\" id=\"notice\">Your password is changed. Your other sessions have \
ended; log in there again with the new password.</p>\n",
                ),
                Some(Notice::Refused(s, m)) => {
                    status = s;
                    let _ = writeln!(h, "<p role=\"alert\" id=\"notice\">{}</p>", esc(&m));
                }
                None => {}
            }
            let _ = write!(
                h,
                "<p>Logged in as <code>{who}</code>.</p>\n<section aria-labelledby=\"pw-h\"><h2 id=\"pw-h\">Change the password</h2>\n\
<form class=\"stacked\" method=\"post\" action=\"{a}\"><input type=\"hidden\" name=\"{field}\" value=\"{t}\">\
<input type=\"text\" name=\"username\" autocomplete=\"username\" value=\"{who}\" hidden>\
<label for=\"current\">Current password</label>\
<input id=\"current\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required>\
<label for=\"password\">New password (at least 8 characters)</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"8\" maxlength=\"1024\" required>\
<label for=\"confirm\">The new password again</label>\
<input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" minlength=\"8\" maxlength=\"1024\" required>\
<button type=\"submit\">Change the password</button></form></section>\n",
                who = esc(&id.subject),
                a = esc(&site.path("/portal/account")),
                field = csrf::FIELD,
                t = esc(&t.token),
            );
        }
    }
    portal::respond_private(h, site, status, set_cookie)
}
