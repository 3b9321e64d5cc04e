//! RFC 7662 introspection of opaque tokens.

use hapi_auth::{Introspection, TokenError, TokenValidator};
use serde_json::json;

use crate::keys::{AUDIENCE, RSA_A, SCOPE, TestKey, claims, jwks, now};
use crate::provider::{FakeIdp, INTROSPECTION_CLIENT};
use crate::validator::config;

fn creds(endpoint: Option<String>) -> Introspection {
    Introspection {
        endpoint,
        client_id: INTROSPECTION_CLIENT.0.to_owned(),
        client_secret: INTROSPECTION_CLIENT.1.to_owned(),
    }
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_cached_briefly() {
    let a = TestKey::rsa(RSA_A, "a");
    let idp = FakeIdp::start(&jwks(&[&a])).await;
    idp.add_opaque(
        "opaque-good",
        json!({"active": true, "scope": SCOPE, "client_id": "m2m", "exp": now() + 300, "iss": idp.url, "aud": AUDIENCE}),
    );
    idp.add_opaque(
        "opaque-no-scope",
        json!({"active": true, "scope": "openid", "client_id": "m2m", "exp": now() + 300}),
    );
    idp.add_opaque(
        "opaque-other-aud",
        json!({"active": true, "scope": SCOPE, "sub": "x", "aud": "elsewhere"}),
    );
    let mut cfg = config(&idp.url);
    cfg.introspection = Some(creds(None));
    let v = TokenValidator::discover(cfg).await.expect("discover");

    let id = v.validate("opaque-good").await.expect("active");
    assert_eq!((id.subject.as_str(), id.client_id.as_deref()), ("m2m", Some("m2m")));
    assert!(v.validate("opaque-good").await.is_ok());
    assert_eq!(idp.introspections(), 1, "cached");
    assert_eq!(v.validate("opaque-revoked").await.err(), Some(TokenError::Inactive));
    assert_eq!(v.validate("opaque-no-scope").await.err(), Some(TokenError::InsufficientScope));
    assert_eq!(v.validate("opaque-other-aud").await.err(), Some(TokenError::WrongAudience));
    assert_eq!(idp.introspections(), 4);
    // Not a b64token: never sent.
    assert_eq!(v.validate("opaque bad").await.err(), Some(TokenError::Malformed));
    assert_eq!(v.validate("\u{e9}").await.err(), Some(TokenError::Malformed));
    assert_eq!(idp.introspections(), 4);
    // JWTs still go the JWKS way.
    assert!(v.validate(&a.sign(&claims(&idp.url))).await.is_ok());
    assert_eq!(idp.introspections(), 4);

    // The secret never shows in Debug output.
    let shown = format!("{:?}", v.config());
    assert!(shown.contains("hapi-rs") && !shown.contains(INTROSPECTION_CLIENT.1), "{shown}");
}

#[tokio::test]
async fn introspection_failures_are_unverifiable_not_panics() {
    let a = TestKey::rsa(RSA_A, "a");
    let idp = FakeIdp::start(&jwks(&[&a])).await;
    let mut cfg = config(&idp.url);
    cfg.introspection = Some(Introspection { client_secret: "wrong".to_owned(), ..creds(None) });
    let v = TokenValidator::discover(cfg).await.expect("discover");
    assert_eq!(v.validate("opaque-good").await.err(), Some(TokenError::Unverifiable));

    // An explicit endpoint works without discovery too; a dead one fails cleanly.
    let mut cfg = config(&idp.url);
    cfg.introspection = Some(creds(Some(format!("{}/introspect", idp.url))));
    idp.add_opaque("t1", json!({"active": true, "scope": SCOPE, "sub": "s"}));
    let fixed = TokenValidator::with_keys(cfg.clone(), jwks(&[&a]));
    assert!(fixed.validate("t1").await.is_ok());
    let url = idp.url.clone();
    idp.stop().await;
    let fixed = TokenValidator::with_keys(cfg, jwks(&[&a]));
    assert_eq!(fixed.validate("t1").await.err(), Some(TokenError::Unverifiable));
    // Without introspection an opaque token is just malformed.
    let plain = TokenValidator::with_keys(config(&url), jwks(&[&a]));
    assert_eq!(plain.validate("t1").await.err(), Some(TokenError::Malformed));
}
