//! Every row of the digest's table 4.4, plus the HTTP details around them.

use crate::support::{TestServer, code};

const R: &str = "start=2016-01-01T00:00Z&stop=2016-01-01T00:03Z";

#[tokio::test]
async fn table_4_4_error_rows() {
    for (source, s) in TestServer::each_source().await {
        println!("source: {source}");
        let rows: &[(&str, u16, i64)] = &[
            ("/hapi/about?x=1", 400, 1401),
            ("/hapi/capabilities?x=1", 400, 1401),
            ("/hapi/foo", 400, 1400),
            ("/hapi/info", 400, 1400),
            ("/hapi/info?dataset=nope", 404, 1406),
            ("/hapi/info?dataset=ds1&parameters=Bz,Bx", 400, 1411),
            ("/hapi/info?dataset=ds1&parameters=Bx,Bx", 400, 1411),
            ("/hapi/info?dataset=ds1&parameters=Bq", 404, 1407),
            ("/hapi/info?dataset=ds1&resolve_references=maybe", 400, 1412),
            ("/hapi/info?dataset=ds1&id=ds1", 400, 1400),
            ("/hapi/catalog?depth=deep", 400, 1413),
            ("/hapi/catalog?resolve_references=no", 400, 1412),
            ("/hapi/data?dataset=ds1&start=2016-01-01T00:01Z&stop=2016-01-01T00:01Z", 400, 1404),
            ("/hapi/data?dataset=ds1&start=2015-12-31&stop=2016-01-02", 400, 1405),
            ("/hapi/data?dataset=ds1&start=2016-13-01&stop=2016-01-02", 400, 1402),
            ("/hapi/data?dataset=ds1&stop=2016-01-02", 400, 1402),
            ("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-01T25Z", 400, 1403),
            ("/hapi/data?dataset=ds1&start=2016-01-01", 400, 1403),
            ("/hapi/data?dataset=ds1&start=2016-01-31T24:00Z&stop=2016-02-01", 400, 1404),
            ("/hapi/data?dataset=nope&start=2016-01-01&stop=2016-01-02", 404, 1406),
            ("/hapi/data?start=2016-01-01&stop=2016-01-02", 400, 1400),
            (
                "/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-02&format=binary&parameters=Bq",
                404,
                1407,
            ),
            ("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-02&dataset=ds1", 400, 1400),
            ("/hapi/data?dataset=ds1&time.min=2016-01-01&start=2016-01-01&stop=2016-01-02", 400, 1400),
        ];
        for &(pq, http, hapi) in rows {
            let (status, v) = s.json(pq).await;
            assert_eq!((status, code(&v)), (http, hapi), "{pq}: {v}");
            assert_eq!(v["HAPI"], "3.3", "{pq}");
            let msg = v["status"]["message"].as_str().unwrap();
            assert!(msg.starts_with(&format!("HAPI error {hapi}")), "{pq}: {msg}");
        }
        for (suffix, hapi) in [
            ("&format=xml", 1409),
            ("&include=all", 1410),
            ("&parameters=Bz,Bx", 1411),
            ("&averagingInterval=5s", 1401),
            ("&format=binary&include=yes", 1410),
            ("&resolve_references=true", 1401),
        ] {
            let pq = format!("/hapi/data?dataset=ds1&{R}{suffix}");
            let r = s.get(&pq).await;
            assert_eq!(r.status(), 400, "{pq}");
            assert_eq!(r.headers()["content-type"], "application/json", "{pq}");
            assert_eq!(r.headers()["access-control-allow-origin"], "*", "{pq}: CORS on errors");
            let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            assert_eq!(code(&v), hapi, "{pq}");
            // Request values are never echoed (REQ-015).
            let msg = v["status"]["message"].as_str().unwrap();
            assert!(!msg.contains("averagingInterval") && !msg.contains("xml"), "{msg}");
        }
    }
}

#[tokio::test]
async fn table_4_4_success_rows() {
    for (source, s) in TestServer::each_source().await {
        println!("source: {source}");
        let (st, a) = s.text("/hapi/info?id=ds1").await;
        let (_, b) = s.text("/hapi/info?dataset=ds1").await;
        assert_eq!(st, 200);
        assert_eq!(a, b);
        let (_, all) = s.json("/hapi/info?dataset=ds1&parameters=").await;
        assert_eq!(all["parameters"].as_array().unwrap().len(), 4);
        assert!(all.get("format").is_none(), "/info carries no format");
        let (st, _) = s.json("/hapi/catalog?depth=dataset").await;
        assert_eq!(st, 200);

        let (st, csv) = s.text("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-01T00:03").await;
        assert_eq!(st, 200);
        assert_eq!(
            csv,
            "2016-01-01T00:00:00.000Z,0.0,100.0,0.0\n2016-01-01T00:01:00.000Z,0.5,99.0,0.25\n2016-01-01T00:02:00.000Z,1.0,98.0,0.5\n",
            "three rows"
        );
        let (_, doy) = s.text("/hapi/data?id=ds1&time.min=2016-001Z&time.max=2016-001T00:03Z").await;
        assert_eq!(doy, csv, "DOY and 2.x names give identical bytes");
        let (_, empty_params) =
            s.text("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-01T00:03&parameters=").await;
        assert_eq!(empty_params, csv);

        let (_, t) = s.text("/hapi/data?dataset=ds1&start=2016-01-01&stop=2016-01-02&parameters=Time").await;
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 1440);
        assert!(lines.iter().all(|l| l.len() == 24 && !l.contains(',')));

        let r = s.get(&format!("/hapi/data?dataset=ds1&{R}&format=binary&parameters=Bx")).await;
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        let body = r.bytes().await.unwrap();
        assert_eq!(body.len(), 3 * 32, "24 + 8 bytes a record");
        assert_eq!(&body[..24], b"2016-01-01T00:00:00.000Z");
        assert_eq!(f64::from_le_bytes(body[56..64].try_into().unwrap()), 0.5);
    }
}

#[tokio::test]
async fn no_data_is_1201_with_the_right_body() {
    for (source, s) in TestServer::each_source().await {
        println!("source: {source}");
        let gap = "/hapi/data?dataset=ds1&start=2016-01-10&stop=2016-01-11";
        let (line, _, body) =
            s.raw(&format!("GET {gap} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).await;
        assert!(line.starts_with("HTTP/1.1 200 ") && line.contains("HAPI 1201"), "{line}");
        assert!(body.is_empty() || body == b"0\r\n\r\n", "chunked or empty: {body:?}");
        let (st, text) = s.text(&format!("{gap}&include=header")).await;
        assert_eq!(st, 200);
        assert!(text.starts_with('#') && text.ends_with('\n') && text.lines().count() == 1, "{text}");
        let header: serde_json::Value = serde_json::from_str(&text[1..]).unwrap();
        assert_eq!(header["status"]["code"], 1201);
        assert_eq!(header["format"], "csv");
        let (_, v) = s.json(&format!("{gap}&format=json")).await;
        assert_eq!(v["status"]["code"], 1201);
        assert_eq!(v["data"], serde_json::json!([]));
        // The verifier's probe: two milliseconds just after startDate.
        let (st, t) = s
            .text("/hapi/data?dataset=ds1&start=2016-01-01T00:00:00.001Z&stop=2016-01-01T00:00:00.003Z")
            .await;
        assert_eq!((st, t.as_str()), (200, ""));
    }
}

#[tokio::test]
async fn all_fill_rows_are_returned() {
    for (source, s) in TestServer::each_source().await {
        println!("source: {source}");
        let (_, t) = s
            .text("/hapi/data?dataset=ds1&start=2016-01-01T00:07Z&stop=2016-01-01T00:08Z&parameters=Bz")
            .await;
        assert_eq!(t, "2016-01-01T00:07:00.000Z,-1e31\n");
    }
}

#[tokio::test]
async fn http_details() {
    for (source, s) in TestServer::each_source().await {
        println!("source: {source}");
        // Reason phrases carry the HAPI code (REQ-025).
        let line = s.status_line("/hapi/info?dataset=nope").await;
        assert_eq!(line, "HTTP/1.1 404 Not Found; HAPI 1406 Bad request - unknown dataset id");
        let line = s.status_line("/hapi/about").await;
        assert_eq!(line, "HTTP/1.1 200 OK; HAPI 1200 OK");

        // Trailing slashes: 301 without the slash, query kept.
        let r = s.get("/hapi/").await;
        assert_eq!(r.status(), 301);
        assert_eq!(r.headers()["location"], "/hapi");
        let r = s.get("/hapi/info/?dataset=ds1").await;
        assert_eq!(r.status(), 301);
        assert_eq!(r.headers()["location"], "/hapi/info?dataset=ds1");

        // Methods other than GET and HEAD.
        let r = crate::support::client().post(s.url("/hapi/data?dataset=ds1")).send().await.unwrap();
        assert_eq!(r.status(), 405);
        assert!(r.headers()["allow"].to_str().unwrap().contains("GET"));

        // HEAD: headers of the GET, no body, no data pipeline.
        let (line, headers, body) = s
            .raw(&format!(
                "HEAD /hapi/data?dataset=ds1&{R}&format=binary HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            ))
            .await;
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        assert!(headers.to_ascii_lowercase().contains("content-type: application/octet-stream"), "{headers}");
        assert!(body.is_empty());
        let (line, _, _) = s.raw("HEAD /hapi/data?dataset=nope&start=2016-01-01&stop=2016-01-02 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        assert!(line.starts_with("HTTP/1.1 404"), "{line}");

        // Metadata carries Last-Modified and CORS; the landing page is HTML.
        for p in ["/hapi/about", "/hapi/capabilities", "/hapi/catalog", "/hapi/info?dataset=ds1"] {
            let r = s.get(p).await;
            assert_eq!(r.status(), 200, "{p}");
            assert!(r.headers().contains_key("last-modified"), "{p}");
            assert_eq!(r.headers()["access-control-allow-origin"], "*", "{p}");
            assert_eq!(r.headers()["content-type"], "application/json", "{p}");
        }
        let r = s.get("/hapi").await;
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = r.text().await.unwrap();
        assert!(
            html.contains("/hapi/info?dataset=ds1") && html.contains("/hapi/data?dataset=ds1&amp;start="),
            "{html}"
        );
        assert!(html.contains("all/kinds%2Btypes:%CE%B1%E2%98%83"), "ids are percent-encoded in links");
    }
}

#[tokio::test]
async fn ids_with_plus_slash_colon_and_unicode() {
    for (source, s) in TestServer::each_source().await {
        println!("source: {source}");
        let (st, v) = s.json("/hapi/info?dataset=all/kinds+types:%CE%B1%E2%98%83").await;
        assert_eq!(st, 200, "{v}");
        let (st, _) = s.json("/hapi/info?dataset=all/kinds%2Btypes%3A%CE%B1%E2%98%83").await;
        assert_eq!(st, 200);
        // '+' is not a space.
        let (st, v) = s.json("/hapi/info?dataset=all/kinds%20types:%CE%B1%E2%98%83").await;
        assert_eq!((st, code(&v)), (404, 1406));
        let (st, v) = s.json("/hapi/info?dataset=%FF").await;
        assert_eq!((st, code(&v)), (400, 1400), "invalid UTF-8");
    }
}

#[tokio::test]
async fn about_capabilities_catalog() {
    for (source, s) in TestServer::each_source().await {
        println!("source: {source}");
        let (_, about) = s.json("/hapi/about").await;
        assert_eq!(about["id"], "test");
        let q = &about["dataTest"]["query"];
        assert!(q["parameters"].is_string(), "{about}");
        let pq = format!(
            "/hapi/data?dataset={}&start={}&stop={}&parameters={}",
            q["dataset"].as_str().unwrap().replace('+', "%2B"),
            q["start"].as_str().unwrap(),
            q["stop"].as_str().unwrap(),
            q["parameters"].as_str().unwrap()
        );
        let (st, body) = s.text(&pq).await;
        assert_eq!(st, 200);
        assert!(!body.is_empty(), "dataTest returns records");

        let (_, caps) = s.json("/hapi/capabilities").await;
        assert_eq!(caps["outputFormats"], serde_json::json!(["csv", "binary", "json"]));
        assert_eq!(caps["catalogDepthOptions"], serde_json::json!(["dataset", "all"]));

        let (_, cat) = s.json("/hapi/catalog").await;
        let items = cat["catalog"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["id"], "ds1");
        assert!(items[0].get("info").is_none());
        let (_, deep) = s.json("/hapi/catalog?depth=all").await;
        for item in deep["catalog"].as_array().unwrap() {
            let id = item["id"].as_str().unwrap().replace('+', "%2B");
            let (_, mut info) = s.json(&format!("/hapi/info?dataset={id}")).await;
            let info = info.as_object_mut().unwrap();
            info.remove("HAPI");
            info.remove("status");
            assert_eq!(&item["info"], &serde_json::Value::Object(info.clone()), "depth=all equals /info");
        }
    }
}
