//! A session ends when it should (issue 6, item 6): after logout, after the account is
//! removed or loses its roles, and after a client is revoked, the old cookie or token no
//! longer reads data, within a few seconds (not at the end of its lifetime).

use std::time::{Duration, Instant};

use crate::support::{CONFIG, KINDS_CSV, TestServer, access_rules, client, ds1_csv, login, post_form};

const KINDS: &str = "all/kinds%2Btypes:%CE%B1%E2%98%83";
const DS1: &str = "/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-01T00:03Z";

/// How long a revocation may take to reach a running server: the documented few
/// seconds, with a generous margin for a loaded machine.
const WITHIN: Duration = Duration::from_secs(20);

async fn server() -> TestServer {
    let config = CONFIG.replace(
        "[auth]\nmode = \"open\"\n",
        &format!("[auth]\npublic_url = \"http://hapi.test\"\n{}", access_rules()),
    );
    TestServer::start(&config, &[("ds1", &ds1_csv()), ("all/kinds+types:α☃", KINDS_CSV)], None).await
}

async fn status(s: &TestServer, pq: &str, cookie: &str) -> u16 {
    client().get(s.url(pq)).header("cookie", cookie).send().await.unwrap().status().as_u16()
}

/// Polls until `f` gives `want`; the time it took, or a failure after [`WITHIN`].
async fn until<F, Fut>(what: &str, want: u16, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let t = Instant::now();
    loop {
        let got = f().await;
        if got == want {
            return t.elapsed();
        }
        assert!(t.elapsed() < WITHIN, "{what}: still {got} after {:?}", t.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn logout_ends_a_copied_cookie() {
    let s = server().await;
    s.issuer().add_user("alice", "correct horse", &[]).unwrap();
    let cookie = login(&s, "alice").await;
    let other = login(&s, "alice").await;
    assert_eq!(status(&s, DS1, &cookie).await, 200);
    let r = post_form(&client(), &s.url("/auth/logout"), &[], Some(&cookie)).await;
    assert_eq!(r.status(), 200);
    // The browser dropped it; a copy kept elsewhere is refused at once on this server.
    assert_eq!(status(&s, DS1, &cookie).await, 401, "a copied cookie after logout");
    assert_eq!(status(&s, "/hapi/catalog", &cookie).await, 401);
    // Another session of the same user goes on.
    assert_eq!(status(&s, DS1, &other).await, 200, "only the session that logged out ends");
}

#[tokio::test]
async fn removing_an_account_or_its_roles_ends_its_sessions() {
    let s = server().await;
    let issuer = s.issuer();
    issuer.add_user("alice", "correct horse", &["private".to_owned()]).unwrap();
    issuer.add_user("bob", "correct horse", &["private".to_owned()]).unwrap();
    let alice = login(&s, "alice").await;
    let bob = login(&s, "bob").await;
    let kinds = format!("/hapi/data?dataset={KINDS}&start=2020-01-01&stop=2020-01-01T04:00Z");
    assert_eq!(status(&s, &kinds, &alice).await, 200);
    assert_eq!(status(&s, &kinds, &bob).await, 200);

    // Bob loses his role: the private dataset is gone for his session, ds1 stays.
    assert!(issuer.set_user_roles("bob", &[]).unwrap());
    let took = until("bob without the role", 404, || status(&s, &kinds, &bob)).await;
    eprintln!("a role change reached the session in {took:?}");
    assert_eq!(status(&s, DS1, &bob).await, 200);

    // Alice's account is removed: her session reads nothing any more.
    assert!(issuer.remove_user("alice").unwrap());
    let took = until("alice removed", 401, || status(&s, DS1, &alice)).await;
    eprintln!("a removal reached the session in {took:?}");
    // An account of the same name later is a new account: the old cookie stays dead.
    issuer.add_user("alice", "correct horse", &["private".to_owned()]).unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(status(&s, DS1, &alice).await, 401);
}

#[tokio::test]
async fn a_revoked_clients_tokens_are_refused_within_seconds() {
    let s = server().await;
    let (c, secret) = s.issuer().create_client(None, &[]).unwrap();
    let (keep, keep_secret) = s.issuer().create_client(None, &[]).unwrap();
    let t = s.client_token(&c.id, &secret).await;
    let kept = s.client_token(&keep.id, &keep_secret).await;
    let read = |t: String| {
        let url = s.url(DS1);
        async move { client().get(url).bearer_auth(t).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(read(t.clone()).await, 200);
    assert!(s.issuer().revoke_client(&c.id).unwrap());
    let took = until("a revoked client's token", 401, || read(t.clone())).await;
    eprintln!("a revocation reached the token in {took:?}");
    let r = client().get(s.url(DS1)).bearer_auth(&t).send().await.unwrap();
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    assert_eq!(read(kept).await, 200, "other clients go on");
}
