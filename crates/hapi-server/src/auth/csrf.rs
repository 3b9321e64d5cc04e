//! CSRF protection for the forms of the browser side (login, logout), by a
//! double-submitted token: a random token lives in a sealed, `HttpOnly` cookie and is
//! repeated in a hidden field of every form the server renders. A cross-site page can
//! make a browser post a form here, but it can neither read the cookie nor know the
//! token, so the two do not match and the post is refused before anything changes.
//! The login form is covered too (login CSRF: logging a victim into the attacker's
//! account).

use axum::http::{HeaderMap, HeaderValue};

use super::session::Sessions;

/// The cookie that holds the token.
pub const CSRF: &str = "hapi_csrf";
/// The hidden form field that repeats it.
pub const FIELD: &str = "csrf";
/// A day: a form left open that long is refused and shown again with a fresh token.
const MAX_AGE: i64 = 86_400;

/// A form's token, and the `Set-Cookie` to send when the browser had none yet.
#[derive(Debug)]
pub struct FormToken {
    /// What the form's hidden field carries.
    pub token: String,
    /// `Some` when a new cookie must be set with the page.
    pub set_cookie: Option<HeaderValue>,
}

impl Sessions {
    /// The token for a form on the page answering `headers`: the browser's own, or a
    /// new one with its cookie.
    pub fn form_token(&self, headers: &HeaderMap) -> Option<FormToken> {
        if let Some(token) = self.open_cookie::<String>(headers, CSRF) {
            return Some(FormToken { token, set_cookie: None });
        }
        let token = super::browser::random_token()?;
        let set_cookie = self.seal(CSRF, &token, MAX_AGE)?;
        Some(FormToken { token, set_cookie: Some(set_cookie) })
    }

    /// Whether a posted form's token is the one of the browser's cookie (compared in
    /// constant time). A missing cookie or field never matches.
    pub fn csrf_ok(&self, headers: &HeaderMap, posted: Option<&str>) -> bool {
        let (Some(cookie), Some(posted)) = (self.open_cookie::<String>(headers, CSRF), posted) else {
            return false;
        };
        !posted.is_empty()
            && aws_lc_rs::constant_time::verify_slices_are_equal(cookie.as_bytes(), posted.as_bytes()).is_ok()
    }
}
