//! The provider misbehaving: key rotation, refetch rate limit, shared fetches, provider
//! stopped, hanging, talking nonsense; background refresh; start-up failures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hapi_auth::{SetupError, TokenError, TokenValidator, ValidatorConfig};
use serde_json::json;

use crate::keys::{RSA_A, RSA_B, TestKey, claims_with, jwks};
use crate::provider::{FakeIdp, Mode};
use crate::validator::config;

/// A token with a unique `jti`, so the cache never answers for it.
fn fresh(key: &TestKey, issuer: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    key.sign(&claims_with(issuer, &json!({"jti": format!("t{n}")})))
}

fn fast(issuer: &str) -> ValidatorConfig {
    let mut c = config(issuer);
    c.jwks_min_refetch = Duration::from_millis(400);
    c.http_timeout = Duration::from_millis(500);
    c
}

#[tokio::test]
async fn rotated_keys_are_picked_up_after_one_rate_limited_refetch() {
    let a = TestKey::rsa(RSA_A, "2025-key");
    let b = TestKey::rsa(RSA_B, "2026-key");
    let stranger = TestKey::ed("stranger");
    let idp = FakeIdp::start(&jwks(&[&a])).await;
    let v = TokenValidator::discover(fast(&idp.url)).await.expect("discover");
    let iss = idp.url.clone();
    let old_cached = fresh(&a, &iss);
    assert!(v.validate(&old_cached).await.is_ok());

    // The provider rotates: publishes the new key next to the old one.
    idp.set_jwks(&jwks(&[&a, &b]));
    assert!(v.validate(&fresh(&b, &iss)).await.is_ok(), "new key after a refetch");
    assert_eq!(idp.jwks_fetches(), 2);
    // Another unknown kid right away: refused without a fetch (rate limit).
    assert_eq!(v.validate(&fresh(&stranger, &iss)).await.err(), Some(TokenError::UnknownKey));
    assert_eq!(idp.jwks_fetches(), 2);
    assert!(v.validate(&fresh(&a, &iss)).await.is_ok(), "old key still there");
    assert!(v.validate(&fresh(&b, &iss)).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 2);

    // Later the old key is withdrawn; the next successful fetch replaces the set.
    idp.set_jwks(&jwks(&[&b]));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(v.validate(&fresh(&stranger, &iss)).await.err(), Some(TokenError::UnknownKey));
    assert_eq!(idp.jwks_fetches(), 3);
    assert_eq!(v.validate(&fresh(&a, &iss)).await.err(), Some(TokenError::UnknownKey), "withdrawn key");
    assert!(v.validate(&fresh(&b, &iss)).await.is_ok());
    // Tokens validated earlier stay good until they expire (they are cached).
    assert!(v.validate(&old_cached).await.is_ok());
    assert_eq!(v.jwks_fetches(), 3);
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_fetch() {
    let a = TestKey::rsa(RSA_A, "a");
    let b = TestKey::ed("b");
    let idp = FakeIdp::start(&jwks(&[&a])).await;
    let v = Arc::new(TokenValidator::discover(config(&idp.url)).await.expect("discover"));
    idp.set_jwks(&jwks(&[&a, &b]));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (v, token) = (Arc::clone(&v), fresh(&b, &idp.url));
        tasks.push(tokio::spawn(async move { v.validate(&token).await }));
    }
    for t in tasks {
        assert!(t.await.expect("task").is_ok());
    }
    assert_eq!(idp.jwks_fetches(), 2);
}

#[tokio::test]
async fn provider_stopped_cached_keys_keep_working() {
    let a = TestKey::rsa(RSA_A, "a");
    let idp = FakeIdp::start(&jwks(&[&a])).await;
    let iss = idp.url.clone();
    let v = TokenValidator::discover(fast(&iss)).await.expect("discover");
    idp.stop().await;
    for _ in 0..3 {
        assert!(v.validate(&fresh(&a, &iss)).await.is_ok());
    }
    let t = Instant::now();
    let unknown = TestKey::ed("new");
    assert_eq!(v.validate(&fresh(&unknown, &iss)).await.err(), Some(TokenError::UnknownKey));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(v.validate(&fresh(&a, &iss)).await.is_ok());
}

#[tokio::test]
async fn provider_hanging_does_not_hang_requests() {
    let a = TestKey::rsa(RSA_A, "a");
    let idp = FakeIdp::start(&jwks(&[&a])).await;
    let iss = idp.url.clone();
    let mut cfg = fast(&iss);
    cfg.jwks_min_refetch = Duration::from_secs(60);
    let v = Arc::new(TokenValidator::discover(cfg).await.expect("discover"));
    idp.set_mode(Mode::Hang);
    let started = Instant::now();
    let slow = {
        let (v, token) = (Arc::clone(&v), fresh(&TestKey::ed("new"), &iss));
        tokio::spawn(async move { v.validate(&token).await })
    };
    // Meanwhile known keys answer at once.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    assert!(v.validate(&fresh(&a, &iss)).await.is_ok());
    assert!(t.elapsed() < Duration::from_millis(400), "known kid waited {:?}", t.elapsed());
    assert_eq!(slow.await.expect("task").err(), Some(TokenError::UnknownKey));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400) && took < Duration::from_millis(1500), "{took:?}");
    // Rate-limited now: another unknown kid is refused immediately.
    let t = Instant::now();
    assert_eq!(v.validate(&fresh(&TestKey::ed("newer"), &iss)).await.err(), Some(TokenError::UnknownKey));
    assert!(t.elapsed() < Duration::from_millis(250), "{:?}", t.elapsed());
}

#[tokio::test]
async fn provider_nonsense_keeps_the_cached_keys() {
    let a = TestKey::rsa(RSA_A, "a");
    let idp = FakeIdp::start(&jwks(&[&a])).await;
    let iss = idp.url.clone();
    let v = TokenValidator::discover(fast(&iss)).await.expect("discover");
    for mode in [Mode::Nonsense, Mode::Empty, Mode::Error] {
        idp.set_mode(mode);
        tokio::time::sleep(Duration::from_millis(450)).await;
        let before = idp.jwks_fetches();
        assert_eq!(
            v.validate(&fresh(&TestKey::ed("x"), &iss)).await.err(),
            Some(TokenError::UnknownKey),
            "{mode:?}"
        );
        assert_eq!(idp.jwks_fetches(), before + 1, "{mode:?}");
        assert!(v.validate(&fresh(&a, &iss)).await.is_ok(), "{mode:?}");
    }
    // Back to normal: a rotation is picked up again.
    let b = TestKey::ed("b");
    idp.set_mode(Mode::Normal);
    idp.set_jwks(&jwks(&[&a, &b]));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(v.validate(&fresh(&b, &iss)).await.is_ok());
}

#[tokio::test]
async fn old_keys_are_refreshed_in_the_background() {
    let a = TestKey::rsa(RSA_A, "a");
    let b = TestKey::ed("b");
    let idp = FakeIdp::start(&jwks(&[&a])).await;
    let iss = idp.url.clone();
    let mut cfg = fast(&iss);
    cfg.jwks_max_age = Duration::from_millis(200);
    cfg.jwks_min_refetch = Duration::from_millis(100);
    let v = TokenValidator::discover(cfg).await.expect("discover");
    idp.set_jwks(&jwks(&[&a, &b]));
    tokio::time::sleep(Duration::from_millis(250)).await;
    // A validation notices the age and refreshes behind its back, without waiting.
    assert!(v.validate(&fresh(&a, &iss)).await.is_ok());
    let deadline = Instant::now() + Duration::from_secs(3);
    while idp.jwks_fetches() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(idp.jwks_fetches(), 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The new key is known without an unknown-kid refetch.
    assert!(v.validate(&fresh(&b, &iss)).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 2);
}

#[tokio::test]
async fn start_up_failures_are_setup_errors() {
    let a = TestKey::rsa(RSA_A, "a");
    let idp = FakeIdp::start(&jwks(&[&a])).await;

    idp.advertise_issuer("https://impostor.example");
    let e = TokenValidator::discover(fast(&idp.url)).await.err();
    assert!(matches!(e, Some(SetupError::IssuerMismatch { .. })), "{e:?}");
    idp.advertise_issuer(&idp.url);

    for mode in [Mode::Nonsense, Mode::Empty, Mode::Error] {
        idp.set_mode(mode);
        let e = TokenValidator::discover(fast(&idp.url)).await.err();
        assert!(matches!(e, Some(SetupError::Fetch { .. } | SetupError::NoKeys(_))), "{mode:?}: {e:?}");
    }
    idp.set_mode(Mode::Hang);
    let t = Instant::now();
    let e = TokenValidator::discover(fast(&idp.url)).await.err();
    assert!(matches!(e, Some(SetupError::Fetch { .. })), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(2));

    let mut no_aud = fast(&idp.url);
    no_aud.audiences.clear();
    assert!(matches!(TokenValidator::discover(no_aud).await, Err(SetupError::Config(_))));
    assert!(matches!(TokenValidator::discover(fast("ftp://x")).await, Err(SetupError::Config(_))));

    let url = idp.url.clone();
    idp.stop().await;
    let e = TokenValidator::discover(fast(&url)).await.err();
    assert!(matches!(e, Some(SetupError::Fetch { .. })), "{e:?}");
    assert!(e.is_some_and(|e| e.to_string().contains("/.well-known/openid-configuration")));
}
