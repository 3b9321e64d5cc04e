//! Issue 6 item 5: every redirect the server answers stays on this server.

use crate::support::TestServer;

/// The `Location` of a raw request line (reqwest would normalise `//host` away).
async fn location(s: &TestServer, target: &str) -> (String, Option<String>) {
    let (status, headers, _) =
        s.raw(&format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).await;
    let loc = headers
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("location")))
        .map(|(_, v)| v.trim().to_owned());
    (status, loc)
}

#[tokio::test]
async fn trailing_slash_redirect_never_names_another_host() {
    let s = TestServer::fixture().await;
    let (status, loc) = location(&s, "/hapi/catalog/?x=1").await;
    assert!(status.contains(" 301 "), "{status}");
    assert_eq!(loc.as_deref(), Some("/hapi/catalog?x=1"));
    for target in [
        "//evil.example/",
        "//evil.example//",
        "//evil.example/hapi/",
        "/%5Cevil.example/",
        "/%2Fevil.example/",
    ] {
        let (status, loc) = location(&s, target).await;
        assert!(loc.is_none(), "{target}: {status} to {loc:?}");
        assert!(status.contains(" 400 ") && status.contains("HAPI 1400"), "{target}: {status}");
    }
}

/// Every byte but letters and digits as `%XX`, so the trick reaches the server intact.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// The tricks browsers apply to a `Location`: tab, CR and LF are deleted, `\` is `/`,
/// leading spaces are dropped, `//host` is another host; and once-encoded forms of them.
const TRICKS: &[&str] = &[
    "//evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    " //evil.example",
    "\t/hapi",
    "/%2F/evil.example",
    "/%2fevil.example",
    "/%5Cevil.example",
    "/%09/evil.example",
    "/hapi?x=%0D%0ASet-Cookie:%20a=b",
    "javascript:alert(1)",
    "https:/\\evil.example",
    "https:evil.example",
    "https://evil.example/",
];

#[tokio::test]
async fn login_return_address_stays_on_this_server() {
    let s = crate::auth::server("").await;
    // The form carries the return address it will use; a good one is kept.
    let form = |html: String| {
        let start = html.find("name=\"return_to\" value=\"").map(|i| i + 24).unwrap_or(0);
        html[start..].split('"').next().unwrap_or_default().to_owned()
    };
    let r = s.get(&format!("/auth/login?return_to={}", encode("/hapi/info?dataset=ds1"))).await;
    assert_eq!(form(r.text().await.unwrap()), "/hapi/info?dataset=ds1");
    for trick in TRICKS {
        let r = s.get(&format!("/auth/login?return_to={}", encode(trick))).await;
        assert_eq!(form(r.text().await.unwrap()), "/hapi", "{trick:?}");
    }
    // And the redirect after a successful login (one hash per login: two are enough).
    let issuer = s.issuer();
    issuer.add_user("alice", "correct horse", &[]).unwrap();
    for trick in ["/\t/evil.example", "/%5Cevil.example"] {
        let r = crate::support::post_form(
            &crate::support::client(),
            &s.url("/auth/login"),
            &[("username", "alice"), ("password", "correct horse"), ("return_to", trick)],
            None,
        )
        .await;
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/hapi", "{trick:?}");
    }
}
