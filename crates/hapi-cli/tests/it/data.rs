//! A long range under tight limits equals, byte for byte, one request to a server with
//! the limits raised.

use crate::support::{DATASET, START, STOP, Server, get, hapi};

/// The single answer of the raised server, with its header's `maxRequestDuration`
/// replaced by the limited server's (the only byte a header shows of the limits).
pub async fn expected(limited: &Server, raised: &Server, query: &str) -> Vec<u8> {
    let (st, body) = get(&format!("{}/data?dataset={DATASET}&{query}", raised.hapi()), None).await;
    assert_eq!(st, 200);
    let duration = |s: &Server| {
        let s = s.hapi();
        async move {
            let (_, info) = get(&format!("{s}/info?dataset={DATASET}"), None).await;
            let v: serde_json::Value = serde_json::from_slice(&info).unwrap();
            format!("\"maxRequestDuration\":\"{}\"", v["maxRequestDuration"].as_str().unwrap())
        }
    };
    let (lim, big) = (duration(limited).await, duration(raised).await);
    assert_ne!(lim, big, "the two servers have different limits");
    let Some(at) = body.windows(big.len()).position(|w| w == big.as_bytes()) else { return body };
    [&body[..at], lim.as_bytes(), &body[at + big.len()..]].concat()
}

pub async fn pair() -> (Server, Server) {
    (Server::start("mode = \"open\"", 10_000).await, Server::start("mode = \"open\"", 1_000_000_000).await)
}

fn pieces(stderr: &str) -> usize {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("hapi: ")?.split_once(" piece(s) of at most")?.0.parse().ok())
        .unwrap_or_else(|| panic!("no plan line in {stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_range_equals_one_unlimited_request() {
    let (limited, raised) = pair().await;
    let range = format!("start={START}&stop={STOP}");
    for (format, header, params) in [
        ("csv", false, None),
        ("binary", false, None),
        ("csv", true, None),
        ("binary", true, Some("x,v")),
        ("json", false, None),
        ("json", false, Some("s")),
    ] {
        let mut q = format!("{range}&format={format}");
        let mut args =
            vec!["data", DATASET, "--start", START, "--stop", STOP, "--format", format, "-v", "-q"];
        if header {
            q.push_str("&include=header");
            args.push("--include-header");
        }
        if let Some(p) = params {
            q.push_str(&format!("&parameters={p}"));
            args.extend(["--parameters", p]);
        }
        let want = expected(&limited, &raised, &q).await;
        let server = limited.hapi();
        args.extend(["--server", &server]);
        let r = hapi(&args, &[]).await;
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
        assert!(pieces(&r.stderr) >= 20, "{}", r.stderr);
        assert!(!r.stderr.contains("halved"), "maxRequestDuration pieces fit: {}", r.stderr);
        assert_eq!(r.stdout.len(), want.len(), "{format} header={header} {params:?}");
        assert!(r.stdout == want, "{format} header={header} {params:?}: bytes differ");
        // One header at most, and json stays one document.
        let headers = r.stdout.split(|&b| b == b'\n').filter(|l| l.starts_with(b"#{")).count();
        assert_eq!(headers, usize::from(header));
        if format == "json" {
            let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
            assert_eq!(v["data"].as_array().unwrap().len() as u64, crate::support::N);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_records_in_range_is_the_single_answer_too() {
    let (limited, raised) = pair().await;
    let (a, b) = ("2024-01-01T23:00Z", "2024-01-02T00:00Z");
    let server = limited.hapi();
    for (format, header) in [("csv", false), ("csv", true), ("binary", true), ("json", false)] {
        let mut q = format!("start={a}&stop={b}&format={format}");
        let mut args =
            vec!["data", DATASET, "--start", a, "--stop", b, "--format", format, "--server", &server];
        if header {
            q.push_str("&include=header");
            args.push("--include-header");
        }
        let want = expected(&limited, &raised, &q).await;
        let r = hapi(&args, &[]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stdout == want,
            "{format} {header}: {:?} vs {:?}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&want)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_piece_refused_with_1408_is_halved() {
    // No maxRequestDuration (no cadence): the first request is the whole range, refused.
    let raised = Server::start("mode = \"open\"", 1_000_000_000).await;
    let info_without = crate::support::INFO.replace(",\"cadence\":\"PT1S\"", "");
    assert_ne!(info_without, crate::support::INFO);
    let s = Server::start_with_info("mode = \"open\"", 10_000, &info_without).await;
    let r = hapi(
        &["data", DATASET, "--start", START, "--stop", "2024-01-01T06:00Z", "--server", &s.hapi(), "-v"],
        &[],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("refused with 1408, halved"), "{}", r.stderr);
    let (_, want) =
        get(&format!("{}/data?dataset={DATASET}&start={START}&stop=2024-01-01T06:00Z", raised.hapi()), None)
            .await;
    assert!(r.stdout == want, "halved pieces join to the single answer");
}

/// Runs `hapi args` on a pseudo-terminal (util-linux `script`), returning everything
/// the terminal showed; `None` without `script`.
async fn on_a_terminal(args: &[&str]) -> Option<(i32, String)> {
    let script = std::path::Path::new("/usr/bin/script");
    if !script.exists() {
        eprintln!("skipped: no /usr/bin/script (util-linux) to make a terminal");
        return None;
    }
    let line = std::iter::once(env!("CARGO_BIN_EXE_hapi"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(script)
            .args(["-q", "-e", "-c", &line, "/dev/null"])
            .env("HAPI_CONFIG", "/nonexistent/hapi-test-profiles.toml")
            .env("COLUMNS", "100")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    Some((out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_shows_progress_unless_quiet_and_a_pipe_never_does() {
    let limited = Server::start("mode = \"open\"", 10_000).await;
    let server = limited.hapi();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let out = out.to_str().unwrap();
    let args = ["data", DATASET, "--start", START, "--stop", STOP, "--server", &server, "-o", out];
    let Some((code, shown)) = on_a_terminal(&args).await else { return };
    assert_eq!(code, 0, "{shown}");
    let records = format!("{} records", crate::support::N);
    assert!(shown.contains("ETA") && shown.contains(&records) && shown.contains("MB/s"), "{shown}");
    assert!(shown.contains("100%"), "the bar reaches the end: {shown}");

    let quiet: Vec<&str> = args.iter().copied().chain(["-q"]).collect();
    let (code, shown) = on_a_terminal(&quiet).await.unwrap();
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.contains("ETA") && !shown.contains("records"), "-q draws nothing: {shown}");

    let piped = hapi(&args, &[]).await;
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert!(!piped.stderr.contains("ETA") && !piped.stderr.contains('\u{1b}'), "{}", piped.stderr);
}
