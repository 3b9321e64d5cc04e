//! The command line of the built-in issuer: clients and users.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::CONFIG;

fn run(args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hapi-server"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

/// The issuer of the data directory the commands use, opened beside them.
fn issuer_of(data_dir: &std::path::Path) -> hapi_auth::Issuer {
    let cfg = hapi_auth::IssuerConfig {
        issuer_url: "http://127.0.0.1:1".into(),
        audience: "a".into(),
        scopes: vec!["s".into()],
        token_ttl: std::time::Duration::from_secs(300),
    };
    hapi_auth::Issuer::open(data_dir, cfg).unwrap()
}

#[test]
fn clients_and_users_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("hapi.toml");
    let protected = CONFIG.replace("mode = \"open\"", "mode = \"builtin\"");
    std::fs::write(&cfg, format!("data_dir = {:?}\n{protected}", dir.path().join("data"))).unwrap();
    let c = cfg.to_str().unwrap();

    let (ok, out) = run(&["clients", "create", "--config", c, "--id", "ops-script", "--role", "private"], "");
    assert!(ok, "{out}");
    let secret = out.lines().find_map(|l| l.strip_prefix("client_secret=")).unwrap().to_owned();
    assert!(secret.len() >= 32);
    let (_, list) = run(&["clients", "list", "--config", c], "");
    assert!(list.contains("ops-script\tactive\troles=private"), "{list}");
    assert!(!list.contains(&secret), "secrets are never listed");
    let (ok, rotated) = run(&["clients", "rotate", "ops-script", "--config", c], "");
    assert!(ok && !rotated.contains(&secret));
    let (ok, _) = run(&["clients", "revoke", "ops-script", "--config", c], "");
    assert!(ok);
    let (_, list) = run(&["clients", "list", "--config", c], "");
    assert!(list.contains("ops-script\trevoked"), "{list}");
    assert!(!run(&["clients", "revoke", "nobody", "--config", c], "").0);

    assert!(run(&["users", "add", "alice", "--role", "embargo", "--config", c], "a long password\n").0);
    assert!(!run(&["users", "add", "bob", "--config", c], "\n").0, "empty password refused");
    let (_, users) = run(&["users", "list", "--config", c], "");
    assert_eq!(users.trim(), "alice\troles=embargo");
    assert!(run(&["users", "roles", "alice", "--role", "private", "--role", "embargo", "--config", c], "").0);
    let (_, users) = run(&["users", "list", "--config", c], "");
    assert_eq!(users.trim(), "alice\troles=private,embargo");
    assert!(!run(&["users", "roles", "nobody", "--config", c], "").0);

    // A client alice made on the portal: listed with its owner, revocable by the operator.
    let issuer = issuer_of(&dir.path().join("data"));
    let own = issuer.create_owned_client("alice", 10).unwrap();
    let (_, list) = run(&["clients", "list", "--config", c], "");
    assert!(list.contains(&format!("{}\tactive\troles=(its owner's)\towner=alice", own.id)), "{list}");
    assert!(run(&["clients", "revoke", &own.id, "--config", c], "").0);
    assert!(issuer.owned_clients("alice").unwrap()[0].revoked_at.is_some());
    assert!(run(&["users", "remove", "alice", "--config", c], "").0);
    assert!(!run(&["users", "remove", "alice", "--config", c], "").0);
}

/// Sign-ups are listed as pending and approved from the command line, with the
/// configured roles unless others are named.
#[test]
fn sign_ups_are_approved_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("hapi.toml");
    let protected = CONFIG.replace(
        "[auth]\nmode = \"open\"\n",
        "[auth]\nmode = \"builtin\"\n[auth.issuer]\nallow_registration = true\nregistration_roles = [\"guest\"]\n",
    );
    std::fs::write(&cfg, format!("data_dir = {:?}\n{protected}", dir.path().join("data"))).unwrap();
    let c = cfg.to_str().unwrap();
    let issuer = issuer_of(&dir.path().join("data"));
    assert!(issuer.register_user("ann@example.org", "a long password").unwrap());
    assert!(issuer.register_user("bob@example.org", "a long password").unwrap());
    let (_, users) = run(&["users", "list", "--config", c], "");
    assert_eq!(users.trim(), "ann@example.org\troles=\tpending\nbob@example.org\troles=\tpending");
    assert!(run(&["users", "approve", "ann@example.org", "--config", c], "").0);
    assert!(run(&["users", "approve", "bob@example.org", "--role", "private", "--config", c], "").0);
    assert!(!run(&["users", "approve", "bob@example.org", "--config", c], "").0, "approved once");
    assert!(!run(&["users", "approve", "nobody@example.org", "--config", c], "").0);
    let (_, users) = run(&["users", "list", "--config", c], "");
    assert_eq!(users.trim(), "ann@example.org\troles=guest\nbob@example.org\troles=private");
    assert!(issuer.verify_user("ann@example.org", "a long password").is_ok());
}

/// Starts `serve` on a free port with `env`, makes one request, stops it (SIGKILL of
/// our own child) and returns stderr.
fn serve_log(env: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("hapi.toml");
    std::fs::write(&cfg, format!("data_dir = {:?}\n{CONFIG}", dir.path().join("data"))).unwrap();
    let crate::support::ServeProcess { mut child, addr, stderr: mut err, head: mut log } =
        crate::support::serve_process(&cfg, env);
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /hapi/info?dataset=nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    assert!(reply.starts_with(b"HTTP/1.1 404"), "{}", String::from_utf8_lossy(&reply));
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    err.read_to_end(&mut log).unwrap();
    log
}

#[test]
fn logs_are_json_lines_when_configured() {
    let log = serve_log(&[("HAPI_LOG_FORMAT", "json")]);
    let text = String::from_utf8(log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().all(|l| l["level"].is_string() && l["target"].is_string() && l["fields"].is_object())
    );
    let audit =
        lines.iter().find(|l| l["target"] == "audit").unwrap_or_else(|| panic!("no audit line: {text}"));
    assert_eq!(audit["fields"]["status"], 1406);
    assert_eq!(audit["fields"]["request_id"].as_str().map(str::len), Some(16), "{audit}");
}

#[test]
fn text_logs_to_a_pipe_have_no_colour_codes() {
    let log = serve_log(&[("HAPI_LOG_FORMAT", "text")]);
    assert!(!log.is_empty());
    assert!(!log.contains(&0x1b), "{}", String::from_utf8_lossy(&log));
    assert!(String::from_utf8_lossy(&log).contains("request_id="), "the audit line names the request");
}
