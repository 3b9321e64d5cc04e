//! The resource server: is this bearer token good for this API?
//!
//! Order of work for an uncached token, cheapest first, so garbage never reaches the
//! cryptography and forged tokens cannot make us hammer the provider:
//! 1. size, alphabet, three segments, base64url and JSON of header and payload;
//! 2. the header's `alg` is one we accept at all (never `none` or HS*), `typ`, `crit`;
//! 3. `iss`, `exp`, `nbf`, `iat`, audience (unverified yet, but a mismatch ends it here);
//! 4. the key for `kid` (an unknown kid may refetch the JWKS, rate-limited and shared);
//! 5. the signature, with an algorithm the *key* allows;
//! 6. scope, then the identity is cached until `exp`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

use crate::cache::{TokenCache, token_hash};
use crate::claims::{self, Claims};
use crate::error::{SetupError, TokenError};
use crate::http::Http;
use crate::introspect;
use crate::jwt::{Purpose, check_type, parse};
use crate::keys::{KeySet, Lookup};
use crate::{Identity, unix_now};

/// How many validated tokens are remembered.
const CACHE_CAPACITY: usize = 10_000;

/// How to validate tokens of one provider.
#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// Exact `iss`; discovery is at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// A token is accepted if `aud` (string or array) contains one of these, or, as
    /// Keycloak tokens need without an audience mapper, if `azp` is one of them.
    pub audiences: Vec<String>,
    /// The space-separated `scope` claim must contain it. Providers issue tokens without
    /// the scope when asked for an unknown one, so this check is ours to make.
    pub required_scope: Option<String>,
    /// Dotted path to the roles: `realm_access.roles` (Keycloak), `groups`, `roles`.
    pub roles_claim: Option<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// An unknown `kid` refetches the JWKS at most this often.
    pub jwks_min_refetch: Duration,
    /// Keys older than this are refreshed in the background.
    pub jwks_max_age: Duration,
    /// Bound on every call to the provider.
    pub http_timeout: Duration,
    /// RFC 7662 introspection of opaque (non-JWT) tokens.
    pub introspection: Option<Introspection>,
    /// Longer tokens are refused unread.
    pub max_token_bytes: usize,
}

impl ValidatorConfig {
    /// A configuration with the defaults: 30 s leeway, JWKS refetch at most every 30 s,
    /// background refresh after 600 s, 5 s HTTP timeout, tokens up to 16 KiB.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        ValidatorConfig {
            issuer: issuer.into(),
            audiences,
            required_scope: None,
            roles_claim: None,
            leeway: Duration::from_secs(30),
            jwks_min_refetch: Duration::from_secs(30),
            jwks_max_age: Duration::from_secs(600),
            http_timeout: Duration::from_secs(5),
            introspection: None,
            max_token_bytes: 16 * 1024,
        }
    }
}

/// Client credentials for the provider's introspection endpoint.
#[derive(Clone)]
pub struct Introspection {
    /// The endpoint; `None` takes `introspection_endpoint` from discovery.
    pub endpoint: Option<String>,
    /// Our client id at the provider.
    pub client_id: String,
    /// Its secret (never shown by `Debug`).
    pub client_secret: String,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspection")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

/// Validates bearer tokens of one provider. `Send + Sync`; share it in an `Arc`.
pub struct TokenValidator {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ValidatorConfig,
    leeway: i64,
    discovery: Option<Value>,
    jwks_uri: Option<String>,
    introspection_endpoint: Option<String>,
    http: Option<Http>,
    keys: RwLock<Arc<KeySet>>,
    /// When the current keys were fetched.
    loaded_at: Mutex<Instant>,
    /// When a JWKS fetch was last attempted; the lock makes concurrent callers share one.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
    background_running: AtomicBool,
    jwks_fetches: AtomicU64,
    signature_checks: AtomicU64,
    cache_hits: AtomicU64,
    cache: TokenCache,
}

impl std::fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenValidator")
            .field("issuer", &self.inner.cfg.issuer)
            .field("audiences", &self.inner.cfg.audiences)
            .field("keys", &self.inner.current_keys().len())
            .finish_non_exhaustive()
    }
}

impl TokenValidator {
    /// Discovers the provider and fetches its keys. The discovery document's `issuer`
    /// must equal `cfg.issuer`; any failure is a start-up error.
    pub async fn discover(cfg: ValidatorConfig) -> Result<TokenValidator, SetupError> {
        check_config(&cfg)?;
        let http = Http::new(cfg.http_timeout).map_err(SetupError::Config)?;
        let url = format!("{}/.well-known/openid-configuration", cfg.issuer.trim_end_matches('/'));
        let doc =
            http.get_json(&url).await.map_err(|reason| SetupError::Fetch { url: url.clone(), reason })?;
        let found = doc.get("issuer").and_then(Value::as_str).ok_or(SetupError::Discovery("issuer"))?;
        if found != cfg.issuer {
            return Err(SetupError::IssuerMismatch { expected: cfg.issuer.clone(), found: found.to_owned() });
        }
        let jwks_uri = endpoint(&doc, "jwks_uri", &cfg.issuer).ok_or(SetupError::Discovery("jwks_uri"))?;
        let introspection_endpoint = match &cfg.introspection {
            None => None,
            Some(i) => Some(match &i.endpoint {
                Some(e) => e.clone(),
                None => endpoint(&doc, "introspection_endpoint", &cfg.issuer)
                    .ok_or(SetupError::Discovery("introspection_endpoint"))?,
            }),
        };
        let jwks = http
            .get_json(&jwks_uri)
            .await
            .map_err(|reason| SetupError::Fetch { url: jwks_uri.clone(), reason })?;
        let keys = KeySet::from_document(&jwks)
            .ok_or_else(|| SetupError::Fetch { url: jwks_uri.clone(), reason: "not a JWKS".to_owned() })?;
        // Opaque-token providers may publish no signing key; everyone else must.
        if keys.len() == 0 && introspection_endpoint.is_none() {
            return Err(SetupError::NoKeys(jwks_uri));
        }
        tracing::info!(issuer = %cfg.issuer, keys = keys.len(), "discovered the OpenID provider");
        let v =
            TokenValidator::build(cfg, keys, Some(doc), Some(jwks_uri), introspection_endpoint, Some(http));
        v.inner.jwks_fetches.store(1, Ordering::Relaxed);
        Ok(v)
    }

    /// A validator for a fixed key set, without HTTP: the built-in issuer's own keys.
    /// (Introspection works here only with an explicit endpoint.)
    pub fn with_keys(cfg: ValidatorConfig, jwks: JwkSet) -> TokenValidator {
        let keys = KeySet::from_jwks(&jwks);
        let endpoint = cfg.introspection.as_ref().and_then(|i| i.endpoint.clone());
        let http = endpoint.as_ref().and_then(|_| match Http::new(cfg.http_timeout) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "no HTTP client for introspection");
                None
            }
        });
        TokenValidator::build(cfg, keys, None, None, endpoint, http)
    }

    fn build(
        cfg: ValidatorConfig,
        keys: KeySet,
        discovery: Option<Value>,
        jwks_uri: Option<String>,
        introspection_endpoint: Option<String>,
        http: Option<Http>,
    ) -> TokenValidator {
        let leeway = i64::try_from(cfg.leeway.as_secs()).unwrap_or(i64::MAX / 4);
        TokenValidator {
            inner: Arc::new(Inner {
                cfg,
                leeway,
                discovery,
                jwks_uri,
                introspection_endpoint,
                http,
                keys: RwLock::new(Arc::new(keys)),
                loaded_at: Mutex::new(Instant::now()),
                last_attempt: tokio::sync::Mutex::new(None),
                background_running: AtomicBool::new(false),
                jwks_fetches: AtomicU64::new(0),
                signature_checks: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
                cache: TokenCache::new(CACHE_CAPACITY),
            }),
        }
    }

    /// Validates a bearer access token (the value after `Bearer `).
    pub async fn validate(&self, token: &str) -> Result<Identity, TokenError> {
        self.validate_shared(token).await.map(|id| (*id).clone())
    }

    /// [`validate`](Self::validate) without copying the identity: the per-request path
    /// of a server, where a cache hit should cost a hash and a reference count.
    pub async fn validate_shared(&self, token: &str) -> Result<Arc<Identity>, TokenError> {
        let inner = &self.inner;
        if token.len() > inner.cfg.max_token_bytes {
            return Err(TokenError::TooLarge);
        }
        let key = token_hash(token);
        if let Some(id) = inner.cache.get(&key, unix_now()) {
            inner.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(id);
        }
        inner.refresh_in_background_if_old();
        // A JWT is three dot-separated segments; anything else may be an opaque token.
        let (id, valid_until) = if token.bytes().filter(|&b| b == b'.').count() == 2 {
            let id = inner.check_jwt(token, Purpose::Access).await?;
            let until = id.expires_at.saturating_add(inner.leeway);
            (id, until)
        } else {
            inner.introspect(token).await?
        };
        let id = Arc::new(id);
        inner.cache.insert(key, id.clone(), valid_until, unix_now());
        Ok(id)
    }

    /// Validates the ID token of a browser login: `aud` is our `client_id` (and `azp`,
    /// if present, too), the `nonce` is this login's, there is no scope check. Not cached.
    pub async fn validate_id_token(
        &self,
        token: &str,
        client_id: &str,
        nonce: &str,
    ) -> Result<Identity, TokenError> {
        if token.len() > self.inner.cfg.max_token_bytes {
            return Err(TokenError::TooLarge);
        }
        self.inner.check_jwt(token, Purpose::IdToken { client_id, nonce }).await
    }

    /// The provider's discovery document (authorization, token and end-session
    /// endpoints for the browser flow); `None` for [`TokenValidator::with_keys`].
    pub fn discovery(&self) -> Option<&Value> {
        self.inner.discovery.as_ref()
    }

    /// How many JWKS fetches have happened (discovery's included).
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.jwks_fetches.load(Ordering::Relaxed)
    }

    /// How many tokens were answered from the cache (for metrics).
    pub fn cache_hits(&self) -> u64 {
        self.inner.cache_hits.load(Ordering::Relaxed)
    }

    /// How many signatures have been verified (the cache keeps this at one per token).
    pub fn signature_checks(&self) -> u64 {
        self.inner.signature_checks.load(Ordering::Relaxed)
    }

    /// The configuration in use.
    pub fn config(&self) -> &ValidatorConfig {
        &self.inner.cfg
    }
}

fn check_config(cfg: &ValidatorConfig) -> Result<(), SetupError> {
    if !(cfg.issuer.starts_with("https://") || cfg.issuer.starts_with("http://")) {
        return Err(SetupError::Config(format!("issuer {:?} is not an http(s) URL", cfg.issuer)));
    }
    if cfg.audiences.iter().all(String::is_empty) {
        return Err(SetupError::Config("no audience configured".to_owned()));
    }
    Ok(())
}

/// An endpoint URL from discovery. An https issuer must not send us to plain http.
fn endpoint(doc: &Value, name: &str, issuer: &str) -> Option<String> {
    let url = doc.get(name)?.as_str()?;
    let ok = url.starts_with("https://") || (url.starts_with("http://") && issuer.starts_with("http://"));
    ok.then(|| url.to_owned())
}

impl Inner {
    fn current_keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    async fn check_jwt(&self, token: &str, purpose: Purpose<'_>) -> Result<Identity, TokenError> {
        let jwt = parse(token)?;
        check_type(jwt.header.typ.as_deref(), &purpose)?;
        let exp = self.check_claims(&jwt.claims, &purpose, unix_now())?;

        let keys = self.keys_with(jwt.header.kid.as_deref()).await?;
        let Lookup::Found(key) = keys.find(jwt.header.kid.as_deref()) else {
            return Err(TokenError::UnknownKey);
        };
        if !key.algorithms.contains(&jwt.alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        self.signature_checks.fetch_add(1, Ordering::Relaxed);
        match jsonwebtoken::crypto::verify(jwt.signature, jwt.message.as_bytes(), &key.key, jwt.alg) {
            Ok(true) => {}
            _ => return Err(TokenError::BadSignature),
        }

        let id = claims::identity(&jwt.claims, self.cfg.roles_claim.as_deref(), exp)?;
        if let Purpose::Access = purpose
            && let Some(scope) = &self.cfg.required_scope
            && !id.has_scope(scope)
        {
            return Err(TokenError::InsufficientScope);
        }
        Ok(id)
    }

    /// Time, issuer and audience checks; returns `exp`.
    fn check_claims(&self, c: &Claims, purpose: &Purpose<'_>, now: i64) -> Result<i64, TokenError> {
        match claims::string(c, "iss") {
            Some(iss) if iss == self.cfg.issuer => {}
            Some(_) => return Err(TokenError::WrongIssuer),
            None => return Err(TokenError::MissingClaim),
        }
        let exp = claims::numeric(c, "exp")?.ok_or(TokenError::MissingClaim)?;
        // RFC 7519 4.1.4: not accepted on or after `exp`.
        if now >= exp.saturating_add(self.leeway) {
            return Err(TokenError::Expired);
        }
        let future = now.saturating_add(self.leeway);
        if claims::numeric(c, "nbf")?.is_some_and(|nbf| nbf > future) {
            return Err(TokenError::NotYetValid);
        }
        let iat = claims::numeric(c, "iat")?;
        if iat.is_some_and(|iat| iat > future) {
            return Err(TokenError::NotYetValid);
        }
        match purpose {
            Purpose::Access => {
                let azp_ok =
                    claims::string(c, "azp").is_some_and(|a| self.cfg.audiences.iter().any(|x| x == a));
                if !claims::audience_contains(c, &self.cfg.audiences) && !azp_ok {
                    return Err(TokenError::WrongAudience);
                }
            }
            Purpose::IdToken { client_id, nonce } => {
                // OpenID Connect Core §3.1.3.7.
                if iat.is_none() {
                    return Err(TokenError::MissingClaim);
                }
                if !claims::audience_contains(c, &[(*client_id).to_owned()]) {
                    return Err(TokenError::WrongAudience);
                }
                if claims::string(c, "azp").is_some_and(|a| a != *client_id) {
                    return Err(TokenError::WrongAudience);
                }
                if claims::string(c, "nonce") != Some(*nonce) || nonce.is_empty() {
                    return Err(TokenError::WrongNonce);
                }
            }
        }
        Ok(exp)
    }

    /// The key set holding `kid`, refetching the JWKS once if it is unknown.
    async fn keys_with(&self, kid: Option<&str>) -> Result<Arc<KeySet>, TokenError> {
        let seen = self.current_keys();
        match seen.find(kid) {
            Lookup::Found(_) => return Ok(seen),
            Lookup::Ambiguous => return Err(TokenError::UnknownKey),
            Lookup::Unknown => {}
        }
        if self.refetch(&seen).await {
            let fresh = self.current_keys();
            if let Lookup::Found(_) = fresh.find(kid) {
                return Ok(fresh);
            }
        }
        Err(TokenError::UnknownKey)
    }

    /// Fetches the JWKS unless one was attempted within `jwks_min_refetch`. Callers that
    /// arrive during a fetch wait for it and share its result. Bounded by `http_timeout`.
    /// Returns whether the keys changed since `seen`.
    async fn refetch(&self, seen: &Arc<KeySet>) -> bool {
        let (Some(http), Some(uri)) = (&self.http, &self.jwks_uri) else { return false };
        let work = async {
            let mut last = self.last_attempt.lock().await;
            if !Arc::ptr_eq(&self.current_keys(), seen) {
                return true;
            }
            if last.is_some_and(|t| t.elapsed() < self.cfg.jwks_min_refetch) {
                return false;
            }
            *last = Some(Instant::now());
            self.jwks_fetches.fetch_add(1, Ordering::Relaxed);
            let fetched = http
                .get_json(uri)
                .await
                .and_then(|doc| KeySet::from_document(&doc).ok_or_else(|| "not a JWKS".to_owned()));
            match fetched {
                Ok(keys) if keys.len() > 0 => {
                    tracing::info!(keys = keys.len(), "refreshed the JWKS");
                    *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
                    *self.loaded_at.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
                    true
                }
                Ok(_) => {
                    tracing::warn!("the JWKS has no usable signing key; keeping the cached keys");
                    false
                }
                Err(error) => {
                    tracing::warn!(%error, "JWKS fetch failed; keeping the cached keys");
                    false
                }
            }
        };
        match tokio::time::timeout(self.cfg.http_timeout, work).await {
            Ok(changed) => changed,
            Err(_) => {
                tracing::warn!("JWKS fetch timed out; keeping the cached keys");
                false
            }
        }
    }

    /// Starts a background JWKS refresh when the keys are older than `jwks_max_age`, so
    /// rotations are picked up without an unknown-kid miss and removed keys go away.
    fn refresh_in_background_if_old(self: &Arc<Self>) {
        if self.http.is_none() || self.jwks_uri.is_none() {
            return;
        }
        if self.loaded_at.lock().unwrap_or_else(PoisonError::into_inner).elapsed() < self.cfg.jwks_max_age {
            return;
        }
        if self.background_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.background_running.store(false, Ordering::Release);
            return;
        };
        let me = Arc::clone(self);
        rt.spawn(async move {
            let seen = me.current_keys();
            me.refetch(&seen).await;
            me.background_running.store(false, Ordering::Release);
        });
    }

    async fn introspect(&self, token: &str) -> Result<(Identity, i64), TokenError> {
        let (Some(creds), Some(endpoint), Some(http)) =
            (&self.cfg.introspection, &self.introspection_endpoint, &self.http)
        else {
            return Err(TokenError::Malformed);
        };
        if !introspect::is_b64token(token) {
            return Err(TokenError::Malformed);
        }
        introspect::introspect(http, endpoint, creds, &self.cfg, token).await
    }
}
