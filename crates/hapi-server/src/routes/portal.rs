//! The parts every portal page shares: the frame (head, the navigation with the login
//! state, the footer with our scripts), the client tools' list, and the addresses of
//! dataset pages. The pages themselves are `landing.rs` (the catalog),
//! `dataset_page.rs`, `credentials.rs` (a user's own machine clients) and `account.rs`
//! (the password); the security headers are added by one layer over all of them
//! (`routes/mod.rs`, `html::page_headers`).

use std::fmt::Write as _;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hapi_core::percent::encode_query_value;

use crate::auth::{Caller, Site};
use crate::html::{ASSETS, esc, head};
use crate::state::AppState;

/// Which page the navigation marks as the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Catalog,
    Dataset,
    Credentials,
    Account,
}

/// The path of dataset `id`'s page.
pub(crate) fn dataset_path(site: &Site, id: &str) -> String {
    site.path(&format!("/portal/dataset?id={}", encode_query_value(id)))
}

/// Everything before a page's own content: head, skip link, navigation, `<main>`.
pub(crate) fn open(st: &AppState, caller: &Caller, title: &str, nav: Nav) -> String {
    let site = &st.access.site;
    let mut h = head(title, &site.prefix);
    let current = |n: Nav| if n == nav { " aria-current=\"page\"" } else { "" };
    let _ = write!(
        h,
        "<a class=\"skip\" href=\"#main\">Skip to content</a>\n<header><nav aria-label=\"Site\">\
<a href=\"{home}\"{c}>Datasets</a>",
        home = esc(&site.path("/hapi")),
        c = current(Nav::Catalog),
    );
    // The login state: who is logged in and the logout page (a POST with its CSRF token there).
    match (&caller.0, st.access.browser().is_some()) {
        (Some(id), _) => {
            let _ = write!(
                h,
                "<a href=\"{}\"{}>Credentials</a>",
                esc(&site.path("/portal/credentials")),
                current(Nav::Credentials)
            );
            if matches!(st.access.mode, crate::auth::Mode::Builtin(_)) {
                let _ = write!(
                    h,
                    "<a href=\"{}\"{}>Account</a>",
                    esc(&site.path("/portal/account")),
                    current(Nav::Account)
                );
            }
            let _ = write!(
                h,
                "<span class=\"who\">Logged in as <code>{}</code> <a href=\"{}\">Log out</a></span>",
                esc(&id.subject),
                esc(&site.path("/auth/logout"))
            );
        }
        (None, true) => {
            let _ = write!(
                h,
                "<span class=\"who\"><a href=\"{}\">Log in</a></span>",
                esc(&site.path("/auth/login"))
            );
        }
        (None, false) => {}
    }
    h.push_str("</nav></header>\n<main id=\"main\">\n");
    h
}

/// The end of a page: `</main>` and our script `script` (one of `routes/assets.rs`).
pub(crate) fn close(site: &Site, script: &str) -> String {
    format!(
        "</main>\n<script type=\"module\" src=\"{}\"></script>\n</body></html>\n",
        esc(&site.path(&format!("{ASSETS}/{script}")))
    )
}

/// "Log in to `what`": a link to the login that comes back to `path` after it.
pub(crate) fn login_link(site: &Site, path: &str, what: &str) -> String {
    format!(
        "<p><a href=\"{}\">Log in</a> {what}.</p>\n",
        esc(&site.path(&format!("/auth/login?return_to={}", encode_query_value(&site.path(path)))))
    )
}

/// The end of a page with a form that changes an account (credentials, password): our
/// script, `status`, the form's CSRF cookie when it is new, and `no-store`, since a
/// secret or a form token may be on it and must not stay in a cache or the back
/// button's copy.
pub(crate) fn respond_private(
    mut h: String,
    site: &Site,
    status: axum::http::StatusCode,
    set_cookie: Option<HeaderValue>,
) -> Response {
    h.push_str(&close(site, "catalog.js"));
    let mut r = respond(h);
    *r.status_mut() = status;
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(c) = set_cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// A 200 HTML page (its security headers come from the layer over the portal's routes).
pub(crate) fn respond(html: String) -> Response {
    let mut r = html.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

/// The client tools, public downloads with this server filled in (routes/downloads.rs).
pub(crate) fn tools(site: &Site) -> String {
    let mut h =
        String::from("<section aria-labelledby=\"tools-h\"><h2 id=\"tools-h\">Client tools</h2>\n<ul>\n");
    for name in super::downloads::names() {
        let what = match name {
            "get_hapi_access_token.sh" => "fetch an access token (bash and curl)",
            "get_hapi_access_token.py" => "fetch an access token (Python 3, standard library)",
            _ => "a Python client: tokens handled, any range fetched, data as numpy or pandas",
        };
        let _ = writeln!(
            h,
            "<li><a href=\"{0}\">{1}</a>: {what}</li>",
            esc(&site.path(&format!("/downloads/{name}"))),
            esc(name)
        );
    }
    h.push_str("</ul></section>\n");
    h
}
