//! Response limits: 1408 before the first byte, with the limit and the span that fits.

use crate::support::{CONFIG, TestServer, code, ds1_csv};

#[tokio::test]
async fn element_limit_says_which_limit_and_what_fits() {
    // ds1 allows 10,000 elements: 2,500 records of Time + 3 values.
    let s = TestServer::fixture().await;
    let (st, v) = s.json("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-03").await;
    assert_eq!((st, code(&v)), (400, 1408), "{v}");
    let msg = v["status"]["message"].as_str().unwrap();
    assert!(msg.contains("11520 data elements"), "{msg}");
    assert!(msg.contains("at most 10000 data elements"), "{msg}");
    // 2,500 records from 2016-01-01T00:00 end before 2016-01-02T17:40.
    assert!(msg.contains("stop=2016-01-02T17:40:00.000Z"), "{msg}");
    assert!(msg.contains("2500 records"), "{msg}");

    // Exactly at the limit is fine; one parameter lets a longer span through.
    let (st, _) = s.text("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-02T17:40Z").await;
    assert_eq!(st, 200);
    let (st, _) = s.text("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-02T17:41Z").await;
    assert_eq!(st, 400);
    let (st, _) = s.text("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-03&parameters=Bx").await;
    assert_eq!(st, 200, "2880 records x 2 values fit");

    // The limit is published for planning: 2,500 one-minute records.
    let (_, info) = s.json("/hapi/info?dataset=ds1").await;
    assert_eq!(info["maxRequestDuration"], "P1DT17H40M");
}

#[tokio::test]
async fn byte_limit_is_checked_before_the_first_byte() {
    let cfg = CONFIG.replace("limits = { max_elements = 10000 }", "limits = { max_bytes = 100000 }");
    let s = TestServer::start(&cfg, &[("ds1", &ds1_csv())], None).await;
    let (st, v) = s.json("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-03&format=binary").await;
    assert_eq!((st, code(&v)), (400, 1408), "{v}");
    let msg = v["status"]["message"].as_str().unwrap();
    assert!(msg.contains("at most 100000 bytes"), "{msg}");
    assert!(msg.contains("stop="), "{msg}");
    let (_, info) = s.json("/hapi/info?dataset=ds1").await;
    assert!(info["maxRequestDuration"].as_str().unwrap().starts_with("PT"), "{info}");
}
