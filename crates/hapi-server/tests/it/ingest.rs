//! `hapi-server ingest`: good files, bad lines, growth while serving.

use std::io::Cursor;

use hapi_server::ingest::ingest;

use crate::support::{TestServer, code};

#[tokio::test]
async fn a_bad_line_names_itself_and_stores_nothing() {
    let s = TestServer::fixture().await;
    let info = &s.state.dataset("ds1").unwrap().spec.info;
    let before = s.store.extent("ds1").unwrap();
    let cases = [
        ("2016-01-03T00:00:00.000Z,1,2,3\n2016-01-03T00:01:00.000Z,1,2\n", "line 2"),
        ("2016-01-03T00:00:00.000Z,1,2,3\n2016-01-03T00:01:00.000Z,1,x,3\n", "line 2"),
        ("2016-01-03T00:00:00.000Z,1,2,3\n2016-01-02T00:01:00.000Z,1,2,3\n", "line 2"),
        ("2016-01-01T00:00:00.000Z,1,2,3\n", "line 1"),
        ("2016-01-03T00:00:00.000Z,1,2,3\n2016-13-03T00:01:00.000Z,1,2,3\n", "line 2"),
        ("2016-01-03T00:00:00.000Z,1,2,3\n2016-01-03T00:01:00.0001Z,1,2,3\n", "line 2"),
        ("2016-01-03T00:00:00.000Z,1,2,inf\n", "line 1"),
    ];
    for (csv, place) in cases {
        let e = ingest(s.store.as_ref(), info, &mut Cursor::new(csv)).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains(place), "{csv:?}: {msg}");
        assert_eq!(s.store.extent("ds1").unwrap(), before, "nothing stored: {csv:?}");
    }
}

#[tokio::test]
async fn appends_show_up_while_serving() {
    let s = TestServer::fixture().await;
    let info = s.state.dataset("ds1").unwrap().spec.info.clone();
    let (_, before) = s.json("/hapi/info?dataset=all/kinds%2Btypes:%CE%B1%E2%98%83").await;
    assert_eq!(before["stopDate"], "2020-01-01T04:00:00.000Z", "stopDate one cadence after the last record");

    // Readers run while a writer appends; every response is a whole, ordered answer.
    let reader = {
        let url = s.url("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-02T12:00Z&parameters=Bx");
        tokio::spawn(async move {
            let mut sizes = Vec::new();
            for _ in 0..20 {
                let t = reqwest::get(&url).await.unwrap().text().await.unwrap();
                assert!(t.ends_with('\n'));
                sizes.push(t.lines().count());
            }
            sizes
        })
    };
    let mut csv = String::new();
    for i in 0..600u32 {
        csv.push_str(&format!("2016-01-03T{:02}:{:02}:00.000Z,1,2,3\n", i / 60, i % 60));
    }
    let store = s.store.clone();
    let n =
        tokio::task::spawn_blocking(move || ingest(store.as_ref(), &info, &mut Cursor::new(csv)).unwrap())
            .await
            .unwrap();
    assert_eq!(n, 600);
    let sizes = reader.await.unwrap();
    assert!(sizes.iter().all(|&n| n == 2160), "{sizes:?}");
    s.state.refresh().await.unwrap();
    let (st, t) =
        s.text("/hapi/data?dataset=ds1&start=2016-01-03T09:00Z&stop=2016-01-04&parameters=Bx").await;
    assert_eq!(st, 200);
    assert_eq!(t.lines().count(), 600 - 540);
    let (st, v) = s.json("/hapi/data?dataset=ds1&start=2016-01-03&stop=2016-02-02").await;
    assert_eq!((st, code(&v)), (400, 1405), "configured stopDate still holds");
}

#[tokio::test]
async fn ingest_accepts_hapi_output_with_header() {
    let s = TestServer::fixture().await;
    let (_, with_header) =
        s.text("/hapi/data?dataset=all/kinds%2Btypes:%CE%B1%E2%98%83&start=2020-01-01&stop=2020-01-01T04:00Z&include=header")
            .await;
    // Shift the records a day later and feed them back.
    let shifted = with_header.replace("2020-01-01T0", "2020-01-02T0");
    let info = &s.state.dataset("all/kinds+types:α☃").unwrap().spec.info;
    let n = ingest(s.store.as_ref(), info, &mut Cursor::new(shifted)).unwrap();
    assert_eq!(n, 4);
}
