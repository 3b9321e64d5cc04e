//! The profile file `hapi login` writes: a server and the credentials for it, per
//! profile name, readable by its owner only (mode 0600).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One profile. The secret is kept here so that it is on no command line and in no
/// environment; it is never printed (see the `Debug` impl).
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    /// The HAPI base URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The OAuth2 client id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The client secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The token endpoint, when it is not discovered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// The OpenID provider whose discovery document names the token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The scope asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("server", &self.server)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<hidden>"))
            .finish_non_exhaustive()
    }
}

/// `$HAPI_CONFIG`, else `$XDG_CONFIG_HOME/hapi/profiles.toml`, else `~/.config/hapi/profiles.toml`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HAPI_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("hapi").join("profiles.toml"))
}

/// Every profile of the file at `path` (none when it does not exist).
pub fn read_all(path: &Path) -> Result<toml::Table> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.parse::<toml::Table>().map_err(|e| Error::Usage(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(toml::Table::new()),
        Err(e) => Err(Error::Usage(format!("{}: {e}", path.display()))),
    }
}

/// Profile `name` of the file at `path`, if there is one.
pub fn read(path: &Path, name: &str) -> Result<Option<Profile>> {
    let all = read_all(path)?;
    let Some(v) = all.get(name) else { return Ok(None) };
    v.clone()
        .try_into()
        .map(Some)
        .map_err(|e| Error::Usage(format!("{}: profile {name:?}: {e}", path.display())))
}

/// Writes profile `name` into the file at `path`, keeping the others; the file is
/// created with mode 0600 (and set to it if it existed), its directory with 0700.
pub fn write(path: &Path, name: &str, p: &Profile) -> Result<()> {
    let err = |e: std::io::Error| Error::Io(format!("{}: {e}", path.display()));
    let mut all = read_all(path)?;
    let value = toml::Value::try_from(p).map_err(|e| Error::Io(format!("{e}")))?;
    all.insert(name.to_owned(), value);
    let text = toml::to_string(&all).map_err(|e| Error::Io(format!("{e}")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir).map_err(err)?;
    }
    // Written beside and renamed: the old file stays whole if this fails, and the new
    // one is never readable by others, not even for a moment.
    let tmp = path.with_extension("toml.tmp");
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    {
        use std::io::Write;
        let mut f = o.open(&tmp).map_err(err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        }
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}
