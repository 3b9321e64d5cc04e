//! What every [`AuthStore`] must do, as one check each backend's tests run (SQLite here,
//! PostgreSQL in `hapi-postgres`), so the backends cannot drift apart.

use super::{AuthStore, ClientRow, LiveSession, PENDING_SECRET, SessionRow, UserRow};

fn roles(r: &[&str]) -> Vec<String> {
    r.iter().map(|s| (*s).to_owned()).collect()
}

/// Runs every check against an empty `store`; panics on the first broken rule.
pub fn check(store: &dyn AuthStore) {
    clients(store);
    users_and_sessions(store);
    owned_clients(store);
    registration(store);
}

/// Sign-ups: waiting accounts get no session roles and no working clients until they
/// are approved; a new password ends the account's sessions.
fn registration(store: &dyn AuthStore) {
    assert!(store.insert_pending_user("eve@example.org", "pw-e", 200).unwrap());
    assert!(!store.insert_pending_user("eve@example.org", "other", 201).unwrap(), "a name is taken once");
    assert!(!store.insert_user("eve@example.org", "other", &[], 201).unwrap());
    assert_eq!(
        store.user("eve@example.org").unwrap(),
        Some(UserRow { password_hash: "pw-e".into(), roles: vec![], approved: false })
    );
    let listed = store.list_users().unwrap();
    let eve = listed.iter().find(|u| u.name == "eve@example.org").unwrap();
    assert_eq!((eve.created_at, eve.approved_at), (200, None));

    // Neither a session nor a client of a waiting account works.
    let row =
        SessionRow { subject: "eve@example.org".into(), local: true, identity: "{}".into(), expires_at: 900 };
    store.insert_session(&row, "s-eve", 200).unwrap();
    assert_eq!(store.session("s-eve", 210).unwrap().unwrap().roles, None);
    assert!(store.insert_owned_client("eve-c", "h", "eve@example.org", 5, 200).unwrap());
    assert!(!store.client_active("eve-c").unwrap());
    assert!(!store.set_password("eve@example.org", "pw-new").unwrap(), "only an approved account");

    assert!(store.approve_user("eve@example.org", &roles(&["r"]), 220).unwrap());
    assert!(!store.approve_user("eve@example.org", &[], 221).unwrap(), "approved once");
    assert!(!store.approve_user("nobody", &[], 221).unwrap());
    assert!(store.user("eve@example.org").unwrap().unwrap().approved);
    let eve = store.list_users().unwrap().into_iter().find(|u| u.name == "eve@example.org").unwrap();
    assert_eq!((eve.roles, eve.approved_at), (roles(&["r"]), Some(220)));
    assert_eq!(store.session("s-eve", 230).unwrap().unwrap().roles, Some(roles(&["r"])));
    assert!(store.client_active("eve-c").unwrap());

    assert!(store.set_password("eve@example.org", "pw-new").unwrap());
    assert_eq!(store.user("eve@example.org").unwrap().unwrap().password_hash, "pw-new");
    assert_eq!(store.session("s-eve", 230).unwrap(), None, "a new password ends the sessions");
    assert!(!store.set_password("nobody", "x").unwrap());
    let operator_made = store.list_users().unwrap().into_iter().find(|u| u.name == "zoe").unwrap();
    assert_eq!(operator_made.approved_at, Some(5), "an operator's account is approved when made");
}

/// Self-service clients: an owner, a cap, last use, and the owner's account as a
/// condition of being active.
fn owned_clients(store: &dyn AuthStore) {
    assert!(store.insert_user("ann", "pw", &roles(&["r"]), 1).unwrap());
    assert!(store.insert_owned_client("o1", PENDING_SECRET, "ann", 2, 100).unwrap());
    assert!(store.insert_owned_client("o2", PENDING_SECRET, "ann", 2, 101).unwrap());
    assert!(!store.insert_owned_client("o3", PENDING_SECRET, "ann", 2, 102).unwrap(), "the cap holds");
    assert!(!store.insert_owned_client("o1", PENDING_SECRET, "bob", 2, 102).unwrap(), "an id is taken once");
    assert!(store.client("o3").unwrap().is_none());
    let o1 = store.client("o1").unwrap().unwrap();
    assert_eq!(
        (o1.owner.as_deref(), o1.secret_hash.as_str(), o1.roles.len()),
        (Some("ann"), PENDING_SECRET, 0)
    );
    assert_eq!(store.client("a").unwrap().unwrap().owner, None, "an operator's client has no owner");
    assert!(store.replace_secret_hash("o1", PENDING_SECRET, "h1").unwrap(), "the first secret is set once");
    assert!(!store.replace_secret_hash("o1", PENDING_SECRET, "h2").unwrap());

    store.touch_client("o1", 150).unwrap();
    let listed = store.list_clients(None).unwrap();
    let o1 = listed.iter().find(|c| c.id == "o1").unwrap();
    assert_eq!((o1.owner.as_deref(), o1.last_used_at, o1.created_at), (Some("ann"), Some(150), 100));
    let o2 = listed.iter().find(|c| c.id == "o2").unwrap();
    assert_eq!((o2.last_used_at, o2.secret_pending, o1.secret_pending), (None, true, false));
    let anns: Vec<String> = store.list_clients(Some("ann")).unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(anns, ["o1", "o2"], "one owner's, oldest first");
    assert!(store.list_clients(Some("bob")).unwrap().is_empty());

    assert!(store.revoke("o2", 160).unwrap());
    assert!(
        store.insert_owned_client("o3", PENDING_SECRET, "ann", 2, 161).unwrap(),
        "revoked ones do not count"
    );

    assert!(store.client_active("o1").unwrap());
    assert!(store.remove_user("ann").unwrap());
    assert!(!store.client_active("o1").unwrap(), "an owner's removal ends the client");
    assert!(store.insert_user("ann", "pw", &[], 170).unwrap());
    assert!(!store.client_active("o1").unwrap(), "a new account of that name does not get it back");
    assert!(store.client("o3").unwrap().unwrap().revoked);
}

fn clients(store: &dyn AuthStore) {
    assert!(store.insert_client("b", "hash-b", &roles(&["r1", "r2"]), 10).unwrap());
    assert!(!store.insert_client("b", "other", &[], 11).unwrap(), "an id is taken once");
    assert!(store.insert_client("a", "hash-a", &[], 20).unwrap());
    let want =
        ClientRow { secret_hash: "hash-b".into(), roles: roles(&["r1", "r2"]), revoked: false, owner: None };
    assert_eq!(store.client("b").unwrap(), Some(want));
    assert_eq!(store.client("nobody").unwrap(), None);
    let listed = store.list_clients(None).unwrap();
    assert_eq!(listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["b", "a"], "oldest first");
    assert_eq!((listed[0].created_at, listed[0].secret_rotated_at, listed[0].revoked_at), (10, 10, None));

    assert!(!store.replace_secret_hash("b", "stale", "new").unwrap(), "only while the old hash is stored");
    assert!(store.replace_secret_hash("b", "hash-b", "rehashed").unwrap());
    assert_eq!(store.client("b").unwrap().unwrap().secret_hash, "rehashed");
    assert!(store.set_secret("b", "rotated", 30).unwrap());
    let b = store.list_clients(None).unwrap().into_iter().find(|c| c.id == "b").unwrap();
    assert_eq!(b.secret_rotated_at, 30);

    assert!(store.client_active("b").unwrap());
    assert!(store.revoke("b", 40).unwrap());
    assert!(!store.revoke("b", 41).unwrap(), "revoked once");
    assert!(!store.client_active("b").unwrap());
    assert!(!store.client_active("nobody").unwrap());
    assert!(store.client("b").unwrap().unwrap().revoked);
    assert!(!store.set_secret("b", "again", 50).unwrap(), "a revoked client keeps no new secret");
    assert!(!store.replace_secret_hash("b", "rotated", "x").unwrap());
    let b = store.list_clients(None).unwrap().into_iter().find(|c| c.id == "b").unwrap();
    assert_eq!(b.revoked_at, Some(40));
}

fn users_and_sessions(store: &dyn AuthStore) {
    assert!(store.insert_user("zoe", "pw-z", &roles(&["x"]), 5).unwrap());
    assert!(store.insert_user("al", "pw-a", &[], 6).unwrap());
    assert!(!store.insert_user("al", "other", &[], 7).unwrap(), "a name is taken once");
    assert_eq!(
        store.user("zoe").unwrap(),
        Some(UserRow { password_hash: "pw-z".into(), roles: roles(&["x"]), approved: true })
    );
    assert_eq!(store.user("nobody").unwrap(), None);
    assert!(store.set_user_roles("al", &roles(&["y"])).unwrap());
    assert!(!store.set_user_roles("nobody", &[]).unwrap());
    let users = store.list_users().unwrap();
    assert_eq!(
        users.iter().map(|u| (u.name.as_str(), u.roles.clone())).collect::<Vec<_>>(),
        [("al", roles(&["y"])), ("zoe", roles(&["x"]))]
    );

    let session = |subject: &str, local: bool, expires_at: i64| SessionRow {
        subject: subject.into(),
        local,
        identity: format!("{{\"sub\":\"{subject}\"}}"),
        expires_at,
    };
    store.insert_session(&session("al", true, 100), "s-al", 50).unwrap();
    store.insert_session(&session("ext", false, 100), "s-ext", 50).unwrap();
    store.insert_session(&session("zoe", true, 60), "s-zoe", 50).unwrap();
    let live = |id: &str, now: i64| store.session(id, now).unwrap();
    assert_eq!(
        live("s-al", 55),
        Some(LiveSession { identity: "{\"sub\":\"al\"}".into(), local: true, roles: Some(roles(&["y"])) }),
        "a local session carries the account's current roles"
    );
    assert_eq!(live("s-ext", 55).unwrap().roles, None, "not a local account");
    assert!(!live("s-ext", 55).unwrap().local);
    assert_eq!(live("s-zoe", 60), None, "expired at its expiry");
    assert_eq!(live("s-nobody", 55), None);

    store.delete_session("s-ext").unwrap();
    assert_eq!(live("s-ext", 55), None);
    assert!(store.remove_user("al").unwrap());
    assert!(!store.remove_user("al").unwrap());
    assert_eq!(live("s-al", 55), None, "removing an account ends its sessions");
    assert!(store.insert_user("al", "new", &[], 70).unwrap());
    assert_eq!(live("s-al", 55), None, "a new account of that name is not a way back in");
}
