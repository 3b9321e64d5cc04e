//! Idle and slow connections (issue 6, item 2), `TCP_NODELAY`, HEAD on `/data` (item 8),
//! the health probes and graceful shutdown.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::slow_clients::{SMALL, WEEK, stalled, week_server};
use crate::support::{CONFIG, TestServer, client, ds1_csv};

async fn from(source: &str, addr: std::net::SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
    sock.connect(addr).await.unwrap()
}

/// Whether the server closed `c` within `within` (reads EOF or an error).
async fn closed_within(c: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, c.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_sockets_from_one_address_are_capped_and_timed_out() {
    let config = CONFIG
        .replace("[limits]", "[server]\nheader_timeout = 1\nmax_connections_per_address = 50\n[limits]");
    let s = TestServer::start(&config, &[("ds1", &ds1_csv())], None).await;
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(from("127.0.0.2", s.addr).await);
    }
    // Another address is served at once.
    let t = Instant::now();
    assert_eq!(s.json("/hapi/catalog").await.0, 200);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // Beyond the per-address cap, sockets are closed at once...
    let mut closed_now = 0;
    for c in &mut idle {
        if closed_within(c, Duration::from_millis(5)).await {
            closed_now += 1;
        }
    }
    assert!(closed_now >= 1950, "{closed_now} of 2000 closed at once; the cap is 50");
    // ...and the 50 kept are closed when no request header arrives within a second.
    let t = Instant::now();
    for c in &mut idle {
        assert!(closed_within(c, Duration::from_secs(5)).await, "an idle socket outlived the header timeout");
    }
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());

    // A header sent a byte at a time never completes in time.
    let mut slow = from("127.0.0.2", s.addr).await;
    let t = Instant::now();
    for b in
        b"GET /hapi/catalog HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().chain(b"aaaaaaaaaaaaaaaaaaaaaaaaa".iter())
    {
        if slow.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed_within(&mut slow, Duration::from_secs(3)).await);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // A kept-alive connection is closed after the same time without a next request.
    let mut kept = from("127.0.0.1", s.addr).await;
    kept.write_all(b"GET /hapi/capabilities HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 4096];
    assert!(kept.read(&mut buf).await.unwrap() > 0);
    let t = Instant::now();
    assert!(closed_within(&mut kept, Duration::from_secs(5)).await);
    assert!(t.elapsed() >= Duration::from_millis(800), "closed too early: {:?}", t.elapsed());
}

/// Without `TCP_NODELAY` the end of a chunked response waits for the client's delayed
/// ACK: about 4 in 10 small sequential requests took 40 ms more than the rest.
#[tokio::test]
async fn small_requests_on_a_kept_alive_connection_never_wait_for_a_delayed_ack() {
    let s = TestServer::fixture().await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let mut slow = Vec::new();
    for i in 0..30 {
        let t = Instant::now();
        c.write_all(b"GET /hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-01T00:10Z HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        while !got.ends_with(b"0\r\n\r\n") {
            let n = c.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        if t.elapsed() >= Duration::from_millis(35) {
            slow.push((i, t.elapsed()));
        }
    }
    assert!(slow.len() <= 2, "requests that waited: {slow:?}");
}

#[tokio::test]
async fn head_on_data_tells_the_status_get_would_give() {
    let s = TestServer::fixture().await;
    let s = &s;
    let head = |pq: &str| {
        let req = format!("HEAD {pq} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        async move { s.raw(&req).await }
    };
    let (line, headers, body) = head("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-01T00:10Z").await;
    assert!(line.starts_with("HTTP/1.1 200") && line.contains("HAPI 1200"), "{line}");
    assert!(headers.to_ascii_lowercase().contains("content-type: text/csv"), "{headers}");
    assert!(body.is_empty());
    // No records in range: 1201.
    let (line, _, body) = head("/hapi/data?dataset=ds1&start=2016-01-10&stop=2016-01-11").await;
    assert!(line.starts_with("HTTP/1.1 200") && line.contains("HAPI 1201"), "{line}");
    assert!(body.is_empty());
    // Too much: 1408, as GET says.
    let (line, _, body) = head("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-03").await;
    assert!(line.starts_with("HTTP/1.1 400") && line.contains("HAPI 1408"), "{line}");
    assert!(body.is_empty());
    let (get_line, _, _) =
        s.raw("GET /hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-03 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(line, get_line);
    // Request errors too.
    let (line, _, _) = head("/hapi/data?dataset=ds1&start=2016-01-02&stop=2016-01-01").await;
    assert!(line.contains("HAPI 1404"), "{line}");
}

#[tokio::test]
async fn probes_are_public_outside_hapi() {
    let config = CONFIG.replace("[auth]\nmode = \"open\"\n", "[auth]\npublic_url = \"http://hapi.test\"\n");
    let s = TestServer::start(&config, &[("ds1", &ds1_csv())], None).await;
    assert_eq!(s.get("/hapi/catalog").await.status(), 401, "the server is protected");
    let (st, body) = s.text("/healthz").await;
    assert_eq!((st, body.as_str()), (200, "ok\n"));
    let (st, body) = s.text("/readyz").await;
    assert_eq!((st, body.as_str()), (200, "ready\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_running_responses_finish_then_drops_the_stalled() {
    let s = week_server("[auth]\nmode = \"open\"", "shutdown_grace = 2").await;
    // A second listener on the same state, so this test owns its shutdown.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(hapi_server::serve(listener, s.state.clone(), async {
        let _ = stopped.await;
    }));
    let reading = client()
        .get(format!("http://{addr}/hapi/data?dataset=big&start=2026-10-25T00:00Z&stop=2026-10-25T06:00Z"))
        .send()
        .await
        .unwrap();
    let (stuck, _) = stalled(addr, "127.0.0.1", &format!("/hapi/data?dataset=big&{WEEK}"), "").await;
    let t = Instant::now();
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(TcpStream::connect(addr).await.is_err(), "no new connections after the signal");
    // The reading client gets its whole response.
    let body = reading.bytes().await.expect("a running response finishes cleanly");
    assert_eq!(body.iter().filter(|&&b| b == b'\n').count(), 6 * 3600);
    // The stalled one is dropped when the grace time runs out, and serve returns.
    tokio::time::timeout(Duration::from_secs(10), served).await.expect("serve returned").unwrap().unwrap();
    assert!(t.elapsed() >= Duration::from_millis(1900), "{:?}", t.elapsed());
    drop(stuck);
    // The small request path is untouched on the fixture's own listener.
    assert_eq!(s.get(&format!("/hapi/data?dataset=big&{SMALL}")).await.status(), 200);
}
