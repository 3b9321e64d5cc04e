//! Issue 9 item 4: self-service machine-to-machine credentials on the portal's
//! Credentials page, through its forms as a browser posts them.

use serde_json::Value;

use crate::support::{CONFIG, TestServer, access_rules, client, ds1_csv, login};

const KINDS: &str = "all/kinds%2Btypes:%CE%B1%E2%98%83";

async fn server() -> TestServer {
    let config = CONFIG.replace(
        "[auth]\nmode = \"open\"\n",
        &format!(
            "[auth]\npublic_url = \"http://hapi.test\"\n[auth.issuer]\nmax_clients_per_user = 2\n{}",
            access_rules()
        ),
    );
    let s = TestServer::start(
        &config,
        &[("ds1", &ds1_csv()), ("all/kinds+types:α☃", crate::support::KINDS_CSV)],
        None,
    )
    .await;
    s.issuer().add_user("alice", "correct horse", &["private".to_owned()]).unwrap();
    s.issuer().add_user("mallory", "correct horse", &[]).unwrap();
    s
}

/// A logged-in browser: its cookies (session and CSRF) and the forms' token.
struct Browser {
    cookies: String,
    token: String,
}

impl Browser {
    async fn open(s: &TestServer, user: &str) -> Browser {
        let session = login(s, user).await;
        let r = client().get(s.url("/portal/credentials")).header("cookie", &session).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let csrf = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let html = r.text().await.unwrap();
        let token =
            html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        Browser { cookies: format!("{session}; {csrf}"), token }
    }

    /// Posts `action` on `id` with the given CSRF field (`None`: the right one).
    async fn post_with(&self, s: &TestServer, action: &str, id: &str, token: Option<&str>) -> (u16, String) {
        let t = token.unwrap_or(&self.token);
        let r = client()
            .post(s.url("/portal/credentials"))
            .header("cookie", &self.cookies)
            .form(&[("action", action), ("id", id), ("csrf", t)])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn post(&self, s: &TestServer, action: &str, id: &str) -> (u16, String) {
        self.post_with(s, action, id, None).await
    }

    async fn page(&self, s: &TestServer) -> String {
        client()
            .get(s.url("/portal/credentials"))
            .header("cookie", &self.cookies)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// The text of the element with `id` (`<code id="...">text</code>`).
fn code(html: &str, id: &str) -> String {
    html.split(&format!("id=\"{id}\">"))
        .nth(1)
        .unwrap_or_else(|| panic!("no {id} in {html}"))
        .split('<')
        .next()
        .unwrap()
        .to_owned()
}

/// The client ids listed on the page.
fn listed(html: &str) -> Vec<String> {
    html.split("<tr><td data-label=\"client_id\"><code>")
        .skip(1)
        .map(|r| r.split('<').next().unwrap().to_owned())
        .collect()
}

/// Status and body of the seed's token request.
async fn token(s: &TestServer, id: &str, secret: &str) -> (u16, Value) {
    let r = client()
        .post(s.url("/oauth/token"))
        .form(&[
            ("client_id", id),
            ("client_secret", secret),
            ("grant_type", "client_credentials"),
            ("scope", "swe_hapiserver"),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), serde_json::from_slice(&r.bytes().await.unwrap()).unwrap())
}

async fn status_with(s: &TestServer, pq: &str, t: &str) -> u16 {
    client().get(s.url(pq)).bearer_auth(t).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_user_creates_reads_once_rotates_and_revokes_their_own_client() {
    let audit = crate::support::audit_log();
    let s = server().await;
    let alice = Browser::open(&s, "alice").await;
    let (st, html) = alice.post(&s, "create", "").await;
    assert_eq!(st, 200, "{html}");
    let ids = listed(&html);
    assert_eq!(ids.len(), 1);
    let id = ids[0].clone();
    assert!(html.contains(&format!("Client {id} created")));
    assert!(html.contains("Retrieve the secret"));

    // The secret once; a second retrieval is refused and points to rotation.
    let (st, html) = alice.post(&s, "reveal", &id).await;
    assert_eq!(st, 200, "{html}");
    assert_eq!(code(&html, "client-id"), id);
    let secret = code(&html, "client-secret");
    assert!(code(&html, "token-curl").contains(&format!("-d client_secret={secret}")));
    let (st, html) = alice.post(&s, "reveal", &id).await;
    assert_eq!(st, 409);
    assert!(html.contains("Rotate") && !html.contains(&secret), "{html}");
    assert!(!alice.page(&s).await.contains(&secret), "never shown again");

    // A token with the seed's request reads data, with the owner's roles.
    let (st, body) = token(&s, &id, &secret).await;
    assert_eq!(st, 200, "{body}");
    let t = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        status_with(&s, "/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-01T00:03Z", &t).await,
        200
    );
    assert_eq!(status_with(&s, &format!("/hapi/info?dataset={KINDS}"), &t).await, 200);
    assert!(!alice.page(&s).await.contains("<td>never</td><td>never</td>"), "the last use is shown");

    // A role taken from the user leaves their client too.
    assert!(s.issuer().set_user_roles("alice", &[]).unwrap());
    let (_, body) = token(&s, &id, &secret).await;
    let t = body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(status_with(&s, &format!("/hapi/info?dataset={KINDS}"), &t).await, 200);
    assert_eq!(status_with(&s, "/hapi/info?dataset=ds1", &t).await, 200);

    // Rotate: the new secret works, the old is refused.
    let (st, html) = alice.post(&s, "rotate", &id).await;
    assert_eq!(st, 200, "{html}");
    let new = code(&html, "client-secret");
    assert_ne!(new, secret);
    assert_eq!(token(&s, &id, &secret).await.0, 401);
    assert_eq!(token(&s, &id, &new).await.0, 200);

    // Revoke: token requests are refused.
    let (st, html) = alice.post(&s, "revoke", &id).await;
    assert_eq!(st, 200, "{html}");
    assert!(html.contains("revoked"));
    assert_eq!(token(&s, &id, &new).await.0, 401);
    assert_eq!(alice.post(&s, "rotate", &id).await.0, 404);

    // The operator's list shows the owner.
    let all = s.issuer().list_clients().unwrap();
    assert_eq!(all[0].owner.as_deref(), Some("alice"));
    let log = String::from_utf8_lossy(&audit.lock().unwrap()).into_owned();
    for event in
        ["client_created", "secret_revealed", "secret_reveal_refused", "client_rotated", "client_revoked"]
    {
        assert!(
            log.lines().any(|l| l.contains(event) && l.contains(&id) && l.contains("alice")),
            "{event}: {log}"
        );
    }
}

#[tokio::test]
async fn another_user_can_neither_see_nor_act_on_a_client() {
    let s = server().await;
    let alice = Browser::open(&s, "alice").await;
    let mallory = Browser::open(&s, "mallory").await;
    let (_, html) = alice.post(&s, "create", "").await;
    let id = listed(&html)[0].clone();
    assert!(!mallory.page(&s).await.contains(&id));
    let (unknown_status, unknown) = mallory.post(&s, "revoke", "no-such-client").await;
    for action in ["reveal", "rotate", "revoke"] {
        let (st, html) = mallory.post(&s, action, &id).await;
        assert_eq!(
            (st, html.replace(&id, "")),
            (unknown_status, unknown.clone()),
            "{action}: as for an unknown id"
        );
    }
    assert_eq!(unknown_status, 404);
    // Still alice's, untouched: its first secret is still to be shown.
    assert_eq!(alice.post(&s, "reveal", &id).await.0, 200);
}

#[tokio::test]
async fn posts_without_the_right_csrf_token_change_nothing() {
    let s = server().await;
    let alice = Browser::open(&s, "alice").await;
    for bad in ["", "forged"] {
        let (st, _) = alice.post_with(&s, "create", "", Some(bad)).await;
        assert_eq!(st, 403);
    }
    // No field at all.
    let r = client()
        .post(s.url("/portal/credentials"))
        .header("cookie", &alice.cookies)
        .form(&[("action", "create")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(s.issuer().owned_clients("alice").unwrap().is_empty());
}

#[tokio::test]
async fn the_cap_holds_and_revoked_clients_do_not_count() {
    let s = server().await;
    let alice = Browser::open(&s, "alice").await;
    assert_eq!(alice.post(&s, "create", "").await.0, 200);
    let (_, html) = alice.post(&s, "create", "").await;
    let (st, html3) = alice.post(&s, "create", "").await;
    assert_eq!(st, 409, "{html3}");
    assert!(html3.contains("the most allowed"));
    assert_eq!(alice.post(&s, "revoke", &listed(&html)[0]).await.0, 200);
    assert_eq!(alice.post(&s, "create", "").await.0, 200);
}

#[tokio::test]
async fn a_machine_client_cannot_make_clients_and_a_removed_users_clients_are_refused() {
    let s = server().await;
    let alice = Browser::open(&s, "alice").await;
    let (_, html) = alice.post(&s, "create", "").await;
    let id = listed(&html)[0].clone();
    let (_, html) = alice.post(&s, "reveal", &id).await;
    let secret = code(&html, "client-secret");
    let t = token(&s, &id, &secret).await.1["access_token"].as_str().unwrap().to_owned();
    // Its own token reaches the page but manages nothing.
    let r = client().get(s.url("/portal/credentials")).bearer_auth(&t).send().await.unwrap();
    assert!(!r.text().await.unwrap().contains("New M2M client"));
    let r = client()
        .post(s.url("/portal/credentials"))
        .bearer_auth(&t)
        .form(&[("action", "create"), ("csrf", &alice.token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(s.issuer().owned_clients("alice").unwrap().len(), 1, "nothing made");
    assert!(s.issuer().remove_user("alice").unwrap());
    assert_eq!(token(&s, &id, &secret).await.0, 401);
}
