//! Access control for the HAPI server, modelled on ESA's SWE HAPI Server ("only available
//! to registered users").
//!
//! Four independent parts, none of which knows about HTTP routing:
//! - [`TokenValidator`] (`validate.rs`): the resource server. It validates OIDC bearer
//!   tokens from any provider (Keycloak, oidc-provider, or our own [`Issuer`]) against a
//!   cached JWKS, optionally by RFC 7662 introspection, and caches each good token until
//!   it expires, so a signature is checked once per token rather than once per request.
//! - [`Issuer`] (`issuer.rs`): a built-in OAuth2 client-credentials token endpoint with the
//!   same request and response as the SWE SSO, so a standalone install needs no external
//!   provider. Clients and local users live in SQLite; secrets only as argon2 hashes.
//! - [`AccessRules`] (`rules.rs`): which identity may read which dataset, and embargoes.
//! - [`Revocation`] (`revocation.rs`): server-side browser sessions and revoked clients,
//!   so that logout, a removed account or a revoked client ends access within seconds.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use hapi_auth::{TokenValidator, ValidatorConfig};
//! let mut cfg = ValidatorConfig::new("https://sso.example/realms/swe", vec!["hapi".to_owned()]);
//! cfg.required_scope = Some("swe_hapiserver".to_owned());
//! let validator = TokenValidator::discover(cfg).await?;
//! let who = validator.validate("eyJ...").await?;
//! println!("{} may proceed", who.subject);
//! # Ok(()) }
//! ```
//!
//! Architecture invariants: no axum/tower here; secrets and tokens never reach a log line
//! or a `Debug` output; no hand-written cryptography (jsonwebtoken, aws-lc-rs, argon2).

mod cache;
mod claims;
mod error;
mod glob;
mod http;
mod identity;
mod introspect;
mod issuer;
mod jwt;
mod keyfile;
mod keys;
mod revocation;
mod rules;
mod secret;
pub mod store;
mod validate;

pub use error::{SetupError, TokenError};
pub use identity::Identity;
pub use issuer::{
    ClientInfo, Issuer, IssuerConfig, IssuerError, LoginRefused, OAuthError, SecretChecks, UserInfo,
    check_password, check_roles, normalize_email,
};
pub use keyfile::read_or_create;
pub use revocation::{RECHECK, Revocation};
pub use rules::{AccessRules, EmbargoConfig, RuleConfig, RulesConfig};
pub use store::{AuthStore, SqliteAuthStore};
pub use validate::{Introspection, TokenValidator, ValidatorConfig};

/// Seconds since 1970 (UTC), the unit of JWT `exp`/`iat`/`nbf`.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
