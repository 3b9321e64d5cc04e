//! The auth tables on PostgreSQL keep the same contract as the embedded SQLite backend,
//! seen from two replicas at once.

use std::sync::Arc;

use hapi_auth::store::{AuthStore, contract};
use hapi_auth::{Issuer, IssuerConfig, Revocation};
use hapi_postgres::auth::PgAuthStore;
use hapi_postgres::{Database, DatabaseSettings, DatabaseUrl};

/// A store as a replica opens it: its own pools, on a runtime of its own (the calls
/// block, as on the server's blocking threads or the command line).
fn open(rt: &tokio::runtime::Runtime, url: &str) -> PgAuthStore {
    rt.block_on(async {
        let db = Database::connect(&DatabaseSettings::new(DatabaseUrl::new(url).unwrap())).await.unwrap();
        PgAuthStore::open(db, tokio::runtime::Handle::current()).await.unwrap()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

#[test]
fn the_postgres_backend_keeps_the_contract() {
    let Some(pg) = hapi_pgtest::shared() else { return };
    let rt = runtime();
    contract::check(&open(&rt, &pg.fresh_database()));
}

#[test]
fn a_client_created_on_one_replica_gets_tokens_from_another_until_revoked_there() {
    let Some(pg) = hapi_pgtest::shared() else { return };
    let url = pg.fresh_database();
    let (rt_a, rt_b) = (runtime(), runtime());
    let (a, b) = (Arc::new(open(&rt_a, &url)), Arc::new(open(&rt_b, &url)));
    let key = tempfile::tempdir().unwrap();
    let cfg = IssuerConfig {
        issuer_url: "http://127.0.0.1:1".into(),
        audience: "hapi".into(),
        scopes: vec!["swe_hapiserver".into()],
        token_ttl: std::time::Duration::from_secs(300),
    };
    let key_file = key.path().join("issuer-key");
    let issuer_a = Issuer::with_store(&key_file, a, cfg.clone()).unwrap();
    let issuer_b = Issuer::with_store(&key_file, b.clone(), cfg).unwrap();
    let (client, secret) = issuer_a.create_client(None, &["r".to_owned()]).unwrap();
    let form: Vec<(String, String)> =
        [("grant_type", "client_credentials"), ("client_id", &client.id), ("client_secret", &secret)]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
    assert!(issuer_b.token(&form, None).is_ok(), "replica b knows a client made through a");
    let revocation_b = Revocation::with_store(b.clone(), std::time::Duration::ZERO);
    assert!(revocation_b.client_active(&client.id).unwrap());
    assert!(issuer_a.revoke_client(&client.id).unwrap());
    assert!(!revocation_b.client_active(&client.id).unwrap(), "revoked through a, refused by b");
    assert!(issuer_b.token(&form, None).is_err());
    assert_eq!(b.list_clients(None).unwrap().len(), 1);
}

#[test]
fn a_lost_database_is_an_error_not_a_hang() {
    let Some(pg) = hapi_pgtest::start_or_skip() else { return };
    let rt = runtime();
    let store = open(&rt, &pg.url());
    assert!(store.insert_client("c", "h", &[], 1).unwrap());
    pg.stop();
    let t = std::time::Instant::now();
    let err = store.client_active("c").unwrap_err().to_string();
    assert!(err.starts_with("auth database: "), "{err}");
    assert!(t.elapsed() < std::time::Duration::from_secs(10), "answered in {:?}", t.elapsed());
    pg.restart();
    assert!(store.client_active("c").unwrap(), "the pool reconnects by itself");
}
