//! Access control: who the caller is (bearer token or browser session), which paths
//! need it, which datasets they may read, and the RFC 6750 answers when they may not.
//!
//! The HAPI specification leaves authentication out on purpose (its §8.6.2); this is
//! the SWE HAPI Server's model: every endpoint behind OIDC bearer tokens, a browser
//! login, and per-dataset rights.

pub mod browser;
pub mod cors;
pub mod issuer_routes;
pub mod session;
pub mod throttle;

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hapi_auth::{AccessRules, Identity, Issuer, IssuerConfig, TokenError, TokenValidator, ValidatorConfig};
use hapi_core::{HAPI_VERSION, HapiStatus, Nanos};
use serde_json::json;

use crate::config::{AuthMode, AuthSettings};
use crate::state::AppState;
use session::Sessions;

/// Who made the request; `None` is an anonymous caller. Handlers read it from the
/// request extensions to filter the catalog and refuse datasets.
#[derive(Debug, Clone, Default)]
pub struct Caller(pub Option<Arc<Identity>>);

impl Caller {
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

/// The external provider's browser-login client.
#[derive(Clone)]
pub struct OidcClient {
    /// Our client id at the provider.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// Access control of one server.
#[derive(Debug)]
pub struct Auth {
    /// The mode.
    pub mode: AuthMode,
    /// Validates bearer tokens (built-in or external issuer).
    pub validator: Option<Arc<TokenValidator>>,
    /// The built-in issuer.
    pub issuer: Option<Arc<Issuer>>,
    /// Who may read what.
    pub rules: AccessRules,
    /// Paths (with prefix) served without credentials.
    public: Vec<String>,
    /// Browser sessions.
    pub sessions: Option<Sessions>,
    /// The external provider's login client, if browser login goes there.
    pub oidc_client: Option<OidcClient>,
    /// Public base URL.
    pub public_url: String,
    /// Origins allowed to send cookies cross-origin.
    pub cookie_origins: Vec<String>,
    /// Bounds concurrent password and secret hashing: each Argon2 check takes tens of
    /// milliseconds and ~19 MiB, so a burst of logins must queue, not exhaust memory.
    pub hashing: tokio::sync::Semaphore,
    /// Failed secret checks per address and per (name, address): a flood is refused
    /// before it queues for `hashing`.
    pub throttle: throttle::Throttle,
}

/// Argon2 checks that may run at once.
const HASHING_SLOTS: usize = 4;

impl Auth {
    /// No access control at all.
    pub fn open() -> Auth {
        Auth {
            mode: AuthMode::Open,
            validator: None,
            issuer: None,
            rules: AccessRules::new(&hapi_auth::RulesConfig::default()).unwrap_or_else(|_| unreachable!()),
            public: Vec::new(),
            sessions: None,
            oidc_client: None,
            public_url: String::new(),
            cookie_origins: Vec::new(),
            hashing: tokio::sync::Semaphore::new(HASHING_SLOTS),
            throttle: throttle::Throttle::default(),
        }
    }

    /// Builds access control from the configuration: opens the built-in issuer's keys
    /// and database, or discovers the external provider (a start-up error if it fails).
    pub async fn from_settings(s: &AuthSettings, prefix: &str, data_dir: &std::path::Path) -> Result<Auth> {
        if s.mode == AuthMode::Open {
            return Ok(Auth::open());
        }
        let rules = AccessRules::new(&s.access).map_err(|e| anyhow::anyhow!("[auth.access]: {e}"))?;
        let sessions =
            Sessions::open(&s.session_key_file, s.public_url.starts_with("https://"), s.session_ttl)?;
        let public = s.public_paths.iter().map(|p| format!("{prefix}{p}")).collect();
        let (validator, issuer, oidc_client) = match s.mode {
            AuthMode::Builtin => {
                let issuer = Issuer::open(
                    data_dir,
                    IssuerConfig {
                        issuer_url: s.public_url.clone(),
                        audience: s.audience.clone(),
                        scopes: vec![s.scope.clone()],
                        token_ttl: s.token_ttl,
                    },
                )
                .context("opening the built-in token issuer")?;
                let mut cfg = issuer.validator_config();
                cfg.leeway = s.leeway;
                let v = TokenValidator::with_keys(cfg, issuer.jwks());
                (v, Some(Arc::new(issuer)), None)
            }
            AuthMode::Oidc => {
                let o = s.oidc.as_ref().context("[auth.oidc] missing")?;
                let secret = match (&o.client_secret, &o.client_secret_file) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(f)) => Some(
                        std::fs::read_to_string(f)
                            .with_context(|| format!("reading client_secret_file {}", f.display()))?
                            .trim()
                            .to_owned(),
                    ),
                    (None, None) => None,
                };
                let mut cfg = ValidatorConfig::new(o.issuer.clone(), o.audience.clone());
                cfg.required_scope = o.scope.clone();
                cfg.roles_claim = o.roles_claim.clone();
                if let Some(l) = o.leeway {
                    cfg.leeway = std::time::Duration::from_secs(l);
                }
                if let Some(r) = o.jwks_refetch_interval {
                    cfg.jwks_min_refetch = std::time::Duration::from_secs(r);
                }
                let client = match (&o.client_id, secret) {
                    (Some(id), Some(secret)) => {
                        Some(OidcClient { client_id: id.clone(), client_secret: secret })
                    }
                    _ => None,
                };
                if o.introspection {
                    let c =
                        client.as_ref().context("[auth.oidc] introspection needs client_id and a secret")?;
                    cfg.introspection = Some(hapi_auth::Introspection {
                        endpoint: None,
                        client_id: c.client_id.clone(),
                        client_secret: c.client_secret.clone(),
                    });
                }
                let v = TokenValidator::discover(cfg)
                    .await
                    .with_context(|| format!("discovering the OpenID provider {}", o.issuer))?;
                (v, None, client)
            }
            AuthMode::Open => unreachable!(),
        };
        Ok(Auth {
            mode: s.mode,
            validator: Some(Arc::new(validator)),
            issuer,
            rules,
            public,
            sessions: Some(sessions),
            oidc_client,
            public_url: s.public_url.clone(),
            cookie_origins: s.cookie_origins.clone(),
            hashing: tokio::sync::Semaphore::new(HASHING_SLOTS),
            throttle: throttle::Throttle::default(),
        })
    }

    /// Whether `who` may see dataset `id` at all (otherwise it answers as unknown: 1406).
    pub fn can_read(&self, who: &Caller, id: &str) -> bool {
        self.mode == AuthMode::Open || self.rules.can_read(who.0.as_deref(), id)
    }

    /// The newest time `who` may read in dataset `id`, when an embargo applies.
    pub fn embargo_until(&self, who: &Caller, id: &str) -> Option<Nanos> {
        if self.mode == AuthMode::Open {
            return None;
        }
        let age = self.rules.embargo(who.0.as_deref(), id)?;
        let age = i64::try_from(age.as_nanos()).unwrap_or(i64::MAX);
        Some(crate::state::now_nanos().saturating_sub(age))
    }
}

/// Why a request is refused before it reaches a handler.
#[derive(Debug)]
pub enum Denied {
    /// No credentials: 401 with a bare `WWW-Authenticate: Bearer` challenge (RFC 6750 §3.1).
    Missing,
    /// Malformed request, e.g. a token in the query string: 400 `invalid_request`.
    InvalidRequest(&'static str),
    /// A bad token: 401 `invalid_token`.
    Token(TokenError),
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let (status, error, description) = match &self {
            Denied::Missing => {
                (StatusCode::UNAUTHORIZED, None, "authentication required: send a bearer token")
            }
            Denied::InvalidRequest(d) => (StatusCode::BAD_REQUEST, Some("invalid_request"), *d),
            Denied::Token(e) => {
                // RFC 6750 §3.1: insufficient_scope is 403, the rest 401.
                let status = if e.error_code() == "insufficient_scope" {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::UNAUTHORIZED
                };
                (status, Some(e.error_code()), e.description())
            }
        };
        let challenge = match error {
            Some(code) => {
                format!("Bearer realm=\"hapi\", error=\"{code}\", error_description=\"{description}\"")
            }
            None => "Bearer realm=\"hapi\"".to_owned(),
        };
        let body = json!({
            "HAPI": HAPI_VERSION,
            "status": {"code": 1400, "message": format!("HAPI error 1400: {}: {description}", HapiStatus::BadRequest.message())},
            "x_auth_error": error.unwrap_or("missing_token"),
        });
        let mut r = (status, body.to_string()).into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        r
    }
}

/// Paths the auth layer never guards: the issuer's and the login's own endpoints.
fn is_auth_path(path: &str, prefix: &str) -> bool {
    let p = path.strip_prefix(prefix).unwrap_or(path);
    p.starts_with("/auth/") || p.starts_with("/oauth/") || p == "/.well-known/openid-configuration"
}

/// The bearer token of `Authorization`, if that is what it holds.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Denied> {
    let Some(v) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let v = v.to_str().map_err(|_| Denied::InvalidRequest("the Authorization header is not ASCII"))?;
    let (scheme, token) = v.split_once(' ').unwrap_or((v, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Denied::InvalidRequest("the bearer token is empty"));
    }
    Ok(Some(token))
}

/// The middleware: resolves the caller, or refuses the request.
pub async fn authenticate(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let auth = &st.auth;
    if auth.mode == AuthMode::Open
        || req.method() == Method::OPTIONS
        || is_auth_path(req.uri().path(), &st.prefix)
    {
        req.extensions_mut().insert(Caller(None));
        return next.run(req).await;
    }
    // Tokens belong in the header only (RFC 6750 §2.3 is not offered: URLs end up in logs).
    if req.uri().query().is_some_and(|q| q.split('&').any(|kv| kv.split('=').next() == Some("access_token")))
    {
        return Denied::InvalidRequest("tokens are accepted only in the Authorization header")
            .into_response();
    }
    let identity = match bearer(req.headers()) {
        Err(d) => return d.into_response(),
        Ok(Some(token)) => match auth.validator.as_ref().map(|v| v.validate_shared(token)) {
            Some(fut) => match fut.await {
                Ok(id) => Some(id),
                Err(e) => return Denied::Token(e).into_response(),
            },
            None => return Denied::Missing.into_response(),
        },
        Ok(None) => auth.sessions.as_ref().and_then(|s| s.identity(req.headers())).map(Arc::new),
    };
    let path = req.uri().path();
    if identity.is_none() && !auth.public.iter().any(|p| p == path) && !auth.rules.has_anonymous() {
        if wants_html(req.headers()) && req.method() == Method::GET {
            return browser::to_login(&st, req.uri());
        }
        return Denied::Missing.into_response();
    }
    req.extensions_mut().insert(Caller(identity));
    next.run(req).await
}

/// A browser navigation (rather than a script) asks for HTML first.
fn wants_html(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.starts_with("text/html"))
}
