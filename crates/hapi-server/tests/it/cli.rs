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
    assert!(run(&["users", "remove", "alice", "--config", c], "").0);
    assert!(!run(&["users", "remove", "alice", "--config", c], "").0);
}
