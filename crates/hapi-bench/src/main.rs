//! `hapi-bench`: starts `target/release/hapi-server` on a store of 2.6 M records and
//! prints one markdown table. Run it through `scripts/bench.sh`, which builds first.
//!
//! The client is a few lines of raw HTTP/1.1 over tokio so that the load generator,
//! which shares the machine's two cores with the server, costs as little as possible.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

mod postgres;
mod replicas;

const BENCH: &str = "bench";
/// 30 days at 1 s: 2,592,000 records of Time + B_GSE[3] + B_total + quality.
const RANGE: &str = "start=2026-09-01T00:00Z&stop=2026-10-01T00:00Z";
const RECORDS: f64 = 2_592_000.0;

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &Path, args: &[&str], env: &[(&str, &str)], port: u16) -> Result<Server> {
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(bin);
    cmd.arg("serve").args(args).args(["--listen", &addr]).stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
    Ok(Server { child, addr })
}

async fn wait_ready(addr: &str, limit: Duration) -> Result<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Ok(s) = TcpStream::connect(addr).await
            && get(&mut BufReader::new(s), "/healthz", "").await.is_ok()
        {
            return Ok(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("server at {addr} did not answer within {limit:?}")
}

/// One keep-alive GET that must answer 200, with Content-Length or chunked; returns
/// the body length.
async fn get(s: &mut BufReader<TcpStream>, pq: &str, extra: &str) -> Result<usize> {
    s.get_mut().write_all(format!("GET {pq} HTTP/1.1\r\nHost: b\r\n{extra}\r\n").as_bytes()).await?;
    let mut len = None;
    let mut line = String::new();
    let mut first = true;
    loop {
        line.clear();
        if s.read_line(&mut line).await? == 0 {
            bail!("connection closed");
        }
        if std::mem::take(&mut first) && !line.starts_with("HTTP/1.1 200") {
            bail!("refused: {line}");
        }
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = Some(v.trim().parse::<usize>()?);
        }
    }
    if let Some(len) = len {
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await?;
        return Ok(len);
    }
    // Chunked: size lines, data, and the empty last chunk.
    let mut total = 0;
    loop {
        line.clear();
        s.read_line(&mut line).await?;
        let size = usize::from_str_radix(line.trim(), 16).context("chunk size")?;
        let mut chunk = vec![0u8; size + 2];
        s.read_exact(&mut chunk).await?;
        if size == 0 {
            return Ok(total);
        }
        total += size;
    }
}

/// A whole streamed response on its own connection: (bytes received, seconds).
async fn download(addr: &str, pq: &str, extra: &str) -> Result<(usize, f64, Duration)> {
    let mut s = TcpStream::connect(addr).await?;
    let t = Instant::now();
    s.write_all(format!("GET {pq} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n{extra}\r\n").as_bytes())
        .await?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    let mut first = None;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        first.get_or_insert_with(|| t.elapsed());
        total += n;
    }
    Ok((total, t.elapsed().as_secs_f64(), first.unwrap_or_default()))
}

/// MB/s of a whole response, the median of three downloads, and its bytes.
///
/// The downloads run on a one-thread runtime of their own, as curl reads on one thread:
/// on this two-core machine the bench's second worker, woken and parked around every
/// read, took CPU from the servers, and most from the three-process rows (the
/// re-served year: 68-100%, median 76.5%, with it; 98-103% without it).
async fn full_rate(addr: &str, pq: &str) -> Result<(f64, usize)> {
    let (addr, pq) = (addr.to_owned(), pq.to_owned());
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let mut secs = Vec::new();
            let mut bytes = 0;
            for _ in 0..3 {
                let (n, t, _) = download(&addr, &pq, "").await?;
                bytes = n;
                secs.push(t);
            }
            Ok((bytes as f64 / 1e6 / median(secs), bytes))
        })
    })
    .await?
}

fn vm_hwm_kb(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).context("VmHWM value")?.parse()?)
}

fn vm_rss_kb(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
}

/// A whole response read at about `mb_per_s`, as a client on a slow link would.
async fn paced_download(addr: &str, pq: &str, mb_per_s: f64) -> Result<usize> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(format!("GET {pq} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut buf = vec![0u8; 64 * 1024];
    let t = Instant::now();
    let mut total = 0usize;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
        let due = Duration::from_secs_f64(total as f64 / (mb_per_s * 1e6));
        if let Some(wait) = due.checked_sub(t.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Opens a response, reads its first bytes and then stops reading.
async fn stall(addr: &str, pq: &str) -> Result<TcpStream> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.set_recv_buffer_size(4096)?;
    let mut s = sock.connect(addr.parse()?).await?;
    s.write_all(format!("GET {pq} HTTP/1.1\r\nHost: b\r\n\r\n").as_bytes()).await?;
    let mut head = [0u8; 256];
    let n = s.read(&mut head).await?;
    if !head[..n].starts_with(b"HTTP/1.1 200") {
        bail!("stalled stream refused: {}", String::from_utf8_lossy(&head[..n]));
    }
    Ok(s)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Requests per second of `pq` over 64 keep-alive connections for 3 s.
async fn request_rate(addr: &str, pq: &str, extra: &str) -> Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (addr, pq, extra) = (addr.to_owned(), pq.to_owned(), extra.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut c = BufReader::new(TcpStream::connect(&addr).await?);
            let mut n = 0u64;
            while Instant::now() < deadline {
                get(&mut c, &pq, &extra).await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / 3.0)
}

/// The 10-record request of the time-to-first-byte rows.
fn small_data() -> String {
    format!("/hapi/data?dataset={BENCH}&start=2026-09-15T00:00Z&stop=2026-09-15T00:00:10Z")
}

/// Time to the first byte of `pq` on one keep-alive connection: the median of 300, in ms.
async fn ttfb_ms(addr: &str, pq: &str) -> Result<f64> {
    let mut conn = TcpStream::connect(addr).await?;
    let mut ttfb = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        conn.write_all(format!("GET {pq} HTTP/1.1\r\nHost: b\r\n\r\n").as_bytes()).await?;
        let mut buf = vec![0u8; 65536];
        let n = conn.read(&mut buf).await?;
        ttfb.push(t.elapsed().as_secs_f64() * 1e3);
        // Drain the rest of the chunked body.
        let mut got = buf[..n].to_vec();
        while !got.ends_with(b"0\r\n\r\n") {
            let n = conn.read(&mut buf).await?;
            if n == 0 {
                bail!("closed");
            }
            got.extend_from_slice(&buf[..n]);
        }
    }
    Ok(median(ttfb))
}

/// A protected server answers its discovery document without credentials.
async fn wait_ready_protected(addr: &str) -> Result<()> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        if let Ok(s) = TcpStream::connect(addr).await
            && get(&mut BufReader::new(s), "/.well-known/openid-configuration", "").await.is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("protected server did not start")
}

/// The seed page's token request.
async fn fetch_token(addr: &str, id: &str, secret: &str) -> Result<String> {
    let body =
        format!("client_id={id}&client_secret={secret}&grant_type=client_credentials&scope=swe_hapiserver");
    let mut s = TcpStream::connect(addr).await?;
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: b\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(format!("{head}{body}").as_bytes()).await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    let json = out.split("\r\n\r\n").nth(1).context("no body")?;
    let start = json.find("\"access_token\":\"").context("no token")? + 16;
    let end = json[start..].find('"').context("token end")? + start;
    Ok(json[start..end].to_owned())
}

/// One wrong-secret token request on its own connection from `from` (a loopback
/// address of its own, so the per-address limit admits each flooder).
async fn wrong_secret(addr: &str, from: std::net::Ipv4Addr, form: Option<&Csrf>, n: u64) -> Result<String> {
    match form {
        Some(csrf) => {
            let body = format!("username=flood{n}&password=wrong&return_to=/hapi&csrf={}", csrf.token);
            post_form(addr, from, "/auth/login", &body, Some(csrf)).await
        }
        None => {
            let body = format!("client_id=flood{n}&client_secret=wrong&grant_type=client_credentials");
            post_form(addr, from, "/oauth/token", &body, None).await
        }
    }
}

/// The login form's CSRF cookie and token, as a browser holds them after opening it
/// (a form post without them is refused before any hash).
#[derive(Debug, Clone)]
struct Csrf {
    cookie: String,
    token: String,
}

async fn login_form_csrf(addr: &str) -> Result<Csrf> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /auth/login HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n").await?;
    let mut page = String::new();
    s.read_to_string(&mut page).await?;
    let cookie = page
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().starts_with("set-cookie: hapi_csrf=").then(|| l[12..].to_owned())
        })
        .and_then(|c| c.split(';').next().map(str::to_owned))
        .context("the login form sets no CSRF cookie")?;
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .context("the login form has no CSRF field")?;
    // The token is base64url: it needs no form encoding.
    Ok(Csrf { cookie, token: token.to_owned() })
}

/// A form POST on its own connection from `from`; the whole answer.
async fn post_form(
    addr: &str,
    from: std::net::Ipv4Addr,
    path: &str,
    body: &str,
    csrf: Option<&Csrf>,
) -> Result<String> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind((from, 0).into())?;
    let mut s = sock.connect(addr.parse()?).await?;
    let cookie = csrf.map(|c| format!("Cookie: {}\r\n", c.cookie)).unwrap_or_default();
    s.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

/// Issue 6 item 3: 64 flooders (each from its own address, so each is within its
/// limits and the shared hashing slots stay full) send wrong secrets for 10 s while
/// the real client asks for a token every 200 ms. Reports the real client's latency
/// and the server's RSS before, at peak and after.
async fn token_flood(bin: &Path, work: &Path) -> Result<Vec<(String, String, String)>> {
    let mut rows = flood(bin, work, false).await?;
    rows.extend(flood(bin, work, true).await?);
    Ok(rows)
}

/// One flood: wrong client secrets at the token endpoint, or wrong passwords at the
/// login form (Argon2, the slow hash), while the real client or user keeps logging in.
async fn flood(bin: &Path, work: &Path, login: bool) -> Result<Vec<(String, String, String)>> {
    let sosmag = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hapi-server/demo/sosmag.json"),
    )?;
    let config = work.join("flood.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[[dataset]]\nid = \"{BENCH}\"\ninfo = '''{sosmag}'''\n",
            work.join("flood-data")
        ),
    )?;
    let cfg = config.to_str().context("path")?;
    let created =
        Command::new(bin).args(["clients", "create", "--config", cfg]).stderr(Stdio::null()).output()?;
    let created = String::from_utf8(created.stdout)?;
    let field = |k: &str| created.lines().find_map(|l| l.strip_prefix(k)).map(str::to_owned);
    let (id, secret) =
        (field("client_id=").context("client id")?, field("client_secret=").context("secret")?);
    let mut add_user = Command::new(bin)
        .args(["users", "add", "alice", "--config", cfg])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    std::io::Write::write_all(&mut add_user.stdin.take().context("stdin")?, b"correct horse battery\n")?;
    add_user.wait()?;
    let p = start(bin, &["--config", cfg], &[], if login { 18_086 } else { 18_085 })?;
    wait_ready_protected(&p.addr).await?;
    let pid = p.child.id();
    let csrf = if login { Some(login_form_csrf(&p.addr).await?) } else { None };
    let real = || async {
        if let Some(csrf) = &csrf {
            let form =
                format!("username=alice&password=correct+horse+battery&return_to=/hapi&csrf={}", csrf.token);
            let out =
                post_form(&p.addr, std::net::Ipv4Addr::LOCALHOST, "/auth/login", &form, Some(csrf)).await?;
            if !out.starts_with("HTTP/1.1 303") {
                bail!("login refused: {}", &out[..out.len().min(100)]);
            }
            Ok(())
        } else {
            fetch_token(&p.addr, &id, &secret).await.map(drop)
        }
    };
    real().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = vm_rss_kb(pid)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut flooders = Vec::new();
    for k in 0..64u8 {
        let (addr, csrf) = (p.addr.clone(), csrf.clone());
        flooders.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let from = std::net::Ipv4Addr::new(127, 0, 1, k + 1);
                wrong_secret(&addr, from, csrf.as_ref(), u64::from(k) << 32 | n).await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut latencies = Vec::new();
    while Instant::now() + Duration::from_millis(300) < deadline {
        let t = Instant::now();
        real().await?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut attempts = 0;
    for f in flooders {
        attempts += f.await??;
    }
    let peak = vm_hwm_kb(pid)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let soon = vm_rss_kb(pid)?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = vm_rss_kb(pid)?;
    // tokio ends idle blocking threads after 10 s; their allocator caches go with them.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let later = vm_rss_kb(pid)?;
    let worst = latencies.iter().copied().fold(0.0, f64::max);
    let mb = |kb: u64| format!("{:.0}", kb as f64 / 1024.0);
    let what = if login {
        "login of the real user during a 64-way wrong-password"
    } else {
        "token for the real client during a 64-way wrong-secret"
    };
    Ok(vec![
        (
            format!("{what} flood ({attempts} attempts in 10 s)"),
            format!("{:.0} ms median, {worst:.0} ms worst of {}", median(latencies.clone()), latencies.len()),
            "< 100 ms".into(),
        ),
        (
            format!(
                "RSS before / peak / 2 s, 5 s and 15 s after that {} flood",
                if login { "login" } else { "token" }
            ),
            format!("{} / {} / {} / {} / {} MB", mb(before), mb(peak), mb(soon), mb(after), mb(later)),
            "after within ~10 MB of before".into(),
        ),
    ])
}

#[tokio::main]
async fn main() -> Result<()> {
    // `hapi-bench small ADDR PATH [HEADER]`: only the small-request load, against a
    // running server (for profiling one row).
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("small") && args.len() >= 4 {
        let extra = args.get(4).map(|h| format!("{h}\r\n")).unwrap_or_default();
        println!("{:.0} requests/s", request_rate(&args[2], &args[3], &extra).await?);
        return Ok(());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    // `HAPI_BENCH_SERVER=PATH` benchmarks another build (an A/B against a saved binary).
    let bin = std::env::var_os("HAPI_BENCH_SERVER")
        .map_or_else(|| root.join("target/release/hapi-server"), PathBuf::from);
    let work = std::env::temp_dir().join(format!("hapi-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    // `hapi-bench --only store|token-flood|files|cdf|cli|postgres|replicas` runs those rows alone
    // (`cdf`: the files rows and the same year as daily CDF files, memory included).
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    let result = match only.as_deref() {
        Some("token-flood") => token_flood(&bin, &work).await.map(|rows| print_table(&rows)),
        Some("files") => files_rows(&bin, &work, None).await.map(|rows| print_table(&rows)),
        Some("cdf") => match cdflib(&root) {
            Some(python) => files_rows(&bin, &work, Some(&python)).await.map(|rows| print_table(&rows)),
            None => Ok(()),
        },
        Some("cli") => cli_rows(&root, &bin, &work).await.map(|rows| print_table(&rows)),
        Some("postgres") => postgres::rows(&root, &bin, &work).await.map(|rows| print_table(&rows)),
        Some("replicas") => replicas::rows(&root, &bin, &work).await.map(|rows| print_table(&rows)),
        Some("store") => run(&root, &bin, &work, true).await,
        _ => run(&root, &bin, &work, false).await,
    };
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// The whole table, or with `store_only` the embedded store's rows alone.
async fn run(root: &Path, bin: &Path, work: &Path, store_only: bool) -> Result<()> {
    let mut rows: Vec<(String, String, String)> = Vec::new();

    // 1. The demo's first start: generate ~1.1 M records, catch the live datasets up
    // to now, and answer.
    {
        let demo_dir = work.join("demo-data");
        let s = start(bin, &["--data-dir", demo_dir.to_str().context("path")?], &[], 18_081)?;
        let t = wait_ready(&s.addr, Duration::from_secs(120)).await?;
        rows.push((
            "demo first start (1.1 M records + live catch-up)".into(),
            format!("{:.1} s", t.as_secs_f64()),
            "≤ 10 s".into(),
        ));
    }

    // 2. The bench store: 2.6 M records; generated by a first start, then a clean restart.
    let sosmag = std::fs::read_to_string(root.join("crates/hapi-server/demo/sosmag.json"))?;
    let config = work.join("bench.toml");
    // Room for the 1,000-stream row; everything else runs within the defaults.
    let streams =
        "[server]\nmax_streams = 2000\nmax_streams_per_client = 2000\nmax_connections_per_address = 4000\n";

    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n{streams}[auth]\nmode = \"open\"\n[[dataset]]\nid = \"{BENCH}\"\ndemo = \"sosmag_month\"\ninfo = '''{sosmag}'''\n",
            work.join("bench-data")
        ),
    )?;
    let cfg = config.to_str().context("path")?;
    let unlimited = [("HAPI_MAX_ELEMENTS", "100000000000"), ("HAPI_MAX_BYTES", "1000000000000")];
    {
        let s = start(bin, &["--config", cfg], &unlimited, 18_082)?;
        wait_ready(&s.addr, Duration::from_secs(300)).await?;
    }
    let s = start(bin, &["--config", cfg], &unlimited, 18_083)?;
    wait_ready(&s.addr, Duration::from_secs(60)).await?;
    let addr = s.addr.clone();
    let data = format!("/hapi/data?dataset={BENCH}&{RANGE}");

    for (label, suffix, extra, target) in [
        ("csv", "", "", 300.0),
        ("binary", "&format=binary", "", 500.0),
        ("csv, gzip asked (uncompressed MB/s)", "", "Accept-Encoding: gzip\r\n", 100.0),
    ] {
        let mut rates = Vec::new();
        let mut bytes = 0;
        for _ in 0..3 {
            let (n, secs, _) = download(&addr, &format!("{data}{suffix}"), extra).await?;
            bytes = n;
            rates.push(secs);
        }
        let secs = median(rates);
        let mb = if extra.is_empty() {
            bytes as f64
        } else {
            // Throughput is counted in csv bytes delivered, as a client sees them after decoding.
            download(&addr, &data, "").await?.0 as f64
        };
        rows.push((
            format!("/data {label}, {} records, {:.0} MB", RECORDS, mb / 1e6),
            format!("{:.0} MB/s, {:.2} M records/s", mb / 1e6 / secs, RECORDS / 1e6 / secs),
            format!("≥ {target} MB/s"),
        ));
    }

    // Time to first byte of a small request (10 records), keep-alive.
    let ttfb = ttfb_ms(&addr, &small_data()).await?;
    rows.push((
        "time to first byte, 10-record /data".into(),
        format!("{ttfb:.2} ms (median of 300)"),
        "< 2 ms".into(),
    ));

    let info = format!("/hapi/info?dataset={BENCH}");
    let pid = s.child.id();

    // Peak RSS while 16 large responses stream at once.
    let before = vm_hwm_kb(pid)?;
    let mut streams = Vec::new();
    for _ in 0..16 {
        let (addr, d) = (addr.clone(), data.clone());
        streams.push(tokio::spawn(async move { download(&addr, &d, "").await }));
    }
    for t in streams {
        t.await??;
    }
    let after = vm_hwm_kb(pid)?;
    rows.push((
        "peak RSS, 16 concurrent full csv responses".into(),
        format!("{:.0} MB (before: {:.0} MB)", after as f64 / 1024.0, before as f64 / 1024.0),
        "< 100 MB".into(),
    ));

    // 16 clients on slow links (50 MB/s each) reading the full csv at once.
    let base = vm_rss_kb(pid)?;
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(kb) = vm_rss_kb(pid) {
                    peak.fetch_max(kb, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut slow = Vec::new();
    for _ in 0..16 {
        let (addr, d) = (addr.clone(), data.clone());
        slow.push(tokio::spawn(async move { paced_download(&addr, &d, 50.0).await }));
    }
    for t in slow {
        t.await??;
    }
    rows.push((
        "peak RSS, 16 slow clients (50 MB/s each) of full csv".into(),
        format!(
            "{:.0} MB (before: {:.0} MB)",
            peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0,
            base as f64 / 1024.0
        ),
        "< 64 MB".into(),
    ));

    // 1,000 streams whose clients stopped reading, then gone.
    peak.store(0, std::sync::atomic::Ordering::Relaxed);
    let base = vm_rss_kb(pid)?;
    let mut stalled = Vec::with_capacity(1000);
    for _ in 0..1000 {
        stalled.push(stall(&addr, &data).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Small requests on fresh connections while those 1,000 stall.
    let small_pq = format!("/hapi/data?dataset={BENCH}&start=2026-09-15T00:00Z&stop=2026-09-15T00:01Z");
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        get(&mut BufReader::new(TcpStream::connect(&addr).await?), &small_pq, "").await?;
        worst = worst.max(t.elapsed());
    }
    let during = peak.load(std::sync::atomic::Ordering::Relaxed);
    drop(stalled);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = vm_rss_kb(pid)?;
    sampler.abort();
    rows.push((
        "RSS, 1,000 stalled full csv streams (peak / after they end)".into(),
        format!(
            "{:.0} MB / {:.0} MB (before: {:.0} MB)",
            during as f64 / 1024.0,
            after as f64 / 1024.0,
            base as f64 / 1024.0
        ),
        "< 512 MB, back near the baseline".into(),
    ));
    rows.push((
        "slowest of 20 small /data (60 records) during those 1,000 stalled streams".into(),
        format!("{:.1} ms", worst.as_secs_f64() * 1e3),
        "< 50 ms".into(),
    ));

    // The same /info load with a bearer token from the built-in issuer, on a second
    // server over the same store. Rounds alternate between the two servers so that
    // drift in the machine's speed hits both alike.
    let protected = work.join("bench-auth.toml");
    std::fs::write(
        &protected,
        std::fs::read_to_string(&config)?.replace("mode = \"open\"", "mode = \"builtin\""),
    )?;
    let pcfg = protected.to_str().context("path")?;
    let created =
        Command::new(bin).args(["clients", "create", "--config", pcfg]).stderr(Stdio::null()).output()?;
    let created = String::from_utf8(created.stdout)?;
    let field = |k: &str| created.lines().find_map(|l| l.strip_prefix(k)).map(str::to_owned);
    let (id, secret) =
        (field("client_id=").context("client id")?, field("client_secret=").context("secret")?);
    let p = start(bin, &["--config", pcfg], &unlimited, 18_084)?;
    wait_ready_protected(&p.addr).await?;
    let token = fetch_token(&p.addr, &id, &secret).await?;
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let (mut open, mut authed) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        open.push(request_rate(&addr, &info, "").await?);
        authed.push(request_rate(&p.addr, &info, &bearer).await?);
    }
    let (open_rate, auth_rate) = (median(open), median(authed));
    // Small /data (60 records) with the token: the request path, not the stream.
    let small = format!("/hapi/data?dataset={BENCH}&start=2026-09-15T00:00Z&stop=2026-09-15T00:01Z");
    let mut rates = Vec::new();
    for _ in 0..3 {
        rates.push(request_rate(&p.addr, &small, &bearer).await?);
    }
    let small_rate = median(rates);
    rows.push(("/info requests/s, 64 connections".into(), format!("{open_rate:.0}"), "≥ 20,000".into()));
    rows.push((
        "/info requests/s, 64 connections, bearer token".into(),
        format!("{auth_rate:.0} ({:.0}% of unauthenticated)", 100.0 * auth_rate / open_rate),
        "≥ 90%".into(),
    ));
    rows.push((
        "/data 60 records requests/s, 64 connections, bearer token".into(),
        format!("{small_rate:.0}"),
        "≥ 25,000".into(),
    ));

    if store_only {
        print_table(&rows);
        return Ok(());
    }
    rows.extend(token_flood(bin, work).await?);
    drop((s, p));
    rows.extend(files_rows(bin, work, cdflib(root).as_deref()).await?);
    rows.extend(cli_rows(root, bin, work).await?);
    rows.extend(postgres::rows(root, bin, work).await?);
    print_table(&rows);
    Ok(())
}

/// The venv's python when it has cdflib, which writes the CDF year; else `None`, and the
/// CDF rows are skipped with the reason printed.
fn cdflib(root: &Path) -> Option<PathBuf> {
    let python = root.join(".venv/bin/python");
    let ok = Command::new(&python).args(["-c", "import cdflib"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "skipped: the CDF rows need PyPI cdflib in .venv (./scripts/test.sh installs it) to write the year's files"
        );
    }
    ok.then_some(python)
}

/// Records of the year in the `files` rows: one every 5 s, 5 values each (31.5 M values).
const YEAR_RECORDS: u64 = 365 * 17_280;

/// A year of daily csv files, and the same records ingested into the embedded store:
/// full-year csv and binary from each, on one server. With `python`, also the same year
/// as daily CDF files written by cdflib (crates/hapi-cdf/tests/python/write_cdf.py:
/// there is no CDF writer in Rust, and a test-only one would check our reader against
/// itself), and the server's peak memory after one day and after the whole year of them.
async fn files_rows(bin: &Path, work: &Path, python: Option<&Path>) -> Result<Vec<(String, String, String)>> {
    let archive = work.join("archive");
    let year_start: u64 = 1_735_689_600; // 2025-01-01T00:00:00Z
    let store_dir = work.join("files-bench-data");
    let info = r#"{"parameters":[{"name":"Time","type":"isotime","units":"UTC","fill":null,"length":24},
      {"name":"B_GSE","type":"double","units":"nT","fill":"-1e31","size":[3]},
      {"name":"B_total","type":"double","units":"nT","fill":"-1e31"},
      {"name":"quality","type":"integer","units":null,"fill":"-1"}],"cadence":"PT5S"}"#;
    let config = work.join("files-bench.toml");
    let source =
        format!("source = {{ kind = \"files\", root = {archive:?}, template = \"$Y/y_$Y$m$d.csv\" }}");
    // A reader program: `cat` of one daily file (it ignores the range; the server cuts).
    let july = archive.join("2025/y_20250701.csv");
    let reader = format!("source = {{ kind = \"command\", program = \"cat\", args = [{july:?}] }}");
    let dated =
        info.replacen('{', r#"{"startDate":"2025-01-01T00:00:00Z","stopDate":"2026-01-01T00:00:00Z","#, 1);
    let mut text = format!(
        "data_dir = {store_dir:?}\n[auth]\nmode = \"open\"\n[[dataset]]\nid = \"store\"\ninfo = '''{info}'''\n[[dataset]]\nid = \"files\"\ninfo = '''{info}'''\n{source}\n[[dataset]]\nid = \"reader\"\ninfo = '''{dated}'''\n{reader}\n"
    );
    if let Some(python) = python {
        let cdf_archive = work.join("cdf-archive");
        let t = Instant::now();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hapi-cdf/tests/python/write_cdf.py");
        let ok = Command::new(python).arg(script).arg("--year").arg(&cdf_archive).status()?.success();
        if !ok {
            bail!("write_cdf.py --year failed");
        }
        eprintln!("wrote the CDF year in {:.0} s", t.elapsed().as_secs_f64());
        text.push_str(&format!(
            "[[dataset]]\nid = \"cdf\"\ninfo = '''{info}'''\nsource = {{ kind = \"files\", root = {cdf_archive:?}, template = \"$Y/y_$Y$m$d.cdf\" }}\n"
        ));
    }
    std::fs::write(&config, text)?;
    let cfg = config.to_str().context("path")?;
    let mut ingest = Command::new(bin)
        .args(["ingest", "--config", cfg, "--dataset", "store", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = ingest.stdin.take().context("ingest stdin")?;
    for day in 0..365u64 {
        let t0 = year_start + day * 86_400;
        let date = iso(t0);
        let dir = archive.join(&date[..4]);
        std::fs::create_dir_all(&dir)?;
        let mut text = String::with_capacity(17_280 * 80);
        for i in 0..17_280u64 {
            let t = t0 + i * 5;
            let x = (t % 3600) as f64 * 0.01;
            let line = format!("{},{:.3},{:.3},{:.3},{:.3},{}\n", iso(t), x, -x, x * 0.5, x * 1.2, t % 4);
            text.push_str(&line);
        }
        std::fs::write(dir.join(format!("y_{}.csv", date[..10].replace('-', ""))), &text)?;
        std::io::Write::write_all(&mut stdin, text.as_bytes())?;
    }
    drop(stdin);
    if !ingest.wait()?.success() {
        bail!("ingesting the year failed");
    }
    let unlimited = [("HAPI_MAX_ELEMENTS", "100000000000"), ("HAPI_MAX_BYTES", "1000000000000")];
    let s = start(bin, &["--config", cfg], &unlimited, 18_085)?;
    wait_ready(&s.addr, Duration::from_secs(120)).await?;
    let range = "start=2025-01-01T00:00Z&stop=2026-01-01T00:00Z";
    let mut rows = Vec::new();
    if python.is_some() {
        rows.extend(cdf_rows(&s, range).await?);
    }
    for (label, suffix) in [("csv", ""), ("binary", "&format=binary")] {
        let mut rates = [0.0; 2];
        for (rate, id) in rates.iter_mut().zip(["store", "files"]) {
            let pq = format!("/hapi/data?dataset={id}&{range}{suffix}");
            *rate = full_rate(&s.addr, &pq).await?.0;
        }
        let [store, files] = rates;
        rows.push((
            format!(
                "/data {label} from 365 daily csv files ({:.1} M records, 31.5 M values)",
                YEAR_RECORDS as f64 / 1e6
            ),
            format!(
                "{files:.0} MB/s ({:.0}% of the same records from the store: {store:.0} MB/s)",
                100.0 * files / store
            ),
            "≥ 50% of the store".into(),
        ));
    }
    // Time to first byte of one hour from the reader, against the program's own run time.
    let hour = "/hapi/data?dataset=reader&start=2025-07-01T12:00Z&stop=2025-07-01T13:00Z";
    let (mut ttfb, mut alone) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        ttfb.push(download(&s.addr, hour, "").await?.2.as_secs_f64() * 1e3);
        let t = Instant::now();
        Command::new("cat").arg(&july).stdout(Stdio::null()).status()?;
        alone.push(t.elapsed().as_secs_f64() * 1e3);
    }
    rows.push((
        "time to first byte, one hour from a reader program (`cat` of a daily file)".into(),
        format!("{:.2} ms (the program alone: {:.2} ms; medians of 50)", median(ttfb), median(alone)),
        "within 5 ms of the program's own run".into(),
    ));
    rows.extend(upstream_rows(bin, work, &s.addr, range).await?);
    Ok(rows)
}

/// The store's year re-served by a second server (`kind = "hapi"`) from the first one,
/// against the first one's own answer, both on loopback.
async fn upstream_rows(
    bin: &Path,
    work: &Path,
    upstream: &str,
    range: &str,
) -> Result<Vec<(String, String, String)>> {
    let config = work.join("proxy.toml");
    let data_dir = work.join("proxy-data");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data_dir:?}\n[auth]\nmode = \"open\"\n[[dataset]]\nid = \"store\"\nsource = {{ kind = \"hapi\", upstream = \"up\" }}\n[[upstream]]\nname = \"up\"\nurl = \"http://{upstream}/hapi\"\n"
        ),
    )?;
    let unlimited = [("HAPI_MAX_ELEMENTS", "100000000000"), ("HAPI_MAX_BYTES", "1000000000000")];
    let proxy = start(bin, &["--config", config.to_str().context("path")?], &unlimited, 18_086)?;
    wait_ready(&proxy.addr, Duration::from_secs(30)).await?;
    let mut rows = Vec::new();
    for (label, suffix) in [("csv", ""), ("binary", "&format=binary")] {
        let pq = format!("/hapi/data?dataset=store&{range}{suffix}");
        let mut rates = [0.0; 2];
        for (rate, addr) in rates.iter_mut().zip([upstream, proxy.addr.as_str()]) {
            *rate = full_rate(addr, &pq).await?.0;
        }
        let [direct, through] = rates;
        rows.push((
            format!("/data {label} of the year re-served from an upstream HAPI server (ours, loopback)"),
            format!(
                "{through:.0} MB/s ({:.0}% of the upstream's own {direct:.0} MB/s)",
                100.0 * through / direct
            ),
            "≥ 80% of the upstream".into(),
        ));
    }
    rows.push((
        "peak RSS of the re-serving server after those six year-long responses".into(),
        format!("{:.0} MB", vm_hwm_kb(proxy.child.id())? as f64 / 1024.0),
        "flat in response size".into(),
    ));
    Ok(rows)
}

/// The CDF year against the store: csv and binary throughput, and the server's peak
/// memory after one day and after the year (flat in the archive's size).
async fn cdf_rows(s: &Server, range: &str) -> Result<Vec<(String, String, String)>> {
    let pid = s.child.id();
    let day = "/hapi/data?dataset=cdf&start=2025-07-01T00:00Z&stop=2025-07-02T00:00Z";
    let (day_bytes, _, _) = download(&s.addr, day, "").await?;
    let after_day = vm_hwm_kb(pid)?;
    let mut rows = Vec::new();
    let mut sizes = Vec::new();
    for (label, suffix) in [("csv", ""), ("binary", "&format=binary")] {
        let mut rates = [0.0; 2];
        for (rate, id) in rates.iter_mut().zip(["store", "cdf"]) {
            let pq = format!("/hapi/data?dataset={id}&{range}{suffix}");
            let (r, bytes) = full_rate(&s.addr, &pq).await?;
            sizes.push((id, label, bytes));
            *rate = r;
        }
        let [store, cdf] = rates;
        rows.push((
            format!(
                "/data {label} from 365 daily CDF files ({:.1} M records, 31.5 M values)",
                YEAR_RECORDS as f64 / 1e6
            ),
            format!(
                "{cdf:.0} MB/s ({:.0}% of the same records from the store: {store:.0} MB/s)",
                100.0 * cdf / store
            ),
            "≥ 50% of the store".into(),
        ));
    }
    let after_year = vm_hwm_kb(pid)?;
    let mb = |kb: u64| kb as f64 / 1024.0;
    rows.push((
        "server peak RSS after one day of the CDF files / after the year's csv and binary 3 times each"
            .into(),
        format!(
            "{:.0} MB / {:.0} MB (one day {:.1} MB of csv; response sizes {})",
            mb(after_day),
            mb(after_year),
            day_bytes as f64 / 1e6,
            sizes
                .iter()
                .map(|(id, l, n)| format!("{id} {l} {:.0} MB", *n as f64 / 1e6))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "flat in the archive's size".into(),
    ));
    // One hour of a day file, through the server: the epoch's binary search, not a read of the day.
    let hour = "/hapi/data?dataset=cdf&start=2025-07-01T12:00Z&stop=2025-07-01T13:00Z";
    let mut ttfb = Vec::new();
    for _ in 0..50 {
        ttfb.push(download(&s.addr, hour, "").await?.2.as_secs_f64() * 1e3);
    }
    rows.push((
        "time to first byte, one hour from a daily CDF file".into(),
        format!("{:.2} ms (median of 50)", median(ttfb)),
        "< 5 ms".into(),
    ));
    Ok(rows)
}

/// 2,500,000 s at 1 s: 2.5 M records of the bench dataset (6 values each).
const CLI_START: &str = "2026-09-01T00:00Z";
const CLI_STOP: &str = "2026-09-29T22:26:40Z";
const CLI_RECORDS: u64 = 2_500_000;

/// Issue 8: `hapi data` of 2.5 M records through the demo's 100,000-element limit
/// (pieces of 16,666 records, 4 in flight, every piece checked, written to stdout),
/// against one unlimited request of the same records on a second server over the same store.
async fn cli_rows(root: &Path, bin: &Path, work: &Path) -> Result<Vec<(String, String, String)>> {
    let hapi = root.join("target/release/hapi");
    let sosmag = std::fs::read_to_string(root.join("crates/hapi-server/demo/sosmag.json"))?;
    let config = work.join("cli-bench.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[auth]\nmode = \"open\"\n[[dataset]]\nid = \"{BENCH}\"\ndemo = \"sosmag_month\"\ninfo = '''{sosmag}'''\n",
            work.join("cli-bench-data")
        ),
    )?;
    let cfg = config.to_str().context("path")?;
    let unlimited = [("HAPI_MAX_ELEMENTS", "100000000000"), ("HAPI_MAX_BYTES", "1000000000000")];
    let swe = [("HAPI_MAX_ELEMENTS", "100000"), ("HAPI_MAX_BYTES", "12582912")];
    {
        // The first start generates the store.
        let s = start(bin, &["--config", cfg], &unlimited, free_port()?)?;
        wait_ready(&s.addr, Duration::from_secs(300)).await?;
    }
    // Free ports: other servers on this machine may hold fixed ones.
    let big = start(bin, &["--config", cfg], &unlimited, free_port()?)?;
    let lim = start(bin, &["--config", cfg], &swe, free_port()?)?;
    wait_ready(&big.addr, Duration::from_secs(60)).await?;
    wait_ready(&lim.addr, Duration::from_secs(60)).await?;
    let server = format!("http://{}/hapi", lim.addr);
    let mut rows = Vec::new();
    for format in ["binary", "csv"] {
        let pq = format!("/hapi/data?dataset={BENCH}&start={CLI_START}&stop={CLI_STOP}&format={format}");
        let (mut one, mut cli) = (Vec::new(), Vec::new());
        let (mut bytes, mut pieces) = (0u64, String::new());
        // Rounds alternate between the two so that drift in the machine's speed hits both alike.
        for _ in 0..3 {
            // `download` counts the HTTP framing too (about 10 kB here); rates below use the body.
            let (_, secs, _) = download(&big.addr, &pq, "").await?;
            one.push(secs);
            let t = Instant::now();
            let out = Command::new(&hapi)
                .args(["data", BENCH, "--start", CLI_START, "--stop", CLI_STOP, "--format", format])
                .args(["--server", &server, "-q", "-v"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .with_context(|| format!("running {}", hapi.display()))?;
            cli.push(t.elapsed().as_secs_f64());
            let err = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() {
                bail!("hapi data failed: {err}");
            }
            // "hapi: N records, B bytes in P piece(s); ...": every record, once.
            let summary = err.lines().last().unwrap_or_default();
            if !summary.starts_with(&format!("hapi: {CLI_RECORDS} records, ")) {
                bail!("hapi data wrote other than {CLI_RECORDS} records: {summary}");
            }
            let field =
                |after: &str| summary.split(after).nth(1).and_then(|s| s.split(' ').next()).unwrap_or("?");
            bytes = field(" records, ").parse()?;
            pieces = field(" bytes in ").to_owned();
        }
        let (one, cli) = (bytes as f64 / 1e6 / median(one), bytes as f64 / 1e6 / median(cli));
        rows.push((
            format!(
                "`hapi data` {format}, {:.1} M records ({:.0} MB) through the 100,000-element limit ({pieces} pieces, 4 in flight)",
                CLI_RECORDS as f64 / 1e6,
                bytes as f64 / 1e6
            ),
            format!("{cli:.0} MB/s ({:.0}% of one unlimited request: {one:.0} MB/s)", 100.0 * cli / one),
            "≥ 60% of one unlimited request".into(),
        ));
    }
    Ok(rows)
}

/// A port nothing listens on now.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `YYYY-MM-DDTHH:MM:SS.000Z` of Unix seconds.
fn iso(t: u64) -> String {
    let nanos = i64::try_from(t).unwrap_or(i64::MAX).saturating_mul(hapi_core::time::NANOS_PER_SECOND);
    hapi_core::time::format_string(nanos, hapi_core::time::TimeFormat::YMD_MILLIS)
}

fn print_table(rows: &[(String, String, String)]) {
    println!("| measurement | result | target |\n|---|---|---|");
    for (a, b, c) in rows {
        println!("| {a} | {b} | {c} |");
    }
}
