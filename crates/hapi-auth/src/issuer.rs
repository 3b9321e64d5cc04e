//! The built-in token issuer: the SWE SSO's client-credentials token endpoint, so a
//! standalone install needs no external provider.
//!
//! - Signing key: Ed25519 in `data_dir/issuer-key` (PKCS#8 PEM, mode 0600), created on
//!   first use. Its `kid` is the RFC 7638 thumbprint, so it is stable across restarts.
//! - Clients and local users: `data_dir/auth.sqlite3`, secrets only as hashes: PBKDF2 for
//!   the client secrets we generate, argon2id for passwords (and for client secrets
//!   created before PBKDF2, until their first use replaces the hash).
//! - Tokens: RFC 9068 JWT access tokens (`typ: at+jwt`), validated by the same
//!   [`TokenValidator`](crate::TokenValidator) as an external provider's.
//!
//! [`Issuer::verify_user`] hashes with argon2 (tens of milliseconds of CPU and ~19 MiB
//! each), [`Issuer::token`] may (an old client hash) and reads SQLite: call them from
//! `spawn_blocking`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hapi_core::percent;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters,
    OctetKeyPairType, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

mod accounts;

pub use accounts::{LoginRefused, check_password, normalize_email};

use crate::keyfile;
use crate::store::{AuthStore, PENDING_SECRET, SqliteAuthStore};
use crate::validate::ValidatorConfig;
use crate::{secret, unix_now};

/// Settings of the built-in issuer.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The `iss` of our tokens, e.g. `http://127.0.0.1:8080`.
    pub issuer_url: String,
    /// The `aud` of our tokens: this HAPI server.
    pub audience: String,
    /// Scopes a client may ask for, e.g. `["swe_hapiserver"]`; the first is the one the
    /// validator requires.
    pub scopes: Vec<String>,
    /// Token lifetime (300 s at SWE).
    pub token_ttl: Duration,
}

/// A registered client, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientInfo {
    /// The client id.
    pub id: String,
    /// Roles carried in its tokens.
    pub roles: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// When the current secret was set (unix seconds).
    pub secret_rotated_at: i64,
    /// When it was revoked; revoked clients get `invalid_client`.
    pub revoked_at: Option<i64>,
    /// The local account that made it on the portal (its tokens carry that account's
    /// current roles); `None` for an operator's client.
    pub owner: Option<String>,
    /// When it was last given a token.
    pub last_used_at: Option<i64>,
    /// A self-service client whose secret was not yet shown (it has none).
    pub secret_pending: bool,
}

/// A local browser-login account, without its password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// The login name.
    pub name: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// When an operator approved it; `None`: a sign-up still waiting.
    pub approved_at: Option<i64>,
}

/// What went wrong opening or managing the issuer (not a token-endpoint error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The signing key file exists but holds no usable key.
    #[error("{}: not an Ed25519 PKCS#8 key ({reason}); move it away to create a new key", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The client/user database.
    #[error("auth database: {0}")]
    Db(#[from] rusqlite::Error),
    /// Another backend's database (PostgreSQL) failed or could not be reached.
    #[error("auth database: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A bad argument or setting.
    #[error("{0}")]
    Invalid(String),
    /// The client id or user name is taken.
    #[error("{0} already exists")]
    Exists(String),
    /// No such (active) client or user.
    #[error("no such active client or user: {0}")]
    NotFound(String),
    /// Randomness or hashing failed.
    #[error("{0}")]
    Crypto(String),
}

/// An RFC 6749 §5.2 error answer of the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// HTTP status: 400, or 401 for `invalid_client`, 500 for `server_error`.
    pub status: u16,
    /// The `error` code.
    pub error: &'static str,
    /// The `error_description`; never contains a secret.
    pub description: String,
    /// Answer with `WWW-Authenticate: Basic` (the client used HTTP Basic, §5.2).
    pub www_authenticate_basic: bool,
}

impl OAuthError {
    fn new(status: u16, error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError { status, error, description: description.into(), www_authenticate_basic: false }
    }

    fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(400, "invalid_request", description)
    }

    fn invalid_client(basic: bool) -> OAuthError {
        OAuthError {
            www_authenticate_basic: basic,
            ..OAuthError::new(401, "invalid_client", "client authentication failed")
        }
    }

    fn server_error() -> OAuthError {
        OAuthError::new(500, "server_error", "the token could not be issued")
    }

    /// The JSON body: `{"error": ..., "error_description": ...}`.
    pub fn body(&self) -> Value {
        json!({"error": self.error, "error_description": self.description})
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl std::error::Error for OAuthError {}

/// The built-in token issuer. `Send + Sync`.
pub struct Issuer {
    cfg: IssuerConfig,
    kid: String,
    signing_key: EncodingKey,
    jwk: Jwk,
    store: Arc<dyn AuthStore>,
    /// Hashes checked when the client or user is unknown, so a miss costs as much as a
    /// hit: a client secret's kind for clients, a password's for users.
    dummy_client_hash: OnceLock<String>,
    dummy_password_hash: OnceLock<String>,
    argon2_checks: AtomicU64,
    pbkdf2_checks: AtomicU64,
}

/// Secret checks since the issuer was opened, by kind (for tests and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SecretChecks {
    /// Argon2 checks: passwords, and client secrets stored before PBKDF2.
    pub argon2: u64,
    /// PBKDF2 checks: client secrets.
    pub pbkdf2: u64,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("cfg", &self.cfg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// Longest secret or password we hash: argon2 takes any length, but nobody needs more.
const MAX_SECRET: usize = 1024;

impl Issuer {
    /// Opens (creating on first use) the signing key and the client database in `data_dir`.
    pub fn open(data_dir: &Path, cfg: IssuerConfig) -> Result<Issuer, IssuerError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| IssuerError::Io { path: data_dir.to_owned(), source })?;
        let store = Arc::new(SqliteAuthStore::open(&data_dir.join("auth.sqlite3"))?);
        Issuer::with_store(&data_dir.join("issuer-key"), store, cfg)
    }

    /// Opens (creating on first use) the signing key at `key_path`, with clients and
    /// users in `store`. Replicas share both: the same key file and one database.
    pub fn with_store(
        key_path: &Path,
        store: Arc<dyn AuthStore>,
        cfg: IssuerConfig,
    ) -> Result<Issuer, IssuerError> {
        check_config(&cfg)?;
        let key_path = key_path.to_owned();
        let der = keyfile::load_or_create(&key_path)?;
        let pair = Ed25519KeyPair::from_pkcs8(&der)
            .map_err(|e| IssuerError::Key { path: key_path.clone(), reason: e.to_string() })?;
        let mut jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            }),
        };
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| IssuerError::Crypto(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        Ok(Issuer {
            cfg,
            kid,
            signing_key: EncodingKey::from_ed_der(&der),
            jwk,
            store,
            dummy_client_hash: OnceLock::new(),
            dummy_password_hash: OnceLock::new(),
            argon2_checks: AtomicU64::new(0),
            pbkdf2_checks: AtomicU64::new(0),
        })
    }

    /// How many secrets were checked, by hash kind.
    pub fn secret_checks(&self) -> SecretChecks {
        SecretChecks {
            argon2: self.argon2_checks.load(Ordering::Relaxed),
            pbkdf2: self.pbkdf2_checks.load(Ordering::Relaxed),
        }
    }

    /// [`secret::verify`], counted.
    fn check(&self, secret: &str, phc: &str) -> bool {
        let n = if secret::is_slow(phc) { &self.argon2_checks } else { &self.pbkdf2_checks };
        n.fetch_add(1, Ordering::Relaxed);
        secret::verify(secret, phc)
    }

    /// The public key set to publish at the `jwks_uri`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: vec![self.jwk.clone()] }
    }

    /// An OpenID Provider / RFC 8414 metadata document for `/.well-known/openid-configuration`.
    pub fn discovery_document(
        &self,
        token_endpoint: &str,
        jwks_uri: &str,
        authorization_endpoint: Option<&str>,
    ) -> Value {
        let mut doc = json!({
            "issuer": self.cfg.issuer_url,
            "token_endpoint": token_endpoint,
            "jwks_uri": jwks_uri,
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": self.cfg.scopes,
            "response_types_supported": [],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "client_id", "roles"],
        });
        if let Some(a) = authorization_endpoint {
            doc["authorization_endpoint"] = json!(a);
            doc["response_types_supported"] = json!(["code"]);
        }
        doc
    }

    /// The validator settings that accept exactly our tokens.
    pub fn validator_config(&self) -> ValidatorConfig {
        let mut c = ValidatorConfig::new(self.cfg.issuer_url.clone(), vec![self.cfg.audience.clone()]);
        c.required_scope = self.cfg.scopes.first().cloned();
        c.roles_claim = Some("roles".to_owned());
        c
    }

    /// The token endpoint. `form` is the decoded `application/x-www-form-urlencoded`
    /// body, `basic` the HTTP Basic credentials if the request had them (base64-decoded
    /// and split at the first `:`; the RFC 6749 §2.3.1 form-encoding inside is undone
    /// here). The answer is the SWE SSO's JSON; send it with `Cache-Control: no-store`
    /// (RFC 6749 §5.1). On error send [`OAuthError::body`] with [`OAuthError::status`],
    /// plus `WWW-Authenticate: Basic` when [`OAuthError::www_authenticate_basic`] is set.
    pub fn token(
        &self,
        form: &[(String, String)],
        basic: Option<(String, String)>,
    ) -> Result<Value, OAuthError> {
        let mut params: HashMap<&str, &str> = HashMap::with_capacity(form.len());
        for (k, v) in form {
            if params.insert(k.as_str(), v.as_str()).is_some() {
                return Err(OAuthError::invalid_request("a request parameter is repeated"));
            }
        }
        match params.get("grant_type") {
            None => return Err(OAuthError::invalid_request("grant_type is missing")),
            Some(&"client_credentials") => {}
            Some(_) => {
                return Err(OAuthError::new(
                    400,
                    "unsupported_grant_type",
                    "only the client_credentials grant is supported",
                ));
            }
        }
        let used_basic = basic.is_some();
        let (id, secret) = match (basic, params.get("client_secret")) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::invalid_request("use one client authentication method, not two"));
            }
            (Some((id, secret)), None) => {
                // RFC 6749 §2.3.1: both parts are form-urlencoded inside the Basic header.
                let (Some(id), Some(secret)) = (percent::form_decode(&id), percent::form_decode(&secret))
                else {
                    return Err(OAuthError::invalid_client(true));
                };
                if params.get("client_id").is_some_and(|f| *f != id) {
                    return Err(OAuthError::invalid_request("client_id differs from the Basic credentials"));
                }
                (id, secret)
            }
            (None, Some(secret)) => match params.get("client_id") {
                Some(id) => ((*id).to_owned(), (*secret).to_owned()),
                None => return Err(OAuthError::invalid_request("client_id is missing")),
            },
            (None, None) => {
                let mut e = OAuthError::invalid_client(false);
                e.description = "client authentication is required".to_owned();
                return Err(e);
            }
        };
        let Some(roles) = self.authenticate_client(&id, &secret)? else {
            tracing::info!(client_id = ?truncate(&id), "client authentication failed");
            return Err(OAuthError::invalid_client(used_basic));
        };
        let scopes = self.granted_scopes(params.get("scope").copied())?;
        let scope = scopes.join(" ");
        let now = unix_now();
        let ttl = i64::try_from(self.cfg.token_ttl.as_secs()).unwrap_or(i64::MAX / 4);
        let jti = secret::random_bytes::<16>().map_err(|_| OAuthError::server_error())?;
        let claims = json!({
            "iss": self.cfg.issuer_url,
            "sub": id,
            "aud": self.cfg.audience,
            "exp": now.saturating_add(ttl),
            "iat": now,
            "nbf": now,
            "jti": secret::hex(&jti),
            "scope": scope,
            "client_id": id,
            "roles": roles,
        });
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing_key).map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            OAuthError::server_error()
        })?;
        if let Err(e) = self.store.touch_client(&id, now) {
            tracing::warn!(client_id = %id, error = %e, "recording a client's last use failed");
        }
        tracing::info!(client_id = %id, %scope, "issued an access token");
        Ok(json!({
            "access_token": token,
            "expires_in": ttl,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": scope,
        }))
    }

    /// The client's roles if `secret` is its current secret and it is not revoked.
    fn authenticate_client(&self, id: &str, secret: &str) -> Result<Option<Vec<String>>, OAuthError> {
        let row = self.store.client(id).map_err(|e| {
            tracing::error!(error = %e, "reading the client database failed");
            OAuthError::server_error()
        })?;
        let secret = if secret.len() > MAX_SECRET { "" } else { secret };
        let Some(r) = row.filter(|r| !r.revoked && r.secret_hash != PENDING_SECRET) else {
            let _ = self.check(secret, self.dummy_client_hash());
            return Ok(None);
        };
        if !self.check(secret, &r.secret_hash) {
            return Ok(None);
        }
        if secret::is_slow(&r.secret_hash) {
            self.upgrade_hash(id, secret, &r.secret_hash);
        }
        let Some(owner) = r.owner else { return Ok(Some(r.roles)) };
        // A self-service client carries its owner's roles as they are now, and ends with
        // the account.
        match self.store.user(&owner) {
            Ok(Some(u)) if u.approved => Ok(Some(u.roles)),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::error!(error = %e, "reading the user database failed");
                Err(OAuthError::server_error())
            }
        }
    }

    /// Replaces a client's Argon2 hash with a PBKDF2 one of the same secret, once it is
    /// known to be right, so its next requests cost no Argon2. Only if the stored hash is
    /// still the one checked: a rotation in between wins. A failure only costs speed.
    fn upgrade_hash(&self, id: &str, secret: &str, old: &str) {
        let replaced = secret::hash_client_secret(secret)
            .and_then(|new| self.store.replace_secret_hash(id, old, &new).map_err(|e| e.to_string()));
        match replaced {
            Ok(true) => tracing::info!(client_id = %id, "client secret hash upgraded from argon2 to PBKDF2"),
            Ok(false) => {}
            Err(e) => tracing::warn!(client_id = %id, error = %e, "upgrading a client secret hash failed"),
        }
    }

    fn dummy_client_hash(&self) -> &str {
        self.dummy_client_hash.get_or_init(|| secret::hash_client_secret(&throwaway()).unwrap_or_default())
    }

    fn dummy_password_hash(&self) -> &str {
        self.dummy_password_hash.get_or_init(|| secret::hash(&throwaway()).unwrap_or_default())
    }

    /// RFC 6749 §3.3: a space-separated subset of the grantable scopes; none asked, all given.
    fn granted_scopes(&self, requested: Option<&str>) -> Result<Vec<String>, OAuthError> {
        let Some(requested) = requested.filter(|s| !s.trim().is_empty()) else {
            return Ok(self.cfg.scopes.clone());
        };
        let mut out: Vec<String> = Vec::new();
        for s in requested.split(' ').filter(|s| !s.is_empty()) {
            if !self.cfg.scopes.iter().any(|g| g == s) {
                return Err(OAuthError::new(
                    400,
                    "invalid_scope",
                    format!("unknown scope; this server grants: {}", self.cfg.scopes.join(" ")),
                ));
            }
            if !out.iter().any(|o| o == s) {
                out.push(s.to_owned());
            }
        }
        Ok(out)
    }

    /// Registers a client (`id` defaults to 32 random hex digits). Returns the secret,
    /// which is stored only as a hash: show it once.
    pub fn create_client(
        &self,
        id: Option<&str>,
        roles: &[String],
    ) -> Result<(ClientInfo, String), IssuerError> {
        let id = match id {
            Some(id) => {
                check_client_id(id)?;
                id.to_owned()
            }
            None => secret::new_client_id().map_err(IssuerError::Crypto)?,
        };
        check_roles(roles)?;
        let secret = secret::new_secret().map_err(IssuerError::Crypto)?;
        let hash = secret::hash_client_secret(&secret).map_err(IssuerError::Crypto)?;
        let now = unix_now();
        if !self.store.insert_client(&id, &hash, roles, now)? {
            return Err(IssuerError::Exists(format!("client {id}")));
        }
        tracing::info!(client_id = %id, "created a client");
        let info = ClientInfo {
            id,
            roles: roles.to_vec(),
            created_at: now,
            secret_rotated_at: now,
            revoked_at: None,
            owner: None,
            last_used_at: None,
            secret_pending: false,
        };
        Ok((info, secret))
    }

    /// Creates a self-service client of local account `owner`, at most `cap` active ones
    /// per account. It has no secret until [`Issuer::reveal_secret`]: the secret is made
    /// when it is shown, so nothing but its hash is ever stored.
    pub fn create_owned_client(&self, owner: &str, cap: u32) -> Result<ClientInfo, IssuerError> {
        if !self.store.user(owner)?.is_some_and(|u| u.approved) {
            return Err(IssuerError::NotFound(format!("user {owner}")));
        }
        let id = secret::new_client_id().map_err(IssuerError::Crypto)?;
        let now = unix_now();
        // Ids are 128 random bits: a refusal is the cap, not a taken id.
        if !self.store.insert_owned_client(&id, PENDING_SECRET, owner, cap, now)? {
            return Err(IssuerError::Invalid(format!(
                "you have {cap} active clients, the most allowed; revoke one to create another"
            )));
        }
        tracing::info!(target: "audit", who = %owner, client_id = %id, event = "client_created", "self-service client created");
        Ok(ClientInfo {
            id,
            roles: Vec::new(),
            created_at: now,
            secret_rotated_at: now,
            revoked_at: None,
            owner: Some(owner.to_owned()),
            last_used_at: None,
            secret_pending: true,
        })
    }

    /// `owner`'s clients, oldest first, revoked ones included.
    pub fn owned_clients(&self, owner: &str) -> Result<Vec<ClientInfo>, IssuerError> {
        self.store.list_clients(Some(owner))
    }

    /// Client `id` if it is `owner`'s and active; someone else's is as unknown as a
    /// missing one.
    fn owned_active(&self, owner: &str, id: &str) -> Result<(), IssuerError> {
        match self.store.client(id)? {
            Some(c) if c.owner.as_deref() == Some(owner) && !c.revoked => Ok(()),
            _ => Err(IssuerError::NotFound(format!("client {id}"))),
        }
    }

    /// The first secret of `owner`'s client `id`, made now and shown this once: `None`
    /// when it was shown before (then only a rotation gives a new one).
    pub fn reveal_secret(&self, owner: &str, id: &str) -> Result<Option<String>, IssuerError> {
        self.owned_active(owner, id)?;
        let secret = secret::new_secret().map_err(IssuerError::Crypto)?;
        let hash = secret::hash_client_secret(&secret).map_err(IssuerError::Crypto)?;
        if !self.store.replace_secret_hash(id, PENDING_SECRET, &hash)? {
            tracing::warn!(target: "audit", who = %owner, client_id = %id, event = "secret_reveal_refused", "client secret already shown");
            return Ok(None);
        }
        tracing::info!(target: "audit", who = %owner, client_id = %id, event = "secret_revealed", "client secret shown");
        Ok(Some(secret))
    }

    /// [`Issuer::rotate_secret`] of `owner`'s active client `id`.
    pub fn rotate_owned(&self, owner: &str, id: &str) -> Result<String, IssuerError> {
        self.owned_active(owner, id)?;
        let s = self.rotate_secret(id)?;
        tracing::info!(target: "audit", who = %owner, client_id = %id, event = "client_rotated", "self-service client secret rotated");
        Ok(s)
    }

    /// [`Issuer::revoke_client`] of `owner`'s active client `id`.
    pub fn revoke_owned(&self, owner: &str, id: &str) -> Result<(), IssuerError> {
        self.owned_active(owner, id)?;
        if !self.revoke_client(id)? {
            return Err(IssuerError::NotFound(format!("client {id}")));
        }
        tracing::info!(target: "audit", who = %owner, client_id = %id, event = "client_revoked", "self-service client revoked");
        Ok(())
    }

    /// All clients, revoked ones included.
    pub fn list_clients(&self) -> Result<Vec<ClientInfo>, IssuerError> {
        self.store.list_clients(None)
    }

    /// Revokes a client: no new tokens, and a server that checks
    /// [`Revocation::client_active`](crate::Revocation::client_active) refuses the tokens
    /// already issued within [`RECHECK`](crate::RECHECK). `false` if there was no active client `id`.
    pub fn revoke_client(&self, id: &str) -> Result<bool, IssuerError> {
        let done = self.store.revoke(id, unix_now())?;
        if done {
            tracing::info!(client_id = %id, "revoked a client");
        }
        Ok(done)
    }

    /// Gives an active client a new secret (the old one stops working) and returns it.
    pub fn rotate_secret(&self, id: &str) -> Result<String, IssuerError> {
        let secret = secret::new_secret().map_err(IssuerError::Crypto)?;
        let hash = secret::hash_client_secret(&secret).map_err(IssuerError::Crypto)?;
        if !self.store.set_secret(id, &hash, unix_now())? {
            return Err(IssuerError::NotFound(format!("client {id}")));
        }
        tracing::info!(client_id = %id, "rotated a client secret");
        Ok(secret)
    }
}

/// A random secret to hash for a dummy.
fn throwaway() -> String {
    secret::new_secret().unwrap_or_else(|_| "no randomness, still a hash to compute".to_owned())
}

fn check_config(cfg: &IssuerConfig) -> Result<(), IssuerError> {
    let bad = |m: &str| Err(IssuerError::Invalid(format!("issuer settings: {m}")));
    if !(cfg.issuer_url.starts_with("http://") || cfg.issuer_url.starts_with("https://")) {
        return bad("issuer_url must be an http(s) URL");
    }
    if cfg.audience.is_empty() {
        return bad("audience is empty");
    }
    // RFC 6749 §3.3 scope-token: printable ASCII without space, `"` and `\`.
    if cfg.scopes.is_empty()
        || cfg.scopes.iter().any(|s| {
            s.is_empty() || !s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        })
    {
        return bad("scopes must be one or more scope tokens (printable ASCII, no spaces or quotes)");
    }
    if cfg.token_ttl < Duration::from_secs(1) {
        return bad("token_ttl must be at least 1 s");
    }
    Ok(())
}

/// Custom client ids: URL- and Basic-safe characters only, so they never need escaping.
fn check_client_id(id: &str) -> Result<(), IssuerError> {
    if id.is_empty()
        || id.len() > 128
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err(IssuerError::Invalid("a client id is 1 to 128 of A-Z a-z 0-9 - . _ ~".to_owned()));
    }
    Ok(())
}

/// Roles we store: 1 to 128 characters each, without spaces or control characters.
pub fn check_roles(roles: &[String]) -> Result<(), IssuerError> {
    if roles
        .iter()
        .any(|r| r.is_empty() || r.len() > 128 || r.chars().any(|c| c.is_control() || c.is_whitespace()))
    {
        return Err(IssuerError::Invalid("a role is 1 to 128 characters without spaces".to_owned()));
    }
    Ok(())
}

/// Client ids in logs come from the request: keep them short.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_and_roles() {
        assert!(check_client_id("fdcad2908e964bbc8ca4ed25bdf25e1b").is_ok());
        assert!(check_client_id("my-app_1.x~").is_ok());
        for bad in ["", "a:b", "a b", "é", &"x".repeat(129)] {
            assert!(check_client_id(bad).is_err(), "{bad}");
        }
        assert!(check_roles(&["embargo".to_owned()]).is_ok());
        assert!(check_roles(&["a b".to_owned()]).is_err());
        assert!(check_roles(&[String::new()]).is_err());
    }

    #[test]
    fn a_rotation_between_check_and_upgrade_wins() -> Result<(), IssuerError> {
        let dir = tempfile::tempdir().map_err(|e| IssuerError::Invalid(e.to_string()))?;
        let cfg = IssuerConfig {
            issuer_url: "http://127.0.0.1:8080".to_owned(),
            audience: "a".to_owned(),
            scopes: vec!["s".to_owned()],
            token_ttl: Duration::from_secs(300),
        };
        let issuer = Issuer::open(dir.path(), cfg)?;
        let old = secret::hash("an old secret").map_err(IssuerError::Crypto)?;
        assert!(issuer.store.insert_client("c", &old, &[], 1)?);
        let rotated = issuer.rotate_secret("c")?;
        // The upgrade of a check that read `old` before the rotation changes nothing.
        issuer.upgrade_hash("c", "an old secret", &old);
        assert_eq!(issuer.authenticate_client("c", "an old secret").ok().flatten(), None);
        assert!(issuer.authenticate_client("c", &rotated).ok().flatten().is_some());
        Ok(())
    }

    #[test]
    fn truncates_on_char_boundaries() {
        let s = "é".repeat(100);
        assert_eq!(truncate(&s).chars().count(), 64);
        assert_eq!(truncate("short"), "short");
    }
}
