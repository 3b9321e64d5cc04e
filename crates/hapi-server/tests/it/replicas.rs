//! Stateless replicas: a PostgreSQL primary and a streaming-replication standby, three
//! `hapi-server` processes (reads from the standby, writes to the primary, one shared
//! issuer key and session key), and nginx in front with the repository's own
//! `docs/deploy/nginx.conf` (`hapi_pgtest::nginx`). Skips with a printed reason without PostgreSQL or nginx
//! (`scripts/test.sh` installs both; `HAPI_REQUIRE_E2E=1` makes a skip a failure).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hapi_pgtest::Cluster;
use hapi_pgtest::nginx::Front;
use serde_json::Value;

const DATASET: &str = "live";
const WIDE: &str = "wide";
/// The parameters of both datasets: the time and four doubles.
const PARAMS: &str = r#"{"name":"Time","type":"isotime","units":"UTC","fill":null,"length":24},
  {"name":"a","type":"double","units":"nT","fill":null},
  {"name":"b","type":"double","units":"nT","fill":null},
  {"name":"c","type":"double","units":"nT","fill":null},
  {"name":"d","type":"double","units":"nT","fill":null}"#;

/// One `hapi-server serve` process.
struct Replica {
    child: Child,
    config: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn config(dir: &Path, n: usize, port: u16, front: u16, primary: &str, standby: &str) -> PathBuf {
    let shared = dir.join("shared");
    let text = format!(
        r#"listen = "127.0.0.1:{port}"
data_dir = {data:?}

[store]
kind = "postgres"
url = {primary:?}
read_url = {standby:?}

[server]
trusted_proxies = ["127.0.0.1"]

[limits]
max_elements = 100000000
max_bytes = 1000000000

[auth]
mode = "builtin"
public_url = "http://127.0.0.1:{front}"
issuer_key_file = {key:?}
session_key_file = {session:?}

[about]
id = "replicas"
title = "Replica test"
contact = "test@example.org"

[[dataset]]
id = "{DATASET}"
title = "Grows while served"
info = '''{{"parameters":[{PARAMS}],
  "cadence":"PT1S"}}'''

[[dataset]]
id = "{WIDE}"
title = "Configured dates: appends land inside a running request's range"
info = '''{{"parameters":[{PARAMS}],
  "startDate":"2026-01-01T00:00:00Z","stopDate":"2026-02-01T00:00:00Z","cadence":"PT1S"}}'''
"#,
        data = dir.join(format!("data{n}")),
        key = shared.join("issuer-key"),
        session = shared.join("session-key"),
    );
    let path = dir.join(format!("replica{n}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn start_replica(config: PathBuf, log: &Path) -> Replica {
    let child = Command::new(env!("CARGO_BIN_EXE_hapi-server"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    Replica { child, config }
}

/// Waits (up to 30 s) until `url` answers at all (any status).
async fn wait_up(url: &str) -> bool {
    let t = Instant::now();
    while reqwest::get(url).await.is_err() {
        if t.elapsed() > Duration::from_secs(30) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

fn cli(config: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hapi-server"))
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `n` records from second `from` of 2026-01-01, one a second, written as the server
/// writes them (so a response can be compared byte for byte).
fn records(from: u64, n: u64) -> String {
    (from..from + n)
        .map(|s| {
            format!(
                "2026-01-{:02}T{:02}:{:02}:{:02}.000Z,{s}.0,1.0,2.0,3.0\n",
                1 + s / 86_400,
                s / 3600 % 24,
                s / 60 % 60,
                s % 60
            )
        })
        .collect()
}

async fn token(port: u16, id: &str, secret: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "swe_hapiserver"),
        ])
        .send()
        .await
        .unwrap()
}

async fn info(port: u16, bearer: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/hapi/info?dataset={DATASET}"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn get(port: u16, bearer: &str, pq: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{pq}"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

fn data_query(dataset: &str, start: &str, stop: &str) -> String {
    format!("/hapi/data?dataset={dataset}&start={start}&stop={stop}")
}

/// Ingests `csv` into `dataset` through the command line of replica `config`.
fn ingest(dir: &Path, config: &Path, dataset: &str, csv: &str) {
    let input = dir.join("input.csv");
    std::fs::write(&input, csv).unwrap();
    cli(config, &["ingest", "--dataset", dataset, input.to_str().unwrap()], None);
}

/// Polls every replica's `/info` until its `stopDate` is `at` (one cadence after the
/// last record).
async fn wait_stop_date(ports: &[u16], bearer: &str, at: &str, within: Duration) -> Duration {
    let t = Instant::now();
    for &p in ports {
        loop {
            let now = info(p, bearer).await;
            if now["stopDate"] == at {
                break;
            }
            assert!(
                t.elapsed() < within,
                "replica on {p} still at {} after {:?}",
                now["stopDate"],
                t.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    t.elapsed()
}

/// Reads what is left of a response; `Err` when the stream was cut.
async fn rest(mut r: reqwest::Response, mut have: Vec<u8>) -> Result<Vec<u8>, reqwest::Error> {
    while let Some(chunk) = r.chunk().await? {
        have.extend_from_slice(&chunk);
    }
    Ok(have)
}

/// A response with its first chunk read: the server is then one chunk ahead and waits.
async fn started(r: reqwest::Response) -> (reqwest::Response, Vec<u8>) {
    assert_eq!(r.status(), 200);
    let mut r = r;
    let first = r.chunk().await.unwrap().unwrap().to_vec();
    (r, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_a_primary_and_a_standby_behind_nginx() {
    if !Front::available() {
        return;
    }
    let Some(primary) = hapi_pgtest::start_or_skip() else { return };
    let standby: Cluster = primary.standby().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir_all(dir.join("shared")).unwrap();
    let (primary_url, standby_url) = (primary.url(), standby.url());
    let front = free_port();
    let ports = [free_port(), free_port(), free_port()];
    let mut replicas: Vec<Replica> = (0..3)
        .map(|i| {
            let c = config(dir, i, ports[i], front, &primary_url, &standby_url);
            // All three start at once: one migrates, the others wait on its lock.
            start_replica(c, &dir.join(format!("replica{i}.log")))
        })
        .collect();
    for (i, p) in ports.iter().enumerate() {
        if !wait_up(&format!("http://127.0.0.1:{p}/healthz")).await {
            let logs: Vec<String> = (0..3)
                .map(|n| std::fs::read_to_string(dir.join(format!("replica{n}.log"))).unwrap_or_default())
                .collect();
            panic!("replica {i} did not start:\n{}\n{}", logs.join("\n----\n"), primary.log());
        }
    }
    let config0 = replicas[0].config.clone();

    // A client made on the command line against the database gets a token from
    // replica 1, which replica 2 accepts.
    let created = cli(&config0, &["clients", "create"], None);
    let id = created.lines().find_map(|l| l.strip_prefix("client_id=")).unwrap().to_owned();
    let secret = created.lines().find_map(|l| l.strip_prefix("client_secret=")).unwrap().to_owned();
    let r = token(ports[1], &id, &secret).await;
    assert_eq!(r.status(), 200, "replica 1 issues a token to a client it never saw");
    let bearer = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get(ports[2], &bearer, "/hapi/catalog").await.status(), 200, "replica 2 accepts it");

    // Records ingested through one replica are served by all three, and stopDate moves
    // on each within a second (plus the standby's replay lag).
    let day = records(0, 86_400);
    ingest(dir, &config0, DATASET, &day);
    // Not a speed test (the time is printed): 10 s is far inside the listeners' 30 s
    // safety net, so only the notification can have moved it.
    let took = wait_stop_date(&ports, &bearer, "2026-01-02T00:00:00.000Z", Duration::from_secs(10)).await;
    eprintln!("stopDate moved on all three replicas {took:?} after the ingest");
    ingest(dir, &config0, WIDE, &day);
    // Replica 2 reads the standby, which must have replayed this ingest before the long
    // download below (this dataset's stopDate is configured, so its last record is polled).
    let last = data_query(WIDE, "2026-01-01T23:59:59Z", "2026-01-02T00:00Z");
    let t = Instant::now();
    while get(ports[2], &bearer, &last).await.text().await.unwrap().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(10), "the standby did not replay the ingest in 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let whole_day = data_query(DATASET, "2026-01-01T00:00Z", "2026-01-02T00:00Z");

    let nginx = Front::start(&ports).unwrap();
    assert!(wait_up(&format!("http://127.0.0.1:{}/healthz", nginx.port)).await, "{}", nginx.log());
    for _ in 0..6 {
        let r = get(nginx.port, &bearer, &whole_day).await;
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(
            body == day,
            "every replica serves the same records: {:?} vs {:?}",
            &body[..body.len().min(200)],
            &day[..200]
        );
    }

    // A long download while an append lands inside its range: exactly its snapshot.
    let (r, first) =
        started(get(ports[2], &bearer, &data_query(WIDE, "2026-01-01T00:00Z", "2026-01-03T00:00Z")).await)
            .await;
    ingest(dir, &config0, WIDE, &records(86_400, 3600));
    let all = rest(r, first).await.unwrap();
    assert!(all == day.as_bytes(), "the download holds exactly the records of its snapshot");

    // A replica killed in the middle of streams: its clients see an aborted stream, the
    // others finish, and nginx sends new requests to the survivors.
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(started(get(nginx.port, &bearer, &whole_day).await).await);
    }
    let _ = replicas[0].child.kill();
    let _ = replicas[0].child.wait();
    let (mut cut, mut whole) = (0, 0);
    for (r, first) in streams {
        match rest(r, first).await {
            Ok(body) => {
                assert!(body == day.as_bytes(), "a finished stream is whole");
                whole += 1;
            }
            Err(_) => cut += 1,
        }
    }
    assert_eq!((cut, whole), (1, 2), "round robin gave the killed replica one of three streams");
    for _ in 0..6 {
        let r = get(nginx.port, &bearer, &whole_day).await;
        assert_eq!(r.status(), 200, "nginx passes over the dead replica");
        assert!(r.text().await.unwrap() == day);
    }

    // The database restarted under load: clean failures while it is down, success
    // after, with no restart of the servers; stopDate still follows appends.
    // A second client, whose token replica 1 has never checked.
    let other = cli(&config0, &["clients", "create"], None);
    let other_id = other.lines().find_map(|l| l.strip_prefix("client_id=")).unwrap().to_owned();
    let other_secret = other.lines().find_map(|l| l.strip_prefix("client_secret=")).unwrap().to_owned();
    let r = token(ports[2], &other_id, &other_secret).await;
    let unchecked = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    standby.stop();
    primary.stop();
    let r = get(ports[1], &unchecked, &whole_day).await;
    assert_eq!(r.status(), 503, "a client that cannot be checked is neither refused nor let in");
    assert_eq!(r.headers()["retry-after"], "5");
    assert_eq!(r.json::<Value>().await.unwrap()["status"]["code"], 1500);
    let t = Instant::now();
    let r = get(ports[1], &bearer, &whole_day).await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!((status.as_u16(), body["status"]["code"].as_i64()), (500, Some(1500)), "{body}");
    assert!(t.elapsed() < Duration::from_secs(5), "failed in {:?}, not hung", t.elapsed());
    primary.restart();
    standby.restart();
    let back = Instant::now();
    loop {
        let r = get(ports[2], &bearer, &whole_day).await;
        if r.status() == 200 {
            assert!(r.text().await.unwrap() == day);
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(20), "still failing after the database came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The standby may take seconds to stream again after its restart (PostgreSQL retries
    // its WAL receiver every 5 s): stopDate follows once it has the append, not later.
    ingest(dir, &config0, DATASET, &records(86_400, 60));
    let took =
        wait_stop_date(&ports[1..], &bearer, "2026-01-02T00:01:00.000Z", Duration::from_secs(20)).await;
    eprintln!("after the restart, stopDate moved on both replicas {took:?} after the ingest");

    // Revoked through the command line: refused by every replica within RECHECK (5 s).
    let revoked = Instant::now();
    cli(&config0, &["clients", "revoke", &id], None);
    for &p in &ports[1..] {
        loop {
            if get(p, &bearer, "/hapi/catalog").await.status() == 401 {
                break;
            }
            assert!(
                revoked.elapsed() < Duration::from_secs(8),
                "replica on {p} still accepts a revoked client"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(token(p, &id, &secret).await.status(), 401, "no new token for a revoked client");
    }
    drop(nginx);
    drop(replicas);
}
