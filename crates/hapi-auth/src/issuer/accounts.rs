//! Local accounts of the built-in issuer: the ones an operator makes on the command line
//! (approved at once), and sign-ups from the portal's registration form, which wait for
//! an operator's approval before they can log in or own a working client. Passwords are
//! argon2id hashes; every check costs one hash, known name or not.

use super::{Issuer, IssuerError, MAX_SECRET, UserInfo, check_roles};
use crate::{Identity, secret, unix_now};

/// Why [`Issuer::verify_user`] let nobody in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefused {
    /// No such account, or not its password (the two are not told apart).
    Wrong,
    /// The right password of a sign-up that no operator approved yet.
    Pending,
}

/// A sign-up's address as its account name: trimmed and lower-cased (so `Ann@X.org` and
/// `ann@x.org` are one account), or why it is not an address. Deliberately simple: one
/// `@`, a local part without spaces, quotes or brackets, and a domain of at least two
/// labels; nothing is sent to it, so it only has to be unambiguous.
pub fn normalize_email(address: &str) -> Result<String, IssuerError> {
    let bad = || {
        IssuerError::Invalid(
            "an e-mail address is name@domain.example, at most 254 characters, without spaces".to_owned(),
        )
    };
    let a = address.trim().to_lowercase();
    let (local, domain) = a.split_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.chars().count() <= 64
        && local.chars().all(|c| !c.is_control() && !c.is_whitespace() && !"<>()[]\\,;:\"@".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.chars().count() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if a.chars().count() > 254 || !local_ok || !domain_ok {
        return Err(bad());
    }
    Ok(a)
}

/// A password we accept: 8 to 1024 characters.
pub fn check_password(password: &str) -> Result<(), IssuerError> {
    if password.chars().count() < 8 || password.len() > MAX_SECRET {
        return Err(IssuerError::Invalid("a password is 8 to 1024 characters".to_owned()));
    }
    Ok(())
}

fn check_user_name(name: &str) -> Result<(), IssuerError> {
    if name.is_empty() || name.len() > 128 || name.trim() != name || name.chars().any(char::is_control) {
        return Err(IssuerError::Invalid(
            "a user name is 1 to 128 characters, without control characters or surrounding spaces".to_owned(),
        ));
    }
    Ok(())
}

impl Issuer {
    /// Adds a local browser-login account, approved (password at least 8 characters).
    pub fn add_user(&self, name: &str, password: &str, roles: &[String]) -> Result<(), IssuerError> {
        check_user_name(name)?;
        check_password(password)?;
        check_roles(roles)?;
        let hash = secret::hash(password).map_err(IssuerError::Crypto)?;
        if !self.store.insert_user(name, &hash, roles, unix_now())? {
            return Err(IssuerError::Exists(format!("user {name}")));
        }
        Ok(())
    }

    /// Records a sign-up (no roles, waiting for [`Issuer::approve_user`]) under its
    /// normalized address; `false` when that account exists already. The hash runs
    /// either way, so the answer's timing does not tell which addresses have accounts.
    pub fn register_user(&self, email: &str, password: &str) -> Result<bool, IssuerError> {
        let name = normalize_email(email)?;
        check_password(password)?;
        let hash = secret::hash(password).map_err(IssuerError::Crypto)?;
        let new = self.store.insert_pending_user(&name, &hash, unix_now())?;
        if new {
            tracing::info!(target: "audit", who = %name, event = "signup", "account requested; waits for approval");
        } else {
            tracing::info!(target: "audit", who = %name, event = "signup_existing", "sign-up for an existing account; nothing changed");
        }
        Ok(new)
    }

    /// Lets a waiting sign-up in, with `roles`.
    pub fn approve_user(&self, name: &str, roles: &[String]) -> Result<(), IssuerError> {
        check_roles(roles)?;
        if self.store.approve_user(name, roles, unix_now())? {
            tracing::info!(target: "audit", who = %name, event = "account_approved", roles = ?roles, "sign-up approved");
            return Ok(());
        }
        match self.store.user(name)? {
            Some(_) => Err(IssuerError::Invalid(format!(
                "user {name} is approved already (`users roles` changes its roles)"
            ))),
            None => Err(IssuerError::NotFound(format!("user {name}"))),
        }
    }

    /// Replaces the password of approved account `name` if `current` is its password,
    /// and ends all its sessions (the caller starts a new one for the browser that asked);
    /// `false` when `current` is wrong. `new` must be a password we accept.
    pub fn change_password(&self, name: &str, current: &str, new: &str) -> Result<bool, IssuerError> {
        check_password(new)?;
        if self.verify_user(name, current).is_err() {
            return Ok(false);
        }
        let hash = secret::hash(new).map_err(IssuerError::Crypto)?;
        let done = self.store.set_password(name, &hash)?;
        if done {
            tracing::info!(target: "audit", who = %name, event = "password_changed", "password changed; sessions ended");
        }
        Ok(done)
    }

    /// Replaces a local account's roles; `false` if there is no such account.
    pub fn set_user_roles(&self, name: &str, roles: &[String]) -> Result<bool, IssuerError> {
        check_roles(roles)?;
        self.store.set_user_roles(name, roles)
    }

    /// Removes a local account (a sign-up too: a refusal) and ends its sessions; `false`
    /// if there was none.
    pub fn remove_user(&self, name: &str) -> Result<bool, IssuerError> {
        self.store.remove_user(name)
    }

    /// All local accounts, waiting sign-ups included.
    pub fn list_users(&self) -> Result<Vec<UserInfo>, IssuerError> {
        self.store.list_users()
    }

    /// Checks a local login. An unknown name costs the same hash as a known one, so the
    /// timing does not tell which names exist. The identity has the grantable scopes and
    /// expires after `token_ttl`; a session layer may shorten or extend that.
    pub fn verify_user(&self, name: &str, password: &str) -> Result<Identity, LoginRefused> {
        let password = if password.len() > MAX_SECRET { "" } else { password };
        let row = match self.store.user(name) {
            Ok(row) => row,
            Err(e) => {
                tracing::error!(error = %e, "reading the user database failed");
                None
            }
        };
        let Some(row) = row else {
            let _ = self.check(password, self.dummy_password_hash());
            return Err(LoginRefused::Wrong);
        };
        if !self.check(password, &row.password_hash) {
            return Err(LoginRefused::Wrong);
        }
        if !row.approved {
            return Err(LoginRefused::Pending);
        }
        let ttl = i64::try_from(self.cfg.token_ttl.as_secs()).unwrap_or(i64::MAX / 4);
        Ok(Identity {
            subject: name.to_owned(),
            client_id: None,
            scopes: self.cfg.scopes.clone(),
            roles: row.roles,
            expires_at: unix_now().saturating_add(ttl),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalized_or_refused() {
        assert_eq!(normalize_email("  Ann.Lee+hapi@Example.ORG ").unwrap(), "ann.lee+hapi@example.org");
        assert_eq!(normalize_email("jörg@uni-köln.de").unwrap(), "jörg@uni-köln.de");
        let long = format!("{}@example.org", "a".repeat(65));
        for bad in [
            "",
            "ann",
            "@example.org",
            "ann@",
            "ann@localhost",
            "ann@@example.org",
            "a b@example.org",
            "ann@exa mple.org",
            "ann@-x.org",
            "ann@x..org",
            "<script>@x.org",
            "ann\n@x.org",
            "\"ann\"@x.org",
            &long,
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_are_8_to_1024_characters() {
        assert!(check_password("1234567").is_err());
        assert!(check_password("12345678").is_ok());
        assert!(check_password("äöüäöüäö").is_ok(), "characters, not bytes");
        assert!(check_password(&"x".repeat(1025)).is_err());
    }
}
