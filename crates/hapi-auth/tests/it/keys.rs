//! Test signing keys and in-process token minting. The RSA keys are fixed test-only
//! PEMs (`tests/keys/`, made once with `openssl genrsa -traditional`); the EC and
//! Ed25519 keys are generated per run with aws-lc-rs.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const RSA_A: &str = include_str!("../keys/rsa-a.pem");
pub const RSA_A_PUBLIC: &str = include_str!("../keys/rsa-a.pub.pem");
pub const RSA_B: &str = include_str!("../keys/rsa-b.pem");

pub const AUDIENCE: &str = "https://hapi.example/hapi";
pub const SCOPE: &str = "swe_hapiserver";

pub fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("pem")
}

#[derive(Debug, Clone)]
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    enc: EncodingKey,
    pub jwk: Jwk,
}

impl TestKey {
    fn new(kid: &str, alg: Algorithm, enc: EncodingKey, pin_alg: bool) -> TestKey {
        let mut jwk = Jwk::from_encoding_key(&enc, alg).expect("jwk");
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        if !pin_alg {
            jwk.common.key_algorithm = None;
        }
        TestKey { kid: kid.to_owned(), alg, enc, jwk }
    }

    /// An RSA key whose JWK has no `alg`, so RS* and PS* both verify with it.
    pub fn rsa(pem: &str, kid: &str) -> TestKey {
        TestKey::new(kid, Algorithm::RS256, EncodingKey::from_rsa_der(&pem_der(pem)), false)
    }

    /// An RSA key whose JWK pins `alg: RS256`.
    pub fn rsa_pinned(pem: &str, kid: &str) -> TestKey {
        TestKey::new(kid, Algorithm::RS256, EncodingKey::from_rsa_der(&pem_der(pem)), true)
    }

    pub fn ec(kid: &str) -> TestKey {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).expect("ec");
        TestKey::new(kid, Algorithm::ES256, EncodingKey::from_ec_der(doc.as_ref()), true)
    }

    pub fn ed(kid: &str) -> TestKey {
        let doc = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).expect("ed");
        TestKey::new(kid, Algorithm::EdDSA, EncodingKey::from_ed_der(doc.as_ref()), true)
    }

    /// The same key under another `alg` (RS256 key signing PS256, say).
    pub fn with_alg(&self, alg: Algorithm) -> TestKey {
        TestKey { alg, ..self.clone() }
    }

    /// The same key published under another `kid`.
    pub fn with_kid(&self, kid: &str) -> TestKey {
        TestKey { kid: kid.to_owned(), ..self.clone() }
    }

    pub fn header(&self) -> Header {
        let mut h = Header::new(self.alg);
        h.typ = Some("at+jwt".to_owned());
        h.kid = Some(self.kid.clone());
        h
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(self.header(), claims)
    }

    pub fn sign_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.enc).expect("sign")
    }
}

pub fn jwks(keys: &[&TestKey]) -> JwkSet {
    JwkSet { keys: keys.iter().map(|k| k.jwk.clone()).collect() }
}

pub fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs(),
    )
    .expect("i64")
}

/// Claims of a good access token from `issuer`, like oidc-provider's.
pub fn claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "jti": "b0a1",
        "sub": "m2m-client",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "scope": format!("openid {SCOPE}"),
        "client_id": "m2m-client",
        "iss": issuer,
        "aud": AUDIENCE,
        "roles": ["reader", "embargo"],
    })
}

/// `claims` with some fields replaced (`null` removes one).
pub fn claims_with(issuer: &str, changes: &Value) -> Value {
    let mut c = claims(issuer);
    if let (Some(obj), Some(ch)) = (c.as_object_mut(), changes.as_object()) {
        for (k, v) in ch {
            if v.is_null() {
                obj.remove(k);
            } else {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    c
}

/// A JWT assembled by hand (for `alg: none` and HMAC forgeries).
pub fn raw_jwt(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// An HS256 token whose HMAC key is `secret`: the classic algorithm-confusion forgery
/// when `secret` is the provider's RSA public key.
pub fn hs256(kid: Option<&str>, secret: &[u8], claims: &Value) -> String {
    let mut h = Header::new(Algorithm::HS256);
    h.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(secret)).expect("hs256")
}
