//! Reading claims out of a JWT payload or an introspection answer. Providers differ in
//! details (Keycloak: `azp`, `realm_access.roles`; Azure: `scp`; floats for dates), so the
//! readers are lenient about shape and strict about meaning.

use serde_json::{Map, Value};

use crate::Identity;
use crate::error::TokenError;

pub(crate) type Claims = Map<String, Value>;

/// A NumericDate claim (RFC 7519 §2): seconds, possibly fractional. `Ok(None)` when absent.
pub(crate) fn numeric(c: &Claims, name: &str) -> Result<Option<i64>, TokenError> {
    match c.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Some(i)),
            // `as` saturates, and a date that far out is rejected by the exp/nbf checks anyway.
            None => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(|f| Some(f.floor() as i64))
                .ok_or(TokenError::Malformed),
        },
        Some(_) => Err(TokenError::Malformed),
    }
}

pub(crate) fn string<'a>(c: &'a Claims, name: &str) -> Option<&'a str> {
    c.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Whether `aud` (a string or an array of strings) names one of `accepted`.
pub(crate) fn audience_contains(c: &Claims, accepted: &[String]) -> bool {
    match c.get("aud") {
        Some(Value::String(a)) => accepted.iter().any(|x| x == a),
        Some(Value::Array(list)) => {
            list.iter().filter_map(Value::as_str).any(|a| accepted.iter().any(|x| x == a))
        }
        _ => false,
    }
}

/// The granted scopes: `scope` (RFC 8693/9068, space-separated), else `scp` (a string or
/// an array, as Azure and Okta send it).
pub(crate) fn scopes(c: &Claims) -> Vec<String> {
    match c.get("scope").or_else(|| c.get("scp")) {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// Roles at a dotted path such as `realm_access.roles`: an array of strings, or one string.
pub(crate) fn roles(c: &Claims, path: Option<&str>) -> Vec<String> {
    let Some(path) = path else { return Vec::new() };
    let mut parts = path.split('.');
    let Some(first) = parts.next() else { return Vec::new() };
    let mut v = c.get(first);
    for p in parts {
        v = v.and_then(|x| x.get(p));
    }
    match v {
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The identity a verified set of claims proves.
pub(crate) fn identity(
    c: &Claims,
    roles_claim: Option<&str>,
    expires_at: i64,
) -> Result<Identity, TokenError> {
    let client_id = string(c, "client_id").or_else(|| string(c, "azp")).map(str::to_owned);
    let subject = match string(c, "sub") {
        Some(s) => s.to_owned(),
        None => client_id.clone().ok_or(TokenError::MissingClaim)?,
    };
    Ok(Identity { subject, client_id, scopes: scopes(c), roles: roles(c, roles_claim), expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn numeric_dates() {
        let c = claims(json!({"a": 5, "b": 5.9, "c": "5", "d": null, "e": 1e300}));
        assert_eq!(numeric(&c, "a"), Ok(Some(5)));
        assert_eq!(numeric(&c, "b"), Ok(Some(5)));
        assert_eq!(numeric(&c, "c"), Err(TokenError::Malformed));
        assert_eq!(numeric(&c, "d"), Ok(None));
        assert_eq!(numeric(&c, "x"), Ok(None));
        assert_eq!(numeric(&c, "e"), Ok(Some(i64::MAX)));
    }

    #[test]
    fn keycloak_shapes() {
        let c = claims(json!({
            "azp": "m2m-client", "sub": "f81d4fae", "scope": "profile swe_hapiserver  email",
            "realm_access": {"roles": ["offline_access", "hapi-embargo"]},
            "resource_access": {"hapi": {"roles": "reader"}},
            "aud": ["account", "hapi"],
        }));
        let id = identity(&c, Some("realm_access.roles"), 9).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id.client_id.as_deref(), Some("m2m-client"));
        assert_eq!(id.subject, "f81d4fae");
        assert_eq!(id.scopes, ["profile", "swe_hapiserver", "email"]);
        assert_eq!(id.roles, ["offline_access", "hapi-embargo"]);
        assert_eq!(roles(&c, Some("resource_access.hapi.roles")), ["reader"]);
        assert!(roles(&c, Some("nope.roles")).is_empty());
        assert!(audience_contains(&c, &["hapi".to_owned()]));
        assert!(!audience_contains(&c, &["other".to_owned()]));
    }

    #[test]
    fn subject_falls_back_to_the_client() {
        let c = claims(json!({"client_id": "c1", "scp": ["a", "b"]}));
        let id = identity(&c, None, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((id.subject.as_str(), id.scopes.len()), ("c1", 2));
        assert_eq!(identity(&claims(json!({"sub": ""})), None, 0), Err(TokenError::MissingClaim));
    }
}
