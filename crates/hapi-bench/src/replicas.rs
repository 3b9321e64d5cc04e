//! `hapi-bench --only replicas`: small `/data` requests answered by one replica on
//! PostgreSQL, by the same replica behind nginx, and by three replicas behind nginx
//! (the deployment recipe's `docs/deploy/nginx.conf`), all over one database of a
//! throwaway cluster (`hapi-pgtest`). On two cores the replicas, nginx, PostgreSQL and
//! the load generator share the same CPUs: the rows show what the extra hop costs and
//! what more replicas cost on the same cores, not how far the design scales; the CPU
//! rows say where each request's CPU goes.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use hapi_pgtest::nginx::Front;

use crate::{free_port, iso, request_rate, start, wait_ready};

/// The processes whose CPU a row accounts for, each with all its descendants (the
/// postmaster's backends, nginx's workers).
struct Groups {
    servers: Vec<u32>,
    postgres: Vec<u32>,
    nginx: Vec<u32>,
}

/// Every process's id, parent and CPU ticks (user + system, in the kernel's 100 Hz
/// `USER_HZ`), from `/proc/PID/stat`.
fn processes() -> Vec<(u32, u32, u64)> {
    let mut stats: Vec<(u32, u32, u64)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // After the `(comm)`, which may hold spaces: state, ppid, ..., utime (14), stime (15).
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        let fields: Vec<&str> = rest.split(' ').collect();
        let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        stats.push((pid, num(1) as u32, num(11) + num(12)));
    }
    stats
}

/// The ticks of `roots` in `stats`, and of their descendants with `tree`.
fn ticks(stats: &[(u32, u32, u64)], roots: &[u32], tree: bool) -> u64 {
    let mut counted: Vec<u32> = roots.to_vec();
    // Parents are listed before children only by chance: grow the tree to a fixed point.
    let mut grown = tree;
    while grown {
        let before = counted.len();
        for &(pid, ppid, _) in stats {
            if counted.contains(&ppid) && !counted.contains(&pid) {
                counted.push(pid);
            }
        }
        grown = counted.len() > before;
    }
    stats.iter().filter(|(pid, ..)| counted.contains(pid)).map(|&(.., t)| t).sum()
}

/// Runs a `request_rate` measurement (3 s) and says how many µs of CPU each group
/// spent per request: where the two cores go.
async fn measured(groups: Groups, rate: impl Future<Output = Result<f64>>) -> Result<(f64, String)> {
    let me = [std::process::id()];
    // The bench alone: the servers are its children.
    let all = |g: &Groups| {
        let p = processes();
        [
            ticks(&p, &g.servers, true),
            ticks(&p, &g.postgres, true),
            ticks(&p, &g.nginx, true),
            ticks(&p, &me, false),
        ]
    };
    let before = all(&groups);
    let rate = rate.await?;
    let after = all(&groups);
    let requests = rate * 3.0;
    let us: Vec<String> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| format!("{:.0}", a.saturating_sub(*b) as f64 * 1e4 / requests))
        .collect();
    Ok((rate, us.join(" / ")))
}

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
    let servers: Vec<u32> = replicas.iter().map(|r| r.child.id()).collect();
    let groups = |nginx: Option<u32>| Groups {
        servers: servers.clone(),
        postgres: pg.pid().into_iter().collect(),
        nginx: nginx.into_iter().collect(),
    };
    let direct = request_rate(&replicas[0].addr, &small, "");
    let (one, cpu_one) = measured(groups(None), direct).await?;
    let front_one = Front::start(&ports[..1]).map_err(anyhow::Error::msg)?;
    let addr_one = format!("127.0.0.1:{}", front_one.port);
    wait_ready(&addr_one, Duration::from_secs(10)).await?;
    let behind = request_rate(&addr_one, &small, "");
    let (one_behind, cpu_behind) = measured(groups(Some(front_one.pid())), behind).await?;
    drop(front_one);
    let front = Front::start(&ports).map_err(anyhow::Error::msg)?;
    let addr = format!("127.0.0.1:{}", front.port);
    wait_ready(&addr, Duration::from_secs(10)).await?;
    let three = request_rate(&addr, &small, "");
    let (three, cpu_three) = measured(groups(Some(front.pid())), three).await?;
    let cpu = "µs of CPU per request: servers / PostgreSQL / nginx / load generator";
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
        (format!("{cpu}, one replica direct"), cpu_one, "-".into()),
        (format!("{cpu}, the same through nginx"), cpu_behind, "-".into()),
        (format!("{cpu}, three replicas behind nginx"), cpu_three, "-".into()),
    ])
}
