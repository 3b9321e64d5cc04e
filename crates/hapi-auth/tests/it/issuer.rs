//! The built-in issuer: the seed page's curl sequence and the OAuth2 error answers.

use std::time::Duration;

use hapi_auth::{
    Issuer, IssuerConfig, IssuerError, OAuthError, Revocation, SecretChecks, TokenError, TokenValidator,
};
use serde_json::Value;

use crate::provider::FakeIdp;

const AUD: &str = "http://127.0.0.1:8080/hapi";

fn cfg(url: &str, ttl: u64) -> IssuerConfig {
    IssuerConfig {
        issuer_url: url.to_owned(),
        audience: AUD.to_owned(),
        scopes: vec!["swe_hapiserver".to_owned()],
        token_ttl: Duration::from_secs(ttl),
    }
}

fn open(dir: &std::path::Path) -> Issuer {
    Issuer::open(dir, cfg("http://127.0.0.1:8080", 300)).expect("open")
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The seed page's request: `-d client_id -d client_secret -d grant_type -d scope`.
fn seed_request(id: &str, secret: &str) -> Vec<(String, String)> {
    form(&[
        ("client_id", id),
        ("client_secret", secret),
        ("grant_type", "client_credentials"),
        ("scope", "swe_hapiserver"),
    ])
}

fn err(r: Result<Value, OAuthError>) -> OAuthError {
    r.expect_err("should fail")
}

#[tokio::test]
async fn the_seed_curl_sequence() {
    let dir = tempfile::tempdir().expect("tmp");
    let issuer = open(dir.path());
    let (client, secret) = issuer.create_client(None, &["reader".to_owned()]).expect("client");
    // Shaped like the seed's example credentials.
    assert_eq!(client.id.len(), 32);
    assert!(client.id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(secret.len() >= 41 && secret.bytes().all(|b| b.is_ascii_alphanumeric()));

    let body = issuer.token(&seed_request(&client.id, &secret), None).expect("token");
    let keys: Vec<&str> = body.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys, ["access_token", "expires_in", "token_type", "not-before-policy", "scope"]);
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["not-before-policy"], 0);
    assert_eq!(body["scope"], "swe_hapiserver");
    let token = body["access_token"].as_str().expect("token");
    assert!(token.starts_with("eyJ"));

    // The header is RFC 9068's, with the published kid.
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwks = issuer.jwks();
    assert_eq!(header.kid, jwks.keys[0].common.key_id);

    // It validates like any provider's token.
    let v = TokenValidator::with_keys(issuer.validator_config(), issuer.jwks());
    let who = v.validate(token).await.expect("valid");
    assert_eq!(who.subject, client.id);
    assert_eq!(who.client_id.as_deref(), Some(client.id.as_str()));
    assert_eq!(who.scopes, ["swe_hapiserver"]);
    assert_eq!(who.roles, ["reader"]);
    assert!((who.expires_at - crate::keys::now() - 300).abs() <= 2);

    // Two tokens differ (jti), the client list shows the client, the secret is nowhere.
    let again = issuer.token(&seed_request(&client.id, &secret), None).expect("token");
    assert_ne!(again["access_token"], body["access_token"]);
    let listed = issuer.list_clients().expect("list");
    let used = listed.first().and_then(|c| c.last_used_at);
    assert!(used.is_some_and(|t| t >= client.created_at), "a token records the client's last use");
    assert_eq!(listed, [hapi_auth::ClientInfo { last_used_at: used, ..client }]);
    assert!(!format!("{issuer:?}").contains(&secret));
    let db = std::fs::read(dir.path().join("auth.sqlite3")).expect("db");
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()));
}

#[tokio::test]
async fn discovery_round_trip_through_a_validator() {
    // Serve the issuer's JWKS from a "provider" whose URL is the issuer URL, and let the
    // validator discover it: exactly the external-provider path.
    let idp = FakeIdp::start(&jsonwebtoken::jwk::JwkSet { keys: vec![] }).await;
    let dir = tempfile::tempdir().expect("tmp");
    let issuer = Issuer::open(dir.path(), cfg(&idp.url, 300)).expect("open");
    idp.set_jwks(&issuer.jwks());
    let v = TokenValidator::discover(issuer.validator_config()).await.expect("discover");
    let (c, s) = issuer.create_client(Some("demo"), &[]).expect("client");
    let body = issuer.token(&seed_request(&c.id, &s), None).expect("token");
    assert_eq!(
        v.validate(body["access_token"].as_str().expect("t")).await.map(|i| i.subject),
        Ok("demo".to_owned())
    );

    let doc = issuer.discovery_document("http://x/token", "http://x/jwks", None);
    assert_eq!(doc["issuer"], idp.url);
    assert_eq!(doc["token_endpoint"], "http://x/token");
    assert_eq!(doc["grant_types_supported"], serde_json::json!(["client_credentials"]));
    assert!(doc.get("authorization_endpoint").is_none());
    let doc = issuer.discovery_document("http://x/token", "http://x/jwks", Some("http://x/login"));
    assert_eq!(doc["authorization_endpoint"], "http://x/login");
}

#[test]
fn basic_authentication() {
    let dir = tempfile::tempdir().expect("tmp");
    let issuer = open(dir.path());
    let (c, s) = issuer.create_client(None, &[]).expect("client");
    let grant = form(&[("grant_type", "client_credentials")]);
    assert!(issuer.token(&grant, Some((c.id.clone(), s.clone()))).is_ok());
    // client_id may be repeated in the form if it agrees.
    let with_id = form(&[("grant_type", "client_credentials"), ("client_id", &c.id)]);
    assert!(issuer.token(&with_id, Some((c.id.clone(), s.clone()))).is_ok());

    let e = err(issuer.token(&grant, Some((c.id.clone(), "wrong".to_owned()))));
    assert_eq!((e.status, e.error, e.www_authenticate_basic), (401, "invalid_client", true));
    // Both methods at once.
    let both = form(&[("grant_type", "client_credentials"), ("client_secret", &s)]);
    let e = err(issuer.token(&both, Some((c.id.clone(), s.clone()))));
    assert_eq!((e.status, e.error), (400, "invalid_request"));
    let other_id = form(&[("grant_type", "client_credentials"), ("client_id", "someone-else")]);
    assert_eq!(err(issuer.token(&other_id, Some((c.id, s.clone())))).error, "invalid_request");
    // Bad percent-escapes inside Basic.
    assert_eq!(err(issuer.token(&grant, Some(("%zz".to_owned(), s)))).error, "invalid_client");
}

#[test]
fn oauth_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let issuer = open(dir.path());
    let (c, s) = issuer.create_client(None, &[]).expect("client");
    let ok = |pairs: &[(&str, &str)]| issuer.token(&form(pairs), None);
    let cc = "client_credentials";
    for (name, pairs, status, code) in [
        (
            "wrong secret",
            vec![("client_id", c.id.as_str()), ("client_secret", "nope"), ("grant_type", cc)],
            401,
            "invalid_client",
        ),
        (
            "unknown client",
            vec![("client_id", "ghost"), ("client_secret", s.as_str()), ("grant_type", cc)],
            401,
            "invalid_client",
        ),
        ("no credentials", vec![("grant_type", cc)], 401, "invalid_client"),
        (
            "secret without id",
            vec![("client_secret", s.as_str()), ("grant_type", cc)],
            400,
            "invalid_request",
        ),
        (
            "no grant_type",
            vec![("client_id", c.id.as_str()), ("client_secret", s.as_str())],
            400,
            "invalid_request",
        ),
        (
            "password grant",
            vec![("client_id", c.id.as_str()), ("client_secret", s.as_str()), ("grant_type", "password")],
            400,
            "unsupported_grant_type",
        ),
        (
            "authorization_code",
            vec![("grant_type", "authorization_code"), ("code", "x")],
            400,
            "unsupported_grant_type",
        ),
        (
            "unknown scope",
            vec![
                ("client_id", c.id.as_str()),
                ("client_secret", s.as_str()),
                ("grant_type", cc),
                ("scope", "swe_hapiserver admin"),
            ],
            400,
            "invalid_scope",
        ),
        (
            "repeated parameter",
            vec![
                ("client_id", c.id.as_str()),
                ("client_secret", s.as_str()),
                ("grant_type", cc),
                ("grant_type", cc),
            ],
            400,
            "invalid_request",
        ),
    ] {
        let e = err(ok(&pairs));
        assert_eq!((e.status, e.error), (status, code), "{name}");
        assert!(!e.www_authenticate_basic, "{name}");
        assert_eq!(e.body()["error"], code, "{name}");
        assert!(!e.description.contains(&s), "{name}");
    }
    // No scope asked: all grantable scopes; duplicates collapse.
    let all = ok(&[("client_id", &c.id), ("client_secret", &s), ("grant_type", cc)]).expect("token");
    assert_eq!(all["scope"], "swe_hapiserver");
    let dup = ok(&[
        ("client_id", &c.id),
        ("client_secret", &s),
        ("grant_type", cc),
        ("scope", "swe_hapiserver  swe_hapiserver"),
    ]);
    assert_eq!(dup.expect("token")["scope"], "swe_hapiserver");
}

#[test]
fn revoke_and_rotate() {
    let dir = tempfile::tempdir().expect("tmp");
    let issuer = open(dir.path());
    let (c, s1) = issuer.create_client(Some("fdcad2908e964bbc8ca4ed25bdf25e1b"), &[]).expect("client");
    assert!(matches!(issuer.create_client(Some(&c.id), &[]), Err(IssuerError::Exists(_))));
    assert!(matches!(issuer.create_client(Some("bad id"), &[]), Err(IssuerError::Invalid(_))));

    let s2 = issuer.rotate_secret(&c.id).expect("rotate");
    assert_ne!(s1, s2);
    assert_eq!(err(issuer.token(&seed_request(&c.id, &s1), None)).error, "invalid_client");
    assert!(issuer.token(&seed_request(&c.id, &s2), None).is_ok());
    assert!(matches!(issuer.rotate_secret("ghost"), Err(IssuerError::NotFound(_))));

    assert!(issuer.revoke_client(&c.id).expect("revoke"));
    assert!(!issuer.revoke_client(&c.id).expect("revoke again"));
    assert!(!issuer.revoke_client("ghost").expect("revoke unknown"));
    let e = err(issuer.token(&seed_request(&c.id, &s2), None));
    assert_eq!((e.status, e.error), (401, "invalid_client"));
    assert!(matches!(issuer.rotate_secret(&c.id), Err(IssuerError::NotFound(_))));
    let listed = issuer.list_clients().expect("list");
    assert!(listed[0].revoked_at.is_some());
}

#[tokio::test]
async fn tokens_expire_with_the_ttl() {
    let dir = tempfile::tempdir().expect("tmp");
    let issuer = Issuer::open(dir.path(), cfg("http://127.0.0.1:8080", 1)).expect("open");
    let (c, s) = issuer.create_client(None, &[]).expect("client");
    let body = issuer.token(&seed_request(&c.id, &s), None).expect("token");
    assert_eq!(body["expires_in"], 1);
    let token = body["access_token"].as_str().expect("t");
    let mut vc = issuer.validator_config();
    vc.leeway = Duration::ZERO;
    let v = TokenValidator::with_keys(vc, issuer.jwks());
    assert!(v.validate(token).await.is_ok(), "fresh (and now cached)");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(v.validate(token).await.err(), Some(TokenError::Expired), "the cache does not outlive exp");
    // A fresh validator agrees.
    let v2 = TokenValidator::with_keys(
        {
            let mut c = issuer.validator_config();
            c.leeway = Duration::ZERO;
            c
        },
        issuer.jwks(),
    );
    assert_eq!(v2.validate(token).await.err(), Some(TokenError::Expired));
}

#[tokio::test]
async fn the_key_and_clients_persist() {
    let dir = tempfile::tempdir().expect("tmp");
    let (kid, token) = {
        let issuer = open(dir.path());
        let (c, s) = issuer.create_client(None, &[]).expect("client");
        let t = issuer.token(&seed_request(&c.id, &s), None).expect("token");
        (issuer.jwks().keys[0].common.key_id.clone(), t["access_token"].as_str().expect("t").to_owned())
    };
    let issuer = open(dir.path());
    assert_eq!(issuer.jwks().keys[0].common.key_id, kid);
    assert_eq!(issuer.list_clients().expect("list").len(), 1);
    // Tokens from before the restart still validate.
    let v = TokenValidator::with_keys(issuer.validator_config(), issuer.jwks());
    assert!(v.validate(&token).await.is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("issuer-key")).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(dir.path().join("auth.sqlite3")).expect("db").permissions().mode();
        assert_eq!(mode & 0o077, 0);
    }
    // A key file that is not a key is a clear error, not a new key.
    std::fs::write(dir.path().join("issuer-key"), "garbage").expect("write");
    let e = Issuer::open(dir.path(), cfg("http://127.0.0.1:8080", 300)).err();
    assert!(matches!(e, Some(IssuerError::Key { .. })), "{e:?}");
    // Bad settings.
    let mut bad = cfg("http://127.0.0.1:8080", 300);
    bad.scopes = vec!["has space".to_owned()];
    assert!(matches!(Issuer::open(dir.path(), bad), Err(IssuerError::Invalid(_))));
}

fn stored_hash(dir: &std::path::Path, id: &str) -> String {
    let db = rusqlite::Connection::open(dir.join("auth.sqlite3")).expect("db");
    db.query_row("SELECT secret_hash FROM clients WHERE id = ?1", [id], |r| r.get(0)).expect("row")
}

/// A client as releases before PBKDF2 stored it: an argon2id hash of its secret.
fn insert_argon2_client(dir: &std::path::Path, id: &str, secret: &str) -> String {
    use argon2::PasswordHasher;
    let hash = argon2::Argon2::default()
        .hash_password_with_salt(secret.as_bytes(), b"0123456789abcdef")
        .expect("hash")
        .to_string();
    let db = rusqlite::Connection::open(dir.join("auth.sqlite3")).expect("db");
    db.execute(
        "INSERT INTO clients (id, secret_hash, roles, created_at, secret_rotated_at) VALUES (?1, ?2, '[\"old\"]', 1, 1)",
        [id, hash.as_str()],
    )
    .expect("insert");
    hash
}

#[test]
fn client_secrets_cost_no_argon2() {
    let dir = tempfile::tempdir().expect("tmp");
    let issuer = open(dir.path());
    let (c, s) = issuer.create_client(None, &[]).expect("client");
    assert!(stored_hash(dir.path(), &c.id).starts_with("$pbkdf2-sha256$i=1000,l=32$"));
    assert!(issuer.token(&seed_request(&c.id, &s), None).is_ok());
    assert!(issuer.token(&seed_request(&c.id, &s), None).is_ok());
    // A wrong secret, and an unknown client (the flood's case), cost the same kind of check.
    assert_eq!(err(issuer.token(&seed_request(&c.id, "wrong"), None)).error, "invalid_client");
    assert_eq!(err(issuer.token(&seed_request("flood1", "wrong"), None)).error, "invalid_client");
    assert_eq!(issuer.secret_checks(), SecretChecks { argon2: 0, pbkdf2: 4 });
    // A rotated secret is PBKDF2 too; the old one stops working.
    let s2 = issuer.rotate_secret(&c.id).expect("rotate");
    assert!(stored_hash(dir.path(), &c.id).starts_with("$pbkdf2-sha256$"));
    assert_eq!(err(issuer.token(&seed_request(&c.id, &s), None)).error, "invalid_client");
    assert!(issuer.token(&seed_request(&c.id, &s2), None).is_ok());
    // Passwords keep Argon2, known name or not.
    issuer.add_user("alice", "correct horse", &[]).expect("add");
    assert!(issuer.verify_user("alice", "correct horse").is_ok());
    assert!(issuer.verify_user("mallory", "correct horse").is_err());
    assert_eq!(issuer.secret_checks().argon2, 2);
}

#[test]
fn argon2_client_hashes_still_verify_and_are_replaced_on_first_use() {
    let dir = tempfile::tempdir().expect("tmp");
    let issuer = open(dir.path());
    let secret = "PRPATrPBjgo2y3akZ4f28a1cb9cDDsPRP9Bjgo2fe";
    let old = insert_argon2_client(dir.path(), "legacy", secret);
    // A wrong secret neither passes nor replaces the hash.
    assert_eq!(err(issuer.token(&seed_request("legacy", "wrong"), None)).error, "invalid_client");
    assert_eq!(stored_hash(dir.path(), "legacy"), old);
    let body = issuer.token(&seed_request("legacy", secret), None).expect("old hash verifies");
    assert!(body["access_token"].as_str().is_some());
    assert_eq!(issuer.secret_checks(), SecretChecks { argon2: 2, pbkdf2: 0 });
    assert!(stored_hash(dir.path(), "legacy").starts_with("$pbkdf2-sha256$"));
    // From now on the same secret costs PBKDF2 only, and a wrong one still fails.
    assert!(issuer.token(&seed_request("legacy", secret), None).is_ok());
    assert_eq!(err(issuer.token(&seed_request("legacy", "wrong"), None)).error, "invalid_client");
    assert_eq!(issuer.secret_checks(), SecretChecks { argon2: 2, pbkdf2: 2 });
    assert_eq!(issuer.list_clients().expect("list")[0].secret_rotated_at, 1, "not a rotation");

    // A revoked old client is refused and keeps its hash.
    let old2 = insert_argon2_client(dir.path(), "legacy2", secret);
    assert!(issuer.revoke_client("legacy2").expect("revoke"));
    assert_eq!(err(issuer.token(&seed_request("legacy2", secret), None)).error, "invalid_client");
    assert_eq!(stored_hash(dir.path(), "legacy2"), old2);
}

#[test]
fn local_users() {
    let dir = tempfile::tempdir().expect("tmp");
    let issuer = open(dir.path());
    issuer.add_user("alice", "correct horse", &["embargo".to_owned()]).expect("add");
    assert!(matches!(issuer.add_user("alice", "another pass", &[]), Err(IssuerError::Exists(_))));
    assert!(matches!(issuer.add_user("bob", "short", &[]), Err(IssuerError::Invalid(_))));
    assert!(matches!(issuer.add_user(" bob", "long enough", &[]), Err(IssuerError::Invalid(_))));
    let who = issuer.verify_user("alice", "correct horse").expect("login");
    assert_eq!((who.subject.as_str(), who.client_id.as_deref()), ("alice", None));
    assert_eq!(who.roles, ["embargo"]);
    assert_eq!(who.scopes, ["swe_hapiserver"]);
    assert!(issuer.verify_user("alice", "Correct horse").is_err());
    assert!(issuer.verify_user("mallory", "correct horse").is_err());
    assert_eq!(
        issuer.list_users().expect("list").iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        ["alice"]
    );
    assert!(issuer.remove_user("alice").expect("remove"));
    assert!(!issuer.remove_user("alice").expect("remove again"));
    assert!(issuer.verify_user("alice", "correct horse").is_err());
}

#[test]
fn sessions_and_clients_can_be_revoked() {
    let dir = tempfile::tempdir().expect("tmp");
    let issuer = open(dir.path());
    // Another process's view of the same database: nothing remembered between checks.
    let rev = Revocation::open(dir.path(), Duration::ZERO).expect("open");
    issuer.add_user("alice", "correct horse", &["private".to_owned()]).expect("add");
    let mut who = issuer.verify_user("alice", "correct horse").expect("login");
    who.expires_at = unix_now() + 3600;
    let sid = rev.start_session(&who, true, who.expires_at).expect("start");
    let other = rev.start_session(&who, true, who.expires_at).expect("start");
    assert!(sid.len() >= 64, "256 random bits");
    assert_eq!(rev.session(&sid).expect("read").expect("live").roles, ["private"]);
    assert_eq!(rev.session("not-a-session").expect("read"), None);

    // The account's roles are read on each check.
    assert!(issuer.set_user_roles("alice", &[]).expect("roles"));
    assert!(rev.session(&sid).expect("read").expect("live").roles.is_empty());
    // Logout ends one session.
    rev.end_session(&sid).expect("end");
    assert_eq!(rev.session(&sid).expect("read"), None);
    assert!(rev.session(&other).expect("read").is_some());
    // Removing the account ends the others; an account of the same name is a new one.
    assert!(issuer.remove_user("alice").expect("remove"));
    assert_eq!(rev.session(&other).expect("read"), None);
    issuer.add_user("alice", "correct horse", &[]).expect("add again");
    assert_eq!(rev.session(&other).expect("read"), None);
    // An expired session is over, too.
    let gone = rev.start_session(&who, false, unix_now() - 1).expect("start");
    assert_eq!(rev.session(&gone).expect("read"), None);

    // Clients: active until revoked; unknown ones never.
    let (c, _) = issuer.create_client(None, &[]).expect("create");
    assert!(rev.client_active(&c.id).expect("read"));
    assert!(issuer.revoke_client(&c.id).expect("revoke"));
    assert!(!rev.client_active(&c.id).expect("read"));
    assert!(!rev.client_active("nobody").expect("read"));
    // The session ids are stored hashed: the database holds no usable cookie value.
    let db = std::fs::read(dir.path().join("auth.sqlite3")).expect("db");
    let wal = std::fs::read(dir.path().join("auth.sqlite3-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(other.len()).any(|w| w == other.as_bytes()), "a session id in the database");
    }
}

#[test]
fn revocation_answers_are_reused_for_the_recheck_interval() {
    let dir = tempfile::tempdir().expect("tmp");
    let issuer = open(dir.path());
    let rev = Revocation::open(dir.path(), Duration::from_secs(3600)).expect("open");
    let (c, _) = issuer.create_client(None, &[]).expect("create");
    assert_eq!(rev.cached_client(&c.id), None, "nothing remembered yet");
    assert!(rev.client_active(&c.id).expect("read"));
    issuer.revoke_client(&c.id).expect("revoke");
    // Within the interval the remembered answer stands (the cost of not reading per request).
    assert_eq!(rev.cached_client(&c.id), Some(true));
    let fresh = Revocation::open(dir.path(), Duration::from_secs(3600)).expect("open");
    assert!(!fresh.client_active(&c.id).expect("read"));
}

fn unix_now() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    i64::try_from(d.as_secs()).expect("seconds")
}

/// The roles in a token the issuer gives client `id` for `secret`, or the error code.
fn token_roles(issuer: &Issuer, id: &str, secret: &str) -> Result<Vec<String>, &'static str> {
    let body = issuer.token(&seed_request(id, secret), None).map_err(|e| e.error)?;
    let token = body["access_token"].as_str().unwrap_or_default();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.split('.').nth(1).unwrap_or_default(),
        )
        .expect("payload"),
    )
    .expect("claims");
    Ok(serde_json::from_value(claims["roles"].clone()).expect("roles"))
}

#[test]
fn a_self_service_client_shows_its_secret_once_and_carries_its_owners_roles() {
    let dir = tempfile::tempdir().expect("tmp");
    let issuer = open(dir.path());
    issuer.add_user("ann", "a long password", &["reader".to_owned(), "embargo".to_owned()]).expect("ann");
    issuer.add_user("bob", "a long password", &[]).expect("bob");
    assert!(matches!(issuer.create_owned_client("nobody", 10), Err(IssuerError::NotFound(_))));

    let c = issuer.create_owned_client("ann", 2).expect("client");
    assert_eq!(token_roles(&issuer, &c.id, ""), Err("invalid_client"), "no secret before it is shown");
    assert!(matches!(issuer.reveal_secret("bob", &c.id), Err(IssuerError::NotFound(_))), "not bob's");
    let secret = issuer.reveal_secret("ann", &c.id).expect("reveal").expect("first time");
    assert_eq!(issuer.reveal_secret("ann", &c.id).expect("reveal"), None, "shown once");
    assert_eq!(token_roles(&issuer, &c.id, &secret), Ok(vec!["reader".to_owned(), "embargo".to_owned()]));

    // The roles follow the owner's account.
    assert!(issuer.set_user_roles("ann", &["reader".to_owned()]).expect("roles"));
    assert_eq!(token_roles(&issuer, &c.id, &secret), Ok(vec!["reader".to_owned()]));

    // Listed for the owner only, with its last use; the cap holds.
    let mine = issuer.owned_clients("ann").expect("list");
    assert_eq!(mine.len(), 1);
    assert!(mine[0].last_used_at.is_some());
    assert!(issuer.owned_clients("bob").expect("list").is_empty());
    issuer.create_owned_client("ann", 2).expect("second");
    assert!(matches!(issuer.create_owned_client("ann", 2), Err(IssuerError::Invalid(_))), "cap");

    // Rotation: the old secret is refused; only the owner may rotate or revoke.
    assert!(matches!(issuer.rotate_owned("bob", &c.id), Err(IssuerError::NotFound(_))));
    assert!(matches!(issuer.revoke_owned("bob", &c.id), Err(IssuerError::NotFound(_))));
    let new = issuer.rotate_owned("ann", &c.id).expect("rotate");
    assert_eq!(token_roles(&issuer, &c.id, &secret), Err("invalid_client"));
    assert!(token_roles(&issuer, &c.id, &new).is_ok());
    issuer.revoke_owned("ann", &c.id).expect("revoke");
    assert_eq!(token_roles(&issuer, &c.id, &new), Err("invalid_client"));
    assert!(matches!(issuer.revoke_owned("ann", &c.id), Err(IssuerError::NotFound(_))));

    // A removed account's clients are refused.
    let d = issuer.create_owned_client("ann", 2).expect("again");
    let s = issuer.reveal_secret("ann", &d.id).expect("reveal").expect("first");
    assert!(token_roles(&issuer, &d.id, &s).is_ok());
    assert!(issuer.remove_user("ann").expect("remove"));
    assert_eq!(token_roles(&issuer, &d.id, &s), Err("invalid_client"));
}
