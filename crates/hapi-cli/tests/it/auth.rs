//! The built-in issuer: tokens, a wrong secret, renewal during a long download, and
//! the profile file of `hapi login`.

use std::time::Duration;

use crate::data::expected;
use crate::support::{DATASET, Fault, Proxy, START, STOP, Server, get, hapi};

const RANGE: &str = "start=2024-01-01T00:00Z&stop=2024-01-02T00:00Z";

async fn builtin(ttl: u32) -> Server {
    Server::start(&format!("mode = \"builtin\"\n[auth.issuer]\ntoken_ttl = {ttl}\nleeway = 0"), 10_000).await
}

fn fetched(stderr: &str) -> usize {
    stderr.lines().filter(|l| l.contains(" fetched from ")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_from_the_discovered_endpoint() {
    let s = builtin(300).await;
    let (id, secret) = s.client();
    let server = s.hapi();
    let env = [("HAPI_SERVER", server.as_str()), ("HAPI_CLIENT_ID", &id), ("HAPI_CLIENT_SECRET", &secret)];
    let r = hapi(&["token", "-s"], &env).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let token = String::from_utf8(r.stdout).unwrap();
    let token = token.trim_end();
    assert!(!token.is_empty() && !token.contains('{'));
    let (st, _) = get(&format!("{server}/catalog"), Some(&format!("Bearer {token}"))).await;
    assert_eq!(st, 200, "the printed token opens the server");
    let r = hapi(&["token"], &env).await;
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 300);
    // Without credentials the server's 401 is told as such.
    let r = hapi(&["catalog", "--server", &server], &[]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("needs credentials (HTTP 401)"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_the_oauth2_error() {
    let s = builtin(300).await;
    let (id, _) = s.client();
    let server = s.hapi();
    let wrong = "not-the-secret-0123456789";
    let env = [("HAPI_SERVER", server.as_str()), ("HAPI_CLIENT_ID", &id), ("HAPI_CLIENT_SECRET", wrong)];
    for args in
        [vec!["token", "-s"], vec!["catalog"], vec!["data", DATASET, "--start", START, "--stop", STOP]]
    {
        let r = hapi(&args, &env).await;
        assert_eq!(r.code, 4, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("refused (HTTP 401): invalid_client"), "{}", r.stderr);
        assert!(!r.stderr.contains(wrong) && r.stdout.is_empty(), "the secret is never printed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_download_outlives_its_tokens() {
    // Tokens live 2 s; each /data answer is held back 200 ms: about 3.5 s in all at 4 in flight.
    let s = builtin(2).await;
    let raised = Server::start("mode = \"open\"", 1_000_000_000).await;
    let proxy = Proxy::slow(s.addr, vec![Fault::Pass], Duration::from_millis(200)).await;
    let (id, secret) = s.client();
    let server = proxy.hapi();
    let env = [("HAPI_CLIENT_ID", id.as_str()), ("HAPI_CLIENT_SECRET", &secret)];
    // The token endpoint is discovered through the proxy's /.well-known, which names the server.
    let r = hapi(&["data", DATASET, "--start", START, "--stop", STOP, "--server", &server, "-v"], &env).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(fetched(&r.stderr) >= 2, "the token was renewed: {}", r.stderr);
    // Same records as one unlimited request (no header: the two servers' headers differ in their limits).
    let (_, want) = get(&format!("{}/data?dataset={DATASET}&{RANGE}", raised.hapi()), None).await;
    assert!(r.stdout == want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_as_expired_is_renewed_once() {
    let s = builtin(300).await;
    let (limited, raised) = (&s, Server::start("mode = \"open\"", 1_000_000_000).await);
    let proxy = Proxy::start(s.addr, vec![Fault::Pass, Fault::Expired, Fault::Pass]).await;
    let (id, secret) = s.client();
    let server = proxy.hapi();
    let env = [("HAPI_CLIENT_ID", id.as_str()), ("HAPI_CLIENT_SECRET", &secret)];
    let r = hapi(
        &["data", DATASET, "--start", START, "--stop", STOP, "--server", &server, "-v", "--parallel", "1"],
        &env,
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(fetched(&r.stderr), 2, "one renewal for the 401: {}", r.stderr);
    let (_, want) = get(&format!("{}/data?dataset={DATASET}&{RANGE}", raised.hapi()), None).await;
    assert!(r.stdout == want);
    let _ = limited;
    // A server that refuses every token: the refusal, after one renewal.
    let proxy = Proxy::start(s.addr, vec![Fault::Expired]).await;
    let server = proxy.hapi();
    let r = hapi(&["data", DATASET, "--start", START, "--stop", STOP, "--server", &server, "-v"], &env).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("refused the access token (HTTP 401)"), "{}", r.stderr);
    let _ = expected;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_saves_a_private_profile() {
    let s = builtin(300).await;
    let (id, secret) = s.client();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cfg/profiles.toml");
    let file_s = file.to_str().unwrap();
    let server = s.hapi();
    // A wrong secret is not saved.
    let r = hapi(
        &["login", "--server", &server, "--client-id", &id],
        &[("HAPI_CONFIG", file_s), ("HAPI_CLIENT_SECRET", "wrong")],
    )
    .await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(!file.exists());
    let r = hapi(
        &["login", "--server", &server, "--client-id", &id],
        &[("HAPI_CONFIG", file_s), ("HAPI_CLIENT_SECRET", &secret)],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains(&secret) && r.stdout.is_empty(), "never printed back");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // Nothing but the profile: server and credentials come from it.
    let r = hapi(&["catalog"], &[("HAPI_CONFIG", file_s)]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["catalog"][0]["id"], DATASET);
    // Another profile name has nothing.
    let r = hapi(&["catalog", "--profile", "other"], &[("HAPI_CONFIG", file_s)]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
}
