//! RFC 7662 token introspection, for providers that issue opaque (non-JWT) access tokens.
//!
//! The answer is cached briefly rather than until `exp`: revocation at the provider is the
//! point of opaque tokens, so a revoked token stops working within [`MAX_CACHE`] seconds.

use serde_json::Value;

use crate::claims::{self, Claims};
use crate::error::TokenError;
use crate::http::Http;
use crate::validate::{Introspection, ValidatorConfig};
use crate::{Identity, unix_now};

/// How long an introspection answer is trusted, at most.
const MAX_CACHE: i64 = 60;

/// RFC 6750 `b64token`: the only characters a bearer token may have. Checked before the
/// token is sent anywhere.
pub(crate) fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

/// Asks the provider about `token`; returns the identity and until when to cache it.
pub(crate) async fn introspect(
    http: &Http,
    endpoint: &str,
    creds: &Introspection,
    cfg: &ValidatorConfig,
    token: &str,
) -> Result<(Identity, i64), TokenError> {
    let answer = http
        .post_form_json(
            endpoint,
            &[("token", token), ("token_type_hint", "access_token")],
            &creds.client_id,
            &creds.client_secret,
        )
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "token introspection failed");
            TokenError::Unverifiable
        })?;
    let Value::Object(c) = answer else {
        tracing::warn!("token introspection answered something other than a JSON object");
        return Err(TokenError::Unverifiable);
    };
    check(&c, cfg, unix_now())
}

fn check(c: &Claims, cfg: &ValidatorConfig, now: i64) -> Result<(Identity, i64), TokenError> {
    if c.get("active") != Some(&Value::Bool(true)) {
        return Err(TokenError::Inactive);
    }
    // Optional in RFC 7662, but when present they must agree with what we accept.
    if let Some(iss) = c.get("iss")
        && iss.as_str() != Some(cfg.issuer.as_str())
    {
        return Err(TokenError::WrongIssuer);
    }
    let leeway = i64::try_from(cfg.leeway.as_secs()).unwrap_or(i64::MAX);
    let exp = claims::numeric(c, "exp")?;
    if let Some(exp) = exp
        && now >= exp.saturating_add(leeway)
    {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = claims::numeric(c, "nbf")?
        && nbf > now.saturating_add(leeway)
    {
        return Err(TokenError::NotYetValid);
    }
    if c.contains_key("aud")
        && !claims::audience_contains(c, &cfg.audiences)
        && !claims::string(c, "azp").is_some_and(|a| cfg.audiences.iter().any(|x| x == a))
    {
        return Err(TokenError::WrongAudience);
    }
    let expires_at = exp.unwrap_or(now + MAX_CACHE);
    let id = claims::identity(c, cfg.roles_claim.as_deref(), expires_at)?;
    if let Some(scope) = &cfg.required_scope
        && !id.has_scope(scope)
    {
        return Err(TokenError::InsufficientScope);
    }
    Ok((id, expires_at.min(now + MAX_CACHE)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> ValidatorConfig {
        let mut c = ValidatorConfig::new("https://idp", vec!["hapi".to_owned()]);
        c.required_scope = Some("swe_hapiserver".to_owned());
        c
    }

    fn run(v: Value) -> Result<(Identity, i64), TokenError> {
        match v {
            Value::Object(m) => check(&m, &cfg(), 1000),
            _ => Err(TokenError::Malformed),
        }
    }

    #[test]
    fn answers() {
        let ok = run(json!({"active": true, "scope": "swe_hapiserver", "client_id": "c", "exp": 2000}));
        let (id, until) = ok.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((id.subject.as_str(), id.expires_at, until), ("c", 2000, 1060));
        assert_eq!(run(json!({"active": false})).err(), Some(TokenError::Inactive));
        assert_eq!(run(json!({"active": "true"})).err(), Some(TokenError::Inactive));
        assert_eq!(
            run(json!({"active": true, "scope": "x", "sub": "s"})).err(),
            Some(TokenError::InsufficientScope)
        );
        assert_eq!(
            run(json!({"active": true, "scope": "swe_hapiserver", "sub": "s", "exp": 900})).err(),
            Some(TokenError::Expired)
        );
        assert_eq!(
            run(json!({"active": true, "scope": "swe_hapiserver", "sub": "s", "iss": "https://evil"})).err(),
            Some(TokenError::WrongIssuer)
        );
        assert_eq!(
            run(json!({"active": true, "scope": "swe_hapiserver", "sub": "s", "aud": "other"})).err(),
            Some(TokenError::WrongAudience)
        );
    }

    #[test]
    fn b64token() {
        assert!(is_b64token("abc-._~+/=="));
        assert!(!is_b64token("a b"));
        assert!(!is_b64token("==="));
        assert!(!is_b64token("é"));
    }
}
