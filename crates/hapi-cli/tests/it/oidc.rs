//! `hapi` against a server whose tokens come from a real OpenID provider (npm
//! `oidc-provider`, `node tests/oidc/idp.mjs`): the token endpoint is discovered from
//! the provider (`--issuer`). Skipped with a printed reason when the npm package is not
//! installed, unless `HAPI_REQUIRE_E2E=1` (scripts/test.sh), which makes that a failure.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{DATASET, START, STOP, Server, get, hapi};

const AUDIENCE: &str = "urn:test:hapi";
const SCOPE: &str = "swe_hapiserver";

fn provider_dir() -> Option<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc");
    if dir.join("node_modules/oidc-provider/package.json").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("HAPI_REQUIRE_E2E").is_none(),
        "HAPI_REQUIRE_E2E is set but {}/node_modules lacks oidc-provider (npm ci --prefix tests/oidc)",
        dir.display()
    );
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        b"skipped: the hapi OpenID provider test needs the npm package oidc-provider in tests/oidc \
          (./scripts/test.sh installs it; or `npm ci --prefix tests/oidc`)\n",
    );
    None
}

/// The provider process; killed when dropped (it also exits when its stdin closes).
struct Idp {
    child: Child,
    issuer: String,
    _dir: tempfile::TempDir,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn idp(cwd: &Path) -> Idp {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("idp.log")).unwrap();
    let child = Command::new("node")
        .arg("idp.mjs")
        .current_dir(cwd)
        .env("IDP_PORT", port.to_string())
        .env("IDP_HOST", "127.0.0.1")
        .env("HAPI_AUDIENCE", AUDIENCE)
        .env("HAPI_REDIRECT_URI", "http://127.0.0.1:9/auth/callback")
        .env("IDP_SCOPE", SCOPE)
        .env("IDP_KEY_FILE", dir.path().join("key.json"))
        .env("IDP_EXIT_ON_STDIN_EOF", "1")
        .stdin(Stdio::piped())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("node runs");
    let issuer = format!("http://127.0.0.1:{port}");
    let p = Idp { child, issuer, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !try_get_ok(&format!("{}/.well-known/openid-configuration", p.issuer)).await {
        assert!(Instant::now() < deadline, "the OpenID provider did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    p
}

async fn try_get_ok(url: &str) -> bool {
    reqwest::get(url).await.is_ok_and(|r| r.status() == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_with_tokens_of_an_openid_provider() {
    let Some(cwd) = provider_dir() else { return };
    let p = idp(&cwd).await;
    let auth = format!(
        "mode = \"oidc\"\n[auth.oidc]\nissuer = \"{}\"\naudience = [\"{AUDIENCE}\"]\nscope = \"{SCOPE}\"\nleeway = 5",
        p.issuer
    );
    let s = Server::start(&auth, 10_000).await;
    let raised = Server::start("mode = \"open\"", 1_000_000_000).await;
    let server = s.hapi();
    let env = [
        ("HAPI_CLIENT_ID", "hapi-cli"),
        ("HAPI_CLIENT_SECRET", "hapi-cli-secret"),
        ("HAPI_ISSUER", p.issuer.as_str()),
    ];
    for format in ["csv", "binary"] {
        let r = hapi(
            &[
                "data", DATASET, "--start", START, "--stop", STOP, "--server", &server, "--format", format,
                "-v",
            ],
            &env,
        )
        .await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stderr.contains(&format!("fetched from {}/token", p.issuer)), "{}", r.stderr);
        let (_, want) = get(
            &format!("{}/data?dataset={DATASET}&start={START}&stop={STOP}&format={format}", raised.hapi()),
            None,
        )
        .await;
        assert!(r.stdout == want, "{format}");
    }
    let r =
        hapi(&["token", "-s"], &[env[0], ("HAPI_CLIENT_SECRET", "wrong"), env[2], ("HAPI_SERVER", &server)])
            .await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("invalid_client"), "{}", r.stderr);
}
