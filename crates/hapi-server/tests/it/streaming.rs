//! The three formats end to end, compression, and failures after the first byte.

use std::io::Read;
use std::sync::Arc;

use hapi_store::Store;
use hapi_store::testing::FailingStore;

use crate::support::{CONFIG, TestServer, client, ds1_csv};

/// The whole dataset: its `stopDate` follows the data, just after the last record.
const KINDS: &str =
    "/hapi/data?dataset=all/kinds%2Btypes:%CE%B1%E2%98%83&start=2020-01-01&stop=2020-01-01T03:00:00.001Z";

#[tokio::test]
async fn every_kind_in_csv_binary_and_json() {
    let s = TestServer::fixture().await;
    let (st, csv) = s.text(KINDS).await;
    assert_eq!(st, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[1],
        "2020-01-01T01:00:00.000Z,NaN,-1,\"a,b\",-1e31,0.25,-0.5,7,8,9,10,11,12,0001-01-01T00:00:00Z"
    );
    assert!(lines[2].contains(",\"q\"\"t\","), "{}", lines[2]);
    assert!(lines[3].contains(",αβγ,"), "{}", lines[3]);

    // binary: 24 + 8 + 4 + 8 + 24 + 24 + 20 = 112 bytes a record
    let bin = s.get(&format!("{KINDS}&format=binary")).await.bytes().await.unwrap();
    assert_eq!(bin.len(), 4 * 112);
    let rec = &bin[112..224];
    assert_eq!(&rec[24..32], &[0, 0, 0, 0, 0, 0, 0xF8, 0x7F], "canonical quiet NaN");
    assert_eq!(i32::from_le_bytes(rec[32..36].try_into().unwrap()), -1);
    assert_eq!(&rec[36..44], b"a,b\0\0\0\0\0");
    assert_eq!(f64::from_le_bytes(rec[44..52].try_into().unwrap()), -1e31);
    assert_eq!(&rec[92..112], b"0001-01-01T00:00:00Z");

    let (_, v) = s.json(&format!("{KINDS}&format=json")).await;
    assert_eq!(v["format"], "json");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys.last().unwrap().as_str(), "data", "data is the last key");
    let row = &v["data"][0];
    assert_eq!(row[0], "2020-01-01T00:00:00.000Z");
    assert_eq!(row[4], serde_json::json!([1.0, 2.0, 3.0]));
    assert_eq!(row[5], serde_json::json!([[1, 2, 3], [4, 5, 6]]), "nested to the depth of size");
    assert_eq!(v["data"][1][1], serde_json::Value::Null, "NaN is null in JSON");
    assert_eq!(v["data"][1][3], "a,b");

    // include=header: one '#' line with format, then the same records.
    let (_, with_header) = s.text(&format!("{KINDS}&include=header")).await;
    let (head, rest) = with_header.split_once('\n').unwrap();
    assert!(head.starts_with('#'));
    let h: serde_json::Value = serde_json::from_str(&head[1..]).unwrap();
    assert_eq!(h["format"], "csv");
    assert_eq!(h["status"]["code"], 1200);
    assert_eq!(rest, csv);
    let bin_h = s.get(&format!("{KINDS}&format=binary&include=header")).await.bytes().await.unwrap();
    let nl = bin_h.iter().position(|&b| b == b'\n').unwrap();
    assert_eq!(bin_h[0], b'#');
    assert_eq!(&bin_h[nl + 1..], &bin[..]);
}

#[tokio::test]
async fn gzip_and_zstd_when_asked() {
    let s = TestServer::fixture().await;
    let pq = "/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-02";
    let (_, plain) = s.text(pq).await;
    let r = client().get(s.url(pq)).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let gz = r.bytes().await.unwrap();
    assert!(gz.len() < plain.len() / 2);
    let mut out = String::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut out).unwrap();
    assert_eq!(out, plain);
    let r = client().get(s.url(pq)).header("accept-encoding", "zstd").send().await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "zstd");
    let z = r.bytes().await.unwrap();
    assert_eq!(zstd::decode_all(&z[..]).unwrap(), plain.as_bytes());
    let r = client().get(s.url("/hapi/catalog")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip", "metadata too");
}

fn failing_after(k: usize) -> crate::support::Wrap {
    Box::new(move |inner: Arc<dyn Store>| Arc::new(FailingStore::failing_after(inner, k)) as Arc<dyn Store>)
}

/// Many batches, so that the failure comes long after the status line.
fn big_config() -> String {
    CONFIG.replace("limits = { max_elements = 10000 }", "limits = { max_elements = 100000000 }")
}

#[tokio::test]
async fn failure_after_the_first_byte_aborts_the_connection() {
    let mut csv = ds1_csv();
    // Enough records for several store batches.
    for d in 3..20u32 {
        for i in 0..1440u32 {
            csv.push_str(&format!("2016-01-{d:02}T{:02}:{:02}:00.000Z,1,2,3\n", i / 60, i % 60));
        }
    }
    let s = TestServer::start(&big_config(), &[("ds1", &csv)], Some(failing_after(4))).await;
    let pq = "/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-20";
    for enc in ["identity", "gzip", "zstd"] {
        match client().get(s.url(pq)).header("accept-encoding", enc).send().await {
            Ok(r) => {
                assert_eq!(r.status(), 200, "{enc}: the status line was already sent");
                let body = r.bytes().await;
                assert!(body.is_err(), "{enc}: the body must end abnormally, never cleanly");
            }
            // The response was committed, but a compressor (or a loaded machine) may still
            // have held every byte when the abort came: the client then sees the
            // connection close before the status line. Abnormal either way, never clean.
            Err(e) => assert!(e.is_request() || e.is_body(), "{enc}: {e}"),
        }
    }
    // The raw view: no terminating zero-length chunk (read by hand: the connection may
    // close before a whole header block arrives).
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut conn,
        format!("GET {pq} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut conn, &mut raw).await;
    assert!(!raw.ends_with(b"0\r\n\r\n"), "no clean chunked end");
    assert!(!raw.windows(8).any(|w| w == b"\"status\""), "no JSON error appended to the data");

    // A failure on the first batch is still a clean JSON 1500.
    let s = TestServer::start(&big_config(), &[("ds1", &csv)], Some(failing_after(0))).await;
    let (st, v) = s.json(pq).await;
    assert_eq!((st, v["status"]["code"].as_i64()), (500, Some(1500)));
}

#[tokio::test]
async fn a_client_that_leaves_releases_the_scan() {
    let mut csv = ds1_csv();
    for d in 3..30u32 {
        for i in 0..1440u32 {
            csv.push_str(&format!("2016-01-{d:02}T{:02}:{:02}:00.000Z,1,2,3\n", i / 60, i % 60));
        }
    }
    let (probe_tx, probe_rx) = std::sync::mpsc::channel();
    let wrap: crate::support::Wrap = Box::new(move |inner: Arc<dyn Store>| {
        let f = FailingStore::new(inner);
        probe_tx.send(f.probe()).unwrap();
        Arc::new(f) as Arc<dyn Store>
    });
    let s = TestServer::start(&big_config(), &[("ds1", &csv)], Some(wrap)).await;
    let probe = probe_rx.recv().unwrap();
    let mut r =
        client().get(s.url("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-30")).send().await.unwrap();
    let _ = r.chunk().await.unwrap();
    assert_eq!(probe.live(), 1, "scan open while streaming");
    drop(r);
    for _ in 0..100 {
        if probe.live() == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the scan was not dropped after the client left");
}

#[tokio::test]
async fn subsets_match_the_full_response() {
    let s = TestServer::fixture().await;
    let base = KINDS;
    let (_, full) = s.text(base).await;
    let full: Vec<Vec<String>> = full.lines().map(split_csv).collect();
    let (_, info) = s.json("/hapi/info?dataset=all/kinds%2Btypes:%CE%B1%E2%98%83").await;
    let params = info["parameters"].as_array().unwrap();
    let mut col = 1;
    for p in &params[1..] {
        let width: usize =
            p["size"].as_array().map_or(1, |s| s.iter().map(|x| x.as_u64().unwrap() as usize).product());
        let name = p["name"].as_str().unwrap();
        let (_, one) = s.text(&format!("{base}&parameters={name}")).await;
        for (row, line) in one.lines().enumerate() {
            let f = split_csv(line);
            assert_eq!(f.len(), 1 + width);
            assert_eq!(f[0], full[row][0]);
            assert_eq!(&f[1..], &full[row][col..col + width], "{name}");
        }
        col += width;
    }
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}
