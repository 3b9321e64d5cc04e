//! Operations (issue 6): metrics, request ids, conditional GET.

use std::collections::HashMap;

use crate::slow_clients::{WEEK, week_server};
use crate::support::{CONFIG, TestServer, audit_log, client};
use crate::view;

/// Every sample of `text` (the Prometheus text format) as (name, labels, value).
fn samples(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}').unwrap()),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        out.push((name.to_owned(), labels, value));
    }
    out
}

/// The sum of the samples of `name` whose labels include `want`.
fn value(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    samples(text)
        .into_iter()
        .filter(|(n, l, _)| n == name && want.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, _, v)| v)
        .sum()
}

async fn metrics(s: &TestServer) -> String {
    let (status, text) = s.text("/metrics").await;
    assert_eq!(status, 200, "{text}");
    text
}

#[tokio::test]
async fn metrics_count_requests_by_route_status_and_hapi_code() {
    let s = TestServer::fixture().await;
    let before = metrics(&s).await;
    let info = [("endpoint", "/hapi/info"), ("status", "200"), ("code", "1200")];
    let unknown = [("endpoint", "/hapi/info"), ("status", "404"), ("code", "1406")];
    for _ in 0..3 {
        assert_eq!(s.json("/hapi/info?dataset=ds1").await.0, 200);
    }
    assert_eq!(s.json("/hapi/info?dataset=secret-name-in-a-query").await.0, 404);
    let (status, body) =
        s.text("/hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-01T00:10Z").await;
    assert_eq!(status, 200);
    assert_eq!(s.json("/hapi/nowhere/at/all").await.0, 400);
    let after = metrics(&s).await;

    let delta = |name: &str, want: &[(&str, &str)]| value(&after, name, want) - value(&before, name, want);
    assert_eq!(delta("hapi_requests_total", &info), 3.0, "{after}");
    assert_eq!(delta("hapi_requests_total", &unknown), 1.0, "{after}");
    let data = [("endpoint", "/hapi/data"), ("status", "200"), ("code", "1200")];
    assert_eq!(delta("hapi_requests_total", &data), 1.0);
    assert_eq!(delta("hapi_requests_total", &[("endpoint", "unmatched"), ("code", "1400")]), 1.0);
    assert_eq!(delta("hapi_data_bytes_total", &[]), body.len() as f64);
    assert_eq!(delta("hapi_data_records_total", &[]), body.lines().count() as f64);
    assert_eq!(delta("hapi_request_duration_seconds_count", &[("endpoint", "/hapi/info")]), 4.0);
    assert!(delta("hapi_store_seconds_count", &[("op", "snapshot")]) >= 1.0, "{after}");
    assert!(value(&after, "hapi_connections_open", &[]) >= 1.0, "this request's connection: {after}");
    assert!(after.contains("# TYPE hapi_request_duration_seconds histogram"), "{after}");
    // Bounded labels: never a raw path or a query value.
    assert!(!after.contains("secret-name") && !after.contains("nowhere"), "{after}");
}

#[tokio::test]
async fn metrics_need_credentials_unless_public() {
    let builtin = CONFIG.replace("mode = \"open\"", "mode = \"builtin\"");
    let s = TestServer::start(&builtin, &[], None).await;
    assert_eq!(s.get("/metrics").await.status(), 401);
    let public = builtin
        .replace("[auth]", "[server]\nmetrics_path = \"/ops/metrics\"\nmetrics_public = true\n\n[auth]");
    let s = TestServer::start(&public, &[], None).await;
    assert_eq!(s.get("/metrics").await.status(), 401, "the old path is nothing special");
    let r = s.get("/ops/metrics").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(value(&text, "hapi_requests_total", &[("status", "401")]) >= 1.0, "{text}");

    // A path that would shadow or hide under another endpoint is refused at start-up.
    for bad in ["/hapi/metrics", "/auth/m", "metrics", "/m/", "/m?x", "/healthz"] {
        let text = CONFIG.replace("[auth]", &format!("[server]\nmetrics_path = {bad:?}\n\n[auth]"));
        let e = hapi_server::config::load(&text, std::path::Path::new("."), &Default::default()).unwrap_err();
        assert!(format!("{e:#}").contains("metrics_path"), "{bad}: {e:#}");
    }
}

#[tokio::test]
async fn stream_caps_count_as_rate_limited_and_every_answer_has_a_request_id() {
    let s = week_server("[auth]\nmode = \"open\"", "max_streams = 1").await;
    let big = format!("/hapi/data?dataset=big&{WEEK}");
    // Headers only: the stream stays open (and holds the one slot) while unread.
    let held = s.get(&big).await;
    assert_eq!(held.status(), 200, "{:?}", held.headers());
    let refused = s.get(&big).await;
    assert_eq!(refused.status(), 429);
    let ids: Vec<String> =
        [&held, &refused].iter().map(|r| r.headers()["x-request-id"].to_str().unwrap().to_owned()).collect();
    assert_ne!(ids[0], ids[1]);
    drop(held);
    let text = metrics(&s).await;
    assert_eq!(value(&text, "hapi_rate_limited_total", &[("reason", "streams_server")]), 1.0, "{text}");
}

#[tokio::test]
async fn request_ids_are_on_every_response_and_in_the_audit_line() {
    let log = audit_log();
    let s = TestServer::fixture().await;
    for path in
        ["/hapi/info?dataset=ds1", "/hapi/info?dataset=nope", "/hapi/nope", "/hapi/catalog/", "/healthz"]
    {
        let r = s.get(path).await;
        let id = r.headers().get("x-request-id").unwrap_or_else(|| panic!("{path}: no id"));
        assert_eq!(id.len(), 16, "{path}");
    }
    let builtin = CONFIG.replace("mode = \"open\"", "mode = \"builtin\"");
    let protected = TestServer::start(&builtin, &[], None).await;
    let r = protected.get("/hapi/catalog").await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("x-request-id"));
    let expose = r.headers()["access-control-expose-headers"].to_str().unwrap().to_owned();
    assert!(expose.contains("X-Request-Id"), "{expose}");

    // A proxy's id is kept when it is short and safe, replaced otherwise.
    let send = |id: &str| client().get(s.url("/hapi/capabilities")).header("x-request-id", id).send();
    let kept = send("edge-42.a_B").await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "edge-42.a_B");
    let forged = send("x\" status=200").await.unwrap();
    assert_ne!(forged.headers()["x-request-id"], "x\" status=200");
    let long = "a".repeat(65);
    assert_ne!(send(&long).await.unwrap().headers()["x-request-id"].to_str().unwrap(), long);

    let r = s.get("/hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-01T00:05Z").await;
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    r.bytes().await.unwrap();
    let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    let line = text.lines().find(|l| l.contains(&id)).unwrap_or_else(|| panic!("no audit line names {id}"));
    assert!(line.contains("endpoint=\"data\"") && line.contains(&format!("request_id=\"{id}\"")), "{line}");
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn metadata_revalidates_with_304_until_an_append() {
    let s = TestServer::fixture().await;
    let info = "/hapi/info?dataset=ds1";
    let r = s.get(info).await;
    let tag = header(&r, "etag").expect("an ETag");
    let modified = header(&r, "last-modified").expect("Last-Modified");
    assert!(header(&r, "vary").unwrap().contains("Authorization"));
    let again = |name: &'static str, value: String| {
        let url = s.url(info);
        async move {
            client().get(url).header(name, value).header("origin", "https://x.test").send().await.unwrap()
        }
    };
    let r = again("if-none-match", tag.clone()).await;
    assert_eq!(r.status(), 304);
    assert_eq!(header(&r, "etag").as_deref(), Some(tag.as_str()));
    assert_eq!(header(&r, "access-control-allow-origin").as_deref(), Some("*"), "CORS kept");
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(again("if-modified-since", modified).await.status(), 304);
    assert_eq!(again("if-none-match", "W/\"other\"".to_owned()).await.status(), 200);
    for path in ["/hapi/about", "/hapi/capabilities", "/hapi/catalog"] {
        let t = header(&s.get(path).await, "etag").unwrap();
        let r = client().get(s.url(path)).header("if-none-match", t).send().await.unwrap();
        assert_eq!(r.status(), 304, "{path}");
    }

    let info_ds = &s.state.datasets[0].spec.info;
    let more = "2016-01-05T00:00:00.000Z,1,2,3\n";
    hapi_server::ingest::ingest(s.store.as_ref(), info_ds, &mut std::io::Cursor::new(more)).unwrap();
    s.state.refresh().await.unwrap();
    let r = again("if-none-match", tag.clone()).await;
    assert_eq!(r.status(), 200, "the stopDate moved");
    assert_ne!(header(&r, "etag").unwrap(), tag);
}

#[tokio::test]
async fn data_of_a_closed_range_revalidates_and_the_open_end_does_not() {
    let s = TestServer::fixture().await;
    let old = "/hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-01T01:00Z";
    let r = s.get(old).await;
    let tag = header(&r, "etag").expect("an old range has an ETag");
    assert!(!r.bytes().await.unwrap().is_empty());
    let revalidate = |path: &str, tag: &str| client().get(s.url(path)).header("if-none-match", tag).send();
    let r = revalidate(old, &tag).await.unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());
    let other = old.replace("01:00Z", "02:00Z");
    assert_ne!(header(&s.get(&other).await, "etag").as_deref(), Some(tag.as_str()), "another query");

    // Up to the end of the records: an append would change it.
    let open = "/hapi/data?dataset=ds1&start=2016-01-02T23:00Z&stop=2016-01-03T00:00Z";
    let r = s.get(open).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "etag"), None);
    assert_eq!(revalidate(open, &tag).await.unwrap().status(), 200);

    // With a header, the tag follows the published dates.
    let json = format!("{old}&format=json");
    let json_tag = header(&s.get(&json).await, "etag").unwrap();
    let info_ds = &s.state.datasets[0].spec.info;
    let more = "2016-01-05T00:00:00.000Z,1,2,3\n";
    hapi_server::ingest::ingest(s.store.as_ref(), info_ds, &mut std::io::Cursor::new(more)).unwrap();
    s.state.refresh().await.unwrap();
    assert_eq!(revalidate(old, &tag).await.unwrap().status(), 304, "csv without header: unchanged");
    assert_eq!(revalidate(&json, &json_tag).await.unwrap().status(), 200, "its header's stopDate moved");
}

#[tokio::test]
async fn token_checks_are_counted_and_etags_differ_between_views() {
    let s = view::server().await;
    let (plain, private) = (view::token(&s, &[]).await, view::token(&s, &["private", "embargo"]).await);
    let get = |path: &str, token: &str| client().get(s.url(path)).bearer_auth(token).send();
    let before =
        client().get(s.url("/metrics")).bearer_auth(&plain).send().await.unwrap().text().await.unwrap();
    let a = get("/hapi/catalog", &plain).await.unwrap();
    let b = get("/hapi/catalog", &private).await.unwrap();
    let (ta, tb) = (header(&a, "etag").unwrap(), header(&b, "etag").unwrap());
    assert_ne!(ta, tb, "callers who see different catalogs get different tags");
    let r = client().get(s.url("/hapi/catalog")).bearer_auth(&private).header("if-none-match", &ta).send();
    assert_eq!(r.await.unwrap().status(), 200, "another caller's tag does not validate");
    assert_eq!(get("/hapi/catalog", "not.a.token").await.unwrap().status(), 401);
    let after =
        client().get(s.url("/metrics")).bearer_auth(&plain).send().await.unwrap().text().await.unwrap();
    let delta = |name: &str, want: &[(&str, &str)]| value(&after, name, want) - value(&before, name, want);
    // The three catalogs, and the first /metrics (counted once it had rendered).
    assert_eq!(delta("hapi_token_checks_total", &[("outcome", "valid")]), 4.0, "{after}");
    assert_eq!(delta("hapi_token_checks_total", &[("outcome", "refused")]), 1.0, "{after}");
    assert!(
        delta("hapi_token_cache_hits_total", &[]) >= 2.0,
        "tokens seen before come from the cache: {after}"
    );
    assert!(!after.contains(&plain) && !after.contains("not.a.token"), "no credential in a metric");
}
