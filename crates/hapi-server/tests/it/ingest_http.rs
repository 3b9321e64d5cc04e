//! `POST /ingest` (issue 7, item 3): a good file, gzip, a bad line, callers without the
//! role or the dataset, a body over the limit, other sources, and racing ingests.

use std::io::Write;

use serde_json::Value;

use crate::auth::token;
use crate::support::{
    CONFIG, KINDS_CSV, TestServer, access_rules, client, code, ds1_csv, files_source, write_days,
};

const KINDS: &str = "all/kinds%2Btypes:%CE%B1%E2%98%83";
/// The body limit of these servers.
const LIMIT: usize = 8192;

/// The fixture behind the built-in issuer, with role `writer` for ingest and a small
/// body limit; and two more datasets of ds1's info: `archive`, read from daily files,
/// and `own`, whose ingest role is `owner`.
async fn server() -> TestServer {
    let archive = tempfile::tempdir().unwrap();
    write_days(archive.path(), &ds1_csv(), false);
    let ds1 = CONFIG.split("[[dataset]]").nth(1).unwrap();
    let like_ds1 = |id: &str, extra: &str| {
        ds1.replace("id = \"ds1\"", &format!("id = \"{id}\""))
            .replace("title = \"Fixture ds1\"", &format!("title = \"{id}\"\n{extra}"))
    };
    let auth = format!("[auth]\npublic_url = \"http://hapi.test\"\n{}", access_rules())
        .replace("authenticated = [\"ds1\"]", "authenticated = [\"ds1\", \"archive\", \"own\"]");
    let config = format!(
        "{}\n[[dataset]]{}\n[[dataset]]{}\n[ingest]\nrole = \"writer\"\nmax_bytes = {LIMIT}\n",
        CONFIG.replace("[auth]\nmode = \"open\"\n", &auth),
        like_ds1("archive", &files_source(archive.path(), false)),
        like_ds1("own", "ingest_role = \"owner\""),
    );
    let mut s =
        TestServer::start(&config, &[("ds1", &ds1_csv()), ("all/kinds+types:α☃", KINDS_CSV)], None).await;
    s._archive = Some(archive);
    s
}

/// Status and JSON body of a POST.
async fn post(s: &TestServer, dataset: &str, token: Option<&str>, body: Vec<u8>, gzip: bool) -> (u16, Value) {
    let mut rq = client().post(s.url(&format!("/ingest?dataset={dataset}"))).body(body);
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    if gzip {
        rq = rq.header("content-encoding", "gzip");
    }
    let r = rq.send().await.unwrap();
    let st = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (st, v)
}

/// ds1 records, one a minute on 2016-01-03 from minute `from` (after the stored ones).
fn ds1_records(from: u32, n: u32) -> String {
    (from..from + n).map(|i| format!("2016-01-03T{:02}:{:02}:00.000Z,{i},2,3\n", i / 60, i % 60)).collect()
}

fn gzip(text: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text).unwrap();
    e.finish().unwrap()
}

fn message(v: &Value) -> &str {
    v["status"]["message"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_good_file_is_appended_and_published_at_once() {
    let s = server().await;
    let t = token(&s, &["writer", "private", "embargo"]).await;
    let auth = |rq: reqwest::RequestBuilder| rq.bearer_auth(&t);
    let info = |s: &TestServer| {
        let rq = auth(client().get(s.url(&format!("/hapi/info?dataset={KINDS}"))));
        async move { serde_json::from_slice::<Value>(&rq.send().await.unwrap().bytes().await.unwrap()).unwrap() }
    };
    assert_eq!(info(&s).await["stopDate"], "2020-01-01T04:00:00.000Z");
    // The every-kind dataset's own output, shifted a day and fed back (with its header).
    let rq = auth(client().get(
        s.url(&format!("/hapi/data?dataset={KINDS}&start=2020-01-01&stop=2020-01-01T04:00Z&include=header")),
    ));
    let csv = rq.send().await.unwrap().text().await.unwrap().replace("2020-01-01T0", "2020-01-02T0");
    let (st, v) = post(&s, KINDS, Some(&t), csv.into_bytes(), false).await;
    assert_eq!((st, code(&v)), (200, 1200), "{v}");
    assert_eq!(v["records"], 4);
    assert_eq!(v["first"], "2020-01-02T00:00:00.000Z");
    assert_eq!(v["last"], "2020-01-02T03:00:00.000Z");
    // No wait for the refresh of each second: the answer already published it.
    assert_eq!(info(&s).await["stopDate"], "2020-01-02T04:00:00.000Z");
    let rq = auth(
        client().get(s.url(&format!("/hapi/data?dataset={KINDS}&start=2020-01-02&stop=2020-01-02T04:00Z"))),
    );
    let served = rq.send().await.unwrap().text().await.unwrap();
    assert_eq!(served.lines().count(), 4, "{served}");
    assert!(served.starts_with("2020-01-02T00:00:00.000Z,1.5,1,abc,"), "{served}");

    // Counted and audited (by the route too).
    let rq = auth(client().get(s.url("/metrics")));
    let metrics = rq.send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("hapi_ingest_total{outcome=\"ok\"} 1"), "{metrics}");
    assert!(metrics.contains("hapi_ingest_records_total 4"), "{metrics}");
    assert!(metrics.contains("endpoint=\"/ingest\",status=\"200\",code=\"1200\""), "{metrics}");
}

#[tokio::test]
async fn gzip_bodies_are_decoded_and_cut_ones_refused() {
    let s = server().await;
    let t = token(&s, &["writer", "embargo"]).await;
    let before = s.store.extent("ds1").unwrap();
    let zipped = gzip(ds1_records(0, 50).as_bytes());
    let (st, v) = post(&s, "ds1", Some(&t), zipped[..zipped.len() - 10].to_vec(), true).await;
    assert_eq!((st, code(&v)), (400, 1400), "{v}");
    assert!(message(&v).contains("gzip"), "{v}");
    assert_eq!(s.store.extent("ds1").unwrap(), before, "nothing stored");
    let (st, v) = post(&s, "ds1", Some(&t), b"not gzip at all".to_vec(), true).await;
    assert_eq!((st, code(&v)), (400, 1400), "{v}");
    // Two members, as `cat a.gz b.gz` makes.
    let mut two = gzip(ds1_records(0, 30).as_bytes());
    two.extend(gzip(ds1_records(30, 20).as_bytes()));
    let (st, v) = post(&s, "ds1", Some(&t), two, true).await;
    assert_eq!((st, v["records"].as_u64()), (200, Some(50)), "{v}");
    let r = client()
        .post(s.url("/ingest?dataset=ds1"))
        .bearer_auth(&t)
        .header("content-encoding", "br")
        .body(ds1_records(50, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
}

#[tokio::test]
async fn a_bad_line_is_named_and_nothing_is_committed() {
    let s = server().await;
    let t = token(&s, &["writer", "embargo"]).await;
    let before = s.store.extent("ds1").unwrap();
    let mut csv = ds1_records(0, 40);
    csv.push_str("2016-01-03T00:40:00.000Z,1,x,3\n");
    csv.push_str(&ds1_records(41, 5));
    for (body, gz) in [(csv.clone().into_bytes(), false), (gzip(csv.as_bytes()), true)] {
        let (st, v) = post(&s, "ds1", Some(&t), body, gz).await;
        assert_eq!((st, code(&v)), (400, 1400), "{v}");
        assert!(message(&v).contains("line 41, column 3 (By)"), "{v}");
        assert_eq!(s.store.extent("ds1").unwrap(), before, "nothing stored");
    }
    // Before the last stored record, and empty.
    let (st, v) = post(&s, "ds1", Some(&t), b"2016-01-01T00:00:00.000Z,1,2,3\n".to_vec(), false).await;
    assert_eq!(st, 400);
    assert!(message(&v).contains("line 1"), "{v}");
    let (st, v) = post(&s, "ds1", Some(&t), b"#just a header\n".to_vec(), false).await;
    assert_eq!(st, 400);
    assert!(message(&v).contains("no records"), "{v}");
    let (st, v) = post(&s, "ds1&parameters=Bx", Some(&t), ds1_records(0, 1).into_bytes(), false).await;
    assert_eq!((st, code(&v)), (400, 1401));
    assert_eq!(s.store.extent("ds1").unwrap(), before, "nothing stored");
}

#[tokio::test]
async fn callers_without_the_role_or_a_token_are_refused() {
    let s = server().await;
    let body = || ds1_records(0, 3).into_bytes();
    let reader = token(&s, &["embargo"]).await;
    let (st, v) = post(&s, "ds1", Some(&reader), body(), false).await;
    assert_eq!((st, code(&v)), (403, 1400), "{v}");
    assert!(message(&v).contains("ingest role"), "{v}");
    let (st, _) = post(&s, "ds1", None, body(), false).await;
    assert_eq!(st, 401);
    // A browser session reads, but does not ingest: tokens only (no cross-site forms).
    s.issuer().add_user("wanda", "correct horse", &["writer".to_owned()]).unwrap();
    let cookie = crate::support::login(&s, "wanda").await;
    let r = client().get(s.url("/hapi/info?dataset=ds1")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200, "the session is good");
    let r = client()
        .post(s.url("/ingest?dataset=ds1"))
        .header("cookie", &cookie)
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A writer under the embargo could learn the hidden last record's time.
    let writer = token(&s, &["writer"]).await;
    let (st, v) = post(&s, "ds1", Some(&writer), body(), false).await;
    assert_eq!(st, 403);
    assert!(message(&v).contains("embargo"), "{v}");
    let writer = token(&s, &["writer", "embargo"]).await;
    let (st, v) = post(&s, "ds1", Some(&writer), body(), false).await;
    assert_eq!((st, v["records"].as_u64()), (200, Some(3)), "{v}");
    let (st, v) = post(&s, "archive", Some(&writer), body(), false).await;
    assert_eq!(st, 400);
    assert!(message(&v).contains("read from granule files"), "{v}");
    // A dataset's own role replaces the server's.
    let (st, _) = post(&s, "own", Some(&writer), body(), false).await;
    assert_eq!(st, 403);
    let owner = token(&s, &["owner"]).await;
    let (st, v) = post(&s, "own", Some(&owner), ds1_records(0, 2).into_bytes(), false).await;
    assert_eq!((st, v["records"].as_u64()), (200, Some(2)), "{v}");
    let r = client().get(s.url("/ingest?dataset=ds1")).bearer_auth(&writer).send().await.unwrap();
    assert_eq!(r.status(), 405, "POST only");
}

#[tokio::test]
async fn a_private_dataset_answers_like_an_unknown_one() {
    let s = server().await;
    let writer = token(&s, &["writer"]).await;
    let body = || KINDS_CSV.replace("2020-01-01", "2020-01-02").into_bytes();
    let (st, private) = post(&s, KINDS, Some(&writer), body(), false).await;
    let (st2, unknown) = post(&s, "no-such-dataset", Some(&writer), body(), false).await;
    assert_eq!((st, code(&private)), (404, 1406));
    assert_eq!((st, &private), (st2, &unknown), "the same answer");
    let allowed = token(&s, &["writer", "private"]).await;
    let (st, v) = post(&s, KINDS, Some(&allowed), body(), false).await;
    assert_eq!((st, v["records"].as_u64()), (200, Some(4)), "{v}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_stores_nothing() {
    let s = server().await;
    let t = token(&s, &["writer", "embargo"]).await;
    let before = s.store.extent("ds1").unwrap();
    let big = ds1_records(0, 400);
    assert!(big.len() > LIMIT);
    let (st, v) = post(&s, "ds1", Some(&t), big.clone().into_bytes(), false).await;
    assert_eq!((st, code(&v)), (413, 1400), "{v}");
    assert!(message(&v).contains(&format!("limit of {LIMIT} bytes")), "{v}");
    // Without a length (chunked), and as gzip that only grows past it when inflated.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.as_bytes().chunks(1000).map(|c| Ok(c.to_vec())).collect();
    let r = client()
        .post(s.url("/ingest?dataset=ds1"))
        .bearer_auth(&t)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let zipped = gzip(big.as_bytes());
    assert!(zipped.len() < LIMIT);
    let (st, _) = post(&s, "ds1", Some(&t), zipped, true).await;
    assert_eq!(st, 413);
    assert_eq!(s.store.extent("ds1").unwrap(), before, "nothing stored");
    // A declared length over the limit is refused before the body is sent.
    let (status, _, body) = s
        .raw(&format!(
            "POST /ingest?dataset=ds1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n\
             Content-Length: 1000000000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        ))
        .await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(code(&v), 1400);
}

#[tokio::test]
async fn racing_ingests_keep_times_strictly_increasing() {
    let s = server().await;
    let t = token(&s, &["writer", "embargo"]).await;
    // Eight uploads at once, overlapping pairwise: each one is either appended whole or
    // refused whole.
    let uploads: Vec<_> = (0..8u32)
        .map(|k| {
            let (s_url, t) = (s.url("/ingest?dataset=ds1"), t.clone());
            let body = ds1_records(k * 10, 20);
            tokio::spawn(async move {
                let r = client().post(s_url).bearer_auth(t).body(body).send().await.unwrap();
                let st = r.status().as_u16();
                (st, serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).unwrap())
            })
        })
        .collect();
    let mut appended = 0;
    for u in uploads {
        let (st, v) = u.await.unwrap();
        match st {
            200 => appended += v["records"].as_u64().unwrap(),
            409 | 400 => assert!(message(&v).contains("line 1"), "{v}"),
            _ => panic!("{st}: {v}"),
        }
    }
    assert!(appended >= 20, "at least one won");
    let rq = client()
        .get(s.url("/hapi/data?dataset=ds1&start=2016-01-03&stop=2016-01-04&parameters=Bx"))
        .bearer_auth(&t);
    let csv = rq.send().await.unwrap().text().await.unwrap();
    let times: Vec<&str> = csv.lines().map(|l| &l[..24]).collect();
    assert_eq!(times.len() as u64, appended, "{csv}");
    assert!(times.windows(2).all(|w| w[0] < w[1]), "strictly increasing: {times:?}");
}
