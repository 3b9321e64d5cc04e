//! A real server on 127.0.0.1:0 with a fresh data directory, and small HTTP helpers.

use std::collections::HashMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use hapi_server::config::{self, Overrides};
use hapi_server::{App, AppState};
use hapi_source::{Blocking, Source};
use hapi_store::{SqliteStore, Store, StoreSource};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// The digest's fixture `ds1` (section 4.4) plus a dataset with every parameter kind.
pub const CONFIG: &str = r#"
[auth]
mode = "open"

[about]
id = "test"
title = "Test server"
contact = "test@example.org"

[limits]
max_elements = 100000
max_bytes = 12582912

[[dataset]]
id = "ds1"
title = "Fixture ds1"
limits = { max_elements = 10000 }
info = '''{"parameters":[
  {"name":"Time","type":"isotime","units":"UTC","fill":null,"length":24},
  {"name":"Bx","type":"double","units":"nT","fill":"-1e31"},
  {"name":"By","type":"double","units":"nT","fill":"-1e31"},
  {"name":"Bz","type":"double","units":"nT","fill":"-1e31"}],
  "startDate":"2016-01-01T00:00:00.000Z","stopDate":"2016-02-01T00:00:00.000Z","cadence":"PT1M"}'''

[[dataset]]
id = "all/kinds+types:α☃"
title = "Every kind of parameter"
info = '''{"parameters":[
  {"name":"Time","type":"isotime","units":"UTC","fill":null,"length":24},
  {"name":"d","type":"double","units":"m","fill":"NaN"},
  {"name":"i","type":"integer","units":null,"fill":"-1"},
  {"name":"s","type":"string","units":null,"fill":"none","length":8},
  {"name":"v","type":"double","units":"nT","fill":"-1e31","size":[3]},
  {"name":"m","type":"integer","units":null,"fill":"-1","size":[2,3]},
  {"name":"t","type":"isotime","units":"UTC","fill":"0001-01-01T00:00:00Z","length":20}],
  "cadence":"PT1H"}'''
"#;

/// ds1 records: one a minute over 2016-01-01 and 2016-01-02 (2880), then a gap.
pub fn ds1_csv() -> String {
    let mut s = String::new();
    for i in 0..2880u32 {
        let (d, h, m) = (1 + i / 1440, (i / 60) % 24, i % 60);
        let bz = if i % 100 == 7 { "-1e31".to_owned() } else { format!("{}", f64::from(i) * 0.25) };
        s.push_str(&format!(
            "2016-01-{d:02}T{h:02}:{m:02}:00.000Z,{},{},{bz}\n",
            f64::from(i) * 0.5,
            100.0 - f64::from(i)
        ));
    }
    s
}

/// Records of the every-kind dataset, hourly from 2020-01-01.
pub const KINDS_CSV: &str = "\
2020-01-01T00:00:00.000Z,1.5,1,abc,1,2,3,1,2,3,4,5,6,2020-01-01T00:00:00Z
2020-01-01T01:00:00.000Z,NaN,-1,\"a,b\",-1e31,0.25,-0.5,7,8,9,10,11,12,0001-01-01T00:00:00Z
2020-01-01T02:00:00.000Z,-2.75e-10,2147483647,\"q\"\"t\",4,5,6,-1,0,1,2,3,-2147483648,2020-01-01T02:30:00Z
2020-01-01T03:00:00.000Z,1e300,0,αβγ,7,8,9,0,0,0,0,0,0,2020-01-01T03:00:00Z
";

/// Access rules for the fixture: ds1 for every authenticated caller, embargoed before
/// 2016-01-02T00:00Z (inside its records) for callers without role `embargo`; the
/// every-kind dataset for role `private` only.
pub fn access_rules() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let age = now - 1_451_692_800; // 2016-01-02T00:00:00Z
    format!(
        r#"[auth.access]
authenticated = ["ds1"]
[[auth.access.rule]]
datasets = ["all/*"]
roles = ["private"]
[[auth.access.embargo]]
datasets = ["ds1"]
age = "PT{age}S"
role = "embargo"
"#
    )
}

/// Opens the configured datasets in `store` and appends the csv `data` of some of them.
pub fn load(config: &config::Config, store: &dyn Store, data: &[(&str, &str)]) {
    for d in &config.datasets {
        store.open_dataset(&d.info.id, &hapi_store::Layout::of(&d.info)).unwrap();
    }
    for (id, csv) in data {
        let info = &config.datasets.iter().find(|d| d.info.id == *id).expect("a configured dataset").info;
        hapi_server::ingest::ingest(store, info, &mut Cursor::new(csv.as_bytes())).unwrap();
    }
}

/// Records (csv lines) split into daily files `$Y/ds1_$Y$m$d.csv` (`.csv.gz` when `gz`) under `root`.
pub fn write_days(root: &Path, csv: &str, gz: bool) {
    let mut days: std::collections::BTreeMap<String, String> = Default::default();
    for line in csv.lines() {
        let day = line[..10].replace('-', "");
        days.entry(day).or_default().push_str(&format!("{line}\n"));
    }
    for (day, text) in days {
        write_day(root, &day, &text, gz);
    }
}

/// One daily file of [`write_days`].
pub fn write_day(root: &Path, day: &str, text: &str, gz: bool) {
    let dir = root.join(&day[..4]);
    std::fs::create_dir_all(&dir).unwrap();
    if gz {
        let f = std::fs::File::create(dir.join(format!("ds1_{day}.csv.gz"))).unwrap();
        let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        std::io::Write::write_all(&mut e, text.as_bytes()).unwrap();
        e.finish().unwrap();
    } else {
        std::fs::write(dir.join(format!("ds1_{day}.csv")), text).unwrap();
    }
}

/// The `source` line of a dataset read from [`write_days`]' files under `root`.
pub fn files_source(root: &Path, gz: bool) -> String {
    let ext = if gz { "csv.gz" } else { "csv" };
    format!(
        "source = {{ kind = \"files\", root = {:?}, template = \"$Y/ds1_$Y$m$d.{ext}\" }}",
        root.display().to_string()
    )
}

/// `config_text` with its data directory in `dir` and port 0.
fn fixture_config(config_text: &str, dir: &tempfile::TempDir) -> config::Config {
    let overrides = Overrides {
        data_dir: Some(dir.path().join("data")),
        listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    config::load(config_text, Path::new("."), &overrides).expect("test config")
}

/// A running server.
#[allow(missing_debug_implementations, reason = "test helper holding a join handle")]
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    pub store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
    /// Granule files the server reads, if any.
    pub _archive: Option<tempfile::TempDir>,
    /// The server this one re-serves, if any.
    pub _upstream: Option<Box<TestServer>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// The fixture configuration with its records loaded.
    pub async fn fixture() -> TestServer {
        Self::start(CONFIG, &[("ds1", &ds1_csv()), ("all/kinds+types:α☃", KINDS_CSV)], None).await
    }

    /// Any configuration; `store` replaces the SQLite store (after the data is loaded into SQLite).
    pub async fn start(config_text: &str, data: &[(&str, &str)], wrap: Option<Wrap>) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let config = fixture_config(config_text, &dir);
        Self::with_config(config, data, wrap, dir).await
    }

    pub async fn with_config(
        config: config::Config,
        data: &[(&str, &str)],
        wrap: Option<Wrap>,
        dir: tempfile::TempDir,
    ) -> TestServer {
        Self::launch(config, data, wrap, |_| None, dir).await
    }

    /// The fixture four to six times: from the embedded store, from daily csv files (ds1
    /// plain, the every-kind dataset gzip-compressed), behind a source that cannot count,
    /// re-served from an upstream server of our own, from PostgreSQL when it is
    /// installed, and from daily CDF files when the venv has cdflib.
    pub async fn each_source() -> Vec<(&'static str, TestServer)> {
        let archive = tempfile::tempdir().unwrap();
        let (ds1, kinds) = (archive.path().join("ds1"), archive.path().join("kinds"));
        write_days(&ds1, &ds1_csv(), false);
        write_days(&kinds, KINDS_CSV, true);
        let config = CONFIG
            .replace(
                "title = \"Fixture ds1\"",
                &format!("title = \"Fixture ds1\"\n{}", files_source(&ds1, false)),
            )
            .replace(
                "title = \"Every kind of parameter\"",
                &format!("title = \"Every kind of parameter\"\n{}", files_source(&kinds, true)),
            );
        let mut files = TestServer::start(&config, &[], None).await;
        files._archive = Some(archive);
        let data = [("ds1", ds1_csv()), ("all/kinds+types:α☃", KINDS_CSV.to_owned())];
        let data: Vec<(&str, &str)> = data.iter().map(|(a, b)| (*a, b.as_str())).collect();
        let opaque =
            TestServer::with_sources(CONFIG, &data, |s| Arc::new(hapi_source::testing::Opaque::hiding(s)))
                .await;
        let upstream = TestServer::reserving(TestServer::fixture().await, CONFIG).await;
        let mut all = vec![
            ("embedded", TestServer::fixture().await),
            ("files", files),
            ("uncounted", opaque),
            ("upstream", upstream),
        ];
        // The embedded store's records in PostgreSQL, when it is installed (else a printed skip).
        if let Some(pg) = TestServer::postgres_fixture().await {
            all.push(("postgres", pg));
        }
        // Daily CDF files written by cdflib, when the venv has it (else a printed skip).
        if let Some(python) = crate::cdf::python() {
            all.push(("cdf", crate::cdf::cdf_fixture(&python).await));
        }
        all
    }

    /// A server whose datasets are those of `config_text`, each read from the same
    /// dataset of `upstream`, with the info the upstream gives.
    pub async fn reserving(upstream: TestServer, config_text: &str) -> TestServer {
        let mut config = String::new();
        let (mut in_dataset, mut in_info) = (false, false);
        for line in config_text.lines() {
            // The info is a multi-line literal string: `info = '''...` to `...'''`.
            if let Some(rest) = line.strip_prefix("info = '''") {
                in_info = !rest.ends_with("'''");
                continue;
            }
            if in_info {
                in_info = !line.ends_with("'''");
                continue;
            }
            config.push_str(line);
            config.push('\n');
            if line.starts_with('[') {
                in_dataset = line == "[[dataset]]";
            } else if in_dataset && line.starts_with("id = ") {
                config.push_str("source = { kind = \"hapi\", upstream = \"up\" }\n");
            }
        }
        config.push_str(&format!("\n[[upstream]]\nname = \"up\"\nurl = \"{}\"\n", upstream.url("/hapi")));
        let mut server = TestServer::start(&config, &[], None).await;
        server._upstream = Some(Box::new(upstream));
        server
    }

    /// [`start`](Self::start) with every dataset read through the source `source` makes
    /// of its embedded one.
    pub async fn with_sources(
        config_text: &str,
        data: &[(&str, &str)],
        source: impl Fn(Arc<dyn Source>) -> Arc<dyn Source>,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let config = fixture_config(config_text, &dir);
        Self::launch(config, data, None, |s| Some(source(s)), dir).await
    }

    async fn launch(
        config: config::Config,
        data: &[(&str, &str)],
        wrap: Option<Wrap>,
        source: impl Fn(Arc<dyn Source>) -> Option<Arc<dyn Source>>,
        dir: tempfile::TempDir,
    ) -> TestServer {
        let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.data_dir).unwrap());
        load(&config, sqlite.as_ref(), data);
        let store = match wrap {
            Some(w) => w(sqlite),
            None => sqlite,
        };
        let mut sources = HashMap::new();
        for d in &config.datasets {
            let embedded = Arc::new(Blocking(Arc::new(StoreSource::new(store.clone(), &d.info.id))));
            if let Some(s) = source(embedded) {
                sources.insert(d.info.id.clone(), s);
            }
        }
        let app = App::build_with_sources(&config, store.clone(), sources).await.expect("the server builds");
        Self::serve(app, store, dir).await
    }

    /// The fixture served from PostgreSQL (a fresh database of the test process's
    /// cluster); `None` (printed) where PostgreSQL is not installed.
    pub async fn postgres_fixture() -> Option<TestServer> {
        let url = hapi_pgtest::shared()?.fresh_database();
        let data = [("ds1", ds1_csv()), ("all/kinds+types:α☃", KINDS_CSV.to_owned())];
        Some(TestServer::on_postgres(CONFIG, &url, &data).await)
    }

    /// A server of `config_text` whose store is the PostgreSQL database `url` (given as
    /// `HAPI_DATABASE_URL` would be), after appending `data` there.
    pub async fn on_postgres(config_text: &str, url: &str, data: &[(&'static str, String)]) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let overrides = Overrides {
            data_dir: Some(dir.path().join("data")),
            listen: Some("127.0.0.1:0".into()),
            database_url: Some(url.to_owned()),
            ..Default::default()
        };
        let config = config::load(config_text, Path::new("."), &overrides).expect("test config");
        let store = hapi_server::stores::open(&config).await.expect("the postgres store opens").store;
        let (c, s, data) = (config.clone(), store.clone(), data.to_vec());
        // The store's calls block on the runtime: from a blocking thread.
        tokio::task::spawn_blocking(move || {
            let data: Vec<(&str, &str)> = data.iter().map(|(a, b)| (*a, b.as_str())).collect();
            load(&c, s.as_ref(), &data);
        })
        .await
        .unwrap();
        let app = App::build(&config, store.clone()).await.expect("the server builds");
        Self::serve(app, store, dir).await
    }

    async fn serve(app: App, store: Arc<dyn Store>, dir: tempfile::TempDir) -> TestServer {
        let state = app.state.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            app.serve(listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer { addr, state, store, _dir: dir, _archive: None, _upstream: None, shutdown: Some(tx) }
    }

    /// The built-in issuer (servers of mode `builtin` only).
    pub fn issuer(&self) -> &hapi_auth::Issuer {
        self.state.access.issuer().expect("a built-in issuer")
    }

    /// An access token for client `id` from the built-in issuer's token endpoint.
    pub async fn client_token(&self, id: &str, secret: &str) -> String {
        let r = client()
            .post(self.url("/oauth/token"))
            .form(&[("client_id", id), ("client_secret", secret), ("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    pub fn url(&self, pq: &str) -> String {
        format!("http://{}{}", self.addr, pq)
    }

    pub async fn get(&self, pq: &str) -> reqwest::Response {
        client().get(self.url(pq)).send().await.unwrap()
    }

    /// Status, parsed JSON body.
    pub async fn json(&self, pq: &str) -> (u16, Value) {
        let r = self.get(pq).await;
        let status = r.status().as_u16();
        let body = r.bytes().await.unwrap();
        let v = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{pq}: body is not JSON ({e}): {}", String::from_utf8_lossy(&body)));
        (status, v)
    }

    /// Status and body text.
    pub async fn text(&self, pq: &str) -> (u16, String) {
        let r = self.get(pq).await;
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// The raw response of one HTTP/1.1 request: status line, header block, body.
    pub async fn raw(&self, request: &str) -> (String, String, Vec<u8>) {
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
        (status.to_owned(), headers.to_owned(), buf[split + 4..].to_vec())
    }

    /// The status line of a GET.
    pub async fn status_line(&self, pq: &str) -> String {
        self.raw(&format!("GET {pq} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).await.0
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Replaces the store a server reads from.
pub type Wrap = Box<dyn FnOnce(Arc<dyn Store>) -> Arc<dyn Store>>;

/// A client that neither follows redirects nor decompresses.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The HAPI status code of a JSON body.
pub fn code(v: &Value) -> i64 {
    v["status"]["code"].as_i64().unwrap_or(0)
}

/// Everything logged at target `audit` by any server of this test binary.
pub fn audit_log() -> Arc<std::sync::Mutex<Vec<u8>>> {
    static LOG: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = Capture(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("audit=info"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buf
    })
    .clone()
}

#[derive(Clone)]
struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a browser holds before it posts a form of the page `page`: the CSRF cookie
/// (`name=value`, or `cookie` sent along when the page needs a session) and the token
/// of the form's hidden field.
pub async fn csrf(c: &reqwest::Client, url: &str, cookie: Option<&str>) -> (String, String) {
    let mut req = c.get(url);
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    let r = req.send().await.unwrap();
    let jar = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("hapi_csrf="))
        .expect("the form page sets its CSRF cookie");
    let html = r.text().await.unwrap();
    let token = html.split("name=\"csrf\" value=\"").nth(1).expect("a CSRF field").split('"').next().unwrap();
    (jar, token.to_owned())
}

/// Posts the form at `url` as a browser does: its page first (for the CSRF cookie and
/// token), then the fields with them (`cookie`, a session, sent with both requests).
pub async fn post_form(
    c: &reqwest::Client,
    url: &str,
    fields: &[(&str, &str)],
    cookie: Option<&str>,
) -> reqwest::Response {
    let (jar, token) = csrf(c, url, cookie).await;
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.push(("csrf", &token));
    let jar = match cookie {
        Some(c) => format!("{c}; {jar}"),
        None => jar,
    };
    c.post(url).header("cookie", jar).form(&all).send().await.unwrap()
}

/// A local login through the form (`password` "correct horse"); the session cookie.
pub async fn login(s: &TestServer, user: &str) -> String {
    let r = post_form(
        &client(),
        &s.url("/auth/login"),
        &[("username", user), ("password", "correct horse"), ("return_to", "/hapi")],
        None,
    )
    .await;
    assert_eq!(r.status(), 303);
    r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
}

/// `hapi-server serve` of this build, started as its own process on a free port.
pub struct ServeProcess {
    /// The process (the test ends it).
    pub child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its stderr, after the line that named the address.
    pub stderr: std::io::BufReader<std::process::ChildStderr>,
    /// The log up to and including that line.
    pub head: Vec<u8>,
}

/// Starts `serve --config cfg` with `env` and reads its log up to the address it
/// listens on (generous: a debug build starting).
pub fn serve_process(cfg: &Path, env: &[(&str, &str)]) -> ServeProcess {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_hapi-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config", cfg.to_str().unwrap()])
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut head = Vec::new();
    let addr = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "exited early: {}", String::from_utf8_lossy(&head));
        head.extend_from_slice(line.as_bytes());
        if let Some(at) = line.find("http://127.0.0.1:") {
            let rest = &line[at + 7..];
            break rest[..rest.find('/').unwrap()].to_owned();
        }
    };
    ServeProcess { child, addr, stderr, head }
}
