//! The built-in issuer's clients and local users, and the browser sessions, in
//! PostgreSQL: what makes replicas stateless. A client created through one replica gets
//! tokens from all, a session started on one is accepted by all, and a revocation
//! reaches every replica within `hapi_auth::RECHECK`.
//!
//! Every statement goes to the primary, reads included: a client's first token right
//! after it was created, and a revoked client's next request, must not depend on a
//! standby's lag. These are single-row lookups on primary keys, and each answer is
//! reused for seconds by `hapi_auth::Revocation`, so they add little load.
//!
//! `AuthStore` is synchronous (its callers run on blocking threads, or on the command
//! line outside the runtime): each call blocks on the runtime the store was opened on.

use std::future::Future;

use hapi_auth::store::{AuthStore, ClientRow, LiveSession, SessionRow, UserRow};
use hapi_auth::{ClientInfo, IssuerError, UserInfo};
use tokio::runtime::Handle;

use crate::{Database, Migrations, PgError};

/// The auth tables' migrations.
pub const MIGRATIONS: Migrations = Migrations {
    component: "auth",
    steps: &[
        (
            1,
            "CREATE TABLE hapi_clients (
             id                TEXT PRIMARY KEY,
             secret_hash       TEXT NOT NULL,     -- PHC string, never the secret
             roles             TEXT[] NOT NULL,
             created_at        BIGINT NOT NULL,   -- unix seconds
             secret_rotated_at BIGINT NOT NULL,
             revoked_at        BIGINT
         );
         CREATE TABLE hapi_users (
             name          TEXT PRIMARY KEY,
             password_hash TEXT NOT NULL,
             roles         TEXT[] NOT NULL,
             created_at    BIGINT NOT NULL
         );
         CREATE TABLE hapi_sessions (
             id_hash    TEXT PRIMARY KEY,          -- SHA-256 of the session id, never the id
             subject    TEXT NOT NULL,
             local      BOOLEAN NOT NULL,
             identity   TEXT NOT NULL,             -- JSON of the identity at login
             created_at BIGINT NOT NULL,
             expires_at BIGINT NOT NULL
         );
         CREATE INDEX hapi_sessions_subject ON hapi_sessions (subject);
         CREATE INDEX hapi_sessions_expiry ON hapi_sessions (expires_at);",
        ),
        (
            2,
            // Self-service clients (the portal's Credentials page): the local account that
            // made one (NULL: an operator's client), and its last token.
            "ALTER TABLE hapi_clients ADD COLUMN owner TEXT;
             ALTER TABLE hapi_clients ADD COLUMN last_used_at BIGINT;
             CREATE INDEX hapi_clients_owner ON hapi_clients (owner);",
        ),
        (
            3,
            // Registration: when an operator let an account in (NULL: a sign-up waiting).
            // Accounts made before were made by an operator.
            "ALTER TABLE hapi_users ADD COLUMN approved_at BIGINT;
             UPDATE hapi_users SET approved_at = created_at;",
        ),
    ],
};

/// [`AuthStore`] on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgAuthStore {
    db: Database,
    rt: Handle,
}

fn backend(e: PgError) -> IssuerError {
    IssuerError::Backend(Box::new(e))
}

impl PgAuthStore {
    /// Migrates the auth tables and keeps `rt`, the runtime the pools run on, for the
    /// blocking calls.
    pub async fn open(db: Database, rt: Handle) -> Result<PgAuthStore, PgError> {
        db.migrate(&MIGRATIONS).await?;
        Ok(PgAuthStore { db, rt })
    }

    /// Runs one statement's future to its end on the store's runtime ([`crate::block_on`]).
    fn block<T>(&self, f: impl Future<Output = Result<T, PgError>>) -> Result<T, IssuerError> {
        crate::block_on(&self.rt, f).map_err(backend)
    }

    /// Rows changed by one statement on the primary.
    fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, IssuerError> {
        self.block(async {
            let conn = self.db.writer().await?;
            let st = conn.prepare_cached(sql).await?;
            Ok(conn.execute(&st, params).await?)
        })
    }

    /// The rows of one query on the primary.
    fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, IssuerError> {
        self.block(async {
            let conn = self.db.writer().await?;
            let st = conn.prepare_cached(sql).await?;
            Ok(conn.query(&st, params).await?)
        })
    }
}

impl AuthStore for PgAuthStore {
    fn insert_client(&self, id: &str, hash: &str, roles: &[String], now: i64) -> Result<bool, IssuerError> {
        let n = self.execute(
            "INSERT INTO hapi_clients (id, secret_hash, roles, created_at, secret_rotated_at)
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (id) DO NOTHING",
            &[&id, &hash, &roles, &now],
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
        // Locks the owner's account row first, so two concurrent creations cannot both
        // pass the cap (READ COMMITTED would let both count the same rows).
        let cap = i64::from(cap);
        self.block(async {
            let mut conn = self.db.writer().await?;
            let tx = conn.transaction().await?;
            tx.execute("SELECT 1 FROM hapi_users WHERE name = $1 FOR UPDATE", &[&owner]).await?;
            let n = tx
                .execute(
                    "INSERT INTO hapi_clients (id, secret_hash, roles, created_at, secret_rotated_at, owner)
                     SELECT $1, $2, '{}', $4, $4, $3
                     WHERE (SELECT count(*) FROM hapi_clients WHERE owner = $3 AND revoked_at IS NULL) < $5
                     ON CONFLICT (id) DO NOTHING",
                    &[&id, &hash, &owner, &now, &cap],
                )
                .await?;
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    fn touch_client(&self, id: &str, now: i64) -> Result<(), IssuerError> {
        self.execute("UPDATE hapi_clients SET last_used_at = $2 WHERE id = $1", &[&id, &now])?;
        Ok(())
    }

    fn client(&self, id: &str) -> Result<Option<ClientRow>, IssuerError> {
        let rows = self.query(
            "SELECT secret_hash, roles, revoked_at IS NOT NULL, owner FROM hapi_clients WHERE id = $1",
            &[&id],
        )?;
        Ok(rows.first().map(|r| ClientRow {
            secret_hash: r.get(0),
            roles: r.get(1),
            revoked: r.get(2),
            owner: r.get(3),
        }))
    }

    fn list_clients(&self, owner: Option<&str>) -> Result<Vec<ClientInfo>, IssuerError> {
        let select = "SELECT id, roles, created_at, secret_rotated_at, revoked_at, owner, last_used_at,
                    secret_hash = '' /* PENDING_SECRET */ FROM hapi_clients";
        let rows = match owner {
            Some(o) => self.query(&format!("{select} WHERE owner = $1 ORDER BY created_at, id"), &[&o])?,
            None => self.query(&format!("{select} ORDER BY created_at, id"), &[])?,
        };
        Ok(rows
            .iter()
            .map(|r| ClientInfo {
                id: r.get(0),
                roles: r.get(1),
                created_at: r.get(2),
                secret_rotated_at: r.get(3),
                revoked_at: r.get(4),
                owner: r.get(5),
                last_used_at: r.get(6),
                secret_pending: r.get(7),
            })
            .collect())
    }

    fn revoke(&self, id: &str, now: i64) -> Result<bool, IssuerError> {
        let n = self.execute(
            "UPDATE hapi_clients SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &now],
        )?;
        Ok(n == 1)
    }

    fn set_secret(&self, id: &str, hash: &str, now: i64) -> Result<bool, IssuerError> {
        let n = self.execute(
            "UPDATE hapi_clients SET secret_hash = $2, secret_rotated_at = $3 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &hash, &now],
        )?;
        Ok(n == 1)
    }

    fn replace_secret_hash(&self, id: &str, old: &str, new: &str) -> Result<bool, IssuerError> {
        let n = self.execute(
            "UPDATE hapi_clients SET secret_hash = $3 WHERE id = $1 AND secret_hash = $2 AND revoked_at IS NULL",
            &[&id, &old, &new],
        )?;
        Ok(n == 1)
    }

    fn client_active(&self, id: &str) -> Result<bool, IssuerError> {
        let rows = self.query(
            "SELECT c.revoked_at IS NULL AND (c.owner IS NULL OR u.approved_at IS NOT NULL)
             FROM hapi_clients c LEFT JOIN hapi_users u ON u.name = c.owner WHERE c.id = $1",
            &[&id],
        )?;
        Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
    }

    fn insert_user(&self, name: &str, hash: &str, roles: &[String], now: i64) -> Result<bool, IssuerError> {
        let n = self.execute(
            "INSERT INTO hapi_users (name, password_hash, roles, created_at, approved_at)
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING",
            &[&name, &hash, &roles, &now],
        )?;
        Ok(n == 1)
    }

    fn insert_pending_user(&self, name: &str, hash: &str, now: i64) -> Result<bool, IssuerError> {
        let n = self.execute(
            "INSERT INTO hapi_users (name, password_hash, roles, created_at, approved_at)
             VALUES ($1, $2, '{}', $3, NULL) ON CONFLICT (name) DO NOTHING",
            &[&name, &hash, &now],
        )?;
        Ok(n == 1)
    }

    fn approve_user(&self, name: &str, roles: &[String], now: i64) -> Result<bool, IssuerError> {
        let n = self.execute(
            "UPDATE hapi_users SET approved_at = $3, roles = $2 WHERE name = $1 AND approved_at IS NULL",
            &[&name, &roles, &now],
        )?;
        Ok(n == 1)
    }

    fn set_password(&self, name: &str, hash: &str) -> Result<bool, IssuerError> {
        self.block(async {
            let mut conn = self.db.writer().await?;
            let tx = conn.transaction().await?;
            let n = tx
                .execute(
                    "UPDATE hapi_users SET password_hash = $2 WHERE name = $1 AND approved_at IS NOT NULL",
                    &[&name, &hash],
                )
                .await?;
            if n == 1 {
                tx.execute("DELETE FROM hapi_sessions WHERE subject = $1 AND local", &[&name]).await?;
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    fn user(&self, name: &str) -> Result<Option<UserRow>, IssuerError> {
        let rows = self.query(
            "SELECT password_hash, roles, approved_at IS NOT NULL FROM hapi_users WHERE name = $1",
            &[&name],
        )?;
        Ok(rows.first().map(|r| UserRow { password_hash: r.get(0), roles: r.get(1), approved: r.get(2) }))
    }

    fn list_users(&self) -> Result<Vec<UserInfo>, IssuerError> {
        let rows =
            self.query("SELECT name, roles, created_at, approved_at FROM hapi_users ORDER BY name", &[])?;
        Ok(rows
            .iter()
            .map(|r| UserInfo {
                name: r.get(0),
                roles: r.get(1),
                created_at: r.get(2),
                approved_at: r.get(3),
            })
            .collect())
    }

    fn set_user_roles(&self, name: &str, roles: &[String]) -> Result<bool, IssuerError> {
        let n = self.execute("UPDATE hapi_users SET roles = $2 WHERE name = $1", &[&name, &roles])?;
        Ok(n == 1)
    }

    fn remove_user(&self, name: &str) -> Result<bool, IssuerError> {
        self.block(async {
            let mut conn = self.db.writer().await?;
            let tx = conn.transaction().await?;
            let n = tx.execute("DELETE FROM hapi_users WHERE name = $1", &[&name]).await?;
            tx.execute("DELETE FROM hapi_sessions WHERE subject = $1 AND local", &[&name]).await?;
            tx.execute(
                "UPDATE hapi_clients SET revoked_at = extract(epoch FROM now())::bigint
                 WHERE owner = $1 AND revoked_at IS NULL",
                &[&name],
            )
            .await?;
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    fn insert_session(&self, s: &SessionRow, id_hash: &str, now: i64) -> Result<(), IssuerError> {
        self.block(async {
            let mut conn = self.db.writer().await?;
            let tx = conn.transaction().await?;
            tx.execute("DELETE FROM hapi_sessions WHERE expires_at <= $1", &[&now]).await?;
            tx.execute(
                "INSERT INTO hapi_sessions (id_hash, subject, local, identity, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&id_hash, &s.subject, &s.local, &s.identity, &now, &s.expires_at],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn session(&self, id_hash: &str, now: i64) -> Result<Option<LiveSession>, IssuerError> {
        let rows = self.query(
            "SELECT s.identity, s.local, u.roles FROM hapi_sessions s
             LEFT JOIN hapi_users u ON s.local AND u.name = s.subject AND u.approved_at IS NOT NULL
             WHERE s.id_hash = $1 AND s.expires_at > $2",
            &[&id_hash, &now],
        )?;
        Ok(rows.first().map(|r| LiveSession { identity: r.get(0), local: r.get(1), roles: r.get(2) }))
    }

    fn delete_session(&self, id_hash: &str) -> Result<(), IssuerError> {
        self.execute("DELETE FROM hapi_sessions WHERE id_hash = $1", &[&id_hash])?;
        Ok(())
    }
}
