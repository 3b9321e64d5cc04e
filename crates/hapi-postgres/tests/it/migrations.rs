//! Migrations run once, under a lock, refuse a newer schema, and leave nothing behind
//! when a step fails.

use hapi_postgres::{Database, DatabaseSettings, DatabaseUrl, Migrations, PgError};

const DEMO: Migrations = Migrations {
    component: "demo",
    steps: &[
        (1, "CREATE TABLE demo_a (x INT); INSERT INTO demo_a VALUES (1)"),
        // Slow on purpose: a second migrator arrives while the first is inside.
        (2, "SELECT pg_sleep(0.3); CREATE TABLE demo_b (y INT); INSERT INTO demo_a VALUES (2)"),
    ],
};

async fn connect(url: &str) -> Database {
    Database::connect(&DatabaseSettings::new(DatabaseUrl::new(url).unwrap())).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_migrating_at_once_apply_each_step_once() {
    let Some(pg) = hapi_pgtest::shared() else { return };
    let url = pg.fresh_database();
    let (a, b) = (connect(&url).await, connect(&url).await);
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { a.migrate(&DEMO).await }),
        tokio::spawn(async move { b.migrate(&DEMO).await })
    );
    let mut applied = [ra.unwrap().unwrap(), rb.unwrap().unwrap()];
    applied.sort();
    assert_eq!(applied, [0, 2], "one replica applied both steps, the other found them done");
    let db = url.rsplit('/').next().unwrap();
    assert_eq!(pg.psql(db, "SELECT string_agg(x::text, ',' ORDER BY x) FROM demo_a").unwrap(), "1,2");
    assert_eq!(
        pg.psql(
            db,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM hapi_schema WHERE component = 'demo'"
        )
        .unwrap(),
        "1,2"
    );
    // Again: nothing to do.
    assert_eq!(connect(&url).await.migrate(&DEMO).await.unwrap(), 0);
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_an_older_one_upgraded() {
    let Some(pg) = hapi_pgtest::shared() else { return };
    let url = pg.fresh_database();
    let db = connect(&url).await;
    let first = Migrations { component: "demo", steps: &DEMO.steps[..1] };
    assert_eq!(db.migrate(&first).await.unwrap(), 1);
    assert_eq!(db.migrate(&DEMO).await.unwrap(), 1, "the newer binary adds step 2 only");
    let err = db.migrate(&first).await.unwrap_err();
    assert!(matches!(err, PgError::SchemaTooNew { found: 2, known: 1, .. }), "{err}");
    assert!(err.to_string().contains("demo schema is version 2, newer than this server knows (1)"), "{err}");
    // Another component is independent.
    let other = Migrations { component: "other", steps: &[(1, "CREATE TABLE other_t (z INT)")] };
    assert_eq!(db.migrate(&other).await.unwrap(), 1);
    let conn = db.reader().await.unwrap();
    assert_eq!(hapi_postgres::migrate::version(&conn, "demo").await.unwrap(), 2);
    assert_eq!(hapi_postgres::migrate::version(&conn, "other").await.unwrap(), 1);
}

#[tokio::test]
async fn a_failing_step_leaves_nothing_behind() {
    let Some(pg) = hapi_pgtest::shared() else { return };
    let url = pg.fresh_database();
    let db = connect(&url).await;
    let bad = Migrations {
        component: "bad",
        steps: &[
            (1, "CREATE TABLE bad_a (x INT)"),
            (2, "CREATE TABLE bad_b (x INT); SELECT no_such_function()"),
        ],
    };
    let err = db.migrate(&bad).await.unwrap_err();
    assert!(matches!(err, PgError::Migration { version: 2, .. }), "{err}");
    let name = url.rsplit('/').next().unwrap();
    assert_eq!(pg.psql(name, "SELECT to_regclass('bad_a') IS NULL").unwrap(), "t", "step 1 rolled back too");
    let conn = db.reader().await.unwrap();
    assert_eq!(hapi_postgres::migrate::version(&conn, "bad").await.unwrap(), 0);
}

#[tokio::test]
async fn a_wrong_url_or_password_is_a_clear_error() {
    let Some(pg) = hapi_pgtest::shared() else { return };
    let wrong_pw = pg.url().replace(hapi_pgtest::PASSWORD, "wrong-password");
    let err =
        Database::connect(&DatabaseSettings::new(DatabaseUrl::new(&wrong_pw).unwrap())).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("connecting to postgres://hapi@127.0.0.1:{}/postgres", pg.port())),
        "{text}"
    );
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("wrong-password"), "{text}");
    // Nobody listens on port 1.
    let mut settings = DatabaseSettings::new(DatabaseUrl::new("postgres://u:secret@127.0.0.1:1/x").unwrap());
    settings.connect_timeout = std::time::Duration::from_secs(1);
    let err = Database::connect(&settings).await.unwrap_err();
    assert!(err.to_string().starts_with("connecting to postgres://u@127.0.0.1:1/x: "), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
    let missing = pg.url_of("no_such_db");
    let err =
        Database::connect(&DatabaseSettings::new(DatabaseUrl::new(&missing).unwrap())).await.unwrap_err();
    assert!(err.to_string().contains("database \"no_such_db\" does not exist"), "{err}");
}
