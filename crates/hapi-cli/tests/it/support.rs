//! Real servers on 127.0.0.1 (in-process, from hapi-server's library), the `hapi`
//! binary run against them, and a proxy that injects faults into real answers.

use std::io::Cursor;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use hapi_server::App;
use hapi_server::config::{self, Overrides};
use hapi_store::{SqliteStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

pub const DATASET: &str = "spase://TEST/NumericalData/long+1";
/// 1 + 1 + 1 + 1 + 4 = 8 values a record: 1,250 records a response under 10,000 elements.
pub const INFO: &str = r#"{"parameters":[
  {"name":"Time","type":"isotime","units":"UTC","fill":null,"length":24},
  {"name":"x","type":"double","units":"nT","fill":"-1e31"},
  {"name":"n","type":"integer","units":null,"fill":"-1"},
  {"name":"s","type":"string","units":null,"fill":"none","length":6},
  {"name":"v","type":"double","units":"nT","fill":"-1e31","size":[4]}],
  "startDate":"2024-01-01T00:00:00.000Z","stopDate":"2024-01-02T00:00:00.000Z","cadence":"PT1S"}"#;
pub const START: &str = "2024-01-01T00:00Z";
pub const STOP: &str = "2024-01-02T00:00Z";
/// Records: one a second, a 7 s gap every 5,000.
pub const N: u64 = 30_000;
const T0: u64 = 1_704_067_200;

pub fn iso(sec: u64) -> String {
    let ns = i64::try_from(sec).unwrap() * 1_000_000_000;
    hapi_core::time::format_string(ns, hapi_core::time::TimeFormat::YMD_MILLIS)
}

pub fn records_csv() -> String {
    let mut s = String::new();
    for k in 0..N {
        let t = T0 + k + 7 * (k / 5000);
        let str_ = ["ab", "\"c,d\"", "éé", "xyz123"][(k % 4) as usize];
        let v: Vec<String> = (0..4).map(|j| format!("{}", k as f64 * 1.5 + j as f64 * 1e-3)).collect();
        s.push_str(&format!(
            "{},{},{},{str_},{}\n",
            iso(t),
            k as f64 * 0.25 - 1000.5,
            (k * 7919) % 100_003,
            v.join(",")
        ));
    }
    s
}

/// A running server.
#[allow(missing_debug_implementations, reason = "test helper")]
pub struct Server {
    pub addr: SocketAddr,
    pub app_state: Arc<hapi_server::AppState>,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl Server {
    /// `auth` is the `[auth]` section's body; `max_elements` the global limit.
    pub async fn start(auth: &str, max_elements: u64) -> Server {
        Self::start_with_info(auth, max_elements, INFO).await
    }

    /// [`start`](Self::start) with another info JSON for the dataset.
    pub async fn start_with_info(auth: &str, max_elements: u64, info: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        // Bound first: the built-in issuer's discovery names the real address.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let text = format!(
            "[auth]\n{auth}\n[limits]\nmax_elements = {max_elements}\nmax_bytes = 100000000\n\
             [[dataset]]\nid = \"{DATASET}\"\ntitle = \"long\"\ninfo = '''{info}'''\n"
        );
        let overrides = Overrides {
            data_dir: Some(dir.path().join("data")),
            listen: Some(addr.to_string()),
            ..Default::default()
        };
        let config = config::load(&text, Path::new("."), &overrides).expect("test config");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.data_dir).unwrap());
        for d in &config.datasets {
            store.open_dataset(&d.info.id, &hapi_store::Layout::of(&d.info)).unwrap();
            hapi_server::ingest::ingest(
                store.as_ref(),
                &d.info,
                &mut Cursor::new(records_csv().into_bytes()),
            )
            .unwrap();
        }
        let app = App::build(&config, store).await.expect("the server builds");
        let app_state = app.state.clone();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            app.serve(listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Server { addr, app_state, _dir: dir, _stop: tx }
    }

    pub fn hapi(&self) -> String {
        format!("http://{}/hapi", self.addr)
    }

    /// A client of the built-in issuer: (id, secret).
    pub fn client(&self) -> (String, String) {
        let issuer = self.app_state.access.issuer().expect("a built-in issuer");
        let (c, secret) = issuer.create_client(None, &[]).unwrap();
        (c.id, secret)
    }
}

/// The body of one GET with the header `auth`, if given.
pub async fn get(url: &str, auth: Option<&str>) -> (u16, Vec<u8>) {
    let mut rq = reqwest::Client::new().get(url);
    if let Some(a) = auth {
        rq = rq.header("authorization", a);
    }
    let r = rq.send().await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// What one run of `hapi` gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs `hapi args` with `env` (and nothing of the test's own HAPI_* environment),
/// off the runtime so the in-process servers keep serving.
pub async fn hapi(args: &[&str], env: &[(&str, &str)]) -> Run {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    tokio::task::spawn_blocking(move || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hapi"));
        c.args(&args);
        for (k, _) in std::env::vars() {
            if k.starts_with("HAPI_") {
                c.env_remove(k);
            }
        }
        // No profile file of the user's is ever read.
        c.env("HAPI_CONFIG", "/nonexistent/hapi-test-profiles.toml");
        for (k, v) in &env {
            c.env(k, v);
        }
        let Output { status, stdout, stderr } = c.output().expect("hapi runs");
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// What the proxy does to one `/data` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Passes the real answer.
    Pass,
    /// 503 with `Retry-After: 1` and a HAPI body.
    Busy,
    /// Sends the head and half the body, then closes.
    Cut,
    /// The answer with `Content-Type: application/json`.
    WrongType,
    /// A JSON document (the /info) where csv or binary was asked, typed as asked.
    JsonBody,
    /// The header names a parameter differently.
    LyingHeader,
    /// The body's last 5 bytes are missing, without Content-Length (connection close).
    Truncated,
    /// 401 `invalid_token`, as a server says of a token it holds expired.
    Expired,
}

/// A proxy on 127.0.0.1 in front of `upstream`: `/data` answers get the faults of
/// `plan` in turn (the last repeats); everything else passes.
#[allow(missing_debug_implementations, reason = "test helper")]
pub struct Proxy {
    pub addr: SocketAddr,
    plan: Arc<Mutex<Vec<Fault>>>,
    /// The fault applied to each /data request, and its query.
    pub seen: Arc<Mutex<Vec<(Fault, String)>>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr, plan: Vec<Fault>) -> Proxy {
        Self::slow(upstream, plan, std::time::Duration::ZERO).await
    }

    /// [`start`](Self::start), each /data answer held back `delay`.
    pub async fn slow(upstream: SocketAddr, plan: Vec<Fault>, delay: std::time::Duration) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let plan = Arc::new(Mutex::new(plan));
        let log = seen.clone();
        let plan_ = plan.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let (plan, log) = (plan_.clone(), log.clone());
                tokio::spawn(async move {
                    let _ = serve_one(sock, upstream, plan, log, delay).await;
                });
            }
        });
        Proxy { addr, plan, seen }
    }

    /// Faults from now on.
    pub fn set_plan(&self, plan: Vec<Fault>) {
        *self.plan.lock().unwrap() = plan;
    }

    pub fn hapi(&self) -> String {
        format!("http://{}/hapi", self.addr)
    }

    pub fn faults(&self) -> Vec<Fault> {
        self.seen.lock().unwrap().iter().map(|(f, _)| *f).collect()
    }
}

/// One request per connection (answers say `Connection: close`).
async fn serve_one(
    mut sock: tokio::net::TcpStream,
    upstream: SocketAddr,
    plan: Arc<Mutex<Vec<Fault>>>,
    log: Arc<Mutex<Vec<(Fault, String)>>>,
    delay: std::time::Duration,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let auth = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("authorization")))
        .map(|(_, v)| v.trim().to_owned());
    let r = {
        let mut rq = reqwest::Client::new().get(format!("http://{upstream}{target}"));
        if let Some(a) = &auth {
            rq = rq.header("authorization", a);
        }
        rq.send().await.map_err(std::io::Error::other)?
    };
    let status = r.status().as_u16();
    let mut ctype = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    // The server's own headers pass (WWW-Authenticate, Retry-After, ...), but the framing is ours.
    let mut extra = String::new();
    for (k, v) in r.headers() {
        if !matches!(k.as_str(), "content-type" | "content-length" | "transfer-encoding" | "connection") {
            extra.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap_or("")));
        }
    }
    let mut body = r.bytes().await.map_err(std::io::Error::other)?.to_vec();
    let fault = if target.starts_with("/hapi/data") {
        let mut p = plan.lock().unwrap();
        let f = if p.len() > 1 { p.remove(0) } else { p[0] };
        log.lock().unwrap().push((f, target.clone()));
        f
    } else {
        Fault::Pass
    };
    if target.starts_with("/hapi/data") {
        tokio::time::sleep(delay).await;
    }
    let mut status_line = format!("HTTP/1.1 {status} X");
    let mut length = true;
    let mut cut_at = body.len();
    match fault {
        Fault::Pass => {}
        Fault::Busy => {
            status_line = "HTTP/1.1 503 Service Unavailable".into();
            ctype = "application/json".into();
            body =
                br#"{"HAPI":"3.3","status":{"code":1500,"message":"Internal server error - busy"}}"#.to_vec();
            cut_at = body.len();
            extra.push_str("Retry-After: 1\r\n");
        }
        Fault::Cut => cut_at = body.len() / 2 + 3,
        Fault::WrongType => ctype = "application/json".into(),
        Fault::JsonBody => {
            let info = format!("http://{upstream}{}", target.replacen("/hapi/data", "/hapi/info", 1));
            let mut rq = reqwest::Client::new().get(info);
            if let Some(a) = &auth {
                rq = rq.header("authorization", a);
            }
            body = rq
                .send()
                .await
                .map_err(std::io::Error::other)?
                .bytes()
                .await
                .map_err(std::io::Error::other)?
                .to_vec();
            cut_at = body.len();
        }
        Fault::LyingHeader => {
            let text = String::from_utf8_lossy(&body).into_owned();
            // Only the header's name of "x" changes; the records stay as they were.
            body = text.replacen("\"name\":\"x\"", "\"name\":\"y\"", 1).into_bytes();
            cut_at = body.len();
        }
        Fault::Expired => {
            status_line = "HTTP/1.1 401 Unauthorized".into();
            ctype = "application/json".into();
            body =
                br#"{"HAPI":"3.3","status":{"code":1400,"message":"Bad request - token expired"}}"#.to_vec();
            cut_at = body.len();
            extra.push_str("WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
        }
        Fault::Truncated => {
            length = false;
            cut_at = body.len().saturating_sub(5);
        }
    }
    let mut out = format!("{status_line}\r\nContent-Type: {ctype}\r\nConnection: close\r\n{extra}");
    if length {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    sock.write_all(out.as_bytes()).await?;
    sock.write_all(&body[..cut_at]).await?;
    sock.flush().await?;
    sock.shutdown().await
}
