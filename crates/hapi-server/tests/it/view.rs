//! What a caller may see, walked over every endpoint: no private dataset id and no
//! embargoed time in any body or header, whoever asks (issue 6, item 4).

use std::time::SystemTime;

use hapi_core::Nanos;
use hapi_core::{duration, time};

use crate::support::{CONFIG, KINDS_CSV, TestServer, access_rules, client, ds1_csv};

/// The every-kind dataset, private to role `private`, URL-encoded.
const KINDS: &str = "all/kinds%2Btypes:%CE%B1%E2%98%83";
/// ds1's embargo line when the fixture's rules were written (it moves with the clock).
const LINE: &str = "2016-01-02T00:00:00Z";
/// The private dataset's records begin here; ds1's times are all before it.
const KINDS_START: &str = "2020-01-01T00:00:00Z";

/// The fixture behind the built-in issuer with the fixture's rules; the server-wide
/// documents are public, so anonymous callers get that far.
pub async fn server() -> TestServer {
    let public = r#"public_paths = ["/hapi", "/hapi/about", "/hapi/capabilities", "/hapi/catalog"]"#;
    let config = CONFIG.replace(
        "[auth]\nmode = \"open\"\n",
        &format!("[auth]\npublic_url = \"http://hapi.test\"\n{public}\n{}", access_rules()),
    );
    TestServer::start(&config, &[("ds1", &ds1_csv()), ("all/kinds+types:α☃", KINDS_CSV)], None).await
}

/// A bearer token of a new client with `roles`.
pub async fn token(s: &TestServer, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    let (c, secret) = s.issuer().create_client(None, &roles).unwrap();
    s.client_token(&c.id, &secret).await
}

/// Every endpoint, with and without parameters, good requests and error answers.
fn requests() -> Vec<(&'static str, String)> {
    let mut r: Vec<(&'static str, String)> = [
        "/hapi",
        "/hapi/about",
        "/hapi/capabilities",
        "/hapi/catalog",
        "/hapi/catalog?depth=all",
        "/hapi/catalog?depth=all&resolve_references=false",
        "/hapi/info?dataset=nope",
        "/hapi/info?dataset=ds1&parameters=nope",
        "/hapi/nope",
        "/hapi/catalog/",
        "/",
    ]
    .iter()
    .map(|p| ("GET", (*p).to_owned()))
    .collect();
    for id in ["ds1", KINDS] {
        r.push(("GET", format!("/hapi/info?dataset={id}")));
        r.push(("GET", format!("/hapi/info?id={id}&resolve_references=false")));
        r.push(("GET", format!("/hapi/info?dataset={id}&parameters=Time")));
        let range = if id == "ds1" {
            "start=2016-01-01T00:00Z&stop=2016-01-01T00:10Z"
        } else {
            "start=2020-01-01&stop=2020-01-01T04:00Z"
        };
        for (method, tail) in [
            ("GET", "&include=header"),
            ("GET", "&format=json"),
            ("GET", "&format=json&include=header"),
            ("GET", "&format=binary"),
            ("HEAD", "&include=header"),
            ("HEAD", "&format=json"),
        ] {
            r.push((method, format!("/hapi/data?dataset={id}&{range}{tail}")));
        }
        // Error answers: outside the range, a bad time, an unknown parameter, no data.
        r.push(("GET", format!("/hapi/data?dataset={id}&start=2016-01-01&stop=2030-01-01&include=header")));
        r.push(("HEAD", format!("/hapi/data?dataset={id}&start=2016-01-01&stop=2030-01-01")));
        r.push(("GET", format!("/hapi/data?dataset={id}&start=yesterday&stop=2016-01-02")));
        r.push(("GET", format!("/hapi/data?dataset={id}&{range}&parameters=nope")));
    }
    r.push((
        "GET",
        "/hapi/data?dataset=ds1&start=2016-01-01T01:00:30Z&stop=2016-01-01T01:00:40Z&include=header"
            .to_owned(),
    ));
    r
}

/// Every time string in `text` (the forms the server writes: year-month-day, truncated
/// or not), as nanoseconds.
fn times(text: &str) -> Vec<(String, Nanos)> {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let mut out = Vec::new();
    let mut i = 0;
    while i + 10 <= b.len() {
        let date = (0..4).all(|k| digit(i + k))
            && b[i + 4] == b'-'
            && digit(i + 5)
            && digit(i + 6)
            && b[i + 7] == b'-'
            && digit(i + 8)
            && digit(i + 9);
        if !date || (i > 0 && digit(i - 1)) {
            i += 1;
            continue;
        }
        let mut end = i + 10;
        while end < b.len() && (b[end].is_ascii_digit() || b"T:.Z".contains(&b[end])) {
            end += 1;
        }
        // The longest prefix that parses (a sentence may go on after the time).
        let s = &text[i..end];
        let parsed =
            (10..=s.len()).rev().find_map(|n| time::parse(&s[..n]).ok().map(|t| (s[..n].to_owned(), t)));
        if let Some(p) = parsed {
            out.push(p);
        }
        i = end;
    }
    out
}

fn percent_decoded(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn no_endpoint_shows_a_private_id_or_an_embargoed_time() {
    let t0 = SystemTime::now();
    let s = server().await;
    let plain = token(&s, &[]).await;
    let private = token(&s, &["private"]).await;
    let cleared = token(&s, &["embargo"]).await;
    // (who, token, sees the private dataset, sees past the embargo)
    let callers: [(&str, Option<&str>, bool, bool); 4] = [
        ("anonymous", None, false, false),
        ("plain", Some(&plain), false, false),
        ("private", Some(&private), true, false),
        ("embargo", Some(&cleared), false, true),
    ];
    let kinds_start = time::parse(KINDS_START).unwrap();
    let mut checked = 0;
    for (who, token, sees_private, sees_embargoed) in callers {
        for (method, pq) in requests() {
            let mut rq = client().request(method.parse().unwrap(), s.url(&pq));
            if let Some(t) = token {
                rq = rq.bearer_auth(t);
            }
            let r = rq.send().await.unwrap();
            let status = r.status().as_u16();
            let mut text = String::new();
            for (name, value) in r.headers() {
                // The server's clock, not a record time.
                if name != "date" && name != "last-modified" {
                    text.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
                }
            }
            text.push_str(&String::from_utf8_lossy(&r.bytes().await.unwrap()));
            let text = format!("{text}\n{}", percent_decoded(&text));
            let context = || format!("{who} {method} {pq} -> {status}:\n{text}");
            if !sees_private {
                let lower = text.to_lowercase();
                assert!(!lower.contains("kinds") && !lower.contains("every kind"), "{}", context());
            }
            if !sees_embargoed {
                // The line moves with the clock: at most this far by now.
                let moved = i64::try_from(t0.elapsed().unwrap().as_nanos()).unwrap() + 2_000_000_000;
                let line = time::parse(LINE).unwrap() + moved;
                for (s, t) in times(&text) {
                    // Later times are the private dataset's own, for those who see it.
                    let embargoed = t > line && (t < kinds_start || !sees_private);
                    assert!(!embargoed, "{s} is past the embargo line in {}", context());
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100, "the walk found only {checked} times to check");
}

#[tokio::test]
async fn what_each_caller_sees_is_consistent() {
    let s = server().await;
    let plain = token(&s, &[]).await;
    let private = token(&s, &["private"]).await;
    let get = |pq: &str, t: Option<&str>| {
        let mut rq = client().get(s.url(pq));
        if let Some(t) = t {
            rq = rq.bearer_auth(t.to_owned());
        }
        async move {
            let r = rq.send().await.unwrap();
            let body = r.bytes().await.unwrap();
            serde_json::from_slice::<serde_json::Value>(&body).unwrap_or(serde_json::Value::Null)
        }
    };
    // /about's dataTest is the caller's: anonymous callers read nothing, so it has none.
    let about = get("/hapi/about", None).await;
    assert_eq!(about["status"]["code"], 1200);
    assert!(about.get("dataTest").is_none(), "{about}");
    let about = get("/hapi/about", Some(&plain)).await;
    let q = &about["dataTest"]["query"];
    assert_eq!(q["dataset"], "ds1", "{about}");
    // Its range holds data the caller may read, and the request answers 200 with records.
    let pq = format!(
        "/hapi/data?dataset=ds1&start={}&stop={}&parameters={}",
        q["start"].as_str().unwrap(),
        q["stop"].as_str().unwrap(),
        q["parameters"].as_str().unwrap()
    );
    let r = client().get(s.url(&pq)).bearer_auth(&plain).send().await.unwrap();
    assert_eq!(r.status(), 200, "{pq}");
    assert!(!r.text().await.unwrap().is_empty(), "{pq}");

    // /info, /catalog?depth=all and the /data header say the same for the same caller
    // (an embargo line moves with the clock between two requests: by a second at most).
    let cleared = token(&s, &["embargo"]).await;
    for t in [&plain, &cleared] {
        let info = get("/hapi/info?dataset=ds1", Some(t)).await;
        let cat = get("/hapi/catalog?depth=all", Some(t)).await;
        let embedded = &cat["catalog"][0]["info"];
        let r = client()
            .get(s.url("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-01T00:01Z&format=json"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        let header: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        for key in ["startDate", "stopDate", "sampleStartDate", "sampleStopDate", "maxRequestDuration"] {
            let a = info[key].as_str().unwrap_or_else(|| panic!("{key} in {info}"));
            for (other, what) in [(&embedded[key], "catalog depth=all"), (&header[key], "the /data header")] {
                let b = other.as_str().unwrap_or_else(|| panic!("{key} in {what}"));
                let (x, y) = match key {
                    "maxRequestDuration" => (duration::parse(a).unwrap(), duration::parse(b).unwrap()),
                    _ => (time::parse(a).unwrap(), time::parse(b).unwrap()),
                };
                assert!((x - y).abs() < 1_000_000_000, "{key}: /info {a}, {what} {b}");
            }
        }
    }

    // maxRequestDuration never exceeds the caller's whole span: the every-kind dataset
    // holds four hours, far less than its limits allow.
    let info = get(&format!("/hapi/info?dataset={KINDS}"), Some(&private)).await;
    assert_eq!(info["startDate"], "2020-01-01T00:00:00.000Z", "{info}");
    assert_eq!(info["stopDate"], "2020-01-01T04:00:00.000Z", "{info}");
    assert_eq!(info["maxRequestDuration"], "PT4H", "{info}");
}
