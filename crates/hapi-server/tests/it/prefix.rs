//! `path_prefix` everywhere (issue 6, item 7): public paths, redirects, the login round
//! trip, the landing page's links, the logout link and the session cookie's path.

use crate::support::{CONFIG, KINDS_CSV, TestServer, client, ds1_csv};

const PREFIX: &str = "/public/data";

async fn server() -> TestServer {
    let config = CONFIG.replace(
        "[auth]\nmode = \"open\"\n",
        &format!(
            "path_prefix = \"{PREFIX}\"\n[auth]\npublic_url = \"http://hapi.test\"\n\
             public_paths = [\"/hapi\", \"/hapi/about\"]\n"
        ),
    );
    TestServer::start(&config, &[("ds1", &ds1_csv()), ("all/kinds+types:α☃", KINDS_CSV)], None).await
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Every `href="..."` and `action="..."` of a page, unescaped.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "action=\""] {
        for part in html.split(attr).skip(1) {
            let end = part.find('"').unwrap();
            out.push(part[..end].replace("&amp;", "&"));
        }
    }
    out
}

/// The links of a page but its stylesheet (which the landing page's walk fetches).
fn page_links(html: &str) -> Vec<String> {
    links(html).into_iter().filter(|l| !l.contains("/portal/assets/")).collect()
}

#[tokio::test]
async fn public_paths_and_redirects_are_under_the_prefix() {
    let s = server().await;
    let get = |pq: String| {
        let url = s.url(&pq);
        async move { client().get(url).send().await.unwrap() }
    };
    assert_eq!(get(format!("{PREFIX}/hapi")).await.status(), 200, "a public path");
    assert_eq!(get(format!("{PREFIX}/hapi/about")).await.status(), 200, "a public path");
    assert_eq!(get(format!("{PREFIX}/hapi/capabilities")).await.status(), 401, "not public");
    assert_eq!(get(format!("{PREFIX}/hapi/catalog")).await.status(), 401, "not public");
    // Nothing is served outside the prefix.
    assert_ne!(get("/hapi/about".to_owned()).await.status(), 200);
    // The root and a trailing slash lead to the prefixed page.
    for (from, to) in [
        ("/".to_owned(), format!("{PREFIX}/hapi")),
        (PREFIX.to_owned(), format!("{PREFIX}/hapi")),
        (format!("{PREFIX}/hapi/"), format!("{PREFIX}/hapi")),
        (format!("{PREFIX}/hapi/about/?x=1"), format!("{PREFIX}/hapi/about?x=1")),
    ] {
        let r = get(from.clone()).await;
        assert!(r.status().is_redirection(), "{from}: {}", r.status());
        assert_eq!(location(&r), to, "{from}");
    }
    // The built-in issuer's endpoints are under the prefix too, and say so.
    let r = get(format!("{PREFIX}/.well-known/openid-configuration")).await;
    assert_eq!(r.status(), 200);
    let d: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(d["token_endpoint"], format!("http://hapi.test{PREFIX}/oauth/token"));
}

#[tokio::test]
async fn login_round_trip_and_every_link_stay_under_the_prefix() {
    let s = server().await;
    s.issuer().add_user("alice", "correct horse", &[]).unwrap();
    let target = format!("{PREFIX}/hapi/info?dataset=ds1");

    // A browser without a session goes to the prefixed login, which will send it back.
    let r = client().get(s.url(&target)).header("accept", "text/html").send().await.unwrap();
    assert_eq!(r.status(), 302);
    let login = location(&r);
    assert_eq!(login, format!("{PREFIX}/auth/login?return_to={PREFIX}/hapi/info%3Fdataset%3Dds1"));
    let form = client().get(s.url(&login)).send().await.unwrap().text().await.unwrap();
    let actions = page_links(&form);
    assert_eq!(actions, [format!("{PREFIX}/auth/login")], "{form}");
    assert!(form.contains(&format!("value=\"{PREFIX}/hapi/info?dataset=ds1\"")), "{form}");

    let r = crate::support::post_form(
        &client(),
        &s.url(&actions[0]),
        &[("username", "alice"), ("password", "correct horse"), ("return_to", &target)],
        None,
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), target);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains(&format!("Path={PREFIX}")), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let r = client().get(s.url(&target)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Every link of the landing page resolves under the prefix.
    let page = client()
        .get(s.url(&format!("{PREFIX}/hapi")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let local: Vec<String> =
        links(&page).into_iter().filter(|l| !l.starts_with("https://") && !l.starts_with('#')).collect();
    assert!(local.len() >= 8, "{page}");
    let mut logout = None;
    for l in &local {
        assert!(l.starts_with(&format!("{PREFIX}/")), "{l} in {page}");
        if l.ends_with("/auth/logout") {
            logout = Some(l.clone());
            continue;
        }
        let r = client().get(s.url(l)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(r.status(), 200, "{l}");
    }
    // The logout link, its form (posted to the prefixed path), and the page's link back to the login.
    let logout = logout.expect("a logout link");
    let r = client().get(s.url(&logout)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200, "{logout}");
    let form = r.text().await.unwrap();
    assert!(links(&form).contains(&logout), "{form}");
    let r = crate::support::post_form(&client(), &s.url(&logout), &[], Some(&cookie)).await;
    assert_eq!(r.status(), 200, "{logout}");
    let cleared = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cleared.contains(&format!("Path={PREFIX}")), "{cleared}");
    let page = r.text().await.unwrap();
    assert_eq!(page_links(&page), [format!("{PREFIX}/auth/login")], "{page}");
}
