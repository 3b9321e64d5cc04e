//! nginx in front of local replicas, for the replica test and the replica benchmark,
//! started from the repository's own `docs/deploy/nginx.conf` so the recipe users copy
//! is the one that was tested. Debian's nginx, without systemd.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Debian's nginx binary.
pub const NGINX: &str = "/usr/sbin/nginx";

/// A running nginx; killed (and its prefix directory removed) on drop.
#[derive(Debug)]
pub struct Front {
    child: Child,
    /// Where it listens on 127.0.0.1.
    pub port: u16,
    prefix: tempfile::TempDir,
}

/// The deployment recipe's nginx configuration.
pub fn recipe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/deploy/nginx.conf")
}

impl Front {
    /// Whether nginx is installed; `false` is printed (a panic under `HAPI_REQUIRE_E2E=1`).
    pub fn available() -> bool {
        let found = Path::new(NGINX).exists();
        if !found {
            crate::or_skip::<()>(Err(format!("no {NGINX} (apt-get install nginx)")));
        }
        found
    }

    /// nginx on a free port with the recipe's upstreams `127.0.0.1:8081`, `:8082`, ...
    /// replaced by `replicas`, in that order.
    pub fn start(replicas: &[u16]) -> Result<Front, String> {
        let template = std::fs::read_to_string(recipe()).map_err(|e| format!("reading the recipe: {e}"))?;
        let port = crate::free_port()?;
        let mut text = template.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
        for (i, p) in replicas.iter().enumerate() {
            let placeholder = format!("127.0.0.1:{}", 8081 + i);
            if !text.contains(&placeholder) {
                return Err(format!("docs/deploy/nginx.conf names no upstream {placeholder}"));
            }
            text = text.replace(&placeholder, &format!("127.0.0.1:{p}"));
        }
        let prefix = tempfile::Builder::new().prefix("hapi-nginx.").tempdir().map_err(|e| e.to_string())?;
        let conf = prefix.path().join("nginx.conf");
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(prefix.path())
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {NGINX}: {e}"))?;
        Ok(Front { child, port, prefix })
    }

    /// The master's process id; the workers are its children.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// nginx's error log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.prefix.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        // `-s stop` (SIGTERM to the master by its pid file) ends the workers too; a
        // SIGKILL of the master alone would leave them running, holding the port.
        let stopped = Command::new(NGINX)
            .arg("-p")
            .arg(self.prefix.path())
            .arg("-c")
            .arg(self.prefix.path().join("nginx.conf"))
            .args(["-s", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
