//! Access control: who the caller is (bearer token or browser session), which paths
//! need it, and the RFC 6750 answers when they may not. Which datasets a caller reads
//! is [`Access::rules`]; what they see of them is computed in `state.rs`.
//!
//! The HAPI specification leaves authentication out on purpose (its §8.6.2); this is
//! the SWE HAPI Server's model: every endpoint behind OIDC bearer tokens, a browser
//! login, and per-dataset rights.
//!
//! Each mode is a type ([`Mode`]): the built-in issuer's and the external provider's
//! parts exist only in their mode, their routes are only registered there, and open mode
//! is allow-all rules rather than a test in every handler. This module imports nothing
//! of `state.rs` or `routes/`: its middleware and handlers take the part they need.

pub mod browser;
pub mod cors;
pub mod csrf;
mod denied;
pub mod issuer_routes;
mod middleware;
pub mod register;
pub mod session;
pub mod throttle;

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::{get, post};
use hapi_auth::{AccessRules, AuthStore, Identity, Issuer, Revocation, TokenValidator};

use crate::config::{AuthSettings, LoginClient, ModeSettings};
pub use denied::Denied;
pub use middleware::authenticate;
use session::Sessions;

/// Who made the request; `None` is an anonymous caller. Handlers read it from the
/// request extensions.
#[derive(Debug, Clone, Default)]
pub struct Caller(pub Option<Arc<Identity>>);

impl Caller {
    /// The identity, if any.
    pub fn identity(&self) -> Option<&Identity> {
        self.0.as_deref()
    }

    /// Who, for the audit log: the token's subject (a user, or the client itself for
    /// client_credentials), or `anonymous`.
    pub fn who(&self) -> &str {
        self.0.as_ref().map_or("anonymous", |id| id.subject.as_str())
    }

    /// Through which client, for the audit log (a browser login's web client, or the machine client).
    pub fn client(&self) -> &str {
        self.0.as_ref().and_then(|id| id.client_id.as_deref()).unwrap_or("")
    }
}

/// In the request extensions when the caller proved who they are with a bearer token
/// (not a session cookie). Endpoints that change data ask for it: a browser sends a
/// cookie with any cross-site form, never an `Authorization` header.
#[derive(Debug, Clone, Copy)]
pub struct ByToken;

/// Where the server is: what links, redirects and cookies are built from.
#[derive(Debug, Clone)]
pub struct Site {
    /// Path before `/hapi` (empty, or `/...` without a trailing slash).
    pub prefix: String,
    /// Public base URL without a trailing slash.
    pub public_url: String,
}

impl Site {
    /// `path` (which starts with `/`) under the prefix.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    /// `path` as an absolute URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.public_url, self.prefix)
    }
}

/// Access control of one server.
#[derive(Debug)]
pub struct Access {
    /// Who may read what (allow-all in open mode).
    pub rules: AccessRules,
    /// Prefix and public URL.
    pub site: Site,
    /// Paths (with prefix) served without credentials.
    public: Vec<String>,
    /// Origins allowed to send cookies cross-origin.
    pub cookie_origins: Vec<String>,
    /// The mode and what only it has.
    pub mode: Mode,
}

/// The access-control mode, with what only that mode has.
#[derive(Debug)]
pub enum Mode {
    /// No credentials at all.
    Open,
    /// The built-in issuer.
    Builtin(Arc<Builtin>),
    /// An external OpenID provider.
    Oidc(Arc<Oidc>),
}

/// The built-in issuer, its token check and local browser accounts.
#[derive(Debug)]
pub struct Builtin {
    /// Issues tokens, keeps clients and accounts.
    pub issuer: Arc<Issuer>,
    /// Checks its tokens.
    pub validator: TokenValidator,
    /// Browser sessions of local accounts.
    pub browser: Browser,
    /// Bounds concurrent password and secret hashing: each Argon2 check takes tens of
    /// milliseconds and ~19 MiB, so a burst of logins must queue, not exhaust memory.
    pub hashing: tokio::sync::Semaphore,
    /// Hashing slots only trusted pairs use, so a flood from many addresses (each
    /// within its limit) cannot make a known client wait behind dozens of hashes.
    pub trusted_lane: tokio::sync::Semaphore,
    /// Failed secret checks per address, per (name, address) and per name: a flood is
    /// refused before it queues for `hashing`.
    pub throttle: throttle::Throttle,
    /// Prefix and public URL.
    pub site: Site,
    /// Active self-service clients per local account.
    pub max_clients_per_user: u32,
    /// Sign-ups are allowed (`/auth/register`).
    pub registration: bool,
    /// Sign-ups per address and per e-mail address, counted whether they succeed or not.
    pub signup: throttle::Throttle,
}

/// An external provider: its token check, and its browser login if configured.
#[derive(Debug)]
pub struct Oidc {
    /// Checks its tokens (discovered at start-up).
    pub validator: TokenValidator,
    /// Our client there, for the browser login.
    pub login: Option<LoginClient>,
    /// Browser sessions started by its login.
    pub browser: Browser,
    /// Prefix and public URL.
    pub site: Site,
    /// The provider's page for registering clients (the portal links there).
    pub registration_url: Option<String>,
}

/// Browser sessions: sealed cookies naming server-side sessions that can end.
#[derive(Debug)]
pub struct Browser {
    /// Seals and opens the cookies.
    pub cookies: Sessions,
    /// The sessions themselves, and revoked clients.
    pub revocation: Arc<Revocation>,
}

/// Slots of [`Builtin::trusted_lane`].
const TRUSTED_SLOTS: usize = 2;

impl Builtin {
    /// A slot to check a secret in: the trusted lane for a pair that succeeded recently,
    /// the shared slots otherwise. `None` when the server is shutting the slots down.
    pub async fn hash_slot(
        &self,
        ticket: Option<&throttle::Ticket>,
    ) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let lane =
            if ticket.is_some_and(throttle::Ticket::trusted) { &self.trusted_lane } else { &self.hashing };
        lane.acquire().await.ok()
    }
}

/// Argon2 checks that may run at once: one per core, at most 4. More only share the
/// same cores, so a flood's checks would slow a trusted caller's check beside them.
fn hashing_slots() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get).clamp(1, 4)
}

impl Access {
    /// Builds access control from the configuration: opens the built-in issuer's keys
    /// and database, or discovers the external provider (a start-up error if it fails).
    /// `db` holds the issuer's clients and users and the sessions (every mode but open).
    pub async fn build(s: &AuthSettings, prefix: &str, db: Option<Arc<dyn AuthStore>>) -> Result<Access> {
        let site = Site { prefix: prefix.to_owned(), public_url: s.public_url.clone() };
        let browser = |db: &Arc<dyn AuthStore>| -> Result<Browser> {
            let cookie_path = if prefix.is_empty() { "/" } else { prefix };
            Ok(Browser {
                cookies: Sessions::open(
                    &s.session_key_file,
                    s.public_url.starts_with("https://"),
                    s.session_ttl,
                    cookie_path,
                )?,
                revocation: Arc::new(Revocation::with_store(db.clone(), hapi_auth::RECHECK)),
            })
        };
        let mode = match &s.mode {
            ModeSettings::Open => Mode::Open,
            ModeSettings::Builtin { issuer, leeway, max_clients_per_user, allow_registration, .. } => {
                let db = db.as_ref().context("the built-in issuer needs its database")?;
                let issuer = Issuer::with_store(&s.issuer_key_file, db.clone(), issuer.clone())
                    .context("opening the built-in token issuer")?;
                let mut cfg = issuer.validator_config();
                cfg.leeway = *leeway;
                let validator = TokenValidator::with_keys(cfg, issuer.jwks());
                Mode::Builtin(Arc::new(Builtin {
                    issuer: Arc::new(issuer),
                    validator,
                    browser: browser(db)?,
                    hashing: tokio::sync::Semaphore::new(hashing_slots()),
                    trusted_lane: tokio::sync::Semaphore::new(TRUSTED_SLOTS),
                    throttle: throttle::Throttle::new(throttle::LOGIN),
                    site: site.clone(),
                    max_clients_per_user: *max_clients_per_user,
                    registration: *allow_registration,
                    signup: throttle::Throttle::new(throttle::SIGNUP),
                }))
            }
            ModeSettings::Oidc { validator, login, registration_url } => {
                let db = db.as_ref().context("browser sessions need their database")?;
                let v = TokenValidator::discover(validator.clone())
                    .await
                    .with_context(|| format!("discovering the OpenID provider {}", validator.issuer))?;
                Mode::Oidc(Arc::new(Oidc {
                    validator: v,
                    login: login.clone(),
                    browser: browser(db)?,
                    site: site.clone(),
                    registration_url: registration_url.clone(),
                }))
            }
        };
        Ok(Access {
            rules: s.rules.clone(),
            public: s.public_paths.iter().map(|p| site.path(p)).collect(),
            site,
            cookie_origins: s.cookie_origins.clone(),
            mode,
        })
    }

    /// The built-in issuer, in that mode (for the command line and tests).
    pub fn issuer(&self) -> Option<&Arc<Issuer>> {
        match &self.mode {
            Mode::Builtin(b) => Some(&b.issuer),
            _ => None,
        }
    }

    /// The token validator, in a mode that has one (for tests and metrics).
    pub fn validator(&self) -> Option<&TokenValidator> {
        match &self.mode {
            Mode::Open => None,
            Mode::Builtin(b) => Some(&b.validator),
            Mode::Oidc(o) => Some(&o.validator),
        }
    }

    /// Whether `path` (with the prefix) is served without credentials: the configured
    /// public paths, and the paths that only ever redirect (the root, the bare prefix,
    /// and a trailing slash, which no route has).
    fn is_public(&self, path: &str) -> bool {
        path == "/"
            || path == self.site.prefix
            || path.ends_with('/')
            || self.public.iter().any(|p| p == path)
    }

    /// The browser side of this mode (forms and their CSRF cookie), if it has one.
    pub fn browser(&self) -> Option<&Browser> {
        match &self.mode {
            Mode::Open => None,
            Mode::Builtin(b) => Some(&b.browser),
            Mode::Oidc(o) => Some(&o.browser),
        }
    }

    /// The routes of this mode's issuer and browser login, under the prefix.
    pub fn routes(&self) -> Router {
        let p = |path: &str| self.site.path(path);
        match &self.mode {
            Mode::Open => Router::new(),
            Mode::Builtin(b) => {
                let mut r = Router::new();
                if b.registration {
                    r = r.route(&p("/auth/register"), get(register::form_page).post(register::submit));
                }
                r.route(&p("/auth/login"), get(browser::login_form).post(browser::login_submit))
                    .route(&p("/auth/logout"), post(browser::logout_local))
                    .route(&p("/oauth/token"), post(issuer_routes::token))
                    .route(&p("/oauth/jwks"), get(issuer_routes::jwks))
                    .route(&p("/.well-known/openid-configuration"), get(issuer_routes::discovery))
                    .with_state(b.clone())
                    .merge(logout_page(browser::Browsing::Builtin(b.clone()), &p("/auth/logout")))
            }
            Mode::Oidc(o) => Router::new()
                .route(&p("/auth/login"), get(browser::login_oidc))
                .route(&p("/auth/callback"), get(browser::callback))
                .route(&p("/auth/logout"), post(browser::logout_oidc))
                .with_state(o.clone())
                .merge(logout_page(browser::Browsing::Oidc(o.clone()), &p("/auth/logout"))),
        }
    }
}

/// `GET path`: the logout button's page, in either mode.
fn logout_page(b: browser::Browsing, path: &str) -> Router {
    Router::new().route(path, get(browser::logout_page)).with_state(Arc::new(b))
}
