//! What a valid token, introspection answer or local login proves about the caller.

use serde::{Deserialize, Serialize};

/// A caller proven by a bearer token or a login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// `sub`, else the client id (client-credentials tokens of some providers have no `sub`).
    pub subject: String,
    /// `client_id` (RFC 9068), else `azp` (Keycloak); `None` for local browser logins.
    pub client_id: Option<String>,
    /// The granted scopes (`scope`, space-separated; or `scp`).
    pub scopes: Vec<String>,
    /// Roles or groups read from the configured claim.
    pub roles: Vec<String>,
    /// When the proof runs out, in seconds since 1970 (the token's `exp`).
    pub expires_at: i64,
}

impl Identity {
    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the caller has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}
