//! Issue 9 item 5: sign-up with approval, and the password change, through the forms as
//! a browser posts them.

use std::net::IpAddr;

use crate::support::{TestServer, client, csrf, post_form};

const REGISTRATION: &str = "[auth.issuer]\nallow_registration = true";

/// A client whose connections come from `from` (any 127.x address is loopback), so each
/// test's sign-ups count against an address of its own.
fn client_from(from: &str) -> reqwest::Client {
    let ip: IpAddr = from.parse().unwrap();
    reqwest::Client::builder().local_address(ip).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")) && !c.ends_with('='))
}

async fn sign_up(
    c: &reqwest::Client,
    s: &TestServer,
    email: &str,
    password: &str,
    confirm: &str,
) -> (u16, String) {
    let r = post_form(
        c,
        &s.url("/auth/register"),
        &[("email", email), ("password", password), ("confirm", confirm)],
        None,
    )
    .await;
    let status = r.status().as_u16();
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    (status, r.text().await.unwrap())
}

async fn log_in(c: &reqwest::Client, s: &TestServer, user: &str, password: &str) -> reqwest::Response {
    post_form(
        c,
        &s.url("/auth/login"),
        &[("username", user), ("password", password), ("return_to", "/hapi")],
        None,
    )
    .await
}

#[tokio::test]
async fn registration_is_off_unless_configured() {
    let s = crate::auth::server("").await;
    let r = client().get(s.url("/auth/register")).send().await.unwrap();
    assert_ne!(r.status(), 200);
    let r = client().post(s.url("/auth/register")).form(&[("email", "a@b.org")]).send().await.unwrap();
    assert_ne!(r.status(), 200);
    let (_, login) = s.text("/auth/login").await;
    assert!(!login.contains("/auth/register"), "no sign-up link: {login}");
    assert!(s.issuer().list_users().unwrap().is_empty());
}

#[tokio::test]
async fn a_sign_up_waits_for_approval_and_then_reads_what_its_roles_allow() {
    let s = crate::auth::server(REGISTRATION).await;
    let c = client_from("127.0.0.21");
    let (_, login) = s.text("/auth/login").await;
    assert!(login.contains("href=\"/auth/register\""), "{login}");

    let (status, page) = sign_up(&c, &s, "  Eve@Example.ORG ", "a long password", "a long password").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<code>eve@example.org</code> waits for an operator"), "{page}");
    let users = s.issuer().list_users().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].name.as_str(), users[0].approved_at, users[0].roles.len()),
        ("eve@example.org", None, 0)
    );

    // The right password of a waiting account: no session, and a message that says why.
    let r = log_in(&c, &s, "eve@example.org", "a long password").await;
    assert_eq!(r.status(), 403);
    assert!(set_cookie(&r, "hapi_session").is_none());
    assert!(r.text().await.unwrap().contains("waits for an operator's approval"));
    let r = log_in(&c, &s, "eve@example.org", "the wrong password").await;
    assert_eq!(r.status(), 401, "a wrong password says nothing of the account");

    // Signing up again for a taken address answers the same and changes nothing.
    let (status, again) = sign_up(&c, &s, "eve@example.org", "another password", "another password").await;
    assert_eq!((status, again), (200, page));
    assert_eq!(s.issuer().list_users().unwrap().len(), 1);

    s.issuer().approve_user("eve@example.org", &[]).unwrap();
    assert!(s.issuer().approve_user("eve@example.org", &[]).is_err(), "approved once");
    assert!(log_in(&c, &s, "eve@example.org", "another password").await.status() == 401);
    let r = log_in(&c, &s, "eve@example.org", "a long password").await;
    assert_eq!(r.status(), 303);
    let session = set_cookie(&r, "hapi_session").expect("a session");
    let catalog: serde_json::Value = client()
        .get(s.url("/hapi/catalog"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> =
        catalog["catalog"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["ds1"], "no roles: only what every account reads");
}

#[tokio::test]
async fn bad_sign_ups_are_refused_with_a_reason_and_record_nothing() {
    let s = crate::auth::server(REGISTRATION).await;
    let c = client_from("127.0.0.22");
    let long = "x".repeat(10_000);
    for (email, password, confirm, why) in [
        ("<script>alert(1)</script>@x.org", "a long password", "a long password", "e-mail address"),
        ("ann", "a long password", "a long password", "e-mail address"),
        (long.as_str(), "a long password", "a long password", "e-mail address"),
        ("ann@example.org", "short", "short", "8 to 1024"),
        ("ann@example.org", &long, &long, "8 to 1024"),
        ("ann@example.org", "a long password", "another password", "differ"),
    ] {
        let (status, page) = sign_up(&c, &s, email, password, confirm).await;
        assert_eq!(status, 400, "{email:.40}: {page}");
        assert!(page.contains(why), "{email:.40}: {page}");
        assert!(!page.contains("<script>alert"), "escaped: {page}");
        assert!(!page.contains(password) || password.len() < 8, "passwords are never shown again");
    }
    // Forged posts: no CSRF token, or another browser's.
    let r = c
        .post(s.url("/auth/register"))
        .form(&[
            ("email", "ann@example.org"),
            ("password", "a long password"),
            ("confirm", "a long password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (jar, _) = csrf(&c, &s.url("/auth/register"), None).await;
    let (_, other_token) = csrf(&c, &s.url("/auth/register"), None).await;
    let r = c
        .post(s.url("/auth/register"))
        .header("cookie", &jar)
        .form(&[
            ("email", "ann@example.org"),
            ("password", "a long password"),
            ("confirm", "a long password"),
            ("csrf", other_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(s.issuer().list_users().unwrap().is_empty());
}

#[tokio::test]
async fn sign_ups_are_limited_per_source_address_and_per_e_mail_address() {
    let s = crate::auth::server(REGISTRATION).await;
    let c = client_from("127.0.0.23");
    for n in 0..5 {
        let (status, _) =
            sign_up(&c, &s, &format!("u{n}@example.org"), "a long password", "a long password").await;
        assert_eq!(status, 200);
    }
    let r = post_form(
        &c,
        &s.url("/auth/register"),
        &[("email", "u5@example.org"), ("password", "a long password"), ("confirm", "a long password")],
        None,
    )
    .await;
    assert_eq!(r.status(), 429);
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 60);
    assert!(r.text().await.unwrap().contains("Too many sign-ups"));
    // One e-mail address, from three other addresses: then no more, from anywhere.
    for from in ["127.0.0.24", "127.0.0.25", "127.0.0.26"] {
        let (status, _) =
            sign_up(&client_from(from), &s, "same@example.org", "a long password", "a long password").await;
        assert_eq!(status, 200);
    }
    let (status, _) =
        sign_up(&client_from("127.0.0.27"), &s, "same@example.org", "a long password", "a long password")
            .await;
    assert_eq!(status, 429);
    let (status, _) =
        sign_up(&client_from("127.0.0.27"), &s, "fresh@example.org", "a long password", "a long password")
            .await;
    assert_eq!(status, 200, "the limit of one e-mail address stops no other");
    assert_eq!(s.issuer().list_users().unwrap().len(), 7);
}

#[tokio::test]
async fn a_password_change_ends_every_session_and_keeps_this_browser_logged_in() {
    let s = crate::auth::server("").await;
    s.issuer().add_user("alice", "correct horse", &[]).unwrap();
    let c = client_from("127.0.0.28");
    let first = set_cookie(&log_in(&c, &s, "alice", "correct horse").await, "hapi_session").unwrap();
    let second = set_cookie(&log_in(&c, &s, "alice", "correct horse").await, "hapi_session").unwrap();

    let page = client().get(s.url("/portal/account")).header("cookie", &first).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(page.text().await.unwrap().contains("Logged in as <code>alice</code>"));

    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        let (c, url, first) = (c.clone(), s.url("/portal/account"), first.clone());
        async move {
            let r = post_form(
                &c,
                &url,
                &[("current", current), ("password", new), ("confirm", confirm)],
                Some(&first),
            )
            .await;
            let status = r.status().as_u16();
            let cookie = set_cookie(&r, "hapi_session");
            (status, cookie, r.text().await.unwrap())
        }
    };
    let (status, _, body) = change("wrong password", "a new password", "a new password").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("current password is wrong"));
    assert_eq!(change("correct horse", "short", "short").await.0, 400);
    assert_eq!(change("correct horse", "a new password", "another one").await.0, 400);
    // A forged post: no CSRF token.
    let r = c
        .post(s.url("/portal/account"))
        .header("cookie", &first)
        .form(&[("current", "correct horse"), ("password", "a new password"), ("confirm", "a new password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(s.issuer().verify_user("alice", "correct horse").is_ok(), "nothing changed yet");

    let (status, fresh, body) = change("correct horse", "a new password", "a new password").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Your password is changed"));
    let fresh = fresh.expect("a new session for this browser");
    let read = |cookie: String| {
        let url = s.url("/hapi/catalog");
        async move { client().get(url).header("cookie", cookie).send().await.unwrap().status() }
    };
    assert_eq!(read(second).await, 401, "the other session ended");
    assert_eq!(read(fresh).await, 200);
    assert_eq!(log_in(&c, &s, "alice", "correct horse").await.status(), 401);
    assert_eq!(log_in(&c, &s, "alice", "a new password").await.status(), 303);

    // A machine client's token has no password to change here.
    let token = crate::auth::token(&s, &[]).await;
    let r = client()
        .post(s.url("/portal/account"))
        .bearer_auth(token)
        .form(&[("current", "x"), ("password", "a new password"), ("confirm", "a new password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
