//! Access control with the built-in issuer: the seed page's token sequence, refusals,
//! per-dataset rules, the embargo, browser sessions and CORS.

use crate::support::{CONFIG, TestServer, access_rules, client, ds1_csv};

/// The fixture behind the built-in issuer, with the rules of [`access_rules`].
pub(crate) async fn server(extra_auth: &str) -> TestServer {
    let config = CONFIG.replace(
        "[auth]\nmode = \"open\"\n",
        &format!("[auth]\npublic_url = \"http://hapi.test\"\n{extra_auth}\n{}", access_rules()),
    );
    TestServer::start(
        &config,
        &[("ds1", &ds1_csv()), ("all/kinds+types:α☃", crate::support::KINDS_CSV)],
        None,
    )
    .await
}

/// A client of the built-in issuer and a token for it, through the HTTP token endpoint.
pub(crate) async fn token(s: &TestServer, roles: &[&str]) -> String {
    let issuer = s.issuer();
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    let (c, secret) = issuer.create_client(None, &roles).unwrap();
    let r = client()
        .post(s.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id={}&client_secret={secret}&grant_type=client_credentials&scope=swe_hapiserver",
            c.id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

async fn get(s: &TestServer, pq: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut rq = client().get(s.url(pq));
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    let r = rq.send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn seed_token_sequence() {
    let s = server("").await;
    let issuer = s.issuer();
    let (c, secret) = issuer.create_client(None, &[]).unwrap();
    let r = client()
        .post(s.url("/oauth/token"))
        .form(&[
            ("client_id", c.id.as_str()),
            ("client_secret", secret.as_str()),
            ("grant_type", "client_credentials"),
            ("scope", "swe_hapiserver"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["expires_in"], 300);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["not-before-policy"], 0);
    assert_eq!(v["scope"], "swe_hapiserver");
    let t = v["access_token"].as_str().unwrap();
    for pq in ["/hapi/capabilities", "/hapi/catalog", "/hapi/info?dataset=ds1", "/hapi/about"] {
        let (st, body) = get(&s, pq, Some(t)).await;
        assert_eq!(st, 200, "{pq}: {body}");
        assert_eq!(body["status"]["code"], 1200);
    }
    let r = client()
        .get(s.url("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-01T00:03Z"))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap().lines().count(), 3);

    // HTTP Basic client authentication works too.
    let r = client()
        .post(s.url("/oauth/token"))
        .basic_auth(&c.id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The discovery document and JWKS are published.
    let (st, d) = get(&s, "/.well-known/openid-configuration", None).await;
    assert_eq!(st, 200);
    assert_eq!(d["issuer"], "http://hapi.test");
    assert!(d["jwks_uri"].as_str().unwrap().ends_with("/oauth/jwks"));
    let (st, jwks) = get(&s, "/oauth/jwks", None).await;
    assert_eq!(st, 200);
    assert!(!jwks["keys"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn token_endpoint_refusals() {
    let s = server("").await;
    let issuer = s.issuer();
    let (c, secret) = issuer.create_client(None, &[]).unwrap();
    let post = |body: String| {
        let url = s.url("/oauth/token");
        async move {
            let r = client()
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            (st, v["error"].as_str().unwrap_or("").to_owned())
        }
    };
    let id = &c.id;
    assert_eq!(
        post(format!("client_id={id}&client_secret=wrong&grant_type=client_credentials")).await,
        (401, "invalid_client".into())
    );
    assert_eq!(
        post(format!("client_id={id}&client_secret={secret}&grant_type=password")).await.1,
        "unsupported_grant_type"
    );
    assert_eq!(
        post(format!("client_id={id}&client_secret={secret}&grant_type=client_credentials&scope=admin"))
            .await,
        (400, "invalid_scope".into())
    );
    assert_eq!(post("grant_type=client_credentials".into()).await.0 / 100, 4);
    assert_eq!(post("%ZZ".into()).await, (400, "invalid_request".into()));
    issuer.revoke_client(id).unwrap();
    assert_eq!(
        post(format!("client_id={id}&client_secret={secret}&grant_type=client_credentials")).await,
        (401, "invalid_client".into())
    );
}

#[tokio::test]
async fn refusals_are_rfc6750_with_a_hapi_body() {
    let s = server("").await;
    let good = token(&s, &[]).await;
    let cases: &[(Option<&[u8]>, u16, &str)] = &[
        (None, 401, ""),
        (Some(b"Bearer"), 400, "invalid_request"),
        (Some(b"Bearer not.a.jwt"), 401, "invalid_token"),
        (Some(b"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."), 401, "invalid_token"),
        (Some(b"Basic YTpi"), 401, ""),
        (Some(b"Bearer \xc3\xa9"), 400, "invalid_request"),
    ];
    for &(h, status, error) in cases {
        let mut rq = client().get(s.url("/hapi/catalog"));
        if let Some(h) = h {
            rq = rq.header("authorization", reqwest::header::HeaderValue::from_bytes(h).unwrap());
        }
        let r = rq.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{h:?}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        if !error.is_empty() {
            assert!(challenge.contains(&format!("error=\"{error}\"")), "{challenge}");
        }
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(v["HAPI"], "3.3");
        assert!(v["status"]["code"].as_i64().unwrap() >= 1400);
    }
    // A tampered signature, an oversized token, and a token in the query string.
    let mut tampered = good.clone();
    tampered.push('A');
    assert_eq!(get(&s, "/hapi/catalog", Some(&tampered)).await.0, 401);
    let huge = "a".repeat(20_000);
    assert_eq!(get(&s, "/hapi/catalog", Some(&huge)).await.0, 401);
    // A header block past the server's 32 KiB buffer is refused before any handler.
    let huger = "a".repeat(100_000);
    assert_eq!(get(&s, "/hapi/catalog", Some(&huger)).await.0, 431);
    let (st, _) = get(&s, &format!("/hapi/catalog?access_token={good}"), None).await;
    assert_eq!(st, 400);
    assert_eq!(get(&s, "/hapi/catalog", Some(&good)).await.0, 200, "still fine");
}

#[tokio::test]
async fn rules_decide_what_each_caller_sees() {
    let s = server("").await;
    let plain = token(&s, &[]).await;
    let private = token(&s, &["private"]).await;
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["catalog"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
    };
    let (_, cat) = get(&s, "/hapi/catalog", Some(&plain)).await;
    assert_eq!(ids(&cat), ["ds1"]);
    let (_, cat) = get(&s, "/hapi/catalog?depth=all", Some(&private)).await;
    assert_eq!(ids(&cat), ["ds1", "all/kinds+types:α☃"]);

    // A dataset one may not read answers exactly as an unknown one (no id leaks).
    let kinds = "all/kinds%2Btypes:%CE%B1%E2%98%83";
    let (st, hidden) = get(&s, &format!("/hapi/info?dataset={kinds}"), Some(&plain)).await;
    let (_, unknown) = get(&s, "/hapi/info?dataset=nope", Some(&plain)).await;
    assert_eq!((st, &hidden), (404, &unknown));
    let (st, _) =
        get(&s, &format!("/hapi/data?dataset={kinds}&start=2020-01-01&stop=2020-01-01T04:00Z"), Some(&plain))
            .await;
    assert_eq!(st, 404);
    let r = client()
        .get(s.url(&format!("/hapi/data?dataset={kinds}&start=2020-01-01&stop=2020-01-01T04:00Z")))
        .bearer_auth(&private)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn embargo_hides_recent_records_without_the_role() {
    let s = server("").await;
    let plain = token(&s, &[]).await;
    let cleared = token(&s, &["embargo"]).await;
    let (_, info) = get(&s, "/hapi/info?dataset=ds1", Some(&plain)).await;
    // The line is "now - age": a few seconds after 2016-01-02T00:00Z by now.
    let stop = info["stopDate"].as_str().unwrap();
    assert!(stop.starts_with("2016-01-02T00:0"), "{stop}");
    let (_, info) = get(&s, "/hapi/info?dataset=ds1", Some(&cleared)).await;
    assert_eq!(info["stopDate"], "2016-02-01T00:00:00.000Z");
    let late = "/hapi/data?dataset=ds1&start=2016-01-02T01:00Z&stop=2016-01-02T02:00Z&parameters=Bx";
    let (st, v) = get(&s, late, Some(&plain)).await;
    assert_eq!((st, v["status"]["code"].as_i64()), (400, Some(1405)));
    let r = client().get(s.url(late)).bearer_auth(&cleared).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap().lines().count(), 60);
    let early = "/hapi/data?dataset=ds1&start=2016-01-01T01:00Z&stop=2016-01-01T02:00Z&parameters=Bx";
    let r = client().get(s.url(early)).bearer_auth(&plain).send().await.unwrap();
    assert_eq!(r.status(), 200, "older records are open");
}

#[tokio::test]
async fn public_paths_and_anonymous_datasets() {
    let s = server("public_paths = [\"/hapi\", \"/hapi/about\"]").await;
    assert_eq!(get(&s, "/hapi/about", None).await.0, 200);
    assert_eq!(client().get(s.url("/hapi")).send().await.unwrap().status(), 200);
    assert_eq!(get(&s, "/hapi/capabilities", None).await.0, 401);
    assert_eq!(get(&s, "/hapi/info?dataset=ds1", None).await.0, 401);
}

#[tokio::test]
async fn browser_session_with_a_local_account() {
    let s = server("cookie_origins = [\"https://portal.example\"]").await;
    let issuer = s.issuer();
    issuer.add_user("alice", "correct horse", &["private".to_owned()]).unwrap();

    // A browser without a session is sent to the login form, and back afterwards.
    let r = client().get(s.url("/hapi/info?dataset=ds1")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(r.status(), 302);
    let login = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(login, "/auth/login?return_to=/hapi/info%3Fdataset%3Dds1");
    let r = client().get(s.url(&login)).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("<form"));

    let r = crate::support::post_form(
        &client(),
        &s.url("/auth/login"),
        &[("username", "alice"), ("password", "wrong"), ("return_to", "/hapi")],
        None,
    )
    .await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = crate::support::post_form(
        &client(),
        &s.url("/auth/login"),
        &[("username", "alice"), ("password", "correct horse"), ("return_to", "https://evil.example/")],
        None,
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/hapi", "no open redirect");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();

    let r = client().get(s.url("/hapi")).header("cookie", &session).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Logged in as <code>alice</code>") && html.contains("all/kinds"), "{html}");
    let r = client()
        .get(s.url("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-01T00:03Z"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A forged or altered cookie is no session.
    let forged = format!("{session}x");
    assert_eq!(
        client().get(s.url("/hapi/catalog")).header("cookie", &forged).send().await.unwrap().status(),
        401
    );
    assert_eq!(
        client()
            .get(s.url("/hapi/catalog"))
            .header("cookie", "hapi_session=garbage")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // Cookie sessions cross origins only from configured origins, never with `*`.
    let r = client()
        .get(s.url("/hapi/catalog"))
        .header("cookie", &session)
        .header("origin", "https://portal.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "https://portal.example");
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    let r =
        client().get(s.url("/hapi/catalog")).header("origin", "https://other.example").send().await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers().get("access-control-allow-credentials").is_none());

    // Logout ends it.
    let r = crate::support::post_form(&client(), &s.url("/auth/logout"), &[], Some(&session)).await;
    let cleared = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("hapi_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test]
async fn audit_lines_name_the_caller_and_never_the_token() {
    let log = crate::support::audit_log();
    let s = server("").await;
    let issuer = s.issuer();
    let (c, secret) = issuer.create_client(Some("audited-client"), &[]).unwrap();
    let t = &s.client_token(&c.id, &secret).await;
    let pq = "/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-01T00:05Z&parameters=Bx&format=binary";
    let r = client().get(s.url(pq)).bearer_auth(t).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 5 * 32);
    assert_eq!(get(&s, "/hapi/info?dataset=nope", Some(t)).await.0, 404);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let text = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    let data_line = text
        .lines()
        .find(|l| l.contains("who=\"audited-client\"") && l.contains("endpoint=\"data\""))
        .unwrap_or_else(|| panic!("no data audit line in:\n{text}"));
    for field in [
        "dataset=\"ds1\"",
        "parameters=\"Bx\"",
        "format=\"binary\"",
        "status=1200",
        "bytes=160",
        "complete=true",
    ] {
        assert!(data_line.contains(field), "{field} missing: {data_line}");
    }
    assert!(
        text.lines().any(|l| l.contains("who=\"audited-client\"")
            && l.contains("dataset=\"nope\"")
            && l.contains("status=1406")),
        "{text}"
    );
    assert!(!text.contains(t) && !text.contains(&secret), "no credential in any log line");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let s = server("[auth.issuer]\ntoken_ttl = 1\nleeway = 0").await;
    let t = token(&s, &[]).await;
    assert_eq!(get(&s, "/hapi/catalog", Some(&t)).await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = client().get(s.url("/hapi/catalog")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
}
