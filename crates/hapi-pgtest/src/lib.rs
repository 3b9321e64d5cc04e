//! A throwaway PostgreSQL cluster for tests, from Debian's binaries, without systemd.
//!
//! [`Cluster::start`] runs `initdb` into a temporary directory and `pg_ctl start` on a
//! free 127.0.0.1 port, its socket inside that directory (`/var/run/postgresql` may not
//! exist), as the `postgres` user when the tests run as root (PostgreSQL refuses root).
//! Settings are for tests only: no fsync. The cluster stops and its directory goes away
//! when the [`Cluster`] is dropped, and also when the test process exits without
//! dropping it (a shared cluster in a `static`): a guardian shell waits for the end of
//! a pipe that only this process holds, then stops the server and removes the files.
//!
//! Without PostgreSQL binaries, [`Cluster::available`] (and the `shared`/`start_or_skip`
//! helpers) print why and return `None`, so plain `cargo test` passes on a machine
//! without them; `HAPI_REQUIRE_E2E=1` (scripts/test.sh) turns that into a failure.
//!
//! ```no_run
//! let Some(pg) = hapi_pgtest::shared() else { return };
//! let url = pg.fresh_database(); // postgres://hapi:…@127.0.0.1:PORT/test_3
//! # let _ = url;
//! ```

pub mod nginx;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The superuser every cluster gets, and its password (loopback only, test data only).
pub const USER: &str = "hapi";
/// See [`USER`].
pub const PASSWORD: &str = "hapi-test-pw";

/// A running PostgreSQL server over its own data directory.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    /// Holds `data/`, the socket, the logs; removed by the guardian.
    dir: PathBuf,
    port: u16,
    /// Closing it tells the guardian to stop the server and remove `dir`.
    guardian_pipe: Option<ChildStdin>,
    guardian: Option<Child>,
    databases: AtomicU32,
}

/// Why PostgreSQL tests cannot run here, printed by the skip helpers.
fn missing_binaries() -> Option<PathBuf> {
    let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    // Highest major version last (numeric, so 9 < 15).
    bins.sort_by_key(|b| {
        b.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    bins.pop()
}

fn require_e2e() -> bool {
    std::env::var_os("HAPI_REQUIRE_E2E").is_some_and(|v| v == "1")
}

/// `Some(value)`, or `None` after printing `why` (a panic under `HAPI_REQUIRE_E2E=1`).
fn or_skip<T>(r: Result<T, String>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(why) if require_e2e() => panic!("HAPI_REQUIRE_E2E=1 but PostgreSQL cannot run: {why}"),
        Err(why) => {
            eprintln!("skipped: PostgreSQL cannot run here ({why}); scripts/test.sh installs it");
            None
        }
    }
}

/// One cluster for the whole test process, started on first use; each test takes
/// [`Cluster::fresh_database`]. `None` (printed) without PostgreSQL.
pub fn shared() -> Option<&'static Cluster> {
    static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
    or_skip(SHARED.get_or_init(Cluster::start).as_ref().map_err(Clone::clone))
}

/// A cluster of its own (for tests that stop or restart it). `None` (printed) without
/// PostgreSQL.
pub fn start_or_skip() -> Option<Cluster> {
    or_skip(Cluster::start())
}

/// Whether PostgreSQL's binaries are installed (no message).
pub fn available() -> bool {
    missing_binaries().is_some()
}

fn as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Runs a PostgreSQL program, as `postgres` when we are root.
fn pg_command(bin: &Path, program: &str) -> Command {
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c.stdin(Stdio::null()).output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// A directory the `postgres` user owns when we are root.
fn owned_dir(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    if as_root() {
        run(
            {
                let mut c = Command::new("chown");
                c.args(["-R", "postgres:postgres"]).arg(path);
                c
            },
            "chown",
        )?;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())
}

impl Cluster {
    /// initdb + start, on a free port. Errors say what failed (with its output).
    pub fn start() -> Result<Cluster, String> {
        let bin = missing_binaries()
            .ok_or_else(|| "no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)".to_owned())?;
        let dir = tempfile::Builder::new()
            .prefix("hapi-pg.")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?
            .keep();
        let mut cluster = Cluster::guarded(bin, dir)?;
        std::fs::write(cluster.dir.join("pw"), PASSWORD).map_err(|e| e.to_string())?;
        owned_dir(&cluster.dir)?;
        let mut initdb = pg_command(&cluster.bin, "initdb");
        initdb
            .arg("-D")
            .arg(cluster.data())
            .args(["-U", USER, "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust"])
            .args(["--auth-host=scram-sha-256", "--no-sync"])
            .arg(format!("--pwfile={}", cluster.dir.join("pw").display()));
        run(initdb, "initdb")?;
        cluster.start_on_free_port()?;
        Ok(cluster)
    }

    /// A cluster directory whose guardian is already watching (so any early error
    /// still removes it).
    fn guarded(bin: PathBuf, dir: PathBuf) -> Result<Cluster, String> {
        // `cat` ends when this process closes its end of the pipe (drop or exit);
        // then the server is stopped and the directory removed.
        let script = format!(
            "cat >/dev/null; {stop} -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
            stop = pg_command_line(&bin, "pg_ctl"),
            data = dir.join("data").display(),
            dir = dir.display(),
        );
        let mut guardian = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the guardian shell: {e}"))?;
        let pipe = guardian.stdin.take();
        Ok(Cluster {
            bin,
            dir,
            port: 0,
            guardian_pipe: pipe,
            guardian: Some(guardian),
            databases: AtomicU32::new(0),
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn start_on_free_port(&mut self) -> Result<(), String> {
        let mut last = String::new();
        // Another process may take the port between our probe and the server's bind.
        for _ in 0..3 {
            self.port = free_port()?;
            match self.pg_start() {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn pg_start(&self) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {dir} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200 -c max_wal_senders=5 -c wal_level=replica",
            port = self.port,
            dir = self.dir.display()
        );
        let mut c = pg_command(&self.bin, "pg_ctl");
        c.arg("-D").arg(self.data()).arg("-l").arg(self.dir.join("server.log"));
        c.args(["-w", "-t", "30", "-o", &options, "start"]);
        run(c, "pg_ctl start").map_err(|e| format!("{e}\n{}", self.log()))
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The postmaster's process id (from `postmaster.pid`), whose children are the
    /// backends: for the benchmark's CPU accounting.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?.lines().next()?.trim().parse().ok()
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` as the superuser.
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{name}", self.port)
    }

    /// The URL of the `postgres` database (always there).
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// Runs SQL through psql against database `db`; returns its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", USER])
            .args(["-p", &self.port.to_string(), "-d", db, "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
        } else {
            Err(format!("psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// A new empty database; returns its URL. Tests sharing one cluster take one each.
    pub fn fresh_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let name = format!("test_{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("{e}"));
        self.url_of(&name)
    }

    /// Stops the server (fast shutdown: clients are disconnected), keeping its files.
    pub fn stop(&self) {
        let mut c = pg_command(&self.bin, "pg_ctl");
        c.arg("-D").arg(self.data()).args(["-m", "fast", "-w", "stop"]);
        run(c, "pg_ctl stop").unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&self) {
        let started = Instant::now();
        // The old socket may linger for a moment after a stop.
        loop {
            match self.pg_start() {
                Ok(()) => return,
                Err(e) if started.elapsed() > Duration::from_secs(20) => panic!("{e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// A streaming-replication hot standby of this cluster (`pg_basebackup -R`), on its
    /// own free port; read-only, following the primary.
    pub fn standby(&self) -> Result<Cluster, String> {
        let dir = tempfile::Builder::new()
            .prefix("hapi-pg-standby.")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?
            .keep();
        let mut standby = Cluster::guarded(self.bin.clone(), dir)?;
        owned_dir(&standby.dir)?;
        let mut c = pg_command(&self.bin, "pg_basebackup");
        c.arg("-D").arg(standby.data());
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER, "-R", "-X", "stream"]);
        c.args(["-c", "fast", "--no-sync", "-d"]);
        // The connection string lands in primary_conninfo (with -R), password included.
        c.arg(format!("host=127.0.0.1 port={} user={USER} password={PASSWORD}", self.port));
        run(c, "pg_basebackup")?;
        standby.start_on_free_port()?;
        Ok(standby)
    }

    /// Waits until the standby has replayed everything the primary `of` has written.
    pub fn wait_caught_up(&self, primary: &Cluster) -> Result<(), String> {
        // The insert position, not the write position: with `synchronous_commit=off` a
        // commit can sit in the WAL buffers, past `pg_current_wal_lsn()`, for a moment.
        let target = primary.psql("postgres", "SELECT pg_current_wal_insert_lsn()")?;
        let started = Instant::now();
        loop {
            let done =
                self.psql("postgres", &format!("SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"))?;
            if done == "t" {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(format!("standby still behind {target} after 30 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The shell words that run `program` as [`pg_command`] does.
fn pg_command_line(bin: &Path, program: &str) -> String {
    let path = bin.join(program);
    if as_root() {
        format!("runuser -u postgres -- '{}'", path.display())
    } else {
        format!("'{}'", path.display())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Closing the pipe lets the guardian stop the server and remove the files.
        if let Some(mut pipe) = self.guardian_pipe.take() {
            let _ = pipe.flush();
        }
        if let Some(mut g) = self.guardian.take() {
            let _ = g.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_serves_sql_and_is_gone_after_drop() {
        let Some(pg) = start_or_skip() else { return };
        let url = pg.fresh_database();
        let db = url.rsplit('/').next().unwrap().to_owned();
        assert_eq!(pg.psql(&db, "SELECT 1 + 1").unwrap(), "2");
        assert!(url.starts_with("postgres://hapi:") && url.contains("@127.0.0.1:"), "{url}");
        let (dir, port) = (pg.dir.clone(), pg.port());
        drop(pg);
        assert!(!dir.exists(), "the cluster's directory is removed");
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok(), "the port is free again");
    }

    #[test]
    fn stop_and_restart_keep_the_data() {
        let Some(pg) = start_or_skip() else { return };
        pg.psql("postgres", "CREATE TABLE t (x int); INSERT INTO t VALUES (7)").unwrap();
        pg.stop();
        assert!(pg.psql("postgres", "SELECT 1").is_err(), "stopped");
        pg.restart();
        assert_eq!(pg.psql("postgres", "SELECT x FROM t").unwrap(), "7");
    }

    #[test]
    fn a_standby_follows_the_primary_and_refuses_writes() {
        let Some(pg) = start_or_skip() else { return };
        pg.psql("postgres", "CREATE TABLE t (x int)").unwrap();
        let standby = pg.standby().unwrap();
        pg.psql("postgres", "INSERT INTO t VALUES (42)").unwrap();
        standby.wait_caught_up(&pg).unwrap();
        assert_eq!(standby.psql("postgres", "SELECT x FROM t").unwrap(), "42");
        assert_eq!(standby.psql("postgres", "SELECT pg_is_in_recovery()").unwrap(), "t");
        let err = standby.psql("postgres", "INSERT INTO t VALUES (1)").unwrap_err();
        assert!(err.contains("read-only transaction"), "{err}");
    }
}
