//! Bad input of every shape gets a HAPI error, never a crash or a 5xx.

use crate::support::TestServer;

/// A small deterministic generator (xorshift), so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const NAMES: &[&str] = &[
    "dataset",
    "id",
    "start",
    "stop",
    "time.min",
    "time.max",
    "parameters",
    "format",
    "include",
    "depth",
    "resolve_references",
    "x",
    "",
    "%00",
    "dataset%20",
    "DATASET",
];
const VALUES: &[&str] = &[
    "ds1",
    "2016-01-01",
    "2016-001T00:00Z",
    "2016-01-01T24:00Z",
    "2016-01-01T23:59:60Z",
    "9999-12-31",
    "0000-01-01",
    "-2016",
    "2016-02-30",
    "Bx,By",
    "Bz,Bx",
    ",",
    "Time",
    "csv",
    "binary",
    "json",
    "header",
    "all",
    "true",
    "maybe",
    "%FF%FE",
    "%",
    "%G1",
    "a+b",
    "\u{2603}",
    "2016-01-01T00:00:00.0000000001Z",
    "",
    "1e308",
    "%2C%2C",
    "&&&",
];
const PATHS: &[&str] =
    &["/hapi/data", "/hapi/info", "/hapi/catalog", "/hapi/about", "/hapi/capabilities", "/hapi"];

#[tokio::test]
async fn random_queries_never_crash_the_server() {
    let s = TestServer::fixture().await;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..400 {
        let path = rng.pick(PATHS);
        let n = rng.next() % 6;
        let mut q = String::new();
        for i in 0..n {
            if i > 0 {
                q.push('&');
            }
            q.push_str(rng.pick(NAMES));
            if !rng.next().is_multiple_of(5) {
                q.push('=');
                q.push_str(&rng.pick(VALUES).replace(' ', "%20"));
            }
        }
        let pq = format!("{path}?{q}");
        let r = crate::support::client().get(s.url(&pq)).send().await.unwrap();
        let status = r.status().as_u16();
        assert!(matches!(status, 200 | 400 | 404), "{pq}: {status}");
        let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body = r.bytes().await.unwrap();
        if status != 200 {
            assert_eq!(ct, "application/json", "{pq}");
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(v["status"]["code"].as_i64().unwrap() >= 1400, "{pq}");
        }
    }
    // Raw request lines a URL parser would refuse are answered, not fatal.
    for line in ["GET /hapi/info?dataset=%ZZ HTTP/1.1", "GET /hapi/data?dataset=ds1&start=\x7f HTTP/1.1"] {
        let (status, _, _) = s.raw(&format!("{line}\r\nHost: x\r\nConnection: close\r\n\r\n")).await;
        assert!(status.starts_with("HTTP/1.1 4"), "{line}: {status}");
    }
    let (st, _) = s.json("/hapi/about").await;
    assert_eq!(st, 200, "still serving");
}
