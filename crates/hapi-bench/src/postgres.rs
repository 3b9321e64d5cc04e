//! The PostgreSQL rows (issue 7): the bench month (2.6 M records) generated into
//! PostgreSQL and into SQLite by the same demo generator, each served by its own
//! release server; csv and binary throughput and the time to first byte side by side;
//! and `COPY` appends of a 4-double dataset through `PgStore` in this process, beside
//! the SQLite store's appends of the same batches. The cluster is a throwaway one
//! (hapi-pgtest, fsync off as in the tests: the rows measure the store, not the disk).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hapi_core::info::ParamType;
use hapi_core::{Batch, Column};
use hapi_postgres::{Database, DatabaseSettings, DatabaseUrl, PgStore};
use hapi_store::{ColumnSpec, Layout, SqliteStore, Store};

use crate::{BENCH, RANGE, RECORDS, full_rate, small_data, start, ttfb_ms, wait_ready};

type Row = (String, String, String);

/// Records of the ingest rows, appended in batches of `BATCH`.
const INGEST: i64 = 2_000_000;
const BATCH: i64 = 50_000;

pub async fn rows(root: &Path, bin: &Path, work: &Path) -> Result<Vec<Row>> {
    let Some(pg) = hapi_pgtest::start_or_skip() else { return Ok(Vec::new()) };
    pg.psql("postgres", "CREATE DATABASE bench").map_err(anyhow::Error::msg)?;
    let url = pg.url_of("bench");
    let sosmag = std::fs::read_to_string(root.join("crates/hapi-server/demo/sosmag.json"))?;
    let config = |name: &str, store: &str| -> Result<String> {
        let path = work.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "data_dir = {:?}\n[auth]\nmode = \"open\"\n[[dataset]]\nid = \"{BENCH}\"\ndemo = \"sosmag_month\"\ninfo = '''{sosmag}'''\n{store}",
                work.join(format!("{name}-data"))
            ),
        )?;
        Ok(path.to_str().context("path")?.to_owned())
    };
    let (sqlite_cfg, pg_cfg) = (config("pg-sqlite", "")?, config("pg", "[store]\nkind = \"postgres\"\n")?);
    let unlimited = [("HAPI_MAX_ELEMENTS", "100000000000"), ("HAPI_MAX_BYTES", "1000000000000")];
    let with_url = [unlimited[0], unlimited[1], ("HAPI_DATABASE_URL", url.as_str())];

    let mut rows = Vec::new();
    // First starts generate the month; the time is the generator's plus the store's appends.
    let sqlite_gen = {
        let s = start(bin, &["--config", &sqlite_cfg], &unlimited, 18_091)?;
        wait_ready(&s.addr, Duration::from_secs(300)).await?
    };
    let pg_gen = {
        let s = start(bin, &["--config", &pg_cfg], &with_url, 18_092)?;
        wait_ready(&s.addr, Duration::from_secs(300)).await?
    };
    rows.push((
        "first start generating the bench month (2.6 M records), PostgreSQL / SQLite".into(),
        format!("{:.1} s / {:.1} s", pg_gen.as_secs_f64(), sqlite_gen.as_secs_f64()),
        "-".into(),
    ));
    let lite = start(bin, &["--config", &sqlite_cfg], &unlimited, 18_093)?;
    wait_ready(&lite.addr, Duration::from_secs(60)).await?;
    let post = start(bin, &["--config", &pg_cfg], &with_url, 18_094)?;
    wait_ready(&post.addr, Duration::from_secs(60)).await?;
    let data = format!("/hapi/data?dataset={BENCH}&{RANGE}");
    for (label, suffix) in [("csv", ""), ("binary", "&format=binary")] {
        // Alternating, so that drift in the machine's speed hits both alike.
        let (mut p, mut l) = (Vec::new(), Vec::new());
        let mut mb = 0.0;
        for _ in 0..2 {
            let (rate, bytes) = full_rate(&post.addr, &format!("{data}{suffix}")).await?;
            p.push(rate);
            l.push(full_rate(&lite.addr, &format!("{data}{suffix}")).await?.0);
            mb = bytes as f64 / 1e6;
        }
        let (p, l) = (p.iter().copied().fold(0.0, f64::max), l.iter().copied().fold(0.0, f64::max));
        rows.push((
            format!("/data {label} from PostgreSQL, {RECORDS} records, {mb:.0} MB"),
            format!("{p:.0} MB/s, {:.0}% of SQLite's {l:.0} MB/s", 100.0 * p / l),
            "≥ 50% of SQLite".into(),
        ));
    }
    let (p, l) = (ttfb_ms(&post.addr, &small_data()).await?, ttfb_ms(&lite.addr, &small_data()).await?);
    rows.push((
        "time to first byte, 10-record /data, PostgreSQL".into(),
        format!("{p:.2} ms (SQLite {l:.2} ms; median of 300)"),
        "< 3 ms".into(),
    ));
    drop((lite, post));
    rows.extend(ingest_rows(&pg, work).await?);
    Ok(rows)
}

/// Appends of `INGEST` records of 4 doubles in `BATCH`-record batches, one transaction
/// (one `COPY`) per append of 10 batches, into each store.
async fn ingest_rows(pg: &hapi_pgtest::Cluster, work: &Path) -> Result<Vec<Row>> {
    pg.psql("postgres", "CREATE DATABASE ingest").map_err(anyhow::Error::msg)?;
    let settings = DatabaseSettings::new(DatabaseUrl::new(pg.url_of("ingest"))?);
    let pgstore: Arc<dyn Store> = Arc::new(PgStore::open(Database::connect(&settings).await?).await?);
    let dir = work.join("ingest-sqlite");
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir)?);
    let layout = Layout { columns: vec![ColumnSpec { kind: ParamType::Double, width: 1, len: 0 }; 4] };
    let batches: Vec<Batch> = (0..INGEST / BATCH).map(|b| batch(b * BATCH, (b + 1) * BATCH)).collect();
    let mut rates = Vec::new();
    for store in [pgstore, sqlite] {
        let (layout, batches) = (layout.clone(), batches.clone());
        // The store's calls block: on the blocking pool, as the server's ingest does.
        let rate = tokio::task::spawn_blocking(move || -> Result<f64> {
            store.open_dataset("ingest", &layout)?;
            let t = Instant::now();
            let mut n = 0;
            for ten in batches.chunks(10) {
                n += store.append("ingest", &mut ten.iter().cloned())?;
            }
            Ok(n as f64 / t.elapsed().as_secs_f64())
        })
        .await??;
        rates.push(rate);
    }
    Ok(vec![(
        format!("COPY ingest, 4 doubles, {INGEST} records in appends of 500 k (PgStore::append)"),
        format!("{:.2} M records/s (SQLite store: {:.2} M records/s)", rates[0] / 1e6, rates[1] / 1e6),
        "≥ 1 M records/s".into(),
    )])
}

fn batch(from: i64, to: i64) -> Batch {
    let times = (from..to).map(|i| 1_600_000_000_000_000_000 + i * 1_000_000_000).collect();
    let columns = (0..4)
        .map(|c| Column::Double {
            width: 1,
            values: (from..to).map(|i| (i as f64).sin() + f64::from(c)).collect(),
        })
        .collect();
    Batch { times, columns, wire: None }
}
