//! HTML for the pages people see (the portal, login, logout): escaping, the page
//! frame, and the security headers every page carries. A leaf module: it imports
//! nothing of the server.

use axum::http::{HeaderMap, HeaderValue, header};

/// Where the portal's own stylesheet and scripts are served, under the prefix
/// (`routes/assets.rs`). Pages load only these: no inline script or style, no CDN.
pub const ASSETS: &str = "/portal/assets";

/// The Content-Security-Policy of every page: scripts, styles, images and `fetch` from
/// this server only, and never inline (no `'unsafe-inline'`), so a script that got
/// into metadata past the escaping still would not run. No `form-action`: the logout's
/// redirect to an OpenID provider's end-session endpoint is a form navigation that
/// Chromium checks too.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the headers of an HTML page: the policy above, no sniffing, no framing, and
/// no address (with its query) sent to other sites.
pub fn page_headers(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

/// HTML-escapes text (metadata, user names, return addresses) for element content and
/// quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The start of every page, up to and including `<body>`: `title` is escaped here;
/// `prefix` is the server's path prefix (for the stylesheet).
pub fn head(title: &str, prefix: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title>\
<link rel=\"stylesheet\" href=\"{css}\"></head><body>\n",
        t = esc(title),
        css = esc(&format!("{prefix}{ASSETS}/portal.css")),
    )
}

/// A small page: `title` is escaped here, `body` is HTML already.
pub fn page(title: &str, body: &str, prefix: &str) -> String {
    format!(
        "{}<main class=\"narrow\"><h1>{}</h1>\n{body}\n</main></body></html>\n",
        head(title, prefix),
        esc(title)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            super::esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
