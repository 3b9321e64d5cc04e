//! `hapi-bench --only replicas`: small `/data` requests answered by one replica on
//! PostgreSQL, by the same replica behind nginx, and by three replicas behind nginx
//! (the deployment recipe's `docs/deploy/nginx.conf`), all over one database of a
//! throwaway cluster (`hapi-pgtest`). On two cores the replicas, nginx, PostgreSQL and
//! the load generator share the same CPUs: the rows show what the extra hop costs and
//! that more replicas do not lose throughput, not how far the design scales.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use hapi_pgtest::nginx::Front;

use crate::{free_port, iso, request_rate, start, wait_ready};

const DATASET: &str = "bench";
/// One day at 1 s.
const RECORDS: u64 = 86_400;
/// 2026-09-01T00:00:00Z.
const T0: u64 = 1_788_220_800;

fn csv() -> String {
    let mut out = String::with_capacity(RECORDS as usize * 64);
    for i in 0..RECORDS {
        out.push_str(&format!("{},{i}.5,-1.25,3.0,4.0,0\n", iso(T0 + i)));
    }
    out
}

pub async fn rows(root: &Path, bin: &Path, work: &Path) -> Result<Vec<(String, String, String)>> {
    let Some(pg) = hapi_pgtest::start_or_skip() else { return Ok(Vec::new()) };
    if !Front::available() {
        return Ok(Vec::new());
    }
    let url = pg.fresh_database();
    let info = std::fs::read_to_string(root.join("crates/hapi-server/demo/sosmag.json"))?;
    let config = work.join("replica.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[store]\nkind = \"postgres\"\nurl = {url:?}\n[auth]\nmode = \"open\"\n\
             [[dataset]]\nid = \"{DATASET}\"\ntitle = \"bench\"\ninfo = '''{info}'''\n",
            work.join("replica-data")
        ),
    )?;
    let cfg = config.to_str().context("path")?;
    let input = work.join("day.csv");
    std::fs::write(&input, csv())?;
    let status = std::process::Command::new(bin)
        .args(["ingest", "--config", cfg, "--dataset", DATASET])
        .arg(&input)
        .status()?;
    anyhow::ensure!(status.success(), "ingesting the bench day into PostgreSQL failed");

    let ports = [free_port()?, free_port()?, free_port()?];
    let mut replicas = Vec::new();
    for p in ports {
        replicas.push(start(bin, &["--config", cfg], &[], p)?);
    }
    for r in &replicas {
        wait_ready(&r.addr, Duration::from_secs(60)).await?;
    }
    let small = format!("/hapi/data?dataset={DATASET}&start={}&stop={}", iso(T0 + 3600), iso(T0 + 3660));
    let one = request_rate(&replicas[0].addr, &small, "").await?;
    let front_one = Front::start(&ports[..1]).map_err(anyhow::Error::msg)?;
    wait_ready(&format!("127.0.0.1:{}", front_one.port), Duration::from_secs(10)).await?;
    let one_behind = request_rate(&format!("127.0.0.1:{}", front_one.port), &small, "").await?;
    drop(front_one);
    let front = Front::start(&ports).map_err(anyhow::Error::msg)?;
    wait_ready(&format!("127.0.0.1:{}", front.port), Duration::from_secs(10)).await?;
    let three = request_rate(&format!("127.0.0.1:{}", front.port), &small, "").await?;
    Ok(vec![
        (
            "small /data (60 records) requests/s, 64 connections: one replica on PostgreSQL".into(),
            format!("{one:.0}"),
            "(reference)".into(),
        ),
        (
            "the same through nginx (one upstream)".into(),
            format!("{one_behind:.0} ({:.0}% of direct)", one_behind / one * 100.0),
            "(the proxy's cost)".into(),
        ),
        (
            "three replicas behind nginx".into(),
            format!("{three:.0} ({:.0}% of one replica direct)", three / one * 100.0),
            "≥ one replica alone".into(),
        ),
    ])
}
