//! Where the issuer's clients, local users and browser sessions live: the [`AuthStore`]
//! trait, and its embedded backend [`SqliteAuthStore`] (`auth.sqlite3`, WAL). The server
//! and the command line open the same file, so writes are single statements and readers
//! wait (busy timeout) rather than fail while the other process writes. Replicas that
//! share PostgreSQL use `hapi_postgres`'s implementation of the same trait.
//!
//! Calls block (a database round trip): callers run them on a blocking thread.

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};

use crate::issuer::{ClientInfo, IssuerError, UserInfo};

pub mod contract;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS clients (
    id                TEXT PRIMARY KEY,
    secret_hash       TEXT NOT NULL,     -- PHC string (PBKDF2, or argon2id before), never the secret
    roles             TEXT NOT NULL,     -- JSON array of strings
    created_at        INTEGER NOT NULL,  -- unix seconds
    secret_rotated_at INTEGER NOT NULL,
    revoked_at        INTEGER
) STRICT;
CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    roles         TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
-- Browser sessions we issued (revocation.rs): a session lives while its row does.
CREATE TABLE IF NOT EXISTS sessions (
    id_hash    TEXT PRIMARY KEY,     -- SHA-256 of the session id (hex), never the id
    subject    TEXT NOT NULL,
    local      INTEGER NOT NULL,     -- 1: a local account, whose roles are read from users
    identity   TEXT NOT NULL,        -- JSON of the identity at login
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS sessions_subject ON sessions (subject);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);
";

/// Schema version 3: self-service clients (the portal's Credentials page). `owner` is
/// the local account that made it (NULL: an operator's client), `last_used_at` its last
/// token. Applied once, under a write lock, since the server and the command line may
/// open the file at the same moment.
const SCHEMA_3: &str = "
ALTER TABLE clients ADD COLUMN owner TEXT;
ALTER TABLE clients ADD COLUMN last_used_at INTEGER;
CREATE INDEX clients_owner ON clients (owner);
";

/// Schema version 4: registration (issue 9 item 5). `approved_at` is when an operator
/// let the account in; NULL is a sign-up still waiting, which can neither log in nor own
/// a working client. Accounts made before it were made by an operator: approved.
const SCHEMA_4: &str = "
ALTER TABLE users ADD COLUMN approved_at INTEGER;
UPDATE users SET approved_at = created_at;
";

/// The secret hash of a self-service client whose secret was not yet shown: it matches
/// no secret, and revealing it replaces it once ([`AuthStore::replace_secret_hash`]).
pub const PENDING_SECRET: &str = "";

/// A client as the token endpoint needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    /// PHC string of the secret's hash.
    pub secret_hash: String,
    /// Roles carried in its tokens (an owned client's are its owner's instead).
    pub roles: Vec<String>,
    /// Revoked clients get `invalid_client`.
    pub revoked: bool,
    /// The local account whose client it is (self-service), `None` for an operator's.
    pub owner: Option<String>,
}

/// A session to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Who logged in.
    pub subject: String,
    /// A local account (its roles are read from the users on each check).
    pub local: bool,
    /// JSON of the identity at login.
    pub identity: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A live session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    /// JSON of the identity at login.
    pub identity: String,
    /// A local account's session.
    pub local: bool,
    /// A local account's current roles; `None` when the account is gone.
    pub roles: Option<Vec<String>>,
}

/// A local account as the login needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// PHC string (argon2id) of the password.
    pub password_hash: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// An operator let it in (a sign-up waits until then; see [`AuthStore::approve_user`]).
    pub approved: bool,
}

/// The issuer's and the sessions' storage. Every method is one atomic change or read.
/// Times are unix seconds.
pub trait AuthStore: Send + Sync + fmt::Debug + 'static {
    /// Adds a client; `false` when the id is taken.
    fn insert_client(&self, id: &str, hash: &str, roles: &[String], now: i64) -> Result<bool, IssuerError>;
    /// Adds a self-service client of local account `owner` (no roles of its own) unless
    /// `owner` already has `cap` active clients; `false` then, or when the id is taken.
    fn insert_owned_client(
        &self,
        id: &str,
        hash: &str,
        owner: &str,
        cap: u32,
        now: i64,
    ) -> Result<bool, IssuerError>;
    /// Records that client `id` was given a token at `now`.
    fn touch_client(&self, id: &str, now: i64) -> Result<(), IssuerError>;
    /// A client as the token endpoint needs it.
    fn client(&self, id: &str) -> Result<Option<ClientRow>, IssuerError>;
    /// Every client, or only `owner`'s, oldest first.
    fn list_clients(&self, owner: Option<&str>) -> Result<Vec<ClientInfo>, IssuerError>;
    /// Revokes a client; `false` when there is no active client `id`.
    fn revoke(&self, id: &str, now: i64) -> Result<bool, IssuerError>;
    /// Sets a new secret's hash; `false` when there is no active client `id`.
    fn set_secret(&self, id: &str, hash: &str, now: i64) -> Result<bool, IssuerError>;
    /// Replaces the secret's hash by another of the same secret, only while `old` is
    /// stored (a rotation in between wins); `secret_rotated_at` stays.
    fn replace_secret_hash(&self, id: &str, old: &str, new: &str) -> Result<bool, IssuerError>;
    /// Whether client `id` exists, is not revoked, and (a self-service client) its owner
    /// still exists and is approved.
    fn client_active(&self, id: &str) -> Result<bool, IssuerError>;
    /// Adds a local account, approved (an operator's); `false` when the name is taken.
    fn insert_user(&self, name: &str, hash: &str, roles: &[String], now: i64) -> Result<bool, IssuerError>;
    /// Adds a sign-up: no roles, not approved; `false` when the name is taken.
    fn insert_pending_user(&self, name: &str, hash: &str, now: i64) -> Result<bool, IssuerError>;
    /// Approves a waiting sign-up with `roles`; `false` when there is no account `name`
    /// waiting.
    fn approve_user(&self, name: &str, roles: &[String], now: i64) -> Result<bool, IssuerError>;
    /// Replaces an approved account's password hash and ends all its sessions, in one
    /// transaction; `false` when there is no approved account `name`.
    fn set_password(&self, name: &str, hash: &str) -> Result<bool, IssuerError>;
    /// A local account.
    fn user(&self, name: &str) -> Result<Option<UserRow>, IssuerError>;
    /// Every local account, by name.
    fn list_users(&self) -> Result<Vec<UserInfo>, IssuerError>;
    /// `false` when there is no user `name`.
    fn set_user_roles(&self, name: &str, roles: &[String]) -> Result<bool, IssuerError>;
    /// Removes the account, ends its sessions and revokes its clients, in one transaction:
    /// an account of the same name created later is a new account, not a way back into
    /// the old sessions or clients.
    fn remove_user(&self, name: &str) -> Result<bool, IssuerError>;
    /// Records a session (and may forget expired ones, so the table stays small).
    fn insert_session(&self, s: &SessionRow, id_hash: &str, now: i64) -> Result<(), IssuerError>;
    /// A live session: recorded, not expired at `now`; a local account's roles only while
    /// it exists and is approved.
    fn session(&self, id_hash: &str, now: i64) -> Result<Option<LiveSession>, IssuerError>;
    /// Ends a session.
    fn delete_session(&self, id_hash: &str) -> Result<(), IssuerError>;
}

/// The embedded backend: `auth.sqlite3` in the data directory.
#[derive(Debug)]
pub struct SqliteAuthStore {
    conn: Mutex<Connection>,
}

/// Roles as stored: a JSON array of strings.
pub fn roles_json(roles: &[String]) -> String {
    serde_json::to_string(roles).unwrap_or_else(|_| "[]".to_owned())
}

/// Roles from their stored JSON.
pub fn roles_from(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

impl SqliteAuthStore {
    /// Opens (creating on first use, mode 0600) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteAuthStore, IssuerError> {
        restrict_new_file(path)?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "the auth database is not in WAL mode");
        }
        conn.execute_batch(SCHEMA)?;
        migrate(&mut conn)?;
        Ok(SqliteAuthStore { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // Poisoning means a panic elsewhere mid-call; SQLite itself stays consistent.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AuthStore for SqliteAuthStore {
    /// `false` when the id is taken.
    fn insert_client(&self, id: &str, hash: &str, roles: &[String], now: i64) -> Result<bool, IssuerError> {
        let n = self.conn().execute(
            "INSERT INTO clients (id, secret_hash, roles, created_at, secret_rotated_at) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (id) DO NOTHING",
            params![id, hash, roles_json(roles), now],
        )?;
        Ok(n == 1)
    }

    fn insert_owned_client(
        &self,
        id: &str,
        hash: &str,
        owner: &str,
        cap: u32,
        now: i64,
    ) -> Result<bool, IssuerError> {
        // One statement: two concurrent creations cannot both pass the cap.
        let n = self.conn().execute(
            "INSERT INTO clients (id, secret_hash, roles, created_at, secret_rotated_at, owner)
             SELECT ?1, ?2, '[]', ?4, ?4, ?3
             WHERE (SELECT count(*) FROM clients WHERE owner = ?3 AND revoked_at IS NULL) < ?5
             ON CONFLICT (id) DO NOTHING",
            params![id, hash, owner, now, cap],
        )?;
        Ok(n == 1)
    }

    fn touch_client(&self, id: &str, now: i64) -> Result<(), IssuerError> {
        self.conn().execute("UPDATE clients SET last_used_at = ?2 WHERE id = ?1", params![id, now])?;
        Ok(())
    }

    fn client(&self, id: &str) -> Result<Option<ClientRow>, IssuerError> {
        let row = self
            .conn()
            .prepare_cached(
                "SELECT secret_hash, roles, revoked_at IS NOT NULL, owner FROM clients WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok(ClientRow {
                    secret_hash: r.get(0)?,
                    roles: roles_from(&r.get::<_, String>(1)?),
                    revoked: r.get(2)?,
                    owner: r.get(3)?,
                })
            })
            .optional()?;
        Ok(row)
    }

    fn list_clients(&self, owner: Option<&str>) -> Result<Vec<ClientInfo>, IssuerError> {
        let conn = self.conn();
        // Two statements rather than `?1 IS NULL OR owner = ?1`, so one account's list
        // uses the owner index.
        let filter = if owner.is_some() { "WHERE owner = ?1" } else { "" };
        let mut st = conn.prepare_cached(&format!(
            "SELECT id, roles, created_at, secret_rotated_at, revoked_at, owner, last_used_at,
                    secret_hash = '' /* PENDING_SECRET */ FROM clients {filter}
             ORDER BY created_at, id"
        ))?;
        let args: &[&dyn rusqlite::ToSql] = match &owner {
            Some(o) => &[o],
            None => &[],
        };
        let rows = st.query_map(args, |r| {
            Ok(ClientInfo {
                id: r.get(0)?,
                roles: roles_from(&r.get::<_, String>(1)?),
                created_at: r.get(2)?,
                secret_rotated_at: r.get(3)?,
                revoked_at: r.get(4)?,
                owner: r.get(5)?,
                last_used_at: r.get(6)?,
                secret_pending: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// `false` when there is no active client `id`.
    fn revoke(&self, id: &str, now: i64) -> Result<bool, IssuerError> {
        let n = self.conn().execute(
            "UPDATE clients SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now],
        )?;
        Ok(n == 1)
    }

    /// `false` when there is no active client `id`.
    fn set_secret(&self, id: &str, hash: &str, now: i64) -> Result<bool, IssuerError> {
        let n = self.conn().execute(
            "UPDATE clients SET secret_hash = ?2, secret_rotated_at = ?3 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, hash, now],
        )?;
        Ok(n == 1)
    }

    /// Replaces the secret's hash by another of the same secret, only while `old` is
    /// stored (a rotation in between wins); `secret_rotated_at` stays.
    fn replace_secret_hash(&self, id: &str, old: &str, new: &str) -> Result<bool, IssuerError> {
        let n = self.conn().execute(
            "UPDATE clients SET secret_hash = ?3 WHERE id = ?1 AND secret_hash = ?2 AND revoked_at IS NULL",
            params![id, old, new],
        )?;
        Ok(n == 1)
    }

    /// `false` when the name is taken.
    fn insert_user(&self, name: &str, hash: &str, roles: &[String], now: i64) -> Result<bool, IssuerError> {
        let n = self.conn().execute(
            "INSERT INTO users (name, password_hash, roles, created_at, approved_at) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (name) DO NOTHING",
            params![name, hash, roles_json(roles), now],
        )?;
        Ok(n == 1)
    }

    fn insert_pending_user(&self, name: &str, hash: &str, now: i64) -> Result<bool, IssuerError> {
        let n = self.conn().execute(
            "INSERT INTO users (name, password_hash, roles, created_at, approved_at) VALUES (?1, ?2, '[]', ?3, NULL)
             ON CONFLICT (name) DO NOTHING",
            params![name, hash, now],
        )?;
        Ok(n == 1)
    }

    fn approve_user(&self, name: &str, roles: &[String], now: i64) -> Result<bool, IssuerError> {
        let n = self.conn().execute(
            "UPDATE users SET approved_at = ?3, roles = ?2 WHERE name = ?1 AND approved_at IS NULL",
            params![name, roles_json(roles), now],
        )?;
        Ok(n == 1)
    }

    fn set_password(&self, name: &str, hash: &str) -> Result<bool, IssuerError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE users SET password_hash = ?2 WHERE name = ?1 AND approved_at IS NOT NULL",
            params![name, hash],
        )?;
        if n == 1 {
            tx.execute("DELETE FROM sessions WHERE subject = ?1 AND local = 1", [name])?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    fn user(&self, name: &str) -> Result<Option<UserRow>, IssuerError> {
        let row = self
            .conn()
            .prepare_cached(
                "SELECT password_hash, roles, approved_at IS NOT NULL FROM users WHERE name = ?1",
            )?
            .query_row([name], |r| {
                Ok(UserRow {
                    password_hash: r.get(0)?,
                    roles: roles_from(&r.get::<_, String>(1)?),
                    approved: r.get(2)?,
                })
            })
            .optional()?;
        Ok(row)
    }

    /// `false` when there is no user `name`.
    fn set_user_roles(&self, name: &str, roles: &[String]) -> Result<bool, IssuerError> {
        let n = self
            .conn()
            .execute("UPDATE users SET roles = ?2 WHERE name = ?1", params![name, roles_json(roles)])?;
        Ok(n == 1)
    }

    /// Removes the account and ends its sessions, in one transaction: an account of the
    /// same name created later is a new account, not a way back into the old sessions.
    fn remove_user(&self, name: &str) -> Result<bool, IssuerError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM users WHERE name = ?1", [name])?;
        tx.execute("DELETE FROM sessions WHERE subject = ?1 AND local = 1", [name])?;
        tx.execute(
            "UPDATE clients SET revoked_at = unixepoch() WHERE owner = ?1 AND revoked_at IS NULL",
            [name],
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// Whether client `id` exists and is not revoked.
    fn client_active(&self, id: &str) -> Result<bool, IssuerError> {
        let active = self
            .conn()
            .prepare_cached(
                "SELECT c.revoked_at IS NULL AND (c.owner IS NULL OR u.approved_at IS NOT NULL)
                 FROM clients c LEFT JOIN users u ON u.name = c.owner WHERE c.id = ?1",
            )?
            .query_row([id], |r| r.get::<_, bool>(0))
            .optional()?;
        Ok(active == Some(true))
    }

    /// Records a session (and forgets expired ones, so the table stays small).
    fn insert_session(&self, s: &SessionRow, id_hash: &str, now: i64) -> Result<(), IssuerError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
        tx.execute(
            "INSERT INTO sessions (id_hash, subject, local, identity, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id_hash, s.subject, s.local, s.identity, now, s.expires_at],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A live session.
    fn session(&self, id_hash: &str, now: i64) -> Result<Option<LiveSession>, IssuerError> {
        let row = self
            .conn()
            .prepare_cached(
                "SELECT s.identity, s.local, u.roles FROM sessions s
                 LEFT JOIN users u ON s.local = 1 AND u.name = s.subject AND u.approved_at IS NOT NULL
                 WHERE s.id_hash = ?1 AND s.expires_at > ?2",
            )?
            .query_row(params![id_hash, now], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?, r.get::<_, Option<String>>(2)?))
            })
            .optional()?;
        Ok(row.map(|(identity, local, roles)| LiveSession {
            identity,
            local,
            roles: roles.map(|j| roles_from(&j)),
        }))
    }

    fn delete_session(&self, id_hash: &str) -> Result<(), IssuerError> {
        self.conn().execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])?;
        Ok(())
    }

    fn list_users(&self) -> Result<Vec<UserInfo>, IssuerError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT name, roles, created_at, approved_at FROM users ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok(UserInfo {
                name: r.get(0)?,
                roles: roles_from(&r.get::<_, String>(1)?),
                created_at: r.get(2)?,
                approved_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Brings an older database to the current schema (user_version 2 → 3 → 4).
fn migrate(conn: &mut Connection) -> Result<(), IssuerError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 3 {
        tx.execute_batch(SCHEMA_3)?;
        tx.execute_batch("PRAGMA user_version = 3")?;
    }
    if version < 4 {
        tx.execute_batch(SCHEMA_4)?;
        tx.execute_batch("PRAGMA user_version = 4")?;
    }
    tx.commit()?;
    Ok(())
}

/// Creates the database file readable by its owner only; SQLite gives the `-wal` and
/// `-shm` files the same permissions.
fn restrict_new_file(path: &Path) -> Result<(), IssuerError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(IssuerError::Io { path: path.to_owned(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sqlite_backend_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        contract::check(&SqliteAuthStore::open(&dir.path().join("auth.sqlite3")).unwrap());
    }

    #[test]
    fn a_version_2_database_gains_the_new_columns_and_keeps_its_clients_and_users() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.sqlite3");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(&format!("{SCHEMA}PRAGMA user_version = 2;")).unwrap();
        old.execute("INSERT INTO clients VALUES ('c', 'h', '[\"r\"]', 1, 1, NULL)", []).unwrap();
        old.execute("INSERT INTO users VALUES ('op', 'pw', '[]', 7)", []).unwrap();
        drop(old);
        let store = SqliteAuthStore::open(&path).unwrap();
        let c = store.client("c").unwrap().unwrap();
        assert_eq!((c.roles, c.owner), (vec!["r".to_owned()], None));
        assert!(store.user("op").unwrap().unwrap().approved, "an operator's account stays usable");
        drop(store);
        // Opening again migrates nothing twice.
        let store = SqliteAuthStore::open(&path).unwrap();
        let v: i64 = store.conn().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, 4);
    }
}
