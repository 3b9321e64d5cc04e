//! Clients that stop reading (issue 6, item 1): a stalled `/data` stream holds no thread
//! and no store connection, other requests keep answering, caps refuse with 429, and a
//! client that stays stalled past `send_timeout` loses its connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::{TestServer, client};

const SOSMAG: &str = include_str!("../../demo/sosmag.json");
/// The whole week of the `sosmag` generator: 604,800 records, about 40 MB of csv.
pub const WEEK: &str = "start=2026-10-25T00:00Z&stop=2026-11-01T00:00Z";
/// Ten records.
pub const SMALL: &str = "start=2026-10-28T00:00Z&stop=2026-10-28T00:00:10Z";

/// One dataset of a week at 1 s, limits raised so a response may be tens of MB.
pub fn week_config(auth: &str, server: &str) -> String {
    format!(
        "{auth}\n[limits]\nmax_elements = 1000000000\nmax_bytes = 100000000000\n[server]\n{server}\n\
         [[dataset]]\nid = \"big\"\ndemo = \"sosmag\"\ninfo = '''{SOSMAG}'''\n"
    )
}

/// A server on [`week_config`] with the week generated.
pub async fn week_server(auth: &str, server: &str) -> TestServer {
    week_server_on(&week_config(auth, server)).await
}

/// A server on `config` (a [`week_config`], changed) with the week generated.
async fn week_server_on(config: &str) -> TestServer {
    let s = TestServer::start(config, &[], None).await;
    let info = s.state.dataset("big").unwrap().spec.info.clone();
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || {
        hapi_server::demo::populate(store.as_ref(), &info, "sosmag").unwrap()
    })
    .await
    .unwrap();
    s.state.refresh().await.unwrap();
    s
}

/// Sends a GET from `source` and reads just the first bytes of the answer, then stops
/// reading; the small receive buffer makes the server stall soon.
pub async fn stalled(addr: SocketAddr, source: &str, pq: &str, extra: &str) -> (TcpStream, Vec<u8>) {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    s.write_all(format!("GET {pq} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").as_bytes()).await.unwrap();
    let mut head = vec![0u8; 512];
    let n = s.read(&mut head).await.unwrap();
    head.truncate(n);
    (s, head)
}

async fn timed<F: std::future::Future<Output = u16>>(f: F) -> (u16, Duration) {
    let t = Instant::now();
    let status = f.await;
    (status, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_stalled_streams_leave_small_requests_fast() {
    const STALLED: usize = 1000;
    let s = week_server(
        "[auth]\npublic_url = \"http://hapi.test\"",
        "max_streams = 2000\nmax_streams_per_client = 2000\nmax_connections_per_address = 4000",
    )
    .await;
    let issuer = s.issuer();
    let (c, secret) = issuer.create_client(None, &[]).unwrap();
    let token_body = format!(
        "client_id={}&client_secret={secret}&grant_type=client_credentials&scope=swe_hapiserver",
        c.id
    );
    let token = || async {
        let r = client()
            .post(s.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(token_body.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        (status, v["access_token"].as_str().unwrap_or("").to_owned())
    };
    let bearer = token().await.1;
    let small_data = || async {
        let r = client()
            .get(s.url(&format!("/hapi/data?dataset=big&{SMALL}")))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert_eq!(r.bytes().await.unwrap().iter().filter(|&&b| b == b'\n').count(), 10);
        status
    };
    let login_page = || async { client().get(s.url("/auth/login")).send().await.unwrap().status().as_u16() };
    let token_status = || async { token().await.0 };

    // Each request alone first: the bound below is 50 ms on top of this.
    let mut base = Duration::ZERO;
    for _ in 0..3 {
        base = base
            .max(timed(small_data()).await.1)
            .max(timed(login_page()).await.1)
            .max(timed(token_status()).await.1);
    }

    let auth = format!("Authorization: Bearer {bearer}\r\n");
    let mut held = Vec::with_capacity(STALLED);
    for chunk in 0..STALLED / 50 {
        let batch: Vec<_> = (0..50)
            .map(|_| {
                let auth = auth.clone();
                let addr = s.addr;
                tokio::spawn(async move {
                    stalled(addr, "127.0.0.1", &format!("/hapi/data?dataset=big&{WEEK}"), &auth).await
                })
            })
            .collect();
        for t in batch {
            let (conn, head) = t.await.unwrap();
            assert!(head.starts_with(b"HTTP/1.1 200"), "stream {chunk}: {}", String::from_utf8_lossy(&head));
            held.push(conn);
        }
    }
    assert_eq!(s.state.streams.active(), STALLED);

    for round in 0..5 {
        for (what, (status, took)) in [
            ("small /data", timed(small_data()).await),
            ("/auth/login", timed(login_page()).await),
            ("/oauth/token", timed(token_status()).await),
        ] {
            assert_eq!(status, 200, "{what}");
            // Before, they never answered (every blocking thread was held). The 50 ms
            // target is a benchmark row (hapi-bench, "1,000 stalled"): a timed test on
            // shared cores would fail for the machine, not the server. This bound is
            // far from both.
            assert!(
                took < base + Duration::from_secs(2),
                "round {round}: {what} took {took:?} with {STALLED} stalled streams (alone: at most {base:?})"
            );
        }
    }

    drop(held);
    let t = Instant::now();
    while s.state.streams.active() > 0 && t.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.state.streams.active(), 0, "every stream ended with its client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_caps_answer_429_with_retry_after() {
    let s = week_server("[auth]\nmode = \"open\"", "max_streams = 3\nmax_streams_per_client = 2").await;
    let pq = format!("/hapi/data?dataset=big&{WEEK}");
    let a1 = stalled(s.addr, "127.0.0.1", &pq, "").await;
    let a2 = stalled(s.addr, "127.0.0.1", &pq, "").await;
    assert!(a1.1.starts_with(b"HTTP/1.1 200") && a2.1.starts_with(b"HTTP/1.1 200"));

    let refused = |source: &'static str| {
        let pq = pq.clone();
        let addr = s.addr;
        async move {
            let sock = TcpSocket::new_v4().unwrap();
            sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
            let mut c = sock.connect(addr).await.unwrap();
            c.write_all(format!("GET {pq} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).await.unwrap();
            out
        }
    };
    // A third stream of the same (anonymous) client, by address.
    let third = refused("127.0.0.1").await;
    assert!(third.starts_with("HTTP/1.1 429"), "{third}");
    assert!(third.to_ascii_lowercase().contains("\r\nretry-after: 2\r\n"), "{third}");
    let body: serde_json::Value = serde_json::from_str(third.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["HAPI"], "3.3");
    assert_eq!(body["status"]["code"], 1400);
    assert!(body["status"]["message"].as_str().unwrap().contains("at once"), "{body}");

    // Another client still gets one; then the server's own cap is full.
    let b1 = stalled(s.addr, "127.0.0.2", &pq, "").await;
    assert!(b1.1.starts_with(b"HTTP/1.1 200"));
    let fourth = refused("127.0.0.3").await;
    assert!(fourth.starts_with("HTTP/1.1 429"), "{fourth}");
    let body: serde_json::Value = serde_json::from_str(fourth.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["status"]["code"], 1500);

    // HEAD takes no stream; metadata is never capped.
    let (head, _, _) = s
        .raw(&format!("HEAD /hapi/data?dataset=big&{SMALL} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(s.json("/hapi/info?dataset=big").await.0, 200);

    // A place freed is a place to take.
    drop(a1);
    let t = Instant::now();
    while s.state.streams.active() > 2 && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = stalled(s.addr, "127.0.0.1", &pq, "").await;
    assert!(again.1.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&again.1));
    drop((a2, b1, again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stalled_past_the_send_timeout_loses_its_connection() {
    let s = week_server("[auth]\nmode = \"open\"", "send_timeout = 1").await;
    let (mut conn, head) = stalled(s.addr, "127.0.0.1", &format!("/hapi/data?dataset=big&{WEEK}"), "").await;
    assert!(head.starts_with(b"HTTP/1.1 200"));
    assert_eq!(s.state.streams.active(), 1);
    let t = Instant::now();
    while s.state.streams.active() > 0 && t.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.state.streams.active(), 0, "the stalled stream was dropped");
    assert!(t.elapsed() >= Duration::from_millis(900), "not before the timeout: {:?}", t.elapsed());
    // What the client then reads ends abnormally: never the terminating chunk.
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest).await;
    assert!(!rest.ends_with(b"0\r\n\r\n"), "a dropped stream never ends cleanly");
}

/// `hapi_streams_parked_total` of `s`.
async fn parked(s: &TestServer) -> u64 {
    let (status, text) = s.text("/metrics").await;
    assert_eq!(status, 200, "{text}");
    let line = text.lines().find_map(|l| l.strip_prefix("hapi_streams_parked_total "));
    line.and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

/// A stalled stream gives back its read-ahead (it parks) and reads those records again
/// when its client reads on: the bytes are those of an uninterrupted download, and
/// records appended meanwhile stay out (one snapshot per request, issue 6 item 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_stream_resumes_with_the_bytes_of_its_snapshot() {
    // A published stopDate a day past the last record: a range up to it takes in the
    // records appended below, which the parked stream must still leave out.
    let config = week_config("[auth]\nmode = \"open\"", "").replacen(
        "'''{",
        "'''{\"stopDate\": \"2026-11-02T00:00:00Z\",",
        1,
    );
    let s = week_server_on(&config).await;
    let range = "start=2026-10-25T00:00Z&stop=2026-11-02T00:00Z&parameters=B_total";
    for (hour, format) in ["csv", "json", "binary"].into_iter().enumerate() {
        let pq = format!("/hapi/data?dataset=big&{range}&format={format}");
        let expected = s.get(&pq).await.bytes().await.unwrap();
        let before = parked(&s).await;

        // HTTP/1.0: the body is sent as is and ends when the connection closes.
        let sock = TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let mut conn = sock.connect(s.addr).await.unwrap();
        conn.write_all(format!("GET {pq} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
        let mut raw = vec![0u8; 512];
        let n = conn.read(&mut raw).await.unwrap();
        raw.truncate(n);
        let t = Instant::now();
        while parked(&s).await == before && t.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let head = String::from_utf8_lossy(&raw);
        assert!(parked(&s).await > before, "{format}: the stalled stream parked: {head}");

        // An hour more, appended while the stream is parked.
        let info = s.state.dataset("big").unwrap().spec.info.clone();
        let store = s.store.clone();
        let now = hapi_core::time::parse(&format!("2026-11-01T0{}:00:00Z", hour + 1)).unwrap();
        let added = tokio::task::spawn_blocking(move || {
            hapi_server::demo::grow(store.as_ref(), &info, "sosmag", now).unwrap()
        })
        .await
        .unwrap();
        assert!(added > 0);

        conn.read_to_end(&mut raw).await.unwrap();
        let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(raw.starts_with(b"HTTP/1.0 200"), "{}", String::from_utf8_lossy(&raw[..at]));
        assert!(raw[at..] == expected[..], "{format}: {} bytes, {} expected", raw.len() - at, expected.len());
        // The appended records are there for the next request.
        let again = s.get(&pq).await.bytes().await.unwrap();
        assert!(again.len() > expected.len(), "{format}");
    }
}
