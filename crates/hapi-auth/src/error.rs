//! Why a token or the validator set-up failed.

/// Why a token was refused. Every variant maps to an RFC 6750 error code; the texts are
/// safe to send back and to log: they never contain the token or its claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a token: bad alphabet, segments, base64 or JSON.
    #[error("the token is malformed")]
    Malformed,
    /// Longer than `max_token_bytes`.
    #[error("the token is too large")]
    TooLarge,
    /// `none`, HMAC, or an algorithm the key does not allow.
    #[error("the token's signing algorithm is not accepted")]
    AlgorithmNotAllowed,
    /// No key for the token's `kid`, even after refetching the JWKS.
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// Past `exp` (plus leeway).
    #[error("the token has expired")]
    Expired,
    /// Before `nbf`, or `iat` in the future (beyond leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// Neither `aud` nor `azp` names this API.
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// The header `typ` says it is not an access token (or, for logins, not an ID token).
    #[error("the token is of the wrong type")]
    WrongType,
    /// A required claim (`exp`, `sub`, `iss`, `iat`) is missing.
    #[error("the token lacks a required claim")]
    MissingClaim,
    /// The ID token's nonce is not the one of this login.
    #[error("the login response does not match the login request")]
    WrongNonce,
    /// Introspection says the token is not active (revoked, expired or unknown).
    #[error("the token is not active")]
    Inactive,
    /// Its client was revoked, or its session ended, after it was issued.
    #[error("the token was revoked")]
    Revoked,
    /// Introspection failed (provider down): the token could be good, but we cannot tell.
    #[error("the token cannot be verified at the moment")]
    Unverifiable,
    /// A good token without the required scope.
    #[error("the token lacks the required scope")]
    InsufficientScope,
}

impl TokenError {
    /// The RFC 6750 §3.1 error code.
    pub fn error_code(&self) -> &'static str {
        match self {
            TokenError::InsufficientScope => "insufficient_scope",
            _ => "invalid_token",
        }
    }

    /// The HTTP status RFC 6750 §3.1 prescribes: 403 for `insufficient_scope`, else 401.
    pub fn http_status(&self) -> u16 {
        match self {
            TokenError::InsufficientScope => 403,
            _ => 401,
        }
    }

    /// A short text for `error_description` and logs: no quotes or backslashes, so it
    /// fits a `WWW-Authenticate` quoted string as is.
    pub fn description(&self) -> &'static str {
        match self {
            TokenError::Malformed => "the token is malformed",
            TokenError::TooLarge => "the token is too large",
            TokenError::AlgorithmNotAllowed => "the token's signing algorithm is not accepted",
            TokenError::UnknownKey => "the token was signed by an unknown key",
            TokenError::BadSignature => "the token's signature is invalid",
            TokenError::Expired => "the token has expired",
            TokenError::NotYetValid => "the token is not valid yet",
            TokenError::WrongIssuer => "the token was issued by another issuer",
            TokenError::WrongAudience => "the token is meant for another audience",
            TokenError::WrongType => "the token is of the wrong type",
            TokenError::MissingClaim => "the token lacks a required claim",
            TokenError::WrongNonce => "the login response does not match the login request",
            TokenError::Inactive => "the token is not active",
            TokenError::Revoked => "the token was revoked",
            TokenError::Unverifiable => "the token cannot be verified at the moment",
            TokenError::InsufficientScope => "the token lacks the required scope",
        }
    }
}

/// Why the validator could not be set up (a start-up error, unlike [`TokenError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The configuration cannot work.
    #[error("invalid token-validation settings: {0}")]
    Config(String),
    /// The provider could not be reached or answered badly.
    #[error("fetching {url}: {reason}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// The discovery document is for another issuer (OpenID Connect Discovery §4.3).
    #[error("the discovery document names issuer {found:?}, but {expected:?} is configured")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The document's issuer.
        found: String,
    },
    /// The discovery document lacks something we need.
    #[error("the discovery document has no usable {0}")]
    Discovery(&'static str),
    /// The JWKS holds no key we can verify signatures with.
    #[error("the JWKS at {0} has no usable signing key")]
    NoKeys(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_fit_a_quoted_string() {
        use TokenError::*;
        for e in [
            Malformed,
            TooLarge,
            AlgorithmNotAllowed,
            UnknownKey,
            BadSignature,
            Expired,
            NotYetValid,
            WrongIssuer,
            WrongAudience,
            WrongType,
            MissingClaim,
            WrongNonce,
            Inactive,
            Unverifiable,
            InsufficientScope,
        ] {
            // RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E.
            assert!(e.description().bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'));
            assert_eq!(e.to_string(), e.description());
            let expected =
                if e == InsufficientScope { (403, "insufficient_scope") } else { (401, "invalid_token") };
            assert_eq!((e.http_status(), e.error_code()), expected);
        }
    }
}
