//! A JWT taken apart before any cryptography: alphabet, segments, base64url, JSON,
//! the header's `alg`, `typ` and `crit`. Everything that fails here costs no signature check.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::claims::Claims;
use crate::error::TokenError;
use crate::keys::accepted_algorithm;

/// Which kind of token is being checked.
pub(crate) enum Purpose<'a> {
    Access,
    IdToken { client_id: &'a str, nonce: &'a str },
}

#[derive(Deserialize)]
pub(crate) struct RawHeader {
    alg: String,
    #[serde(default)]
    pub(crate) kid: Option<String>,
    #[serde(default)]
    pub(crate) typ: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// A structurally valid JWT, not yet verified.
pub(crate) struct Jwt<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) header: RawHeader,
    pub(crate) claims: Claims,
    /// `header.payload`, what the signature covers.
    pub(crate) message: &'a str,
    pub(crate) signature: &'a str,
}

pub(crate) fn parse(token: &str) -> Result<Jwt<'_>, TokenError> {
    // The base64url alphabet and dots only: this also rules out non-ASCII and whitespace.
    if !token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(TokenError::Malformed);
    }
    let header: RawHeader = decode_part(h)?;
    let claims: Claims = decode_part(p)?;
    // We implement no critical header extension, so RFC 7515 §4.1.11 says refuse.
    if header.crit.is_some() {
        return Err(TokenError::Malformed);
    }
    let alg = accepted_algorithm(&header.alg).ok_or(TokenError::AlgorithmNotAllowed)?;
    Ok(Jwt { alg, header, claims, message: &token[..h.len() + 1 + p.len()], signature: s })
}

fn decode_part<T: DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// RFC 9068 access tokens say `at+jwt`; Keycloak says `JWT`; an ID token must not be
/// an access token.
pub(crate) fn check_type(typ: Option<&str>, purpose: &Purpose<'_>) -> Result<(), TokenError> {
    let Some(typ) = typ else { return Ok(()) };
    let t = typ.to_ascii_lowercase();
    let t = t.strip_prefix("application/").unwrap_or(&t);
    let ok = match purpose {
        Purpose::Access => t == "at+jwt" || t == "jwt",
        Purpose::IdToken { .. } => t == "jwt",
    };
    if ok { Ok(()) } else { Err(TokenError::WrongType) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_refuses_garbage_before_crypto() {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k"}"#);
        let p = URL_SAFE_NO_PAD.encode(br#"{"iss":"x"}"#);
        let good = format!("{h}.{p}.c2ln");
        assert!(parse(&good).is_ok());
        let none = format!("{}.{p}.c2ln", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#));
        let hs = format!("{}.{p}.c2ln", URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#));
        let crit = format!("{}.{p}.c2ln", URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","crit":["b64"]}"#));
        let dup = format!("{}.{p}.c2ln", URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","alg":"HS256"}"#));
        let array = format!("{h}.{}.c2ln", URL_SAFE_NO_PAD.encode(b"[1]"));
        let deep = format!("{h}.{}.c2ln", URL_SAFE_NO_PAD.encode("[".repeat(10_000)));
        for (bad, want) in [
            (none.as_str(), TokenError::AlgorithmNotAllowed),
            (&hs, TokenError::AlgorithmNotAllowed),
            (&crit, TokenError::Malformed),
            (&dup, TokenError::Malformed),
            (&array, TokenError::Malformed),
            (&deep, TokenError::Malformed),
            ("", TokenError::Malformed),
            ("..", TokenError::Malformed),
            ("a.b", TokenError::Malformed),
            ("a.b.c.d", TokenError::Malformed),
            ("é.b.c", TokenError::Malformed),
            ("a b.c.d", TokenError::Malformed),
            ("ab==.cd.ef", TokenError::Malformed),
            (&format!("{h}.{p}."), TokenError::Malformed),
            (&format!("{h}.!!!.sig"), TokenError::Malformed),
            (&format!("{h}.e30x.sig"), TokenError::Malformed),
        ] {
            assert_eq!(parse(bad).err(), Some(want), "{bad}");
        }
    }

    #[test]
    fn types() {
        let access = Purpose::Access;
        let id = Purpose::IdToken { client_id: "c", nonce: "n" };
        for (typ, a, i) in [
            (None, true, true),
            (Some("at+jwt"), true, false),
            (Some("application/at+JWT"), true, false),
            (Some("JWT"), true, true),
            (Some("id_token+jwt"), false, false),
            (Some("logout+jwt"), false, false),
        ] {
            assert_eq!(check_type(typ, &access).is_ok(), a, "{typ:?}");
            assert_eq!(check_type(typ, &id).is_ok(), i, "{typ:?}");
        }
    }
}
