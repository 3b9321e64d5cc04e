//! The issuer's clients and local users in SQLite (`auth.sqlite3`, WAL). The server and
//! the command line open the same file, so writes are single statements and readers
//! wait (busy timeout) rather than fail while the other process writes.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};

use crate::issuer::{ClientInfo, IssuerError, UserInfo};

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
PRAGMA user_version = 2;
";

/// A client as the token endpoint needs it.
pub(crate) struct ClientRow {
    pub(crate) secret_hash: String,
    pub(crate) roles: Vec<String>,
    pub(crate) revoked: bool,
}

/// A session to record.
pub(crate) struct SessionRow {
    pub(crate) subject: String,
    pub(crate) local: bool,
    pub(crate) identity: String,
    pub(crate) expires_at: i64,
}

/// A live session as stored.
pub(crate) struct LiveSession {
    /// JSON of the identity at login.
    pub(crate) identity: String,
    /// A local account's session.
    pub(crate) local: bool,
    /// A local account's current roles; `None` when the account is gone.
    pub(crate) roles: Option<Vec<String>>,
}

pub(crate) struct UserRow {
    pub(crate) password_hash: String,
    pub(crate) roles: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Store {
    conn: Mutex<Connection>,
}

fn roles_json(roles: &[String]) -> String {
    serde_json::to_string(roles).unwrap_or_else(|_| "[]".to_owned())
}

fn roles_from(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

impl Store {
    pub(crate) fn open(path: &Path) -> Result<Store, IssuerError> {
        restrict_new_file(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "the auth database is not in WAL mode");
        }
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // Poisoning means a panic elsewhere mid-call; SQLite itself stays consistent.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `false` when the id is taken.
    pub(crate) fn insert_client(
        &self,
        id: &str,
        hash: &str,
        roles: &[String],
        now: i64,
    ) -> Result<bool, IssuerError> {
        let n = self.conn().execute(
            "INSERT INTO clients (id, secret_hash, roles, created_at, secret_rotated_at) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (id) DO NOTHING",
            params![id, hash, roles_json(roles), now],
        )?;
        Ok(n == 1)
    }

    pub(crate) fn client(&self, id: &str) -> Result<Option<ClientRow>, IssuerError> {
        let row = self
            .conn()
            .prepare_cached("SELECT secret_hash, roles, revoked_at IS NOT NULL FROM clients WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(ClientRow {
                    secret_hash: r.get(0)?,
                    roles: roles_from(&r.get::<_, String>(1)?),
                    revoked: r.get(2)?,
                })
            })
            .optional()?;
        Ok(row)
    }

    pub(crate) fn list_clients(&self) -> Result<Vec<ClientInfo>, IssuerError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, roles, created_at, secret_rotated_at, revoked_at FROM clients ORDER BY created_at, id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(ClientInfo {
                id: r.get(0)?,
                roles: roles_from(&r.get::<_, String>(1)?),
                created_at: r.get(2)?,
                secret_rotated_at: r.get(3)?,
                revoked_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// `false` when there is no active client `id`.
    pub(crate) fn revoke(&self, id: &str, now: i64) -> Result<bool, IssuerError> {
        let n = self.conn().execute(
            "UPDATE clients SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now],
        )?;
        Ok(n == 1)
    }

    /// `false` when there is no active client `id`.
    pub(crate) fn set_secret(&self, id: &str, hash: &str, now: i64) -> Result<bool, IssuerError> {
        let n = self.conn().execute(
            "UPDATE clients SET secret_hash = ?2, secret_rotated_at = ?3 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, hash, now],
        )?;
        Ok(n == 1)
    }

    /// Replaces the secret's hash by another of the same secret, only while `old` is
    /// stored (a rotation in between wins); `secret_rotated_at` stays.
    pub(crate) fn replace_secret_hash(&self, id: &str, old: &str, new: &str) -> Result<bool, IssuerError> {
        let n = self.conn().execute(
            "UPDATE clients SET secret_hash = ?3 WHERE id = ?1 AND secret_hash = ?2 AND revoked_at IS NULL",
            params![id, old, new],
        )?;
        Ok(n == 1)
    }

    /// `false` when the name is taken.
    pub(crate) fn insert_user(
        &self,
        name: &str,
        hash: &str,
        roles: &[String],
        now: i64,
    ) -> Result<bool, IssuerError> {
        let n = self.conn().execute(
            "INSERT INTO users (name, password_hash, roles, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO NOTHING",
            params![name, hash, roles_json(roles), now],
        )?;
        Ok(n == 1)
    }

    pub(crate) fn user(&self, name: &str) -> Result<Option<UserRow>, IssuerError> {
        let row = self
            .conn()
            .prepare_cached("SELECT password_hash, roles FROM users WHERE name = ?1")?
            .query_row([name], |r| {
                Ok(UserRow { password_hash: r.get(0)?, roles: roles_from(&r.get::<_, String>(1)?) })
            })
            .optional()?;
        Ok(row)
    }

    /// `false` when there is no user `name`.
    pub(crate) fn set_user_roles(&self, name: &str, roles: &[String]) -> Result<bool, IssuerError> {
        let n = self
            .conn()
            .execute("UPDATE users SET roles = ?2 WHERE name = ?1", params![name, roles_json(roles)])?;
        Ok(n == 1)
    }

    /// Removes the account and ends its sessions, in one transaction: an account of the
    /// same name created later is a new account, not a way back into the old sessions.
    pub(crate) fn remove_user(&self, name: &str) -> Result<bool, IssuerError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM users WHERE name = ?1", [name])?;
        tx.execute("DELETE FROM sessions WHERE subject = ?1 AND local = 1", [name])?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// Whether client `id` exists and is not revoked.
    pub(crate) fn client_active(&self, id: &str) -> Result<bool, IssuerError> {
        let active = self
            .conn()
            .prepare_cached("SELECT revoked_at IS NULL FROM clients WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, bool>(0))
            .optional()?;
        Ok(active == Some(true))
    }

    /// Records a session (and forgets expired ones, so the table stays small).
    pub(crate) fn insert_session(&self, s: &SessionRow, id_hash: &str, now: i64) -> Result<(), IssuerError> {
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
    pub(crate) fn session(&self, id_hash: &str, now: i64) -> Result<Option<LiveSession>, IssuerError> {
        let row = self
            .conn()
            .prepare_cached(
                "SELECT s.identity, s.local, u.roles FROM sessions s
                 LEFT JOIN users u ON s.local = 1 AND u.name = s.subject
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

    pub(crate) fn delete_session(&self, id_hash: &str) -> Result<(), IssuerError> {
        self.conn().execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])?;
        Ok(())
    }

    pub(crate) fn list_users(&self) -> Result<Vec<UserInfo>, IssuerError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT name, roles, created_at FROM users ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok(UserInfo {
                name: r.get(0)?,
                roles: roles_from(&r.get::<_, String>(1)?),
                created_at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
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
