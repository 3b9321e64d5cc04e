//! The hostile-token table, garbage, the validation cache, ID tokens.

use std::sync::Arc;

use hapi_auth::{TokenError, TokenValidator, ValidatorConfig};
use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::keys::{
    AUDIENCE, RSA_A, RSA_A_PUBLIC, RSA_B, SCOPE, TestKey, claims, claims_with, hs256, jwks, now, raw_jwt,
};
use crate::provider::FakeIdp;

pub struct Keys {
    /// RSA, JWK without `alg`: RS* and PS*.
    pub a: TestKey,
    /// RSA, JWK pinned to RS256.
    pub pinned: TestKey,
    pub ec: TestKey,
    pub ed: TestKey,
}

impl Keys {
    pub fn new() -> Keys {
        Keys {
            a: TestKey::rsa(RSA_A, "rsa-a"),
            pinned: TestKey::rsa_pinned(RSA_B, "rsa-pinned"),
            ec: TestKey::ec("ec"),
            ed: TestKey::ed("ed"),
        }
    }
}

pub fn config(issuer: &str) -> ValidatorConfig {
    let mut c = ValidatorConfig::new(issuer, vec![AUDIENCE.to_owned()]);
    c.required_scope = Some(SCOPE.to_owned());
    c.roles_claim = Some("roles".to_owned());
    c
}

async fn setup() -> (Keys, FakeIdp, TokenValidator) {
    let k = Keys::new();
    let idp = FakeIdp::start(&jwks(&[&k.a, &k.pinned, &k.ec, &k.ed])).await;
    let v = TokenValidator::discover(config(&idp.url)).await.expect("discover");
    (k, idp, v)
}

fn flip_last_char(t: &str) -> String {
    let mut s = t.to_owned();
    // Change the second-to-last character: the last one's low bits may be padding.
    let last = s.pop().expect("non-empty");
    let prev = s.pop().expect("non-empty");
    s.push(if prev == 'A' { 'B' } else { 'A' });
    s.push(last);
    s
}

#[tokio::test]
async fn good_tokens_of_every_accepted_algorithm() {
    let (k, idp, v) = setup().await;
    let iss = idp.url.as_str();
    let good = claims(iss);
    let mut typ_jwt = k.a.header();
    typ_jwt.typ = Some("JWT".to_owned());
    let mut no_typ = k.ed.header();
    no_typ.typ = None;
    for (name, token) in [
        ("RS256", k.a.sign(&good)),
        ("RS384", k.a.with_alg(Algorithm::RS384).sign(&good)),
        ("RS512", k.a.with_alg(Algorithm::RS512).sign(&good)),
        ("PS256", k.a.with_alg(Algorithm::PS256).sign(&good)),
        ("PS384", k.a.with_alg(Algorithm::PS384).sign(&good)),
        ("PS512", k.a.with_alg(Algorithm::PS512).sign(&good)),
        ("RS256 on a pinned key", k.pinned.sign(&good)),
        ("ES256", k.ec.sign(&good)),
        ("EdDSA", k.ed.sign(&good)),
        ("aud array", k.a.sign(&claims_with(iss, &json!({"aud": ["account", AUDIENCE]})))),
        // Keycloak without an audience mapper: aud "account", azp names the API.
        ("keycloak azp", k.a.sign(&claims_with(iss, &json!({"aud": "account", "azp": AUDIENCE})))),
        ("expired within leeway", k.a.sign(&claims_with(iss, &json!({"exp": now() - 10})))),
        ("float dates", k.a.sign(&claims_with(iss, &json!({"exp": now() as f64 + 60.5})))),
        ("typ JWT (Keycloak)", k.a.sign_with(typ_jwt, &good)),
        ("no typ", k.ed.sign_with(no_typ, &good)),
    ] {
        let id = v.validate(&token).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(id.subject, "m2m-client", "{name}");
    }
    let id = v.validate(&k.a.sign(&good)).await.expect("good");
    assert_eq!(id.client_id.as_deref(), Some("m2m-client"));
    assert_eq!(id.scopes, ["openid", SCOPE]);
    assert_eq!(id.roles, ["reader", "embargo"]);
    assert_eq!(Some(id.expires_at), good["exp"].as_i64());
    assert_eq!(idp.jwks_fetches(), 1, "no refetch for known keys");
}

#[tokio::test]
async fn hostile_tokens_are_refused() {
    let (k, idp, v) = setup().await;
    let iss = idp.url.as_str();
    let good = claims(iss);
    let now = now();
    let c = |changes: serde_json::Value| claims_with(iss, &changes);

    let swapped = {
        let mine = k.a.sign(&good);
        let theirs = k.a.sign(&c(json!({"sub": "admin", "roles": ["admin"]})));
        let p: Vec<&str> = mine.split('.').collect();
        let q: Vec<&str> = theirs.split('.').collect();
        format!("{}.{}.{}", p[0], q[1], p[2])
    };
    let n = match &k.a.jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::RSA(r) => r.n.clone(),
        _ => unreachable!(),
    };
    let mut id_token_header = k.a.header();
    id_token_header.typ = Some("JWT".to_owned());
    let mut no_kid = k.a.header();
    no_kid.kid = None;
    let mut wrong_typ = k.a.header();
    wrong_typ.typ = Some("id_token+jwt".to_owned());
    let rsa_header_on_ec_key = k.a.with_kid("ec");
    let leeway = i64::try_from(config(iss).leeway.as_secs()).unwrap();

    let cases: Vec<(&str, String, TokenError)> = vec![
        ("expired", k.a.sign(&c(json!({"exp": now - 100}))), TokenError::Expired),
        // RFC 7519 4.1.4: not accepted "on or after" exp (plus the leeway).
        ("at exp plus the leeway", k.a.sign(&c(json!({"exp": now - leeway}))), TokenError::Expired),
        ("not yet valid", k.a.sign(&c(json!({"nbf": now + 100}))), TokenError::NotYetValid),
        ("issued in the future", k.a.sign(&c(json!({"iat": now + 100}))), TokenError::NotYetValid),
        ("no exp", k.a.sign(&c(json!({"exp": null}))), TokenError::MissingClaim),
        ("exp not a number", k.a.sign(&c(json!({"exp": "tomorrow"}))), TokenError::Malformed),
        ("no iss", k.a.sign(&c(json!({"iss": null}))), TokenError::MissingClaim),
        ("wrong issuer", k.a.sign(&c(json!({"iss": "https://evil.example"}))), TokenError::WrongIssuer),
        (
            "issuer with a trailing slash",
            k.a.sign(&c(json!({"iss": format!("{iss}/")}))),
            TokenError::WrongIssuer,
        ),
        ("wrong audience", k.a.sign(&c(json!({"aud": "https://other.example"}))), TokenError::WrongAudience),
        (
            "audience by prefix",
            k.a.sign(&c(json!({"aud": format!("{AUDIENCE}x")}))),
            TokenError::WrongAudience,
        ),
        ("no audience", k.a.sign(&c(json!({"aud": null}))), TokenError::WrongAudience),
        (
            "ID token as bearer",
            k.a.sign_with(id_token_header, &c(json!({"aud": "hapi-web", "nonce": "n", "scope": null}))),
            TokenError::WrongAudience,
        ),
        ("missing scope", k.a.sign(&c(json!({"scope": "openid profile"}))), TokenError::InsufficientScope),
        (
            "scope by prefix",
            k.a.sign(&c(json!({"scope": format!("{SCOPE}_admin")}))),
            TokenError::InsufficientScope,
        ),
        ("no scope claim", k.a.sign(&c(json!({"scope": null}))), TokenError::InsufficientScope),
        ("bad signature", flip_last_char(&k.a.sign(&good)), TokenError::BadSignature),
        ("payload swapped", swapped, TokenError::BadSignature),
        ("another key under a known kid", TestKey::rsa(RSA_B, "rsa-a").sign(&good), TokenError::BadSignature),
        ("EdDSA signature of another key", TestKey::ed("ed").sign(&good), TokenError::BadSignature),
        (
            "alg none, empty signature",
            raw_jwt(&json!({"alg": "none", "typ": "JWT"}), &good, b""),
            TokenError::Malformed,
        ),
        (
            "alg none, with signature",
            raw_jwt(&json!({"alg": "none"}), &good, b"x"),
            TokenError::AlgorithmNotAllowed,
        ),
        (
            "alg None",
            raw_jwt(&json!({"alg": "None", "kid": "rsa-a"}), &good, b"x"),
            TokenError::AlgorithmNotAllowed,
        ),
        (
            "HS256 keyed with the RSA public key PEM",
            hs256(Some("rsa-a"), RSA_A_PUBLIC.as_bytes(), &good),
            TokenError::AlgorithmNotAllowed,
        ),
        (
            "HS256 keyed with the JWK modulus",
            hs256(None, n.as_bytes(), &good),
            TokenError::AlgorithmNotAllowed,
        ),
        (
            "HS512",
            raw_jwt(&json!({"alg": "HS512", "kid": "ec"}), &good, b"mac"),
            TokenError::AlgorithmNotAllowed,
        ),
        ("RS256 header on the EC key", rsa_header_on_ec_key.sign(&good), TokenError::AlgorithmNotAllowed),
        (
            "ES384 on a P-256 key",
            raw_jwt(&json!({"alg": "ES384", "kid": "ec"}), &good, &[7; 96]),
            TokenError::AlgorithmNotAllowed,
        ),
        (
            "PS256 on a key pinned to RS256",
            k.pinned.with_alg(Algorithm::PS256).sign(&good),
            TokenError::AlgorithmNotAllowed,
        ),
        ("unknown kid", TestKey::rsa(RSA_A, "nope").sign(&good), TokenError::UnknownKey),
        ("no kid, several keys", k.a.sign_with(no_kid, &good), TokenError::UnknownKey),
        ("typ id_token+jwt", k.a.sign_with(wrong_typ, &good), TokenError::WrongType),
        (
            "crit header",
            raw_jwt(&json!({"alg": "RS256", "kid": "rsa-a", "crit": ["exp"]}), &good, b"x"),
            TokenError::Malformed,
        ),
        (
            "jku pointing elsewhere, unknown kid",
            raw_jwt(&json!({"alg": "RS256", "kid": "x", "jku": "http://evil/jwks"}), &good, b"x"),
            TokenError::UnknownKey,
        ),
    ];
    for (name, token, want) in cases {
        assert_eq!(v.validate(&token).await.err(), Some(want), "{name}");
    }
    // The unknown kids made one refetch between them (rate limit), not one each.
    assert_eq!(idp.jwks_fetches(), 2);
}

#[tokio::test]
async fn garbage_is_refused_before_any_crypto() {
    let (_k, idp, v) = setup().await;
    let huge = format!("{}.{}.{}", "A".repeat(1 << 20), "B".repeat(10), "C".repeat(10));
    let just_over = "A".repeat(16 * 1024 + 1);
    let mut cases: Vec<String> = [
        "",
        " ",
        "null",
        "Bearer abc",
        "a.b.c",
        "...",
        "a..c",
        "e30.e30.e30",
        "eyJ.eyJ.eyJ",
        "é.é.é",
        "\0.\0.\0",
        "a.b.c.d.e",
        "%%%.%%%.%%%",
        "eyJhbGciOiJSUzI1NiJ9.W10.c2ln",
        "eyJhbGciOiJSUzI1NiJ9\n.e30.c2ln",
        "eyJhbGciOiJSUzI1NiJ9=.e30.c2ln",
        "ey JhbGciOiJSUzI1NiJ9.e30.c2ln",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(v.validate(&huge).await.err(), Some(TokenError::TooLarge));
    assert_eq!(v.validate(&just_over).await.err(), Some(TokenError::TooLarge));
    cases.push(huge);
    cases.push(just_over);
    // Pseudo-random strings over the JWT alphabet plus some troublemakers.
    let alphabet = b"eyJhbGciOiJ9.-_=+/ \xc3\xa9ABCxyz0123456789";
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let len = usize::try_from(x % 80).expect("small");
        let mut s = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push(alphabet[usize::try_from(x % alphabet.len() as u64).expect("small")]);
        }
        cases.push(String::from_utf8_lossy(&s).into_owned());
    }
    for g in &cases {
        let r = v.validate(g).await;
        assert!(
            matches!(r, Err(TokenError::Malformed | TokenError::TooLarge | TokenError::AlgorithmNotAllowed)),
            "{:?}: {r:?}",
            g.chars().take(40).collect::<String>()
        );
    }
    assert_eq!(v.signature_checks(), 0);
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn a_token_is_checked_once_then_served_from_the_cache() {
    let (k, idp, v) = setup().await;
    let v = Arc::new(v);
    let token = k.a.sign(&claims(&idp.url));
    let first = v.validate(&token).await.expect("good");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (v, token, first) = (Arc::clone(&v), token.clone(), first.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..250 {
                assert_eq!(v.validate(&token).await.as_ref(), Ok(&first));
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(v.signature_checks(), 1);
    assert_eq!(v.jwks_fetches(), 1);
    assert_eq!(idp.jwks_fetches(), 1);
    // A second token is a second check; failures are not cached as successes.
    assert!(v.validate(&k.ec.sign(&claims(&idp.url))).await.is_ok());
    assert_eq!(v.signature_checks(), 2);
    let bad = flip_last_char(&token);
    for _ in 0..3 {
        assert_eq!(v.validate(&bad).await.err(), Some(TokenError::BadSignature));
    }
}

#[tokio::test]
async fn id_tokens_of_the_browser_login() {
    let (k, idp, v) = setup().await;
    let iss = idp.url.as_str();
    let mut h = k.a.header();
    h.typ = Some("JWT".to_owned());
    let id = |changes: serde_json::Value| {
        let base = json!({"aud": "hapi-web", "nonce": "n-123", "scope": null, "client_id": null, "azp": "hapi-web", "sub": "alice"});
        let mut c = claims_with(iss, &base);
        if let (Some(o), Some(ch)) = (c.as_object_mut(), changes.as_object()) {
            for (key, val) in ch {
                if val.is_null() {
                    o.remove(key);
                } else {
                    o.insert(key.clone(), val.clone());
                }
            }
        }
        k.a.sign_with(h.clone(), &c)
    };
    let who = v.validate_id_token(&id(json!({})), "hapi-web", "n-123").await.expect("id token");
    assert_eq!((who.subject.as_str(), who.roles.len()), ("alice", 2));
    for (name, token, nonce, want) in [
        ("wrong nonce", id(json!({})), "n-456", TokenError::WrongNonce),
        ("empty nonce", id(json!({"nonce": ""})), "", TokenError::WrongNonce),
        ("no nonce", id(json!({"nonce": null})), "n-123", TokenError::WrongNonce),
        ("other client", id(json!({"aud": "other-web", "azp": null})), "n-123", TokenError::WrongAudience),
        (
            "azp of another client",
            id(json!({"aud": ["hapi-web", "x"], "azp": "x"})),
            "n-123",
            TokenError::WrongAudience,
        ),
        ("no iat", id(json!({"iat": null})), "n-123", TokenError::MissingClaim),
        ("expired", id(json!({"exp": now() - 100})), "n-123", TokenError::Expired),
        ("access token", k.a.sign(&claims(iss)), "n-123", TokenError::WrongType),
        ("bad signature", flip_last_char(&id(json!({}))), "n-123", TokenError::BadSignature),
    ] {
        assert_eq!(v.validate_id_token(&token, "hapi-web", nonce).await.err(), Some(want), "{name}");
    }
    // An access token for the API is not an ID token even with typ JWT: its aud is the API.
    let mut jwt = k.a.header();
    jwt.typ = Some("JWT".to_owned());
    let access = k.a.sign_with(jwt, &claims_with(iss, &json!({"nonce": "n-123"})));
    assert_eq!(
        v.validate_id_token(&access, "hapi-web", "n-123").await.err(),
        Some(TokenError::WrongAudience)
    );
}

#[tokio::test]
async fn discovery_is_exposed_and_keys_only_without_http() {
    let (k, idp, v) = setup().await;
    let d = v.discovery().expect("discovery");
    assert_eq!(d["authorization_endpoint"], format!("{}/auth", idp.url));
    assert!(format!("{v:?}").contains("keys: 4"));

    // with_keys: no HTTP at all; an unknown kid is simply unknown.
    let fixed = TokenValidator::with_keys(config(&idp.url), jwks(&[&k.ed]));
    assert!(fixed.discovery().is_none());
    assert!(fixed.validate(&k.ed.sign(&claims(&idp.url))).await.is_ok());
    // One key: a token without kid is fine.
    let mut no_kid = k.ed.header();
    no_kid.kid = None;
    assert!(fixed.validate(&k.ed.sign_with(no_kid, &claims(&idp.url))).await.is_ok());
    assert_eq!(fixed.validate(&k.a.sign(&claims(&idp.url))).await.err(), Some(TokenError::UnknownKey));
    assert_eq!(fixed.jwks_fetches(), 0);
}

/// Cost of the cached path (what every request with a known token pays). Run with
/// `cargo test -p hapi-auth --release -- --ignored --nocapture cache_hit_cost`.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn cache_hit_cost() {
    let (k, idp, v) = setup().await;
    // Pad to a realistic Keycloak size (the seed says "more than 1000 characters").
    let token = k.a.sign(&claims_with(&idp.url, &json!({"pad": "x".repeat(600)})));
    assert!(token.len() > 1000);
    v.validate(&token).await.expect("good");
    let n = 200_000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let _ = v.validate(&token).await;
    }
    let per = t.elapsed() / n;
    println!("cached validation of a {}-byte token: {per:?} per call", token.len());
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()));
    }
    println!("of which SHA-256: {:?}", t.elapsed() / n);
    assert_eq!(v.signature_checks(), 1);
}

#[test]
fn shareable_across_tasks() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<TokenValidator>();
    send_sync::<hapi_auth::Issuer>();
    send_sync::<hapi_auth::AccessRules>();
    let v = TokenValidator::with_keys(config("http://idp"), jwks(&[]));
    // axum middleware needs the validation future to be Send.
    send(&v.validate("x"));
    send(&v.validate_id_token("x", "c", "n"));
}
