//! End to end against a real OpenID Connect provider: panva's `oidc-provider` from npm,
//! run by `node tests/oidc/idp.mjs` on a free loopback port (installed by
//! `./scripts/test.sh` with `npm ci`). The server discovers it, validates its JWT access
//! tokens, follows its key rotation, survives its outage, and logs browsers in through it.
//!
//! One provider serves every test that leaves it alone; the rotation, outage and browser
//! tests start their own (a restart, a stop, or a callback URL with the server's port).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use hapi_server::auth::Access;
use hapi_server::config::{self, Overrides};
use hapi_server::{App, AppState};
use hapi_store::{SqliteStore, Store};
use serde_json::Value;
use tokio::sync::{OnceCell, oneshot};

use crate::support::{CONFIG, KINDS_CSV, access_rules, client, ds1_csv};

/// `aud` of the provider's tokens for this server (any string: the server only compares).
const AUDIENCE: &str = "urn:test:hapi";
/// The scope the server requires, as at SWE.
const SCOPE: &str = "swe_hapiserver";
/// The every-kind dataset's id, URL-encoded.
const KINDS: &str = "all/kinds%2Btypes:%CE%B1%E2%98%83";

// ---------------------------------------------------------------------------------------
// The provider process

/// Whether to skip: plain `cargo test` without the npm package skips these tests and
/// says why; `scripts/test.sh` sets `HAPI_REQUIRE_E2E=1`, and then a missing install
/// fails them instead, so CI cannot pass without having run them.
fn skip_without_provider() -> bool {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/oidc/node_modules/oidc-provider/package.json");
    if dir.is_file() || std::env::var_os("HAPI_REQUIRE_E2E").is_some() {
        return false;
    }
    // Straight to the file descriptor: the test harness captures `eprintln!` of passing tests.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        b"skipped: the OpenID provider tests need the npm package oidc-provider in tests/oidc \
          (./scripts/test.sh installs it; or `npm ci --prefix tests/oidc`)\n",
    );
    true
}

/// `tests/oidc`, with its `node_modules` (see [`skip_without_provider`]).
fn idp_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc");
    let dir = dir.canonicalize().unwrap_or(dir);
    assert!(
        dir.join("node_modules/oidc-provider/package.json").is_file(),
        "{}/node_modules is missing: the OpenID provider tests need the npm package oidc-provider. \
         Run ./scripts/test.sh (it runs `npm ci --prefix tests/oidc`), or `npm ci --prefix tests/oidc` by hand.",
        dir.display()
    );
    dir
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A running `node tests/oidc/idp.mjs`. Dropping it kills the process; the process also
/// exits by itself when our end of its stdin closes (the shared one lives in a static).
struct Idp {
    child: Option<(Child, ChildStdin)>,
    port: u16,
    issuer: String,
    redirect_uri: String,
    dir: tempfile::TempDir,
    /// The key file in use (a new file is a new key and `kid`).
    key_file: PathBuf,
    starts: u32,
}

impl Idp {
    async fn start(redirect_uri: &str) -> Idp {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key-0.json");
        let mut idp = Idp {
            child: None,
            port,
            issuer: format!("http://127.0.0.1:{port}"),
            redirect_uri: redirect_uri.to_owned(),
            dir,
            key_file,
            starts: 0,
        };
        idp.spawn().await;
        idp
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("idp-{}.log", self.starts))
    }

    async fn spawn(&mut self) {
        let cwd = idp_dir();
        self.starts += 1;
        let log = std::fs::File::create(self.log_path()).unwrap();
        let mut child = Command::new("node")
            .arg("idp.mjs")
            .current_dir(&cwd)
            .env("IDP_PORT", self.port.to_string())
            .env("IDP_HOST", "127.0.0.1")
            .env("HAPI_AUDIENCE", AUDIENCE)
            .env("HAPI_REDIRECT_URI", &self.redirect_uri)
            .env("IDP_SCOPE", SCOPE)
            .env("IDP_KEY_FILE", &self.key_file)
            .env("IDP_EXIT_ON_STDIN_EOF", "1")
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node` (Node.js 20 or later is needed): {e}"));
        let stdin = child.stdin.take().unwrap();
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the OpenID provider exited ({status}):\n{}", self.log());
            }
            if let Ok(r) = client().get(&url).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "the OpenID provider did not start:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child = Some((child, stdin));
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stops the process (the port is free afterwards).
    fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.child.take() {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts on the same port with a new signing key (and `kid`): a key rotation.
    async fn rotate_key(&mut self) {
        self.stop();
        self.key_file = self.dir.path().join(format!("key-{}.json", self.starts));
        self.spawn().await;
    }

    /// The `kid` of the key in use.
    fn kid(&self) -> String {
        let jwk: Value = serde_json::from_slice(&std::fs::read(&self.key_file).unwrap()).unwrap();
        jwk["kid"].as_str().unwrap().to_owned()
    }

    /// A client-credentials token response.
    async fn token_response(&self, client_id: &str, scope: Option<&str>, resource: Option<&str>) -> Value {
        let secret = format!("{client_id}-secret");
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret.as_str()),
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        if let Some(r) = resource {
            form.push(("resource", r));
        }
        let r = client().post(format!("{}/token", self.issuer)).form(&form).send().await.unwrap();
        let status = r.status();
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(status, 200, "token request refused: {v}");
        v
    }

    /// Revokes a token of `client_id` at the provider (RFC 7009).
    async fn revoke(&self, client_id: &str, token: &str) {
        let secret = format!("{client_id}-secret");
        let r = client()
            .post(format!("{}/token/revocation", self.issuer))
            .form(&[("client_id", client_id), ("client_secret", secret.as_str()), ("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// A client-credentials access token with the API scope.
    async fn token(&self, client_id: &str) -> String {
        let v = self.token_response(client_id, Some(SCOPE), None).await;
        v["access_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The provider shared by the tests that neither stop nor restart it. Its redirect URI is
/// never followed (the ID-token test reads the code off the redirect).
async fn shared_idp() -> &'static Idp {
    static IDP: OnceCell<Idp> = OnceCell::const_new();
    IDP.get_or_init(|| Idp::start("http://127.0.0.1:9/auth/callback")).await
}

/// The claims of a JWT, unverified (to look at what the provider issued).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// The server

/// A server on a port bound before its configuration is written, so that `public_url`
/// (and with it the login callback) is its real address.
struct Hapi {
    addr: SocketAddr,
    state: Arc<AppState>,
    _dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for Hapi {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// `extra`: more `[auth.oidc]` keys, then more tables (such as `[auth.access]`).
fn oidc_config(addr: SocketAddr, issuer: &str, extra: &str) -> String {
    CONFIG.replace(
        "[auth]\nmode = \"open\"\n",
        &format!(
            r#"[auth]
mode = "oidc"
public_url = "http://{addr}"
[auth.oidc]
issuer = "{issuer}"
audience = ["{AUDIENCE}"]
scope = "{SCOPE}"
roles_claim = "realm_access.roles"
leeway = 5
client_id = "hapi-web"
client_secret = "hapi-web-secret"
{extra}
"#
        ),
    )
}

/// A server of `idp`'s tokens; `extra` as in [`oidc_config`] (without `[auth.access]` every
/// authenticated caller reads every dataset).
async fn hapi(idp: &Idp, extra: &str) -> Hapi {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    hapi_with(idp, extra, listener).await
}

async fn hapi_with(idp: &Idp, extra: &str, listener: tokio::net::TcpListener) -> Hapi {
    let addr = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let overrides = Overrides {
        data_dir: Some(dir.path().join("data")),
        listen: Some(addr.to_string()),
        ..Default::default()
    };
    let config = config::load(&oidc_config(addr, &idp.issuer, extra), Path::new("."), &overrides)
        .expect("test config");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.data_dir).unwrap());
    crate::support::load(&config, store.as_ref(), &[("ds1", &ds1_csv()), ("all/kinds+types:α☃", KINDS_CSV)]);
    let app = App::build(&config, store).await.expect("the server discovers the provider");
    let state = app.state.clone();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        app.serve(listener, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Hapi { addr, state, _dir: dir, shutdown: Some(tx) }
}

impl Hapi {
    fn url(&self, pq: &str) -> String {
        format!("http://{}{}", self.addr, pq)
    }

    /// Status, `WWW-Authenticate`, body.
    async fn get(&self, pq: &str, token: &str) -> (u16, String, String) {
        let r = client().get(self.url(pq)).bearer_auth(token).send().await.unwrap();
        let status = r.status().as_u16();
        let challenge =
            r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        (status, challenge, r.text().await.unwrap())
    }

    async fn json(&self, pq: &str, token: &str) -> (u16, Value) {
        let (status, _, body) = self.get(pq, token).await;
        let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{pq}: not JSON ({e}): {body}"));
        (status, v)
    }

    fn jwks_fetches(&self) -> u64 {
        self.state.access.validator().unwrap().jwks_fetches()
    }
}

fn catalog_ids(v: &Value) -> Vec<String> {
    v["catalog"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

/// A structurally valid, unexpired token for this server, signed with garbage under a
/// key id the provider never had: it passes every check up to the key lookup.
fn unknown_kid_token(issuer: &str, kid: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": kid});
    let payload = serde_json::json!({
        "iss": issuer, "aud": AUDIENCE, "sub": "mallory", "client_id": "mallory",
        "scope": SCOPE, "iat": now, "exp": now + 300,
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    )
}

// ---------------------------------------------------------------------------------------
// A browser without a browser: cookies and redirects by hand

/// The cookies of 127.0.0.1 (the provider and the server share the host; cookies ignore ports).
#[derive(Default, Debug)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all("set-cookie") {
            let s = v.to_str().unwrap();
            let (pair, attrs) = s.split_once(';').unwrap_or((s, ""));
            let Some((name, value)) = pair.split_once('=') else { continue };
            let attrs = attrs.to_ascii_lowercase();
            if value.is_empty() || attrs.contains("max-age=0") || attrs.contains("expires=thu, 01 jan 1970") {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// One request with the jar's cookies, like a browser navigation: status,
    /// `Location` resolved against `url`, body.
    async fn request(&mut self, url: &str, form: Option<&[(&str, &str)]>) -> (u16, Option<String>, String) {
        let rq = match form {
            Some(f) => client().post(url).form(f),
            None => client().get(url),
        };
        let r = rq.header("cookie", self.header()).header("accept", "text/html").send().await.unwrap();
        self.take(&r);
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|l| reqwest::Url::parse(url).unwrap().join(l.to_str().unwrap()).unwrap().to_string());
        (status, location, r.text().await.unwrap())
    }
}

/// Walks the provider's devInteractions pages from an authorization request to the
/// redirect back to the client, logging in as `user`; returns that redirect URL.
async fn provider_login(jar: &mut Jar, authorize_url: &str, user: &str) -> String {
    let mut url = authorize_url.to_owned();
    for _ in 0..12 {
        let (status, location, body) = jar.request(&url, None).await;
        match location {
            // Back to the client, with a code or an error.
            Some(next) if query_param(&next, "code").is_some() || query_param(&next, "error").is_some() => {
                return next;
            }
            Some(next) => url = next,
            None => {
                // An interaction page: the login or the consent form posts back to itself.
                assert_eq!(status, 200, "{url}: {body}");
                let form: &[(&str, &str)] = if body.contains("name=\"prompt\" value=\"login\"") {
                    &[("prompt", "login"), ("login", user), ("password", "any password")]
                } else if body.contains("name=\"prompt\" value=\"consent\"") {
                    &[("prompt", "consent")]
                } else {
                    panic!("unexpected provider page at {url}: {body}");
                };
                let (status, location, body) = jar.request(&url, Some(form)).await;
                url = location.unwrap_or_else(|| panic!("{url}: form answered {status}: {body}"));
            }
        }
    }
    panic!("the provider login did not finish (last {url})");
}

fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The authorization-code flow with PKCE at the provider directly (as the server's
/// login would): the token response with access and ID token.
async fn code_flow_tokens(idp: &Idp, user: &str) -> Value {
    let mut verifier = [0u8; 32];
    aws_lc_rs::rand::fill(&mut verifier).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(verifier);
    let challenge =
        URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()));
    let mut authorize = reqwest::Url::parse(&format!("{}/auth", idp.issuer)).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", "hapi-web")
        .append_pair("response_type", "code")
        .append_pair("scope", &format!("openid {SCOPE}"))
        .append_pair("redirect_uri", &idp.redirect_uri)
        .append_pair("state", "state-1")
        .append_pair("nonce", "nonce-1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let back = provider_login(&mut Jar::default(), authorize.as_str(), user).await;
    assert!(back.starts_with(&idp.redirect_uri), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("state-1"));
    let code = query_param(&back, "code").unwrap();
    let r = client()
        .post(format!("{}/token", idp.issuer))
        .basic_auth("hapi-web", Some("hapi-web-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", idp.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// The tests

#[tokio::test]
async fn client_credentials_token_reads_every_endpoint() {
    if skip_without_provider() {
        return;
    }
    let idp = shared_idp().await;
    let s = hapi(idp, "").await;
    let answer = idp.token_response("hapi-cli", Some(SCOPE), None).await;
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], SCOPE);
    let t = answer["access_token"].as_str().unwrap();
    let c = claims(t);
    assert_eq!((c["iss"].as_str(), c["aud"].as_str()), (Some(idp.issuer.as_str()), Some(AUDIENCE)));

    for pq in ["/hapi/capabilities", "/hapi/catalog", "/hapi/info?dataset=ds1", "/hapi/about"] {
        let (status, body) = s.json(pq, t).await;
        assert_eq!((status, body["status"]["code"].as_i64()), (200, Some(1200)), "{pq}: {body}");
    }
    let (status, _, csv) = s.get("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-01T00:03Z", t).await;
    assert_eq!(status, 200);
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "2016-01-01T00:00:00.000Z,0.0,100.0,0.0",
            "2016-01-01T00:01:00.000Z,0.5,99.0,0.25",
            "2016-01-01T00:02:00.000Z,1.0,98.0,0.5"
        ]
    );
    // Without the token the same request is refused, and the browser-less caller is not redirected.
    let r = client().get(s.url("/hapi/catalog")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
}

#[tokio::test]
async fn token_without_the_scope_is_403_insufficient_scope() {
    if skip_without_provider() {
        return;
    }
    let idp = shared_idp().await;
    let s = hapi(idp, "").await;
    // The provider answers an unknown scope, or none, with a token that has no scope at all.
    for scope in [Some("admin"), None] {
        let answer = idp.token_response("hapi-cli", scope, None).await;
        let t = answer["access_token"].as_str().unwrap();
        assert!(claims(t).get("scope").is_none(), "{scope:?}: {}", claims(t));
        let (status, challenge, body) = s.get("/hapi/catalog", t).await;
        assert_eq!(status, 403, "{scope:?}: {body}");
        assert!(
            challenge.starts_with("Bearer") && challenge.contains("error=\"insufficient_scope\""),
            "{challenge}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["x_auth_error"], "insufficient_scope");
        assert_eq!(s.get("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-02", t).await.0, 403);
    }
}

#[tokio::test]
async fn token_for_another_audience_is_401() {
    if skip_without_provider() {
        return;
    }
    let idp = shared_idp().await;
    let s = hapi(idp, "").await;
    let answer = idp.token_response("hapi-cli", Some(SCOPE), Some("urn:test:other-api")).await;
    let t = answer["access_token"].as_str().unwrap();
    // Everything but the audience is right: same issuer, same key, the scope.
    let c = claims(t);
    assert_eq!((c["aud"].as_str(), c["scope"].as_str()), (Some("urn:test:other-api"), Some(SCOPE)));
    let (status, challenge, _) = s.get("/hapi/capabilities", t).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\"") && challenge.contains("audience"), "{challenge}");
}

#[tokio::test]
async fn id_token_is_not_an_access_token() {
    if skip_without_provider() {
        return;
    }
    let idp = shared_idp().await;
    let s = hapi(idp, "").await;
    let tokens = code_flow_tokens(idp, "alice").await;
    let (access, id) = (tokens["access_token"].as_str().unwrap(), tokens["id_token"].as_str().unwrap());
    assert_eq!(claims(id)["aud"], "hapi-web");
    assert_eq!(claims(id)["nonce"], "nonce-1");
    // The user's access token from the same login is good.
    let (status, body) = s.json("/hapi/catalog", access).await;
    assert_eq!(status, 200, "{body}");
    // Its ID token, signed by the same key for the same issuer, is refused.
    let (status, challenge, body) = s.get("/hapi/catalog", id).await;
    assert_eq!(status, 401, "{body}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[tokio::test]
async fn roles_claim_decides_datasets_and_embargo() {
    if skip_without_provider() {
        return;
    }
    let idp = shared_idp().await;
    let s = hapi(idp, &access_rules()).await;
    // hapi-cli-roles' tokens carry realm_access.roles = [private, embargo]; hapi-cli's none,
    // nor do the tokens of a browser user of hapi-web.
    let plain = idp.token("hapi-cli").await;
    let roles = idp.token("hapi-cli-roles").await;
    assert_eq!(claims(&roles)["realm_access"]["roles"], serde_json::json!(["private", "embargo"]));
    let user = code_flow_tokens(idp, "bob").await["access_token"].as_str().unwrap().to_owned();

    for (who, t) in [("plain", &plain), ("user", &user)] {
        let (_, cat) = s.json("/hapi/catalog", t).await;
        assert_eq!(catalog_ids(&cat), ["ds1"], "{who}");
        // A dataset one may not read answers exactly as an unknown one.
        let (status, hidden) = s.json(&format!("/hapi/info?dataset={KINDS}"), t).await;
        let (_, unknown) = s.json("/hapi/info?dataset=nope", t).await;
        assert_eq!((status, &hidden), (404, &unknown), "{who}");
        let (status, _, _) =
            s.get(&format!("/hapi/data?dataset={KINDS}&start=2020-01-01&stop=2020-01-01T04:00Z"), t).await;
        assert_eq!(status, 404, "{who}");
        // The embargo: the stopDate is the embargo line, later records are refused, older ones open.
        let (_, info) = s.json("/hapi/info?dataset=ds1", t).await;
        assert!(info["stopDate"].as_str().unwrap().starts_with("2016-01-02T00:0"), "{who}: {info}");
        let (status, v) = s
            .json("/hapi/data?dataset=ds1&start=2016-01-02T01:00Z&stop=2016-01-02T02:00Z&parameters=Bx", t)
            .await;
        assert_eq!((status, v["status"]["code"].as_i64()), (400, Some(1405)), "{who}");
        let (status, _, csv) = s
            .get("/hapi/data?dataset=ds1&start=2016-01-01T01:00Z&stop=2016-01-01T02:00Z&parameters=Bx", t)
            .await;
        assert_eq!((status, csv.lines().count()), (200, 60), "{who}");
    }

    let (_, cat) = s.json("/hapi/catalog", &roles).await;
    assert_eq!(catalog_ids(&cat), ["ds1", "all/kinds+types:α☃"]);
    let (status, _, csv) =
        s.get(&format!("/hapi/data?dataset={KINDS}&start=2020-01-01&stop=2020-01-01T04:00Z"), &roles).await;
    assert_eq!((status, csv.lines().count()), (200, 4));
    let (_, info) = s.json("/hapi/info?dataset=ds1", &roles).await;
    assert_eq!(info["stopDate"], "2016-02-01T00:00:00.000Z");
    let (status, _, csv) = s
        .get("/hapi/data?dataset=ds1&start=2016-01-02T01:00Z&stop=2016-01-02T02:00Z&parameters=Bx", &roles)
        .await;
    assert_eq!((status, csv.lines().count()), (200, 60));
}

#[tokio::test]
async fn opaque_tokens_are_introspected() {
    if skip_without_provider() {
        return;
    }
    let idp = shared_idp().await;
    // The server introspects with its login client's credentials (hapi-web).
    let s = hapi(idp, &format!("introspection = true\n{}", access_rules())).await;
    let opaque = |client: &'static str, scope: Option<&'static str>| async move {
        let v = idp.token_response(client, scope, Some("urn:test:hapi-opaque")).await;
        let t = v["access_token"].as_str().unwrap().to_owned();
        assert!(!t.contains('.'), "an opaque token, not a JWT: {t}");
        t
    };
    // Scope, client and roles come from the introspection answer.
    let roles = opaque("hapi-cli-roles", Some(SCOPE)).await;
    let (status, cat) = s.json("/hapi/catalog", &roles).await;
    assert_eq!(status, 200, "{cat}");
    assert_eq!(catalog_ids(&cat), ["ds1", "all/kinds+types:α☃"]);
    let (status, _, csv) =
        s.get(&format!("/hapi/data?dataset={KINDS}&start=2020-01-01&stop=2020-01-01T04:00Z"), &roles).await;
    assert_eq!((status, csv.lines().count()), (200, 4));
    let plain = opaque("hapi-cli", Some(SCOPE)).await;
    let (_, cat) = s.json("/hapi/catalog", &plain).await;
    assert_eq!(catalog_ids(&cat), ["ds1"]);
    // Without the scope: 403; revoked before its first use: 401.
    let unscoped = opaque("hapi-cli", Some("admin")).await;
    let (status, challenge, _) = s.get("/hapi/catalog", &unscoped).await;
    assert_eq!(status, 403, "{challenge}");
    let revoked = opaque("hapi-cli", Some(SCOPE)).await;
    idp.revoke("hapi-cli", &revoked).await;
    let (status, challenge, _) = s.get("/hapi/catalog", &revoked).await;
    assert_eq!(status, 401, "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    // A made-up opaque token is inactive; JWT access tokens are still checked locally.
    assert_eq!(s.get("/hapi/catalog", "bm90LWEtdG9rZW4").await.0, 401);
    assert_eq!(s.get("/hapi/catalog", &idp.token("hapi-cli").await).await.0, 200);
}

#[tokio::test]
async fn jwks_is_fetched_a_bounded_number_of_times() {
    if skip_without_provider() {
        return;
    }
    let idp = shared_idp().await;
    let s = hapi(idp, "").await;
    assert_eq!(s.jwks_fetches(), 1, "discovery fetches the JWKS once");
    let mut good = Vec::new();
    for c in ["hapi-cli", "hapi-cli-roles", "hapi-cli"] {
        good.push(idp.token(c).await);
    }
    // 200 requests, 16 at a time: valid tokens, and forgeries each naming a new key id
    // (an attacker's cheapest way to make a resource server hammer its provider).
    let requests: Vec<(bool, String)> = (0..200)
        .map(|i| {
            if i % 2 == 0 {
                (true, good[i % good.len()].clone())
            } else {
                (false, unknown_kid_token(&idp.issuer, &format!("forged-{i}")))
            }
        })
        .collect();
    let results: Vec<(bool, u16)> = futures::stream::iter(requests)
        .map(|(ok, t)| {
            let url = s.url("/hapi/info?dataset=ds1");
            async move { (ok, client().get(url).bearer_auth(t).send().await.unwrap().status().as_u16()) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (ok, status) in &results {
        assert_eq!(*status, if *ok { 200 } else { 401 });
    }
    let fetches = s.jwks_fetches();
    assert!(fetches <= 2, "the JWKS was fetched {fetches} times for 200 requests");
    let checks = s.state.access.validator().unwrap().signature_checks();
    assert!(checks <= 3, "{checks} signature checks for 3 distinct valid tokens (the cache keeps one each)");
}

#[tokio::test]
async fn rotated_key_is_accepted_after_one_refetch() {
    if skip_without_provider() {
        return;
    }
    let mut idp = Idp::start("http://127.0.0.1:9/auth/callback").await;
    let s = hapi(&idp, "").await;
    let first_kid = idp.kid();
    let old = idp.token("hapi-cli").await;
    assert_eq!(s.get("/hapi/catalog", &old).await.0, 200);
    assert_eq!(s.jwks_fetches(), 1);

    // The provider restarts with a new key: its new tokens name a kid the server has
    // never seen, which triggers one JWKS refetch (the first one is not rate-limited).
    idp.rotate_key().await;
    assert_ne!(idp.kid(), first_kid);
    let new = idp.token("hapi-cli").await;
    let (status, challenge, body) = s.get("/hapi/catalog", &new).await;
    assert_eq!(status, 200, "{challenge} {body}");
    assert_eq!(s.jwks_fetches(), 2);
    let new2 = idp.token("hapi-cli-roles").await;
    assert_eq!(s.get("/hapi/info?dataset=ds1", &new2).await.0, 200);
    assert_eq!(s.jwks_fetches(), 2, "the new key is cached now");
    // The token signed with the retired key was validated before and stays cached until it expires.
    assert_eq!(s.get("/hapi/catalog", &old).await.0, 200);

    // A second rotation right away falls inside the refetch rate limit (30 s by default,
    // not configurable from the server configuration): its tokens are refused for now,
    // and the provider is not asked again.
    idp.rotate_key().await;
    let newest = idp.token("hapi-cli").await;
    let (status, challenge, _) = s.get("/hapi/catalog", &newest).await;
    assert_eq!(status, 401, "{challenge}");
    assert!(challenge.contains("unknown key"), "{challenge}");
    assert_eq!(s.jwks_fetches(), 2);
}

#[tokio::test]
async fn provider_down_cached_keys_keep_working() {
    if skip_without_provider() {
        return;
    }
    let mut idp = Idp::start("http://127.0.0.1:9/auth/callback").await;
    let s = hapi(&idp, "introspection = true").await;
    let used = idp.token("hapi-cli").await;
    let fresh = idp.token("hapi-cli-roles").await;
    let opaque = idp.token_response("hapi-cli", Some(SCOPE), Some("urn:test:hapi-opaque")).await;
    let opaque = opaque["access_token"].as_str().unwrap();
    assert_eq!(s.get("/hapi/catalog", &used).await.0, 200);
    let checks = s.state.access.validator().unwrap().signature_checks();

    idp.stop();
    assert!(client().get(format!("{}/jwks", idp.issuer)).send().await.is_err(), "the provider is down");
    // A token seen before, and one never seen: its signature is checked with the cached key.
    assert_eq!(s.get("/hapi/catalog", &used).await.0, 200);
    let (status, _, body) =
        s.get("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-01T00:03Z", &fresh).await;
    assert_eq!((status, body.lines().count()), (200, 3), "{body}");
    assert_eq!(s.state.access.validator().unwrap().signature_checks(), checks + 1);
    // An unknown kid makes the server try the provider, fail fast, and refuse that token only.
    let t = Instant::now();
    let (status, challenge, _) = s.get("/hapi/catalog", &unknown_kid_token(&idp.issuer, "forged")).await;
    assert_eq!(status, 401, "{challenge}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(s.get("/hapi/info?dataset=ds1", &fresh).await.0, 200);
    // An opaque token cannot be checked without the provider: refused, as unverifiable.
    let (status, challenge, _) = s.get("/hapi/catalog", opaque).await;
    assert_eq!(status, 401, "{challenge}");
    assert!(challenge.contains("cannot be verified"), "{challenge}");

    // A server cannot start against a provider it cannot discover.
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let overrides = Overrides { data_dir: Some(dir.path().to_owned()), ..Default::default() };
    let config = config::load(&oidc_config(addr, &idp.issuer, ""), Path::new("."), &overrides).unwrap();
    let db = hapi_server::open_auth_store(&config, None).await.unwrap();
    let err = Access::build(&config.auth, "", db).await.unwrap_err();
    assert!(format!("{err:#}").contains("discovering"), "{err:#}");
}

#[tokio::test]
async fn browser_login_through_the_provider() {
    if skip_without_provider() {
        return;
    }
    // The provider must know the server's callback URL, so the server's port comes first.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let idp = Idp::start(&format!("http://127.0.0.1:{port}/auth/callback")).await;
    let s = hapi_on(&idp, port).await;
    let mut jar = Jar::default();

    // No session: the landing page sends a browser to the login, the login to the provider.
    let (status, login, _) = jar.request(&s.url("/hapi/info?dataset=ds1"), None).await;
    assert_eq!(status, 302);
    let login = login.unwrap();
    assert_eq!(login, s.url("/auth/login?return_to=/hapi/info%3Fdataset%3Dds1"));
    let (status, authorize, _) = jar.request(&login, None).await;
    assert_eq!(status, 302);
    let authorize = authorize.unwrap();
    assert!(authorize.starts_with(&format!("{}/auth?", idp.issuer)), "{authorize}");
    for (k, v) in [
        ("response_type", "code"),
        ("client_id", "hapi-web"),
        ("code_challenge_method", "S256"),
        ("scope", "openid swe_hapiserver"),
    ] {
        assert_eq!(query_param(&authorize, k).as_deref(), Some(v), "{authorize}");
    }
    assert_eq!(query_param(&authorize, "redirect_uri"), Some(s.url("/auth/callback")));
    for k in ["state", "nonce", "code_challenge"] {
        assert!(query_param(&authorize, k).is_some_and(|v| v.len() >= 32), "{k} in {authorize}");
    }
    assert!(jar.0.contains_key("hapi_login"), "{jar:?}");

    let callback = provider_login(&mut jar, &authorize, "alice").await;
    assert!(callback.starts_with(&s.url("/auth/callback?")), "{callback}");
    // A callback with another state is refused (and would end the pending login).
    let before = jar.0.clone();
    let forged = callback.replace("state=", "state=x");
    let (status, _, body) = Jar(before.clone()).request(&forged, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("state does not match"), "{body}");
    // The real one starts the session and returns where the browser was going.
    let (status, back, body) = jar.request(&callback, None).await;
    assert_eq!(status, 302, "{body}");
    assert_eq!(back.unwrap(), s.url("/hapi/info?dataset=ds1"));
    assert!(jar.0.contains_key("hapi_session") && !jar.0.contains_key("hapi_login"), "{jar:?}");
    // The code was spent: replaying the callback, with the pending login's cookie, fails
    // at the provider.
    let (status, _, body) = Jar(before).request(&callback, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("refused the code"), "{body}");

    let (status, _, html) = jar.request(&s.url("/hapi"), None).await;
    assert_eq!(status, 200);
    assert!(html.contains("Logged in as <code>alice</code>"), "{html}");
    let (status, _, info) = jar.request(&s.url("/hapi/info?dataset=ds1"), None).await;
    assert_eq!(status, 200, "{info}");
    let (status, _, csv) =
        jar.request(&s.url("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-01T00:02Z"), None).await;
    assert_eq!((status, csv.lines().count()), (200, 2), "{csv}");

    // Logout ends the server's session and sends the browser to the provider's
    // end_session_endpoint (RP-initiated logout) to end that one too.
    let copied = Jar(jar.0.clone());
    let (status, _, form) = jar.request(&s.url("/auth/logout"), None).await;
    assert_eq!(status, 200, "the logout button's page");
    let token = form.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let (status, end_session, _) = jar.request(&s.url("/auth/logout"), Some(&[("csrf", &token)])).await;
    assert_eq!(status, 303);
    let end_session = end_session.unwrap();
    let expected = format!("{}/session/end?client_id=hapi-web&post_logout_redirect_uri=", idp.issuer);
    assert!(end_session.starts_with(&expected), "{end_session}");
    assert!(!jar.0.contains_key("hapi_session"), "{jar:?}");
    let (status, login, _) = jar.request(&s.url("/hapi"), None).await;
    assert_eq!((status, login), (302, Some(s.url("/auth/login?return_to=/hapi"))));
    // The session ended on the server: a copy of the cookie is no session either.
    let r = client().get(s.url("/hapi/catalog")).header("cookie", copied.header()).send().await.unwrap();
    assert_eq!(r.status(), 401, "a copied session cookie after logout");
}

/// [`hapi`] on a given port (that the provider's redirect URI already names).
async fn hapi_on(idp: &Idp, port: u16) -> Hapi {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    hapi_with(idp, "", listener).await
}

/// Issue 9 item 4: with an external provider the Credentials page links to its client
/// registration (`[auth.oidc] registration_url`, escaped), or says there is none.
#[tokio::test]
async fn the_credentials_page_links_to_the_providers_registration() {
    if skip_without_provider() {
        return;
    }
    let idp = shared_idp().await;
    let answer = idp.token_response("hapi-cli", Some(SCOPE), None).await;
    let t = answer["access_token"].as_str().unwrap();
    let s = hapi(idp, "registration_url = \"https://idp.example/register?a=1&b=\\\"<x>\"").await;
    let (status, _, html) = s.get("/portal/credentials", t).await;
    assert_eq!(status, 200);
    assert!(html.contains("<a href=\"https://idp.example/register?a=1&amp;b=&quot;&lt;x&gt;\">"), "{html}");
    assert!(!html.contains("New M2M client"));
    let s = hapi(idp, "").await;
    let (status, _, html) = s.get("/portal/credentials", t).await;
    assert_eq!(status, 200);
    assert!(html.contains("no self-service registration page"), "{html}");
}
