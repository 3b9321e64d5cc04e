//! SIGHUP reloads datasets, access rules and limits without dropping a connection, and a
//! bad file is refused with the running configuration kept; SIGTERM drains and exits 0.
//! These run the real binary, since signals are the interface.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{CONFIG, ds1_csv};

/// One keep-alive GET on `c`; the body of a Content-Length response.
#[track_caller]
fn get(c: &mut TcpStream, pq: &str) -> String {
    c.write_all(format!("GET {pq} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed the kept-alive connection after {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            });
            if let Some(len) = len
                && body.len() >= len
            {
                return body[..len].to_owned();
            }
        }
    }
}

fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success());
}

fn wait_for(mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn sighup_reloads_without_dropping_connections_and_keeps_a_good_config() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = dir.path().join("hapi.toml");
    let head = format!("listen = \"127.0.0.1:{port}\"\ndata_dir = {:?}\n", dir.path().join("data"));
    std::fs::write(&cfg, format!("{head}{CONFIG}")).unwrap();
    let bin = env!("CARGO_BIN_EXE_hapi-server");
    let c = cfg.to_str().unwrap();
    // Records for ds1, so that a limit change shows in what /data answers.
    let csv = dir.path().join("ds1.csv");
    std::fs::write(&csv, ds1_csv()).unwrap();
    assert!(
        Command::new(bin)
            .args(["ingest", "--config", c, "--dataset", "ds1"])
            .arg(&csv)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    );

    let log = dir.path().join("stderr.log");
    let mut server = Command::new(bin)
        .args(["serve", "--config", c])
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = server.id();
    assert!(wait_for(|| TcpStream::connect(("127.0.0.1", port)).is_ok()), "the server did not start");
    let mut kept = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let catalog = get(&mut kept, "/hapi/catalog");
    assert!(catalog.contains("\"ds1\"") && !catalog.contains("added"), "{catalog}");
    let two_days = "/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-03";
    assert!(get(&mut kept, two_days).contains("1408"), "over ds1's limit at first");

    // A new dataset and a higher limit for ds1.
    let added = "\n[[dataset]]\nid = \"added\"\ninfo = '''{\"parameters\":[{\"name\":\"Time\",\"type\":\"isotime\",\"units\":\"UTC\",\"fill\":null,\"length\":24}],\"startDate\":\"2020-01-01T00:00Z\",\"stopDate\":\"2020-01-02T00:00Z\"}'''\n";
    let raised = CONFIG.replace("limits = { max_elements = 10000 }", "limits = { max_elements = 100000 }");
    std::fs::write(&cfg, format!("{head}{raised}{added}")).unwrap();
    signal(pid, "-HUP");
    assert!(wait_for(|| get(&mut kept, "/hapi/catalog").contains("\"added\"")), "the reload did not show");
    let r = get(&mut kept, "/hapi/info?dataset=added");
    assert!(r.contains("\"code\":1200"), "{r}");
    // The raised limit: the same request now streams (HEAD: the status without the body).
    kept.write_all(format!("HEAD {two_days} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    let mut head = [0u8; 4096];
    let n = kept.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 200 OK; HAPI 1200"), "{head}");

    // A broken file and a change that needs a restart are refused; the server goes on.
    std::fs::write(&cfg, format!("{head}{raised}{added}\n[[dataset]]\nid = ")).unwrap();
    signal(pid, "-HUP");
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    assert!(wait_for(|| std::fs::read_to_string(&log).unwrap().contains("reload refused")));
    std::fs::write(&cfg, format!("{}{raised}", head.replace(&port.to_string(), &other.to_string()))).unwrap();
    signal(pid, "-HUP");
    assert!(wait_for(|| std::fs::read_to_string(&log).unwrap().matches("reload refused").count() >= 2));
    let catalog = get(&mut kept, "/hapi/catalog");
    assert!(catalog.contains("\"added\""), "the good configuration stays: {catalog}");

    // SIGTERM: the process drains and exits cleanly.
    drop(kept);
    signal(pid, "-TERM");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}
