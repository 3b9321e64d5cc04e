//! Faults between the command and a real server: a busy server, a cut connection,
//! malformed answers, an unknown dataset. Each ends as specified, and a malformed
//! answer never becomes output.

use std::time::Instant;

use crate::data::{expected, pair};
use crate::support::{DATASET, Fault, Proxy, START, STOP, hapi};

const RANGE: &str = "start=2024-01-01T00:00Z&stop=2024-01-02T00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_twice_with_retry_after_then_data() {
    let (limited, raised) = pair().await;
    let proxy = Proxy::start(limited.addr, vec![Fault::Busy, Fault::Busy, Fault::Pass]).await;
    let t = Instant::now();
    let server = proxy.hapi();
    let r = hapi(
        &["data", DATASET, "--start", START, "--stop", STOP, "--server", &server, "--parallel", "1", "-v"],
        &[],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == expected(&limited, &raised, RANGE).await, "nothing duplicated or missing");
    assert_eq!(r.stderr.matches("HTTP 503, trying again in 1.0 s").count(), 2, "{}", r.stderr);
    assert!(t.elapsed().as_secs_f64() >= 2.0, "Retry-After: 1 was waited for twice");
    let f = proxy.faults();
    assert_eq!(&f[..3], &[Fault::Busy, Fault::Busy, Fault::Pass]);
    let seen = proxy.seen.lock().unwrap();
    assert_eq!(seen[0].1, seen[2].1, "the same piece was asked again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_in_a_piece_is_fetched_again() {
    let (limited, raised) = pair().await;
    for format in ["csv", "binary"] {
        let proxy = Proxy::start(limited.addr, vec![Fault::Pass, Fault::Cut, Fault::Pass]).await;
        let server = proxy.hapi();
        let r = hapi(
            &[
                "data",
                DATASET,
                "--start",
                START,
                "--stop",
                STOP,
                "--server",
                &server,
                "--format",
                format,
                "--parallel",
                "1",
                "-v",
            ],
            &[],
        )
        .await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        let want = expected(&limited, &raised, &format!("{RANGE}&format={format}")).await;
        assert!(r.stdout == want, "{format}: the cut piece is in the output once, whole");
        assert!(r.stderr.contains("the body ended before its"), "{}", r.stderr);
        let seen = proxy.seen.lock().unwrap();
        assert_eq!(seen[1].0, Fault::Cut);
        assert_eq!(seen[1].1, seen[2].1, "the cut piece was asked again, whole");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_fail_with_a_message_and_no_output() {
    let (limited, _raised) = pair().await;
    for (fault, format, code, words) in [
        (Fault::WrongType, "csv", 6, "a application/json answer where csv (text/csv) was asked"),
        (Fault::JsonBody, "csv", 6, "no data header"),
        (Fault::JsonBody, "binary", 6, "no data header"),
        (Fault::LyingHeader, "csv", 6, "parameters differ from /info"),
        (Fault::LyingHeader, "binary", 6, "parameters differ from /info"),
        (Fault::Truncated, "binary", 6, "not a whole number of"),
        (Fault::Truncated, "csv", 6, "does not end with a newline"),
        (Fault::Cut, "csv", 5, "no complete answer after 2 tries"),
    ] {
        let proxy = Proxy::start(limited.addr, vec![fault]).await;
        let server = proxy.hapi();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let out_s = out.to_str().unwrap();
        let r = hapi(
            &[
                "data",
                DATASET,
                "--start",
                START,
                "--stop",
                STOP,
                "--server",
                &server,
                "--format",
                format,
                "--retries",
                "1",
                "-o",
                out_s,
            ],
            &[],
        )
        .await;
        assert_eq!(r.code, code, "{fault:?} {format}: {}", r.stderr);
        assert!(r.stderr.contains(words), "{fault:?} {format}: {}", r.stderr);
        assert!(r.stderr.contains("--resume"), "says how to continue: {}", r.stderr);
        assert_eq!(
            std::fs::metadata(&out).unwrap().len(),
            0,
            "{fault:?}: nothing of a bad answer was written"
        );
        // The same through stdout: nothing written either.
        let r = hapi(
            &[
                "data",
                DATASET,
                "--start",
                START,
                "--stop",
                STOP,
                "--server",
                &server,
                "--format",
                format,
                "--retries",
                "1",
            ],
            &[],
        )
        .await;
        assert_eq!(r.code, code);
        assert!(r.stdout.is_empty(), "{fault:?} {format}: {} bytes on stdout", r.stdout.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_dataset_is_the_hapi_error() {
    let (limited, _raised) = pair().await;
    let server = limited.hapi();
    for args in [
        vec!["info", "nope", "--server", &server],
        vec!["data", "nope", "--start", START, "--stop", STOP, "--server", &server],
    ] {
        let r = hapi(&args, &[]).await;
        assert_eq!(r.code, 3, "{}", r.stderr);
        assert!(r.stderr.starts_with("hapi: HAPI error 1406: "), "{}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    // A bad time is ours to refuse, before any request.
    let r = hapi(&["data", DATASET, "--start", "2024-13-01", "--stop", STOP, "--server", &server], &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is not a HAPI time"), "{}", r.stderr);
    // Nothing listening: the cause.
    let r = hapi(&["catalog", "--server", "http://127.0.0.1:9/hapi", "--retries", "0"], &[]).await;
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("no complete answer after 1 tries"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_and_info_print_the_documents() {
    let (limited, _raised) = pair().await;
    let server = limited.hapi();
    let r = hapi(&["catalog", "--server", &server], &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["catalog"][0]["id"], DATASET);
    let r = hapi(&["info", DATASET, "--parameters", "x", "--server", &server], &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["parameters"].as_array().unwrap().len(), 2);
}
