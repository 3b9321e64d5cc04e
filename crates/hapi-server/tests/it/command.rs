//! The `command` source: a reader program's csv answers as the embedded store does, cut
//! to the request; a program that hangs, prints garbage or fails is a 1501 before the
//! first byte; and it is stopped when the client goes away.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{CONFIG, TestServer, code, ds1_csv};

/// An executable script `name` in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The fixture with ds1 read by `program` (given `args`, `timeout` seconds).
fn command_config(program: &Path, args: &[&str], timeout: u64, limits: &str) -> String {
    CONFIG.replace(
        "limits = { max_elements = 10000 }",
        &format!(
            "limits = {limits}\nsource = {{ kind = \"command\", program = {:?}, args = {args:?}, timeout = {timeout} }}",
            program.display().to_string()
        ),
    )
}

async fn answer(s: &TestServer, pq: &str) -> (u16, Vec<u8>) {
    let r = s.get(pq).await;
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_reader_that_prints_everything_is_cut_to_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ds1.csv");
    std::fs::write(&csv, ds1_csv()).unwrap();
    let args_log = dir.path().join("args");
    // It ignores the range and the parameters: the server cuts both.
    let reader = script(
        dir.path(),
        "reader",
        &format!("#!/bin/sh\necho \"$@\" >> {}\ncat {}\n", args_log.display(), csv.display()),
    );
    let config = command_config(
        &reader,
        &["${id}", "${parameters}", "${start}", "${stop}", "${format}"],
        10,
        "{ max_elements = 10000 }",
    );
    let s = TestServer::start(&config, &[], None).await;
    let store = TestServer::fixture().await;
    for format in ["csv", "binary", "json"] {
        for range in [
            "start=2016-01-01T00:00Z&stop=2016-01-01T06:00Z",
            "start=2016-01-01T23:59:30Z&stop=2016-01-02T00:10Z&parameters=Bz",
            "start=2016-01-01T12:00:00.001Z&stop=2016-01-01T13:00Z&parameters=Bx,Bz",
            "start=2016-01-10T00:00Z&stop=2016-01-11T00:00Z",
            "start=2016-01-01T00:00Z&stop=2016-01-03T00:00Z",
        ] {
            let q = format!("/hapi/data?dataset=ds1&{range}&format={format}");
            let (want, got) = (answer(&store, &q).await, answer(&s, &q).await);
            assert_eq!(got.0, want.0, "{q}");
            if format == "json" {
                // A program has no extent, so no sample range is published; the rest is the same.
                let strip = |b: &[u8]| {
                    let mut v: serde_json::Value = serde_json::from_slice(b).unwrap();
                    let m = v.as_object_mut().unwrap();
                    m.remove("sampleStartDate");
                    m.remove("sampleStopDate");
                    v
                };
                assert_eq!(strip(&got.1), strip(&want.1), "{q}");
            } else {
                assert!(got.1 == want.1, "{q}: {}", String::from_utf8_lossy(&got.1));
            }
        }
    }
    let args = std::fs::read_to_string(&args_log).unwrap();
    assert!(
        args.lines().any(|l| l == "ds1 Bz 2016-01-01T23:59:30.000000000Z 2016-01-02T00:10:00.000000000Z csv"),
        "{args}"
    );
}

#[tokio::test]
async fn a_reader_that_fails_is_1501_before_the_first_byte() {
    let dir = tempfile::tempdir().unwrap();
    let q = "/hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-01T01:00Z";
    for (name, body) in [
        ("hangs", "#!/bin/sh\necho $$ > pid\nexec sleep 30\n"),
        ("garbage", "#!/bin/sh\necho 'this is not,a record'\n"),
        ("exits", "#!/bin/sh\necho 2016-01-01T00:00:00.000Z,1,2,3\necho broken >&2\nexit 3\n"),
        (
            "unordered",
            "#!/bin/sh\necho 2016-01-01T00:01:00.000Z,1,2,3\necho 2016-01-01T00:00:30.000Z,1,2,3\n",
        ),
    ] {
        let reader = script(
            dir.path(),
            name,
            &body.replace("> pid", &format!("> {}", dir.path().join("pid").display())),
        );
        let s =
            TestServer::start(&command_config(&reader, &[], 1, "{ max_elements = 10000 }"), &[], None).await;
        let t = Instant::now();
        let (status, v) = s.json(q).await;
        assert_eq!((status, code(&v)), (500, 1501), "{name}: {v}");
        assert!(t.elapsed() < Duration::from_secs(5), "{name}: took {:?}", t.elapsed());
        assert!(!v.to_string().contains(name), "{name}: nothing of the program reaches the client: {v}");
    }
    // The hung one was killed at its timeout.
    let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
    assert!(gone(pid.trim()).await, "the hung reader still runs");
}

/// Whether process `pid` has ended (within a few seconds).
async fn gone(pid: &str) -> bool {
    for _ in 0..50 {
        let alive = std::process::Command::new("kill")
            .args(["-0", pid])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        if !alive {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_reader_stops_when_the_client_goes_away() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("pid");
    // Records a minute apart, forever.
    let reader = script(
        dir.path(),
        "forever",
        &format!(
            "#!/usr/bin/env python3\nimport os, sys, datetime\nopen({:?}, 'w').write(str(os.getpid()))\nt = datetime.datetime(2016, 1, 1)\nwhile True:\n    sys.stdout.write(t.strftime('%Y-%m-%dT%H:%M:%S.000Z') + ',1,2,3\\n')\n    t += datetime.timedelta(minutes=1)\n",
            pid.display().to_string()
        ),
    );
    let s = TestServer::start(&command_config(&reader, &[], 600, "{ max_elements = 1000000000 }"), &[], None)
        .await;
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-02-01T00:00Z HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = c.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let pid = std::fs::read_to_string(&pid).unwrap();
    drop(c);
    assert!(gone(pid.trim()).await, "the reader outlived its client");
}

#[test]
fn a_reader_that_is_not_executable_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    for (config, why) in [
        (command_config(&plain, &[], 10, "{ max_elements = 10 }"), "not an executable"),
        (
            command_config(Path::new("no-such-reader-program"), &[], 10, "{ max_elements = 10 }"),
            "not found in PATH",
        ),
        (command_config(Path::new("/bin/true"), &[], 0, "{ max_elements = 10 }"), "timeout"),
        (
            command_config(Path::new("/bin/true"), &[], 10, "{ max_elements = 10 }")
                .replace(r#""startDate":"2016-01-01T00:00:00.000Z","#, ""),
            "startDate and stopDate",
        ),
    ] {
        let e =
            hapi_server::config::load(&config, Path::new("."), &Default::default()).map(|_| ()).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains(why) && e.contains("ds1"), "{why}: {e}");
    }
}
