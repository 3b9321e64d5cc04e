//! `/portal/credentials`: a local account's own machine-to-machine clients (issue 9
//! item 4), the seed's "New M2M request" and "Retrieve credentials". The rules live in
//! the issuer (`Issuer::create_owned_client` and the rest): one owner per client, its
//! tokens carry the owner's current roles, the secret is made when first shown and never
//! stored. This page only renders and routes the forms: every POST carries the CSRF
//! token, a bearer-token caller (a machine client) is refused, and someone else's client
//! gets the answer of an unknown one. With an external provider the page links to its
//! registration instead.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hapi_auth::{ClientInfo, IssuerError};
use hapi_core::percent;
use hapi_core::time::{NANOS_PER_SECOND, TimeFormat};

use super::portal::{self, Nav};
use crate::auth::{Builtin, ByToken, Caller, Mode, browser, csrf};
use crate::html::esc;
use crate::state::{AppState, fmt_time};

/// What a POST did, shown above the list.
enum Notice {
    /// A secret to show this once.
    Secret { id: String, secret: String, what: &'static str },
    /// A change made.
    Done(String),
    /// A refusal, with its status.
    Refused(StatusCode, String),
}

/// `GET /portal/credentials`.
pub(crate) async fn page(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    by_token: Option<Extension<ByToken>>,
    headers: HeaderMap,
) -> Response {
    answer(&st, &caller, by_token.is_some(), &headers, None).await
}

/// `POST /portal/credentials`: the form's `action` (`create`, `reveal`, `rotate`,
/// `revoke`) on client `id`, with the CSRF token.
pub(crate) async fn submit(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    by_token: Option<Extension<ByToken>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (Mode::Builtin(b), Some(user)) = (&st.access.mode, owner(&caller, by_token.is_some())) else {
        // Nothing to change here for this caller (another mode, no session, a machine client).
        let mut r = answer(&st, &caller, by_token.is_some(), &headers, None).await;
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    };
    let form = std::str::from_utf8(&body).ok().and_then(percent::form_pairs).unwrap_or_default();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if !b.browser.cookies.csrf_ok(&headers, field(csrf::FIELD).as_deref()) {
        return browser::forged(&b.site, "/portal/credentials");
    }
    let notice = act(b, user, field("action").unwrap_or_default(), field("id").unwrap_or_default()).await;
    answer(&st, &caller, false, &headers, Some(notice)).await
}

/// The local account a browser session is logged in as; a machine client's bearer
/// token manages no clients.
fn owner(caller: &Caller, by_token: bool) -> Option<String> {
    caller.identity().filter(|_| !by_token).map(|id| id.subject.clone())
}

async fn act(b: &Arc<Builtin>, user: String, action: String, id: String) -> Notice {
    let b2 = b.clone();
    let cap = b.max_clients_per_user;
    let (action2, id2) = (action.clone(), id.clone());
    let done = tokio::task::spawn_blocking(move || {
        let issuer = &b2.issuer;
        match action2.as_str() {
            "create" => issuer.create_owned_client(&user, cap).map(|c| Notice::Done(format!(
                "Client {} created. Retrieve its secret when you are ready to store it: it is shown once.",
                c.id
            ))),
            "reveal" => issuer.reveal_secret(&user, &id2).map(|s| match s {
                Some(secret) => Notice::Secret { id: id2.clone(), secret, what: "Its secret" },
                None => Notice::Refused(
                    StatusCode::CONFLICT,
                    "This client's secret was already shown, and it is not kept. Rotate the client to get a new one."
                        .to_owned(),
                ),
            }),
            "rotate" => issuer.rotate_owned(&user, &id2).map(|secret| Notice::Secret {
                id: id2.clone(),
                secret,
                what: "Its new secret (the old one no longer works)",
            }),
            "revoke" => issuer
                .revoke_owned(&user, &id2)
                .map(|()| Notice::Done(format!("Client {id2} revoked: it gets no more tokens."))),
            _ => Ok(Notice::Refused(StatusCode::BAD_REQUEST, "Unknown action.".to_owned())),
        }
        .map_err(|e| (user, e))
    })
    .await;
    match done {
        Ok(Ok(n)) => n,
        Ok(Err((user, IssuerError::NotFound(_)))) => {
            // The same answer for someone else's client as for none: ids are not probed.
            // Both come from the form: quoted (`?`) and cut short in the log.
            let short = |s: &str| s.chars().take(64).collect::<String>();
            tracing::warn!(target: "audit", who = %user, event = "client_action_refused", action = ?short(&action), client_id = ?short(&id), "no such client of this user");
            Notice::Refused(StatusCode::NOT_FOUND, "You have no active client with that id.".to_owned())
        }
        Ok(Err((_, IssuerError::Invalid(m)))) => Notice::Refused(StatusCode::CONFLICT, m),
        Ok(Err((_, e))) => {
            tracing::error!(error = %e, "a self-service client change failed");
            Notice::Refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The change could not be made; try again.".to_owned(),
            )
        }
        Err(_) => {
            Notice::Refused(StatusCode::INTERNAL_SERVER_ERROR, "The change could not be made.".to_owned())
        }
    }
}

/// The page in every mode, after `notice`.
async fn answer(
    st: &Arc<AppState>,
    caller: &Caller,
    by_token: bool,
    headers: &HeaderMap,
    notice: Option<Notice>,
) -> Response {
    let site = &st.access.site;
    let mut h = portal::open(st, caller, "Credentials", Nav::Credentials);
    h.push_str("<h1>Machine-to-machine credentials</h1>\n");
    let mut status = StatusCode::OK;
    let mut set_cookie = None;
    match (&st.access.mode, owner(caller, by_token)) {
        (Mode::Open, _) => h.push_str("<p>This server is open: its data needs no credentials.</p>\n"),
        (Mode::Oidc(o), _) => match &o.registration_url {
            Some(u) => {
                let _ = writeln!(
                    h,
                    "<p>Clients are registered at this server's identity provider: \
<a href=\"{}\">register a client there</a>.</p>",
                    esc(u)
                );
            }
            None => h.push_str(
                "<p>Clients are registered at this server's identity provider, which has no \
self-service registration page configured here; ask the operators.</p>\n",
            ),
        },
        (Mode::Builtin(_), None) => h.push_str(&portal::login_link(
            site,
            "/portal/credentials",
            "with your account to manage your credentials",
        )),
        (Mode::Builtin(b), Some(user)) => {
            let Some(t) = b.browser.cookies.form_token(headers) else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            set_cookie = t.set_cookie;
            if let Some(n) = &notice {
                status = render_notice(&mut h, b, n);
            }
            let b2 = b.clone();
            let listed = tokio::task::spawn_blocking(move || b2.issuer.owned_clients(&user)).await;
            match listed {
                Ok(Ok(clients)) => render_clients(&mut h, b, &clients, &t.token),
                _ => {
                    h.push_str("<p role=\"alert\">Your clients could not be read; try again.</p>\n");
                    status = StatusCode::INTERNAL_SERVER_ERROR;
                }
            }
        }
    }
    portal::respond_private(h, site, status, set_cookie)
}

fn render_notice(h: &mut String, b: &Builtin, n: &Notice) -> StatusCode {
    match n {
        Notice::Secret { id, secret, what } => {
            let scope = b.issuer.validator_config().required_scope.unwrap_or_default();
            let _ = writeln!(
                h,
                "<section class=\"secret\" aria-labelledby=\"secret-h\"><h2 id=\"secret-h\">Your credentials</h2>\n\
<p role=\"status\">{what} is shown only now: store it safely. It cannot be shown again.</p>\n\
<dl><dt>client_id</dt><dd><code id=\"client-id\">{id}</code></dd>\
<dt>client_secret</dt><dd><code id=\"client-secret\">{secret}</code></dd></dl>\n\
<p>A token, as on the seed's page:</p>\n<pre><code id=\"token-curl\">curl -d client_id={id} -d client_secret={secret} \
-d grant_type=client_credentials -d scope={scope} {url}</code></pre></section>",
                id = esc(id),
                secret = esc(secret),
                scope = esc(&scope),
                url = esc(&b.site.url("/oauth/token")),
            );
            StatusCode::OK
        }
        Notice::Done(m) => {
            let _ = writeln!(h, "<p role=\"status\" id=\"notice\">{}</p>", esc(m));
            StatusCode::OK
        }
        Notice::Refused(status, m) => {
            let _ = writeln!(h, "<p role=\"alert\" id=\"notice\">{}</p>", esc(m));
            *status
        }
    }
}

/// Unix seconds as `YYYY-MM-DDThh:mm:ssZ`.
fn when(t: Option<i64>) -> String {
    let fmt = TimeFormat::ymd(20).unwrap_or(TimeFormat::YMD_MILLIS);
    t.map_or_else(|| "never".to_owned(), |t| fmt_time(t.saturating_mul(NANOS_PER_SECOND), fmt))
}

fn render_clients(h: &mut String, b: &Builtin, clients: &[ClientInfo], token: &str) {
    let action = esc(&b.site.path("/portal/credentials"));
    let hidden = format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", csrf::FIELD, esc(token));
    let button = |id: &str, act: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"{action}\">{hidden}<input type=\"hidden\" name=\"action\" value=\"{act}\">\
<input type=\"hidden\" name=\"id\" value=\"{id}\"><button type=\"submit\">{label}</button></form>",
            id = esc(id)
        )
    };
    let active = clients.iter().filter(|c| c.revoked_at.is_none()).count();
    let _ = writeln!(
        h,
        "<p>A client gets tokens with your roles, as they are when it asks; it ends with your account. \
You have {active} active of at most {cap}.</p>\n\
<form method=\"post\" action=\"{action}\">{hidden}<input type=\"hidden\" name=\"action\" value=\"create\">\
<button type=\"submit\" id=\"create\">New M2M client</button></form>",
        cap = b.max_clients_per_user,
    );
    if clients.is_empty() {
        h.push_str("<p>You have no clients yet.</p>\n");
        return;
    }
    h.push_str(
        "<table id=\"clients\" class=\"cards\"><caption>Your clients</caption><thead><tr><th scope=\"col\">client_id</th>\
<th scope=\"col\">Created</th><th scope=\"col\">Last token</th><th scope=\"col\">Rotated</th>\
<th scope=\"col\">State</th><th scope=\"col\">Actions</th></tr></thead><tbody>\n",
    );
    for c in clients {
        let (state, actions) = match (c.revoked_at, c.secret_pending) {
            (Some(t), _) => (format!("revoked {}", when(Some(t))), String::new()),
            (None, true) => (
                "no secret yet".to_owned(),
                button(&c.id, "reveal", "Retrieve the secret") + &button(&c.id, "revoke", "Revoke"),
            ),
            (None, false) => (
                "active".to_owned(),
                button(&c.id, "rotate", "Rotate the secret") + &button(&c.id, "revoke", "Revoke"),
            ),
        };
        // Revealing the first secret is not a rotation: it keeps the creation time.
        let rotated = if c.secret_rotated_at == c.created_at {
            "never".to_owned()
        } else {
            when(Some(c.secret_rotated_at))
        };
        let _ = writeln!(
            h,
            "<tr><td data-label=\"client_id\"><code>{id}</code></td><td data-label=\"Created\">{created}</td>\
<td data-label=\"Last token\">{used}</td><td data-label=\"Rotated\">{rotated}</td><td data-label=\"State\">{state}</td>\
<td data-label=\"Actions\">{actions}</td></tr>",
            id = esc(&c.id),
            created = when(Some(c.created_at)),
            used = when(c.last_used_at),
        );
    }
    h.push_str("</tbody></table>\n");
}
