//! Issue 9, items 1 and 6: the portal's pages are rendered from the caller's view,
//! escape what metadata holds, carry a Content-Security-Policy without inline script,
//! and refuse form posts without their CSRF token.

use crate::support::{CONFIG, KINDS_CSV, TestServer, access_rules, client, csrf, ds1_csv, login, post_form};

/// Metadata with markup everywhere a page shows it.
const EVIL: &str = r#"
[[dataset]]
id = "evil<script>alert(1)</script>"
title = "<script>alert('title')</script>"
info = '''{"parameters":[
  {"name":"Time","type":"isotime","units":"UTC","fill":null,"length":24},
  {"name":"x\"><img src=x onerror=alert(2)>","type":"double","units":"</script><script>alert(3)</script>","fill":"-1e31",
   "description":"<b onmouseover=alert(4)>hi</b>"}],
  "description":"</script><script>alert(5)</script>","cadence":"PT1M"}'''
"#;

async fn server() -> TestServer {
    let config = CONFIG.replace(
        "[auth]\nmode = \"open\"\n",
        &format!("[auth]\npublic_url = \"http://hapi.test\"\n{}", access_rules()),
    ) + EVIL;
    // The evil dataset is readable by every logged-in user.
    let config = config.replace("authenticated = [\"ds1\"]", "authenticated = [\"ds1\", \"evil*\"]");
    let s = TestServer::start(&config, &[("ds1", &ds1_csv()), ("all/kinds+types:α☃", KINDS_CSV)], None).await;
    s.issuer().add_user("alice", "correct horse", &[]).unwrap();
    s
}

async fn get(s: &TestServer, pq: &str, cookie: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = client().get(s.url(pq)).header("cookie", cookie).send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

fn dataset_page(id: &str) -> String {
    format!("/portal/dataset?id={}", hapi_core::percent::encode_query_value(id))
}

/// The page's policy allows scripts from this server only, and the page has no inline
/// script or style that such a policy would block (or that would need `'unsafe-inline'`).
fn assert_page_policy(what: &str, headers: &reqwest::header::HeaderMap, html: &str) {
    let csp =
        headers.get("content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP")).to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert!(!html.contains("<style") && !html.contains(" style="), "{what}: {html}");
    // No event-handler attribute (` onclick=`...) in any tag, outside the quoted values.
    for tag in html.split('<').skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        let unquoted: String = tag.split('"').step_by(2).collect();
        for part in unquoted.split(" on").skip(1) {
            let name: String = part.chars().take_while(char::is_ascii_alphabetic).collect();
            assert!(!part[name.len()..].starts_with('='), "{what}: an on{name}= attribute in <{tag}>");
        }
    }
    for tag in html.split("<script").skip(1) {
        let open = &tag[..tag.find('>').unwrap()];
        assert!(
            open.contains(" src=\"") || open.contains("type=\"application/json\""),
            "{what}: inline <script{open}>"
        );
    }
}

#[tokio::test]
async fn every_page_has_the_policy_and_no_inline_script() {
    let s = server().await;
    let anonymous = "";
    let (_, h, html) = get(&s, "/auth/login", anonymous).await;
    assert_page_policy("login form", &h, &html);
    let cookie = login(&s, "alice").await;
    for (what, pq) in [
        ("catalog", "/hapi".to_owned()),
        ("dataset page", dataset_page("ds1")),
        ("no such dataset", dataset_page("nope")),
        ("logout form", "/auth/logout".to_owned()),
        ("credentials", "/portal/credentials".to_owned()),
        ("account", "/portal/account".to_owned()),
    ] {
        let (status, h, html) = get(&s, &pq, &cookie).await;
        assert!(status == 200 || (status == 404 && what == "no such dataset"), "{what}: {status}");
        assert_page_policy(what, &h, &html);
    }
    // Refusals are pages too.
    let r = client()
        .post(s.url("/auth/login"))
        .form(&[("username", "alice"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let h = r.headers().clone();
    assert_page_policy("forged login", &h, &r.text().await.unwrap());
    // The HAPI endpoints are not pages: nothing is added to them.
    let (_, h, _) = get(&s, "/hapi/info?dataset=ds1", &cookie).await;
    assert!(h.get("content-security-policy").is_none());
    // The assets the pages load are served from the binary.
    for (name, media) in
        [("portal.css", "text/css"), ("dataset.js", "text/javascript"), ("plot.js", "text/javascript")]
    {
        let r = client().get(s.url(&format!("/portal/assets/{name}"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "{name}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(media), "{name}");
    }
}

#[tokio::test]
async fn form_posts_without_their_csrf_token_are_refused() {
    let s = server().await;
    let c = client();
    let url = s.url("/auth/login");
    let fields = [("username", "alice"), ("password", "correct horse"), ("return_to", "/hapi")];
    // No token, no cookie.
    let r = c.post(&url).form(&fields).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    // A cookie but a wrong token; a token but no cookie; one browser's token with another's cookie.
    let (jar_a, token_a) = csrf(&c, &url, None).await;
    let (jar_b, _) = csrf(&c, &url, None).await;
    for (jar, token) in
        [(jar_a.as_str(), "wrong"), ("", token_a.as_str()), (jar_b.as_str(), token_a.as_str())]
    {
        let mut all = fields.to_vec();
        all.push(("csrf", token));
        let r = c.post(&url).header("cookie", jar).form(&all).send().await.unwrap();
        assert_eq!(r.status(), 403, "cookie {jar:?}, token {token:?}");
        assert!(r.headers().get("set-cookie").is_none());
        assert!(r.text().await.unwrap().contains("Nothing was changed"));
    }
    // The browser's own token works.
    let cookie = login(&s, "alice").await;
    // A forged logout leaves the session alive; the real one ends it.
    let r = c.post(s.url("/auth/logout")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        get(&s, "/hapi/info?dataset=ds1", &cookie).await.0,
        200,
        "the session survives a forged logout"
    );
    let (_, _, form) = get(&s, "/auth/logout", &cookie).await;
    assert!(form.contains("method=\"post\""), "{form}");
    assert_eq!(get(&s, "/hapi/info?dataset=ds1", &cookie).await.0, 200, "GET /auth/logout changes nothing");
    let r = post_form(&c, &s.url("/auth/logout"), &[], Some(&cookie)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(get(&s, "/hapi/info?dataset=ds1", &cookie).await.0, 401);
}

/// A user name is whatever the operator typed: markup in it is text on every page.
#[tokio::test]
async fn user_names_are_escaped_on_every_page() {
    let s = server().await;
    let name = "<script>alert(6)</script>\"'&";
    s.issuer().add_user(name, "correct horse", &[]).unwrap();
    let cookie = login(&s, name).await;
    for pq in ["/hapi", &dataset_page("ds1"), "/portal/credentials", "/portal/account", "/auth/logout"] {
        let (status, h, html) = get(&s, pq, &cookie).await;
        assert_eq!(status, 200, "{pq}");
        assert_page_policy(pq, &h, &html);
        assert!(!html.contains("<script>alert(6)"), "{pq}: unescaped");
        assert!(
            html.contains("&lt;script&gt;alert(6)&lt;/script&gt;&quot;&#39;&amp;") || pq == "/auth/logout",
            "{pq}"
        );
    }
}

#[tokio::test]
async fn metadata_is_escaped_on_every_page() {
    let s = server().await;
    let cookie = login(&s, "alice").await;
    let id = "evil<script>alert(1)</script>";
    let (status, h, catalog) = get(&s, "/hapi", &cookie).await;
    assert_eq!(status, 200);
    assert_page_policy("catalog", &h, &catalog);
    assert!(catalog.contains("evil&lt;script&gt;"), "{catalog}");
    let (status, h, page) = get(&s, &dataset_page(id), &cookie).await;
    assert_eq!(status, 200, "{page}");
    assert_page_policy("evil dataset page", &h, &page);
    for raw in ["<script>alert", "<img", "<b ", "</script><script>"] {
        assert!(!catalog.contains(raw) && !page.contains(raw), "{raw:?} unescaped");
    }
    // The embedded /info is the caller's, byte for byte the same document once parsed.
    let (_, _, info) =
        get(&s, &format!("/hapi/info?dataset={}", hapi_core::percent::encode_query_value(id)), &cookie).await;
    assert_eq!(embedded_info(&page), serde_json::from_str::<serde_json::Value>(&info).unwrap());
}

/// The `/info` document a dataset page embeds for its script.
fn embedded_info(page: &str) -> serde_json::Value {
    let from = page.find("id=\"info-json\">").expect("the embedded info") + "id=\"info-json\">".len();
    let text = &page[from..from + page[from..].find("</script>").unwrap()];
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn pages_show_only_the_callers_view() {
    let s = server().await;
    let cookie = login(&s, "alice").await;
    let private = "all/kinds+types:α☃";
    // alice has no role `private`: the dataset is not listed, and its page is the same
    // 404 as a dataset that does not exist.
    let (_, _, catalog) = get(&s, "/hapi", &cookie).await;
    assert!(!catalog.contains("all/kinds") && !catalog.contains("kinds%2Btypes"), "{catalog}");
    let (a, _, hidden) = get(&s, &dataset_page(private), &cookie).await;
    let (b, _, missing) = get(&s, &dataset_page("no/such"), &cookie).await;
    assert_eq!((a, b), (404, 404));
    assert_eq!(hidden, missing);
    assert!(!hidden.contains("kinds"));
    // ds1 is embargoed for alice: the page's dates, default range and embedded info are
    // those /info gives her, never a later time.
    let (_, _, page) = get(&s, &dataset_page("ds1"), &cookie).await;
    let (_, _, info) = get(&s, "/hapi/info?dataset=ds1", &cookie).await;
    let mut info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let mut embedded = embedded_info(&page);
    // The embargo line moves with the clock: the page's, read first, is not later.
    let stop = embedded["stopDate"].as_str().unwrap().to_owned();
    assert!(
        stop.as_str() <= info["stopDate"].as_str().unwrap() && stop.as_str() < "2016-01-02T00:01",
        "{stop}"
    );
    for key in ["stopDate", "sampleStartDate", "sampleStopDate", "maxRequestDuration"] {
        embedded[key].take();
        info[key].take();
    }
    assert_eq!(embedded, info);
    assert!(page.contains(&format!("<span id=\"cov-stop\">{stop}</span>")), "{page}");
    for later in ["2016-01-02T00:01", "2016-01-03", "2016-02-01"] {
        assert!(!page.contains(later), "{later} in the embargoed page");
    }
    // An anonymous browser is sent to the login, not shown the page.
    let r = client().get(s.url(&dataset_page("ds1"))).header("accept", "text/html").send().await.unwrap();
    assert_eq!(r.status(), 302);
}
