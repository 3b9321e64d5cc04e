//! What can end a credential before its own expiry: browser sessions we issued, and
//! the built-in issuer's clients.
//!
//! Sessions are server-side rows in `auth.sqlite3` (the cookie only carries a random
//! id, sealed): logout deletes the row, removing an account deletes its rows, and a
//! local account's roles are read from `users` on each check, so a role taken away is
//! gone from its sessions too. Access tokens stay stateless JWTs, but every use of one
//! checks that its client is still active.
//!
//! Every answer is remembered for [`Revocation::recheck`] (a few seconds) per process,
//! so a request costs a map lookup, not a database read; that interval is how long a
//! revocation written by another process (the command line, another replica sharing the
//! database) takes to reach this one. Revocations made through this process (logout)
//! apply at once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::issuer::IssuerError;
use crate::store::{AuthStore, SessionRow, SqliteAuthStore};
use crate::{Identity, secret, unix_now};

/// How long a checked answer is reused: the delay a revocation elsewhere may take here.
pub const RECHECK: Duration = Duration::from_secs(5);

/// How old a remembered answer may be and still stand in for one the database cannot
/// give (it is down or unreachable). While it is, no revocation can be written either,
/// so the last answer is still the truth; a longer outage fails closed.
pub const STALE_IF_ERROR: Duration = Duration::from_secs(600);

/// Answers remembered per kind before the memory is cleared (a flood of forged session
/// ids must not grow it without bound).
const CAPACITY: usize = 10_000;

/// Sessions and client revocations, checked against `auth.sqlite3`. `Send + Sync`.
#[derive(Debug)]
pub struct Revocation {
    store: Arc<dyn AuthStore>,
    recheck: Duration,
    sessions: Memo<[u8; 32], Option<Arc<Identity>>>,
    clients: Memo<String, bool>,
}

impl Revocation {
    /// Opens (creating on first use) `data_dir/auth.sqlite3`, the database the built-in
    /// issuer keeps its clients and accounts in.
    pub fn open(data_dir: &Path, recheck: Duration) -> Result<Revocation, IssuerError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| IssuerError::Io { path: data_dir.to_owned(), source })?;
        Ok(Revocation::with_store(Arc::new(SqliteAuthStore::open(&data_dir.join("auth.sqlite3"))?), recheck))
    }

    /// Checks sessions and clients in `store` (the issuer's).
    pub fn with_store(store: Arc<dyn AuthStore>, recheck: Duration) -> Revocation {
        Revocation { store, recheck, sessions: Memo::default(), clients: Memo::default() }
    }

    /// How long an answer is reused.
    pub fn recheck(&self) -> Duration {
        self.recheck
    }

    /// Starts a session for `identity` until `expires_at` (unix seconds) and returns its
    /// id: 256 random bits, stored only as a hash. `local`: a local account of the
    /// built-in issuer, whose current roles replace the ones it logged in with.
    pub fn start_session(
        &self,
        identity: &Identity,
        local: bool,
        expires_at: i64,
    ) -> Result<String, IssuerError> {
        let id = secret::hex(&secret::random_bytes::<32>().map_err(IssuerError::Crypto)?);
        let row = SessionRow {
            subject: identity.subject.clone(),
            local,
            identity: serde_json::to_string(identity).map_err(|e| IssuerError::Invalid(e.to_string()))?,
            expires_at,
        };
        self.store.insert_session(&row, &secret::hex(&hash(&id)), unix_now())?;
        Ok(id)
    }

    /// Ends a session, here at once.
    pub fn end_session(&self, id: &str) -> Result<(), IssuerError> {
        let key = hash(id);
        self.store.delete_session(&secret::hex(&key))?;
        self.sessions.put(key, None);
        Ok(())
    }

    /// The identity of a live session, with a local account's current roles; `None`
    /// when it ended, expired, or never existed. Blocking on a miss (one SQLite read).
    pub fn session(&self, id: &str) -> Result<Option<Arc<Identity>>, IssuerError> {
        let key = hash(id);
        let now = unix_now();
        if let Some(found) = self.sessions.get(&key, self.recheck) {
            return Ok(found.filter(|i| i.expires_at > now));
        }
        let row = match self.store.session(&secret::hex(&key), now) {
            Ok(row) => row,
            Err(e) => {
                let Some(found) = self.sessions.get(&key, STALE_IF_ERROR) else { return Err(e) };
                tracing::warn!(error = %e, "the auth database failed: a session's last answer stands in");
                return Ok(found.filter(|i| i.expires_at > now));
            }
        };
        let found = match row {
            None => None,
            Some(s) => {
                let identity: Option<Identity> = serde_json::from_str(&s.identity).ok();
                match (identity, s.local, s.roles) {
                    (Some(i), false, _) => Some(Arc::new(i)),
                    (Some(mut i), true, Some(roles)) => {
                        i.roles = roles;
                        Some(Arc::new(i))
                    }
                    // The account is gone, or the row is unreadable: no session.
                    _ => None,
                }
            }
        };
        self.sessions.put(key, found.clone());
        Ok(found)
    }

    /// Whether the built-in issuer's client `id` exists and is not revoked. Blocking on
    /// a miss (one SQLite read).
    pub fn client_active(&self, id: &str) -> Result<bool, IssuerError> {
        if let Some(active) = self.clients.get(id, self.recheck) {
            return Ok(active);
        }
        let active = match self.store.client_active(id) {
            Ok(active) => active,
            Err(e) => {
                let Some(active) = self.clients.get(id, STALE_IF_ERROR) else { return Err(e) };
                tracing::warn!(error = %e, client_id = %id, "the auth database failed: the client's last answer stands in");
                return Ok(active);
            }
        };
        self.clients.put(id.to_owned(), active);
        Ok(active)
    }

    /// [`session`](Self::session) if memory can answer it, without blocking.
    pub fn cached_session(&self, id: &str) -> Option<Option<Arc<Identity>>> {
        let now = unix_now();
        self.sessions.get(&hash(id), self.recheck).map(|found| found.filter(|i| i.expires_at > now))
    }

    /// [`client_active`](Self::client_active) if memory can answer it, without blocking.
    pub fn cached_client(&self, id: &str) -> Option<bool> {
        self.clients.get(id, self.recheck)
    }
}

fn hash(id: &str) -> [u8; 32] {
    crate::cache::token_hash(id)
}

/// Answers with the time they were read.
#[derive(Debug)]
struct Memo<K, V> {
    map: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo { map: Mutex::new(HashMap::new()) }
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> Memo<K, V> {
    fn get<Q>(&self, k: &Q, max_age: Duration) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(k).filter(|(at, _)| at.elapsed() < max_age).map(|(_, v)| v.clone())
    }

    fn put(&self, k: K, v: V) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(k, (Instant::now(), v));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::store::{ClientRow, LiveSession, UserRow};
    use crate::{ClientInfo, UserInfo};

    /// SQLite that fails every read while `down` is set: a database outage.
    #[derive(Debug)]
    struct Flaky {
        inner: SqliteAuthStore,
        down: AtomicBool,
    }

    impl Flaky {
        fn up(&self) -> Result<(), IssuerError> {
            if self.down.load(Ordering::SeqCst) { Err(IssuerError::Invalid("down".into())) } else { Ok(()) }
        }
    }

    impl AuthStore for Flaky {
        fn insert_client(
            &self,
            id: &str,
            hash: &str,
            roles: &[String],
            now: i64,
        ) -> Result<bool, IssuerError> {
            self.inner.insert_client(id, hash, roles, now)
        }
        fn insert_owned_client(
            &self,
            id: &str,
            hash: &str,
            owner: &str,
            cap: u32,
            now: i64,
        ) -> Result<bool, IssuerError> {
            self.inner.insert_owned_client(id, hash, owner, cap, now)
        }
        fn touch_client(&self, id: &str, now: i64) -> Result<(), IssuerError> {
            self.inner.touch_client(id, now)
        }
        fn client(&self, id: &str) -> Result<Option<ClientRow>, IssuerError> {
            self.inner.client(id)
        }
        fn list_clients(&self, owner: Option<&str>) -> Result<Vec<ClientInfo>, IssuerError> {
            self.inner.list_clients(owner)
        }
        fn revoke(&self, id: &str, now: i64) -> Result<bool, IssuerError> {
            self.inner.revoke(id, now)
        }
        fn set_secret(&self, id: &str, hash: &str, now: i64) -> Result<bool, IssuerError> {
            self.inner.set_secret(id, hash, now)
        }
        fn replace_secret_hash(&self, id: &str, old: &str, new: &str) -> Result<bool, IssuerError> {
            self.inner.replace_secret_hash(id, old, new)
        }
        fn client_active(&self, id: &str) -> Result<bool, IssuerError> {
            self.up()?;
            self.inner.client_active(id)
        }
        fn insert_user(
            &self,
            name: &str,
            hash: &str,
            roles: &[String],
            now: i64,
        ) -> Result<bool, IssuerError> {
            self.inner.insert_user(name, hash, roles, now)
        }
        fn insert_pending_user(&self, name: &str, hash: &str, now: i64) -> Result<bool, IssuerError> {
            self.inner.insert_pending_user(name, hash, now)
        }
        fn approve_user(&self, name: &str, roles: &[String], now: i64) -> Result<bool, IssuerError> {
            self.inner.approve_user(name, roles, now)
        }
        fn set_password(&self, name: &str, hash: &str) -> Result<bool, IssuerError> {
            self.inner.set_password(name, hash)
        }
        fn user(&self, name: &str) -> Result<Option<UserRow>, IssuerError> {
            self.inner.user(name)
        }
        fn list_users(&self) -> Result<Vec<UserInfo>, IssuerError> {
            self.inner.list_users()
        }
        fn set_user_roles(&self, name: &str, roles: &[String]) -> Result<bool, IssuerError> {
            self.inner.set_user_roles(name, roles)
        }
        fn remove_user(&self, name: &str) -> Result<bool, IssuerError> {
            self.inner.remove_user(name)
        }
        fn insert_session(&self, s: &SessionRow, id_hash: &str, now: i64) -> Result<(), IssuerError> {
            self.inner.insert_session(s, id_hash, now)
        }
        fn session(&self, id_hash: &str, now: i64) -> Result<Option<LiveSession>, IssuerError> {
            self.up()?;
            self.inner.session(id_hash, now)
        }
        fn delete_session(&self, id_hash: &str) -> Result<(), IssuerError> {
            self.inner.delete_session(id_hash)
        }
    }

    #[test]
    fn an_outage_keeps_the_last_answers_and_fails_closed_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let inner = SqliteAuthStore::open(&dir.path().join("auth.sqlite3")).unwrap();
        let store = Arc::new(Flaky { inner, down: AtomicBool::new(false) });
        // Every answer is rechecked at once: only the outage fallback remembers.
        let r = Revocation::with_store(store.clone(), Duration::ZERO);
        assert!(store.insert_client("known", "h", &[], 1).unwrap());
        assert!(store.insert_client("new", "h", &[], 1).unwrap());
        let who = Identity {
            subject: "al".into(),
            client_id: None,
            scopes: vec![],
            roles: vec![],
            expires_at: unix_now() + 600,
        };
        let sid = r.start_session(&who, false, who.expires_at).unwrap();
        assert!(r.client_active("known").unwrap());
        assert_eq!(r.session(&sid).unwrap().unwrap().subject, "al");

        store.down.store(true, Ordering::SeqCst);
        assert!(r.client_active("known").unwrap(), "the last answer stands in");
        assert_eq!(r.session(&sid).unwrap().unwrap().subject, "al");
        assert!(r.client_active("new").is_err(), "never checked: an error, not a guess");
        assert!(r.session("never-seen").is_err());

        store.down.store(false, Ordering::SeqCst);
        assert!(store.revoke("known", 2).unwrap());
        assert!(!r.client_active("known").unwrap(), "back up: the database answers again");
    }
}
