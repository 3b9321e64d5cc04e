//! Browser sessions: a cookie that names a server-side session.
//!
//! The cookie is sealed with AES-256-GCM by the `cookie` crate's private jar, so it can
//! be neither read nor forged without the key (a file that replicas share). It holds
//! only the session's random id; the session itself is a row of `auth.sqlite3`
//! ([`hapi_auth::Revocation`]), so logout, a removed account or a changed role ends or
//! changes it on the server, whatever copies of the cookie exist.

use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, CookieJar, Key, SameSite};
use hapi_auth::Identity;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{Browser, Denied};

/// The session cookie.
pub const SESSION: &str = "hapi_session";
/// The short-lived cookie that carries `state`, `nonce` and the PKCE verifier through a login.
pub const LOGIN: &str = "hapi_login";

/// Seals and opens cookies.
pub struct Sessions {
    key: Key,
    secure: bool,
    ttl: Duration,
    /// The cookies' `Path`: the prefix, so that two servers on one host keep apart.
    path: String,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("secure", &self.secure)
            .field("ttl", &self.ttl)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Loads the key from `path`, creating it (mode 0600) on first use; cookies are
    /// set for `cookie_path`.
    pub fn open(path: &Path, secure: bool, ttl: Duration, cookie_path: &str) -> Result<Sessions> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Replicas sharing the file may start at once: one writes it, all read it.
        let (bytes, _) = hapi_auth::read_or_create(path, || {
            let key = Key::try_generate().ok_or_else(|| std::io::Error::other("no randomness"))?;
            Ok(key.master().to_vec())
        })
        .with_context(|| format!("reading or creating the session key {}", path.display()))?;
        if bytes.len() < 64 {
            anyhow::bail!("session key {} is shorter than 64 bytes", path.display());
        }
        let key = Key::from(&bytes[..64]);
        Ok(Sessions { key, secure, ttl, path: cookie_path.to_owned() })
    }

    /// The session lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// When a session started now ends: the earlier of `expires_at` (if set) and the ttl.
    fn end_of(&self, expires_at: i64) -> i64 {
        let end = now_secs() + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2);
        if expires_at > 0 { expires_at.min(end) } else { end }
    }

    /// Seals any value into a cookie that lives `max_age` seconds.
    pub fn seal<T: Serialize>(&self, name: &'static str, value: &T, max_age: i64) -> Option<HeaderValue> {
        let json = serde_json::to_string(value).ok()?;
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key).add(self.attributes(Cookie::new(name, json), max_age));
        let sealed = jar.delta().next()?.encoded().to_string();
        HeaderValue::from_str(&sealed).ok()
    }

    /// Opens a sealed cookie of the request.
    pub fn open_cookie<T: DeserializeOwned>(&self, headers: &HeaderMap, name: &str) -> Option<T> {
        let mut jar = CookieJar::new();
        for v in headers.get_all(header::COOKIE) {
            for part in v.to_str().ok()?.split(';') {
                if let Ok(c) = Cookie::parse_encoded(part.trim().to_owned())
                    && c.name() == name
                {
                    jar.add_original(c);
                }
            }
        }
        let c = jar.private(&self.key).get(name)?;
        serde_json::from_str(c.value()).ok()
    }

    /// A `Set-Cookie` that deletes `name`.
    pub fn clear(&self, name: &'static str) -> Option<HeaderValue> {
        let c = self.attributes(Cookie::new(name, ""), 0);
        HeaderValue::from_str(&c.encoded().to_string()).ok()
    }

    fn attributes<'a>(&self, mut c: Cookie<'a>, max_age: i64) -> Cookie<'a> {
        c.set_path(self.path.clone());
        c.set_http_only(true);
        // Lax: the provider's redirect back to the callback is a top-level GET that must carry it.
        c.set_same_site(SameSite::Lax);
        c.set_secure(self.secure);
        c.set_max_age(cookie::time::Duration::seconds(max_age));
        c
    }
}

/// What the session cookie holds: the id of a server-side session.
#[derive(Serialize, Deserialize)]
struct SessionCookie {
    sid: String,
}

impl Browser {
    /// The identity of the request's session, if its cookie is good and the session
    /// lives; [`Denied::Unavailable`] when the database cannot tell.
    pub async fn identity(&self, headers: &HeaderMap) -> Result<Option<Arc<Identity>>, Denied> {
        let Some(cookie) = self.cookies.open_cookie::<SessionCookie>(headers, SESSION) else {
            return Ok(None);
        };
        let sid = cookie.sid;
        if let Some(found) = self.revocation.cached_session(&sid) {
            return Ok(found);
        }
        let r = self.revocation.clone();
        match tokio::task::spawn_blocking(move || r.session(&sid)).await {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "reading a session from the auth database failed");
                Err(Denied::Unavailable)
            }
            Err(_) => Err(Denied::Unavailable),
        }
    }

    /// Starts a session for `id` and returns its `Set-Cookie`. `local`: a local account,
    /// whose roles follow the account. Blocking (one SQLite write).
    pub fn start_blocking(&self, mut id: Identity, local: bool) -> Option<HeaderValue> {
        id.expires_at = self.cookies.end_of(id.expires_at);
        let sid = match self.revocation.start_session(&id, local, id.expires_at) {
            Ok(sid) => sid,
            Err(e) => {
                tracing::error!(error = %e, "recording a session failed");
                return None;
            }
        };
        let max_age = (id.expires_at - now_secs()).max(0);
        self.cookies.seal(SESSION, &SessionCookie { sid }, max_age)
    }

    /// Ends the request's session, if it has one, and returns the `Set-Cookie` that
    /// clears the cookie.
    pub async fn end(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        if let Some(c) = self.cookies.open_cookie::<SessionCookie>(headers, SESSION) {
            let r = self.revocation.clone();
            match tokio::task::spawn_blocking(move || r.end_session(&c.sid)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "ending a session failed"),
                Err(e) => tracing::error!(error = %e, "ending a session panicked"),
            }
        }
        self.cookies.clear(SESSION)
    }
}

/// Now in Unix seconds.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
