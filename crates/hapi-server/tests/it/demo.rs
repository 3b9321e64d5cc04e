//! The demo catalog: the seed page's requests, and the verifier's request sequence
//! (digest section 4.3) on every dataset.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use hapi_server::config::Overrides;
use hapi_server::{AppState, demo};
use hapi_store::{SqliteStore, Store};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::support::TestServer;

const NGRM: &str = "spase://SSA/NumericalData/D3S/d3s_mtgs1_ngrm_science_ep_l1_bt_v1";

/// One demo server for all tests here: generating a million records takes a few seconds.
async fn server() -> &'static TestServer {
    static SERVER: OnceCell<TestServer> = OnceCell::const_new();
    SERVER
        .get_or_init(|| async {
            let dir = tempfile::tempdir().unwrap();
            let o = Overrides { data_dir: Some(dir.path().join("data")), ..Default::default() };
            let mut config = demo::config(&o).unwrap();
            // The spec's behaviour here; access control has its own tests.
            config.auth.mode = hapi_server::config::ModeSettings::Open;
            config.auth.rules = hapi_auth::AccessRules::allow_all();
            let store = SqliteStore::open(&config.data_dir).unwrap();
            let mut total = 0;
            for d in &config.datasets {
                store.open_dataset(&d.info.id, &hapi_store::Layout::of(&d.info)).unwrap();
                total += demo::populate(&store, &d.info, d.demo.as_deref().unwrap()).unwrap();
            }
            assert!(total >= 1_000_000, "the demo holds at least a million records: {total}");
            drop(store);
            // A server of its own runtime, so it outlives each test's runtime.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Runtime::new().unwrap();
                rt.block_on(async move {
                    let s = TestServer::with_config(config, &[], None, dir).await;
                    tx.send(s).unwrap();
                    std::future::pending::<()>().await;
                });
            });
            rx.recv().unwrap()
        })
        .await
}

fn enc(id: &str) -> String {
    id.replace('%', "%25").replace('+', "%2B").replace('&', "%26")
}

#[tokio::test]
async fn seed_page_requests() {
    let s = server().await;
    let (st, caps) = s.json("/hapi/capabilities").await;
    assert_eq!(st, 200);
    assert_eq!(caps["status"]["code"], 1200);
    let (_, cat) = s.json("/hapi/catalog").await;
    let ids: Vec<&str> =
        cat["catalog"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&NGRM) && ids.contains(&"spase://SSA/NumericalData/D3S/d3s_gk2a_sosmag_recalib"));

    let (st, info) = s.json(&format!("/hapi/info?dataset={NGRM}")).await;
    assert_eq!(st, 200);
    assert_eq!(info["startDate"], "2025-08-19T09:00Z");
    assert_eq!(info["stopDate"], "2050-01-01T00:00Z");
    assert_eq!(info["cadence"], "PT1M30S");
    assert_eq!(info["parameters"][1]["fill"], "-1.0e+31");

    let q = format!(
        "/hapi/data?dataset={NGRM}&parameters=utc,feio_1,odi_unilib_mlt&start=2026-03-25T12:00:00Z&stop=2026-03-25T12:05:00Z"
    );
    let (_, json) = s.json(&format!("{q}&format=json")).await;
    let data = json["data"].as_array().unwrap();
    let times: Vec<&str> = data.iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(times, ["2026-03-25T12:00:40.067Z", "2026-03-25T12:02:10.067Z", "2026-03-25T12:03:40.067Z"]);
    assert_eq!(json["parameters"].as_array().unwrap().len(), 3);
    let (_, csv) = s.text(&format!("{q}&format=csv&include=header")).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("#{"));
    assert_eq!(lines.len(), 4);
    assert!(lines[1].starts_with("2026-03-25T12:00:40.067Z,"));
    let mlt: f64 = lines[1].rsplit(',').next().unwrap().parse().unwrap();
    assert!((mlt - 11.6639).abs() < 0.01, "MLT as on the seed page: {mlt}");
}

/// The verifier's sequence for one dataset.
async fn verify_dataset(s: &TestServer, id: &str) {
    let e = enc(id);
    let (st, info) = s.json(&format!("/hapi/info?id={e}")).await;
    assert_eq!(st, 200, "{id}");
    let (_, info2) = s.json(&format!("/hapi/info?dataset={e}")).await;
    assert_eq!(info, info2, "{id}: id and dataset agree");
    let params = info["parameters"].as_array().unwrap();
    let second = params[1]["name"].as_str().unwrap();
    let (_, sub) = s.json(&format!("/hapi/info?id={e}&parameters={second}")).await;
    let sub_params = sub["parameters"].as_array().unwrap();
    assert_eq!(sub_params.len(), 2);
    assert_eq!(sub_params[1], params[1], "subset parameter objects are identical");
    for (k, v) in info.as_object().unwrap() {
        if k != "parameters" {
            assert_eq!(&sub[k], v, "{id}: subset keeps {k}");
        }
    }

    let start = info["sampleStartDate"].as_str().unwrap();
    let stop = info["sampleStopDate"].as_str().unwrap();
    let base = format!("/hapi/data?id={e}&time.min={start}&time.max={stop}");
    let r = s.get(&base).await;
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    assert!(csv.as_bytes()[0].is_ascii_digit() && csv.ends_with('\n') && !csv.ends_with("\n\n"), "{id}");
    let width: usize = 1 + params[1..]
        .iter()
        .map(|p| p["size"].as_array().map_or(1, |s| s.iter().map(|x| x.as_u64().unwrap() as usize).product()))
        .sum::<usize>();
    let len = params[0]["length"].as_u64().unwrap() as usize;
    let mut last = String::new();
    for line in csv.lines() {
        let t = &line[..len];
        assert!(line.split(',').count() >= width, "{id}: columns in {line}");
        assert!(t > last.as_str(), "{id}: strictly increasing times");
        assert!(t >= start && t < stop, "{id}: {t} within [{start}, {stop})");
        last = t.to_owned();
    }

    // The same request in the other time family.
    let doy = |t: &str| -> String {
        let ns = hapi_core::time::parse(t).unwrap();
        let fmt = hapi_core::time::TimeFormat::doy(28).unwrap();
        hapi_core::time::format_string(ns, fmt)
    };
    let (_, other) =
        s.text(&format!("/hapi/data?id={e}&time.min={}&time.max={}", doy(start), doy(stop))).await;
    assert_eq!(other, csv, "{id}: DOY request gives identical bytes");
    let (_, empty) = s.text(&format!("{base}&parameters=")).await;
    assert_eq!(empty, csv);
    let (_, head) = s.text(&format!("{base}&include=header")).await;
    let (h, rest) = head.split_once('\n').unwrap();
    let h: Value = serde_json::from_str(&h[1..]).unwrap();
    assert_eq!(h["format"], "csv");
    assert_eq!(h["parameters"], info["parameters"]);
    assert_eq!(rest, csv);
    for fmt in ["binary", "json"] {
        let r = s.get(&format!("{base}&format={fmt}")).await;
        assert_eq!(r.status(), 200, "{id} {fmt}");
    }

    // The 1201 probe just after startDate.
    let sd = hapi_core::time::parse(info["startDate"].as_str().unwrap()).unwrap();
    let fmt = hapi_core::time::TimeFormat::ymd(24).unwrap();
    let (a, b) = (
        hapi_core::time::format_string(sd + 1_000_000, fmt),
        hapi_core::time::format_string(sd + 3_000_000, fmt),
    );
    let r = s.get(&format!("/hapi/data?id={e}&time.min={a}&time.max={b}")).await;
    assert_eq!(r.status(), 200, "{id}: 1201 probe");

    for p in &params[1..] {
        let name = p["name"].as_str().unwrap();
        let (st, one) = s.text(&format!("{base}&parameters={name}")).await;
        assert_eq!(st, 200, "{id} {name}");
        assert_eq!(one.lines().count(), csv.lines().count(), "{id} {name}");
    }
}

#[tokio::test]
async fn verifier_sequence_on_every_demo_dataset() {
    let s = server().await;
    let (_, cat) = s.json("/hapi/catalog").await;
    for item in cat["catalog"].as_array().unwrap() {
        verify_dataset(s, item["id"].as_str().unwrap()).await;
    }
    let (st, v) = s.json("/hapi/info?id=a_test_of_an_invalid_id_by_verifier-nodejs").await;
    assert_eq!((st, v["status"]["code"].as_i64()), (404, Some(1406)));
}

#[tokio::test]
async fn demo_state_is_consistent() {
    let s = server().await;
    let state: &Arc<AppState> = &s.state;
    assert_eq!(state.datasets.len(), 4);
    let (_, about) = s.json("/hapi/about").await;
    assert_eq!(about["id"], "SWE-HAPI-demo");
    assert!(about["dataTest"]["query"]["dataset"].is_string());
    let store: &Arc<dyn Store> = &s.store;
    assert!(store.extent(NGRM).unwrap().is_some());
}

/// The demo's whole catalog re-served by a second server (`kind = "hapi"`, `catalog =
/// true`) passes the same sequence.
#[tokio::test]
async fn verifier_sequence_through_a_server_reserving_the_demo() {
    let upstream = server().await;
    let config = format!(
        "[auth]\nmode = \"open\"\n\n[[upstream]]\nname = \"demo\"\nurl = \"{}\"\ncatalog = true\n",
        upstream.url("/hapi")
    );
    let proxy = TestServer::start(&config, &[], None).await;
    let (_, theirs) = upstream.json("/hapi/catalog").await;
    let (_, ours) = proxy.json("/hapi/catalog").await;
    assert_eq!(ours["catalog"], theirs["catalog"], "the same ids and titles");
    for item in ours["catalog"].as_array().unwrap() {
        verify_dataset(&proxy, item["id"].as_str().unwrap()).await;
    }
}

/// The same sequence on the fixture's datasets from every source (files, a source that
/// cannot count, an upstream server, CDF files when the venv has cdflib).
#[tokio::test]
async fn verifier_sequence_on_every_source() {
    for (source, s) in TestServer::each_source().await {
        println!("source: {source}");
        let (_, cat) = s.json("/hapi/catalog").await;
        for item in cat["catalog"].as_array().unwrap() {
            verify_dataset(&s, item["id"].as_str().unwrap()).await;
        }
    }
}

/// Issue 7 item 4: a live demo dataset is caught up to now, then grows as the clock
/// moves; `stopDate` follows at once and `stop` near now returns the new records.
#[tokio::test]
async fn the_live_demo_grows_with_the_clock() {
    const GC: &str = "spase://SSA/NumericalData/D3S/d3s_mtgi1_ngrm_science_ep_l1_gc_v1";
    let dir = tempfile::tempdir().unwrap();
    let o = Overrides { data_dir: Some(dir.path().join("data")), ..Default::default() };
    let mut config = demo::config(&o).unwrap();
    config.auth.mode = hapi_server::config::ModeSettings::Open;
    config.auth.rules = hapi_auth::AccessRules::allow_all();
    config.datasets.retain(|d| d.info.id == GC);
    {
        let store = SqliteStore::open(&config.data_dir).unwrap();
        let d = &config.datasets[0];
        store.open_dataset(GC, &hapi_store::Layout::of(&d.info)).unwrap();
        demo::populate(&store, &d.info, "ngrm_gc").unwrap();
    }
    let s = TestServer::with_config(config, &[], None, dir).await;
    let at = |t: &str| hapi_core::time::parse(t).unwrap();
    let fmt = s.state.dataset(GC).unwrap().spec.info.time_format;
    let show = |t: i64| hapi_core::time::format_string(t, fmt);
    let stop_date = || async { s.json(&format!("/hapi/info?dataset={GC}")).await.1["stopDate"].clone() };
    // The fixed sample's last record is 2026-10-31T23:58:55.500Z, one every 90 s.
    assert_eq!(stop_date().await, show(at("2026-11-01T00:00:25.500Z")));

    // Start-up after a downtime: caught up to the clock.
    let now = Arc::new(std::sync::atomic::AtomicI64::new(at("2026-11-01T00:10:00Z")));
    assert_eq!(hapi_server::live::catch_up(&s.state, now.load(Ordering::SeqCst)).await.unwrap(), 7);
    assert_eq!(stop_date().await, show(at("2026-11-01T00:10:55.500Z")), "published at once");

    // Then as time passes.
    let (_keep, states) = tokio::sync::watch::channel(s.state.clone());
    let clock = now.clone();
    let task = hapi_server::live::spawn(
        states,
        Arc::new(move || clock.load(Ordering::SeqCst)),
        std::time::Duration::from_millis(20),
    );
    now.store(at("2026-11-01T00:13:00Z"), Ordering::SeqCst);
    let moved = show(at("2026-11-01T00:13:55.500Z"));
    let t0 = std::time::Instant::now();
    while stop_date().await != moved {
        assert!(t0.elapsed() < std::time::Duration::from_secs(2), "stopDate did not move");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (st, csv) = s
        .text(&format!(
            "/hapi/data?dataset={GC}&start=2026-11-01T00:10:30Z&stop={moved}&parameters=odi_unilib_mlt"
        ))
        .await;
    assert_eq!(st, 200);
    let times: Vec<&str> = csv.lines().map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(times, [show(at("2026-11-01T00:10:55.500Z")), show(at("2026-11-01T00:12:25.500Z"))], "{csv}");
    task.abort();
}
