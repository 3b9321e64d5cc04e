//! The verification keys of a JWKS, each with the algorithms it may verify.
//!
//! A key's algorithms come from the JWK alone (its `alg` if set, else its key type and
//! curve), never from the token: a token's `alg` only has to be one of them. That is what
//! defeats algorithm confusion (`none`, or HS256 "signed" with an RSA public key).

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// One usable signature-verification key.
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// The usable keys of one JWKS snapshot. Replaced as a whole on each successful fetch.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: Vec<VerifyKey>,
}

/// The outcome of looking a token's `kid` up.
pub(crate) enum Lookup<'a> {
    Found(&'a VerifyKey),
    /// The kid is not in this snapshot: a refetch may find it.
    Unknown,
    /// No kid and not exactly one key: which key is meant is unknowable, refetching won't help.
    Ambiguous,
}

impl KeySet {
    /// Keeps the keys that can verify signatures; the others (encryption keys, HMAC
    /// secrets, unknown curves) are skipped rather than failing the whole set, because
    /// providers publish such keys next to their signing keys (Keycloak's RSA-OAEP key).
    pub(crate) fn from_jwks(jwks: &JwkSet) -> KeySet {
        KeySet { keys: jwks.keys.iter().filter_map(usable).collect() }
    }

    /// Parses a JWKS document key by key, so that one key our JWK types cannot read does
    /// not hide the others. `None` when the document is not a JWKS at all.
    pub(crate) fn from_document(doc: &Value) -> Option<KeySet> {
        let keys = doc.get("keys")?.as_array()?;
        let jwks = JwkSet {
            keys: keys.iter().filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok()).collect(),
        };
        Some(KeySet::from_jwks(&jwks))
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn find(&self, kid: Option<&str>) -> Lookup<'_> {
        match kid {
            Some(kid) => match self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                Some(k) => Lookup::Found(k),
                None => Lookup::Unknown,
            },
            None if self.keys.len() == 1 => Lookup::Found(&self.keys[0]),
            None => Lookup::Ambiguous,
        }
    }
}

/// The asymmetric signature algorithms we accept at all (RFC 7518 names).
pub(crate) fn accepted_algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        // `none`, every HS*, and anything else.
        _ => return None,
    })
}

const RSA_ALGS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

fn usable(jwk: &Jwk) -> Option<VerifyKey> {
    if let Some(u) = &jwk.common.public_key_use
        && *u != PublicKeyUse::Signature
    {
        return None;
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return None;
    }
    // What the key type allows; a JWK `alg` can only narrow it to one of these.
    let by_type: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => RSA_ALGS.to_vec(),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
            _ => return None,
        },
        // Symmetric secrets in a public JWKS would let anyone holding the JWKS sign.
        _ => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        None => by_type,
        Some(KeyAlgorithm::UNKNOWN_ALGORITHM) => return None,
        Some(ka) => {
            let alg = accepted_algorithm(&ka.to_string())?;
            if !by_type.contains(&alg) {
                return None;
            }
            vec![alg]
        }
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyKey { kid: jwk.common.key_id.clone(), algorithms, key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(doc: Value) -> KeySet {
        KeySet::from_document(&doc).unwrap_or_default()
    }

    #[test]
    fn skips_unusable_keys_and_keeps_the_rest() {
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed"});
        let ks = set(json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "alg-mismatch", "alg": "RS256"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "hs", "alg": "HS256"},
            {"kty": "weird", "kid": "weird"},
            "not an object",
            ed,
        ]}));
        assert_eq!(ks.len(), 1);
        assert!(matches!(ks.find(Some("ed")), Lookup::Found(k) if k.algorithms == [Algorithm::EdDSA]));
        assert!(matches!(ks.find(Some("hmac")), Lookup::Unknown));
        assert!(matches!(ks.find(None), Lookup::Found(_)));
    }

    #[test]
    fn not_a_jwks() {
        assert!(KeySet::from_document(&json!({"keys": "x"})).is_none());
        assert!(KeySet::from_document(&json!([1, 2])).is_none());
        assert_eq!(set(json!({"keys": []})).len(), 0);
    }

    #[test]
    fn only_signature_algorithms_are_accepted() {
        for bad in ["none", "None", "HS256", "HS384", "HS512", "ES512", "RSA-OAEP", ""] {
            assert!(accepted_algorithm(bad).is_none(), "{bad}");
        }
        for good in ["RS256", "PS512", "ES256", "ES384", "EdDSA"] {
            assert!(accepted_algorithm(good).is_some(), "{good}");
        }
    }
}
