//! The `hapi` source: datasets re-served from an upstream HAPI server (one of our
//! own, sometimes behind a front that injects faults).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::support::{CONFIG, KINDS_CSV, TestServer, client, code, ds1_csv};

/// Requests that must give the same bytes from the upstream and through us.
const SAME: [&str; 8] = [
    "/hapi/info?dataset=ds1",
    "/hapi/info?dataset=ds1&parameters=Bz",
    "/hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-01T06:00Z",
    "/hapi/data?dataset=ds1&start=2016-01-01T23:00Z&stop=2016-01-02T01:00Z&parameters=By&format=binary",
    "/hapi/data?dataset=ds1&start=2016-01-01T10:00Z&stop=2016-01-01T10:30Z&format=json",
    "/hapi/data?dataset=ds1&start=2016-01-01T10:00Z&stop=2016-01-01T10:30Z&include=header&format=binary",
    "/hapi/data?dataset=all/kinds%2Btypes:%CE%B1%E2%98%83&start=2020-01-01T00:00Z&stop=2020-01-01T04:00Z",
    "/hapi/data?dataset=all/kinds%2Btypes:%CE%B1%E2%98%83&start=2020-01-01T00:00Z&stop=2020-01-01T04:00Z&format=binary&parameters=s,m",
];

/// The fixture without ds1's own limit, so that one request can hold all of it.
async fn unlimited() -> TestServer {
    let config = CONFIG.replace("limits = { max_elements = 10000 }", "");
    TestServer::start(&config, &[("ds1", &ds1_csv()), ("all/kinds+types:α☃", KINDS_CSV)], None).await
}

async fn body(s: &TestServer, pq: &str) -> (u16, Vec<u8>) {
    let r = s.get(pq).await;
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// A body as the JSON of its header (or the whole body, for JSON) and the bytes of its
/// records: our info keeps the upstream's keys and values, not their order.
fn parts(body: &[u8]) -> (Option<Value>, Vec<u8>) {
    if body.first() == Some(&b'{') {
        return (Some(serde_json::from_slice(body).expect("JSON")), Vec::new());
    }
    let mut header = String::new();
    let mut rest = body;
    while rest.first() == Some(&b'#') {
        let nl = rest.iter().position(|&b| b == b'\n').expect("a whole header line");
        header.push_str(std::str::from_utf8(&rest[1..nl]).unwrap());
        rest = &rest[nl + 1..];
    }
    ((!header.is_empty()).then(|| serde_json::from_str(&header).unwrap()), rest.to_vec())
}

#[tokio::test]
async fn a_reserved_dataset_answers_as_its_upstream() {
    let proxy = TestServer::reserving(TestServer::fixture().await, CONFIG).await;
    let upstream = proxy._upstream.as_ref().unwrap();
    for pq in SAME {
        let (a, b) = (body(upstream, pq).await, body(&proxy, pq).await);
        assert_eq!(a.0, 200, "{pq}: {}", String::from_utf8_lossy(&a.1));
        assert_eq!(a.0, b.0, "{pq}");
        assert!(!a.1.is_empty(), "{pq}: the upstream has records there");
        let (a, b) = (parts(&a.1), parts(&b.1));
        assert_eq!(a.0, b.0, "{pq}: the headers differ");
        assert!(a.1 == b.1, "{pq}: the records differ");
    }
}

/// A dataset of a whole catalog under a prefix, and one with its own info and id.
#[tokio::test]
async fn a_whole_catalog_under_a_prefix_and_a_renamed_dataset_with_its_own_info() {
    let upstream = unlimited().await;
    let config = format!(
        r#"
[auth]
mode = "open"

[[dataset]]
id = "mag"
title = "Renamed"
source = {{ kind = "hapi", upstream = "up", dataset = "ds1" }}
info = '''{{"parameters":[
  {{"name":"Time","type":"isotime","units":"UTC","fill":null,"length":24}},
  {{"name":"Bx","type":"double","units":"nT","fill":"-1e31"}},
  {{"name":"By","type":"double","units":"nT","fill":"-1e31"}},
  {{"name":"Bz","type":"double","units":"nT","fill":"-1e31"}}],
  "cadence":"PT1M"}}'''

[[upstream]]
name = "up"
url = "{}"
catalog = true
id_prefix = "up/"
"#,
        upstream.url("/hapi")
    );
    let proxy = TestServer::start(&config, &[], None).await;
    let (_, catalog) = proxy.json("/hapi/catalog").await;
    let ids: Vec<&str> =
        catalog["catalog"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["mag", "up/ds1", "up/all/kinds+types:α☃"]);
    assert_eq!(catalog["catalog"][1]["title"], "Fixture ds1", "the upstream's title");

    let range = "start=2016-01-01T00:00Z&stop=2016-01-03T00:00Z";
    let (_, want) = body(&upstream, &format!("/hapi/data?dataset=ds1&{range}")).await;
    for id in ["mag", "up/ds1"] {
        let (st, got) = body(&proxy, &format!("/hapi/data?dataset={id}&{range}")).await;
        assert_eq!(st, 200);
        assert!(
            got == want,
            "{id}: not the upstream's records: {} vs {} bytes\n{}",
            got.len(),
            want.len(),
            String::from_utf8_lossy(&got[..got.len().min(300)])
        );
    }
    // The configured info has no dates: they are the upstream's.
    let (_, info) = proxy.json("/hapi/info?dataset=mag").await;
    let (_, theirs) = upstream.json("/hapi/info?dataset=ds1").await;
    assert_eq!((&info["startDate"], &info["stopDate"]), (&theirs["startDate"], &theirs["stopDate"]));
}

/// What the front in front of the upstream does.
#[derive(Default)]
struct Faults {
    /// Answer 1408 for `/data` spans longer than this many hours.
    max_hours: Option<i64>,
    /// Demand a bearer token; one is good for this many `/data` requests.
    token_uses: Option<usize>,
    /// The token in force and its uses left.
    token: Mutex<(String, usize)>,
    tokens_issued: AtomicUsize,
    data_requests: AtomicUsize,
    /// Break the connection after this many bytes of each `/data` body.
    cut_after: Option<usize>,
    /// Answer `/data` with this instead.
    replace: Option<(u16, &'static str, &'static str)>,
    /// Wait this long before answering `/data`.
    delay: Option<std::time::Duration>,
    /// Answer `/info` with this.
    info: Option<&'static str>,
    /// Answer `/catalog` with this.
    catalog: Option<&'static str>,
    /// Answer `/info` with HTTP 500 while set.
    info_down: std::sync::atomic::AtomicBool,
}

struct Front {
    upstream: String,
    faults: Faults,
}

/// A server on 127.0.0.1 in front of `upstream` that injects `faults`; its base URL.
async fn front(upstream: &TestServer, faults: Faults) -> (String, Arc<Front>) {
    let front = Arc::new(Front { upstream: upstream.url(""), faults });
    let app = axum::Router::new().fallback(forward).with_state(front.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), front)
}

fn hapi_error(http: u16, code: u16, message: &str) -> Response {
    let body = json!({"HAPI": "3.3", "status": {"code": code, "message": message}}).to_string();
    (StatusCode::from_u16(http).unwrap(), [("content-type", "application/json")], body).into_response()
}

async fn forward(State(front): State<Arc<Front>>, request: Request) -> Response {
    let f = &front.faults;
    let pq = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    if pq == "/token" {
        let n = f.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("token-{n}");
        *f.token.lock().unwrap() = (token.clone(), f.token_uses.unwrap_or(0));
        let body = json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}).to_string();
        return ([("content-type", "application/json")], body).into_response();
    }
    let data = pq.starts_with("/hapi/data");
    if let Some(catalog) = f.catalog.filter(|_| pq.starts_with("/hapi/catalog")) {
        return ([("content-type", "application/json")], catalog).into_response();
    }
    if f.info_down.load(Ordering::SeqCst) && pq.starts_with("/hapi/info") {
        return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
    }
    if let Some(info) = f.info.filter(|_| pq.starts_with("/hapi/info")) {
        return ([("content-type", "application/json")], info).into_response();
    }
    if let Some(_uses) = f.token_uses.filter(|_| pq.starts_with("/hapi/")) {
        let given =
            request.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let mut t = f.token.lock().unwrap();
        if given != format!("Bearer {}", t.0) || (data && t.1 == 0) {
            return (StatusCode::UNAUTHORIZED, "expired").into_response();
        }
        if data {
            t.1 -= 1;
        }
    }
    if data {
        f.data_requests.fetch_add(1, Ordering::SeqCst);
        if let Some(d) = f.delay {
            tokio::time::sleep(d).await;
        }
        if let Some((status, content_type, body)) = f.replace {
            return (StatusCode::from_u16(status).unwrap(), [("content-type", content_type)], body)
                .into_response();
        }
        if let Some(h) = f.max_hours {
            let q: std::collections::HashMap<String, String> =
                hapi_core::percent::form_pairs(pq.split_once('?').unwrap().1).unwrap().into_iter().collect();
            let t = |k: &str| hapi_core::time::parse(&q[k]).unwrap();
            if t("stop") - t("start") > h * 3_600_000_000_000 {
                return hapi_error(400, 1408, "Bad request - too much time or data requested");
            }
        }
    }
    let r = client().get(format!("{}{pq}", front.upstream)).send().await.unwrap();
    let status = r.status();
    let content_type = r.headers().get("content-type").cloned();
    let mut bytes = r.bytes().await.unwrap().to_vec();
    if pq.starts_with("/hapi/info") {
        // Ours publishes maxRequestDuration; without it the proxy must find the limit by 1408.
        let mut v: Value = serde_json::from_slice(&bytes).unwrap();
        v.as_object_mut().unwrap().remove("maxRequestDuration");
        bytes = v.to_string().into_bytes();
    }
    let mut response = if let Some(cut) = f.cut_after.filter(|&c| data && c < bytes.len()) {
        let head = bytes[..cut].to_vec();
        let stream = futures::stream::iter([
            Ok(bytes::Bytes::from(head)),
            Err(std::io::Error::other("the front cuts the connection")),
        ]);
        Response::new(Body::from_stream(stream))
    } else {
        Response::new(Body::from(bytes))
    };
    *response.status_mut() = StatusCode::from_u16(status.as_u16()).unwrap();
    if let Some(ct) = content_type {
        response.headers_mut().insert("content-type", ct);
    }
    response
}

/// `config_text` re-serving ds1 from the front at `url`.
fn through(url: &str, extra: &str) -> String {
    format!(
        r#"
[auth]
mode = "open"

[limits]
max_elements = 10000000

[[dataset]]
id = "ds1"
source = {{ kind = "hapi", upstream = "up" }}

[[upstream]]
name = "up"
url = "{url}/hapi"
timeout = 2
{extra}
"#
    )
}

const WHOLE: &str = "/hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-03T00:00Z";

#[tokio::test]
async fn an_upstream_limit_is_met_by_halving_pieces_and_an_expired_token_is_renewed() {
    let upstream = unlimited().await;
    let (_, want) = body(&upstream, WHOLE).await;
    let faults = Faults { max_hours: Some(5), token_uses: Some(3), ..Default::default() };
    let (url, front) = front(&upstream, faults).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "s3cret\n").unwrap();
    let extra = format!(
        "token_url = \"{url}/token\"\nclient_id = \"proxy\"\nclient_secret_file = {:?}",
        dir.path().join("secret").display().to_string()
    );
    let proxy = TestServer::start(&through(&url, &extra), &[], None).await;
    for format in ["csv", "binary"] {
        let (_, want) = body(&upstream, &format!("{WHOLE}&format={format}")).await;
        let (st, got) = body(&proxy, &format!("{WHOLE}&format={format}")).await;
        assert_eq!(st, 200);
        assert!(got == want, "{format}: the pieces do not add up to the upstream's answer");
    }
    let (_, got) = body(&proxy, WHOLE).await;
    assert!(got == want);
    // 48 h in pieces of at most 5 h: at least 10 each time, and tokens renewed on the way.
    let requests = front.faults.data_requests.load(Ordering::SeqCst);
    assert!(requests >= 30, "{requests} upstream requests");
    // Each token serves its 3 requests, then its 401 gets the next one: kept, not re-fetched.
    let tokens = front.faults.tokens_issued.load(Ordering::SeqCst);
    assert!((requests / 3..=requests / 3 + 2).contains(&tokens), "{tokens} tokens for {requests} requests");
}

#[tokio::test]
async fn upstream_failures_are_1501_and_its_refusals_keep_their_code() {
    let upstream = TestServer::fixture().await;
    let cases: Vec<(&str, Faults, u16)> = vec![
        ("a cut connection", Faults { cut_after: Some(1000), ..Default::default() }, 1501),
        (
            "a slow upstream",
            Faults { delay: Some(std::time::Duration::from_secs(4)), ..Default::default() },
            1501,
        ),
        ("an HTTP 500", Faults { replace: Some((500, "text/plain", "boom")), ..Default::default() }, 1501),
        (
            "JSON where data was asked",
            Faults { replace: Some((200, "application/json", "{\"a\":1}\n")), ..Default::default() },
            1501,
        ),
        (
            "a header that lies",
            Faults {
                replace: Some((
                    200,
                    "text/csv",
                    "#{\"parameters\":[{\"name\":\"Time\",\"type\":\"isotime\",\"length\":24},{\"name\":\"Q\",\"type\":\"double\"}]}\n2016-01-01T00:00:00.000Z,1\n",
                )),
                ..Default::default()
            },
            1501,
        ),
        (
            "a 1402 refusal",
            Faults {
                replace: Some((
                    400,
                    "application/json",
                    "{\"HAPI\":\"3.3\",\"status\":{\"code\":1402,\"message\":\"Bad request - error in start time\"}}",
                )),
                ..Default::default()
            },
            1402,
        ),
        (
            "no records as a 404 with 1201",
            Faults {
                replace: Some((
                    404,
                    "application/json",
                    "{\"HAPI\":\"3.3\",\"status\":{\"code\":1201,\"message\":\"OK - no data\"}}",
                )),
                ..Default::default()
            },
            1201,
        ),
    ];
    for (what, faults, want) in cases {
        let (url, _front) = front(&upstream, faults).await;
        let proxy = TestServer::start(&through(&url, ""), &[], None).await;
        let r = proxy.get(WHOLE).await;
        let status = r.status().as_u16();
        let bytes = r.bytes().await;
        match bytes {
            Ok(b) if want == 1201 => assert_eq!((status, b.len()), (200, 0), "{what}"),
            // Refused before the first byte: a HAPI error document.
            Ok(b) if status != 200 => {
                let v: Value = serde_json::from_slice(&b)
                    .unwrap_or_else(|_| panic!("{what}: {}", String::from_utf8_lossy(&b)));
                assert_eq!(code(&v), i64::from(want), "{what}: {v}");
            }
            // After it (the cut): the stream is aborted, never ended as if whole.
            other => assert!(other.is_err(), "{what}: answered {status} as if complete"),
        }
    }
}

#[tokio::test]
async fn an_upstream_that_is_down_is_1501_or_a_start_up_error_naming_the_dataset() {
    // A port nobody listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let url = format!("http://{closed}");
    let dir = tempfile::tempdir().unwrap();
    let overrides =
        hapi_server::config::Overrides { data_dir: Some(dir.path().join("data")), ..Default::default() };
    let config =
        hapi_server::config::load(&through(&url, ""), std::path::Path::new("."), &overrides).unwrap();
    let store: Arc<dyn hapi_store::Store> =
        Arc::new(hapi_store::SqliteStore::open(&config.data_dir).unwrap());
    let e = hapi_server::App::build(&config, store).await.expect_err("its info cannot be read");
    let e = format!("{e:#}");
    assert!(e.contains("dataset \"ds1\"") && e.contains(&url), "{e}");

    // With its own info the dataset is served, and answers 1501 until the upstream is back.
    let config = CONFIG.replace(
        "title = \"Fixture ds1\"",
        "title = \"Fixture ds1\"\nsource = { kind = \"hapi\", upstream = \"up\" }",
    ) + &format!("\n[[upstream]]\nname = \"up\"\nurl = \"{url}/hapi\"\ntimeout = 1\n");
    let proxy = TestServer::start(&config, &[], None).await;
    let (st, v) = proxy.json("/hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-01T01:00Z").await;
    assert_eq!((st, code(&v)), (500, 1501), "{v}");
}

#[tokio::test]
async fn invalid_upstream_metadata_fails_the_start_naming_the_dataset() {
    let upstream = TestServer::fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let overrides =
        hapi_server::config::Overrides { data_dir: Some(dir.path().join("data")), ..Default::default() };
    let build = |text: String| {
        let config = hapi_server::config::load(&text, std::path::Path::new("."), &overrides).unwrap();
        async move {
            let store: Arc<dyn hapi_store::Store> =
                Arc::new(hapi_store::SqliteStore::open(&config.data_dir).unwrap());
            format!("{:#}", hapi_server::App::build(&config, store).await.expect_err("the start must fail"))
        }
    };
    // An info without the time parameter's type.
    let bad = Faults {
        info: Some(r#"{"HAPI":"3.3","status":{"code":1200,"message":"OK"},"parameters":[{"name":"Time"}]}"#),
        ..Default::default()
    };
    let (url, _front) = front(&upstream, bad).await;
    let e = build(through(&url, "")).await;
    assert!(e.contains("dataset \"ds1\"") && e.contains("not valid HAPI"), "{e}");

    // A dataset the upstream does not have: its 1406, named.
    let (url, _front) = front(&upstream, Faults::default()).await;
    let e =
        build(through(&url, "").replace("upstream = \"up\" }", "upstream = \"up\", dataset = \"nope\" }"))
            .await;
    assert!(e.contains("dataset \"ds1\"") && e.contains("1406"), "{e}");

    // A config naming an upstream that is not configured.
    let e = hapi_server::config::load(
        &through(&url, "").replace("upstream = \"up\" }", "upstream = \"other\" }"),
        std::path::Path::new("."),
        &overrides,
    )
    .expect_err("unknown upstream");
    assert!(format!("{e:#}").contains("no [[upstream]] is named \"other\""), "{e:#}");
}

#[tokio::test]
async fn a_catalog_id_we_could_not_serve_is_left_out_and_the_others_are_served() {
    let upstream = TestServer::fixture().await;
    let catalog =
        r#"{"HAPI":"3.3","status":{"code":1200,"message":"OK"},"catalog":[{"id":"a,b"},{"id":"ds1"}]}"#;
    // Every id has a valid info there, so only the id decides.
    let info = r#"{"HAPI":"3.3","status":{"code":1200,"message":"OK"},"parameters":[{"name":"Time","type":"isotime","units":"UTC","fill":null,"length":24}],"startDate":"2016-01-01T00:00:00.000Z","stopDate":"2016-01-02T00:00:00.000Z"}"#;
    let (url, _front) =
        front(&upstream, Faults { catalog: Some(catalog), info: Some(info), ..Default::default() }).await;
    let config = format!(
        "[auth]\nmode = \"open\"\n[[upstream]]\nname = \"up\"\nurl = \"{url}/hapi\"\ncatalog = true\n"
    );
    let proxy = TestServer::start(&config, &[], None).await;
    let (_, cat) = proxy.json("/hapi/catalog").await;
    assert_eq!(cat["catalog"], json!([{"id": "ds1", "title": "ds1"}]), "a comma would split dataset=");
}

/// A dataset with its own info starts while its upstream cannot give the dates; they
/// come as soon as it can, not a `refresh` later.
#[tokio::test]
async fn dates_the_upstream_could_not_give_at_start_up_come_when_it_can() {
    let upstream = TestServer::fixture().await;
    let faults = Faults { info_down: true.into(), ..Default::default() };
    let (url, front) = front(&upstream, faults).await;
    let info = r#"{"parameters":[
  {"name":"Time","type":"isotime","units":"UTC","fill":null,"length":24},
  {"name":"Bx","type":"double","units":"nT","fill":"-1e31"},
  {"name":"By","type":"double","units":"nT","fill":"-1e31"},
  {"name":"Bz","type":"double","units":"nT","fill":"-1e31"}],"cadence":"PT1M"}"#;
    let config = format!(
        "[auth]\nmode = \"open\"\n[[dataset]]\nid = \"ds1\"\ninfo = '''{info}'''\nsource = {{ kind = \"hapi\", upstream = \"up\" }}\n[[upstream]]\nname = \"up\"\nurl = \"{url}/hapi\"\nrefresh = 300\n"
    );
    let proxy = TestServer::start(&config, &[], None).await;
    let (_, before) = proxy.json("/hapi/info?dataset=ds1").await;
    assert_ne!(before["startDate"], "2016-01-01T00:00:00.000Z", "no dates yet: {before}");
    front.faults.info_down.store(false, Ordering::SeqCst);
    let (_, theirs) = upstream.json("/hapi/info?dataset=ds1").await;
    for _ in 0..50 {
        let (_, now) = proxy.json("/hapi/info?dataset=ds1").await;
        if now["startDate"] == theirs["startDate"] && now["stopDate"] == theirs["stopDate"] {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the upstream's dates did not arrive within 5 s");
}
