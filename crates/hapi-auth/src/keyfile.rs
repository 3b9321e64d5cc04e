//! The issuer's signing key on disk: Ed25519, PKCS#8 v1 in PEM (what
//! `openssl genpkey -algorithm ED25519` writes), mode 0600.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::issuer::IssuerError;
use crate::secret;

/// Reads the PKCS#8 DER key, creating it first if there is none ([`read_or_create`]:
/// two processes starting at once end up with the same key).
pub(crate) fn load_or_create(path: &Path) -> Result<Vec<u8>, IssuerError> {
    let (pem, created) = read_or_create(path, || {
        let doc = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new())
            .map_err(|_| std::io::Error::other("Ed25519 key generation failed"))?;
        Ok(pem_encode(doc.as_ref()).into_bytes())
    })
    .map_err(|source| IssuerError::Io { path: path.to_owned(), source })?;
    if created {
        tracing::info!(path = %path.display(), "created the issuer signing key");
    } else {
        warn_if_readable_by_others(path);
    }
    std::str::from_utf8(&pem)
        .ok()
        .and_then(pem_decode)
        .ok_or_else(|| IssuerError::Key { path: path.to_owned(), reason: "bad PEM".to_owned() })
}

/// The contents of the secret file `path`, written first from `new()` (mode 0600) if
/// there is none, and whether this call wrote it. The new contents go to a private
/// temporary file that is hard-linked into place, so the file is either absent or
/// complete, and of processes starting at once (replicas sharing a key) one writes and
/// the others read what it wrote.
pub fn read_or_create(
    path: &Path,
    new: impl FnOnce() -> std::io::Result<Vec<u8>>,
) -> std::io::Result<(Vec<u8>, bool)> {
    match std::fs::read(path) {
        Ok(bytes) => return Ok((bytes, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let contents = new()?;
    let suffix = secret::hex(&secret::random_bytes::<8>().map_err(std::io::Error::other)?);
    let name = path.file_name().map_or_else(|| "key".into(), |n| n.to_string_lossy());
    let tmp = path.with_file_name(format!(".{name}.{suffix}.tmp"));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(&contents)?;
        f.sync_all()
    };
    let linked = write().and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok((contents, true)),
        // Another process won the race: its file is complete.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((std::fs::read(path)?, false)),
        Err(e) => Err(e),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the issuer signing key is readable by other users; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn pem_encode(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

fn pem_decode(pem: &str) -> Option<Vec<u8>> {
    let body: String =
        pem.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("-----")).collect();
    STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip() {
        let der: Vec<u8> = (0..=255).collect();
        assert_eq!(pem_decode(&pem_encode(&der)), Some(der));
        assert_eq!(pem_decode("-----BEGIN X-----\n!!\n-----END X-----"), None);
    }

    #[test]
    fn created_once_then_read() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("issuer-key");
        let first = load_or_create(&path).expect("create");
        assert!(Ed25519KeyPair::from_pkcs8(&first).is_ok());
        assert_eq!(load_or_create(&path).expect("read"), first);
        let pem = std::fs::read_to_string(&path).expect("pem");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    }

    #[test]
    fn processes_creating_at_once_all_read_the_one_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("session-key");
        let got: Vec<(Vec<u8>, bool)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u8)
                .map(|i| {
                    let path = &path;
                    s.spawn(move || read_or_create(path, || Ok(vec![i; 64])).expect("read or create"))
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        assert_eq!(got.iter().filter(|(_, created)| *created).count(), 1, "one writer");
        assert!(got.iter().all(|(bytes, _)| bytes == &got[0].0), "one key for all");
        assert_eq!(std::fs::read(&path).expect("file"), got[0].0);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    }
}
