//! The source seam: a dataset read from an async source that cannot count answers byte
//! for byte as the embedded store does, its limits hold before the first byte, and its
//! failures keep their kind (1501 for an upstream).

use std::sync::{Arc, Mutex};

use hapi_source::testing::Opaque;
use hapi_source::{ErrorKind, Source};

use crate::support::{CONFIG, KINDS_CSV, TestServer, code, ds1_csv};

const KINDS: &str = "all%2Fkinds%2Btypes%3A%CE%B1%E2%98%83";

async fn answer(s: &TestServer, pq: &str) -> (u16, Vec<u8>) {
    let r = s.get(pq).await;
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// A server on `config` with the fixture's records, every dataset behind an [`Opaque`]
/// source made by `make`; the sources in catalog order.
async fn opaque(config: &str, make: fn(Arc<dyn Source>) -> Opaque) -> (TestServer, Vec<Arc<Opaque>>) {
    let made = Arc::new(Mutex::new(Vec::new()));
    let keep = made.clone();
    let csv = ds1_csv();
    let data = [("ds1", csv.as_str()), ("all/kinds+types:α☃", KINDS_CSV)];
    let s = TestServer::with_sources(config, &data, move |inner| {
        let o = Arc::new(make(inner));
        keep.lock().unwrap().push(o.clone());
        o
    })
    .await;
    let made = made.lock().unwrap().clone();
    (s, made)
}

#[tokio::test]
async fn a_source_that_cannot_count_answers_as_the_store_does() {
    let store = TestServer::fixture().await;
    let mut queries = Vec::new();
    for format in ["csv", "binary", "json"] {
        for range in [
            "dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-03T00:00Z",
            "dataset=ds1&start=2016-01-01T23:59:30Z&stop=2016-01-02T00:10Z&parameters=Bz",
            "dataset=ds1&start=2016-01-10T00:00Z&stop=2016-01-11T00:00Z",
            &format!("dataset={KINDS}&start=2020-01-01T00:00Z&stop=2020-01-02T00:00Z"),
        ] {
            queries.push(format!("/hapi/data?{range}&format={format}"));
            queries.push(format!("/hapi/data?{range}&format={format}&include=header"));
        }
    }
    for make in [Opaque::hiding as fn(_) -> _, |s| Opaque::bounded(s, 0), |s| Opaque::bounded(s, 100_000)] {
        let (s, _) = opaque(CONFIG, make).await;
        for q in &queries {
            let (want, got) = (answer(&store, q).await, answer(&s, q).await);
            assert_eq!(got.0, want.0, "{q}");
            assert!(
                got.1 == want.1,
                "{q}: {:?}\nwant {:?}",
                String::from_utf8_lossy(&got.1),
                String::from_utf8_lossy(&want.1)
            );
        }
    }
}

#[tokio::test]
async fn limits_hold_for_a_source_that_cannot_count() {
    let config = CONFIG.replace("limits = { max_elements = 10000 }", "limits = { max_elements = 6000 }");
    let csv = ds1_csv();
    let store =
        TestServer::start(&config, &[("ds1", csv.as_str()), ("all/kinds+types:α☃", KINDS_CSV)], None).await;
    let (s, sources) = opaque(&config, Opaque::hiding).await;
    let ds1 = &sources[0];
    // (query, scans it needs: one when the cadence shows the answer fits, else a
    // counting pass first; what the store answers)
    let cases = [
        // (A record holds its time too: two elements with one parameter, four with all.)
        // 1,440 records a cadence apart: fits by the cadence alone.
        ("start=2016-01-01T00:00Z&stop=2016-01-02T00:00Z&parameters=Bx", 1, 1200),
        // The cadence allows 12,960 records, there are 2,880: counted, then served.
        ("start=2016-01-01T00:00Z&stop=2016-01-10T00:00Z&parameters=Bx", 2, 1200),
        // 2,880 records of 4 elements pass the limit of 6,000 elements.
        ("start=2016-01-01T00:00Z&stop=2016-01-10T00:00Z", 2, 1408),
        // Within the first chunk the scan ends: counted exactly, no second pass.
        ("start=2016-01-01T00:00Z&stop=2016-01-01T00:30Z", 1, 1200),
    ];
    for (range, scans, hapi) in cases {
        let q = format!("/hapi/data?dataset=ds1&{range}");
        let before = ds1.scans();
        let (want, got) = (answer(&store, &q).await, answer(&s, &q).await);
        assert_eq!(got, want, "{q}: {}", String::from_utf8_lossy(&got.1));
        assert_eq!(ds1.scans() - before, scans, "{q}: {}", String::from_utf8_lossy(&got.1));
        if hapi == 1408 {
            let v: serde_json::Value = serde_json::from_slice(&got.1).unwrap();
            assert_eq!(code(&v), 1408, "{q}");
        } else {
            assert_eq!(got.0, 200, "{q}: {}", String::from_utf8_lossy(&got.1));
        }
    }
}

#[tokio::test]
async fn a_failing_source_keeps_its_kind_and_tells_no_cause() {
    let (s, sources) = opaque(CONFIG, Opaque::hiding).await;
    let q = "/hapi/data?dataset=ds1&start=2016-01-01T00:00Z&stop=2016-01-01T01:00Z";
    for (kind, hapi) in [(ErrorKind::Upstream, 1501), (ErrorKind::Corrupt, 1500), (ErrorKind::TimedOut, 1500)]
    {
        sources[0].fail_with(Some(kind));
        let (status, v) = s.json(q).await;
        assert_eq!((status, code(&v)), (500, hapi), "{kind:?}: {v}");
        assert!(!v.to_string().contains("injected"), "{v}");
    }
    sources[0].fail_with(None);
    assert_eq!(s.get(q).await.status().as_u16(), 200);
}
