//! Validated tokens, remembered until they expire, so each token's signature is
//! checked once instead of on every request (the bearer path must keep ≥ 90 % of the
//! unauthenticated request rate).
//!
//! The key is the SHA-256 of the token: the cache holds no usable credential, and an
//! attacker cannot craft collisions to alias someone else's entry.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;

use crate::Identity;

pub(crate) type TokenHash = [u8; 32];

pub(crate) fn token_hash(token: &str) -> TokenHash {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[derive(Debug)]
struct Entry {
    /// Shared, so a cache hit costs a reference count, not a deep copy.
    identity: Arc<Identity>,
    /// Last second (unix) at which the entry may be served.
    valid_until: i64,
}

#[derive(Debug)]
pub(crate) struct TokenCache {
    map: RwLock<HashMap<TokenHash, Entry>>,
    capacity: usize,
}

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> TokenCache {
        TokenCache { map: RwLock::new(HashMap::new()), capacity: capacity.max(1) }
    }

    pub(crate) fn get(&self, key: &TokenHash, now: i64) -> Option<Arc<Identity>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still a map.
        let map = self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = map.get(key)?;
        // `valid_until` is the first second the token is refused (exp plus leeway).
        (now < e.valid_until).then(|| e.identity.clone())
    }

    pub(crate) fn insert(&self, key: TokenHash, identity: Arc<Identity>, valid_until: i64, now: i64) {
        if valid_until <= now {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, e| e.valid_until >= now);
            if map.len() >= self.capacity {
                // Full of live tokens: drop the one expiring soonest (it is worth least).
                if let Some(k) = map.iter().min_by_key(|(_, e)| e.valid_until).map(|(k, _)| *k) {
                    map.remove(&k);
                }
            }
        }
        map.insert(key, Entry { identity, valid_until });
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: i64) -> Arc<Identity> {
        Arc::new(Identity {
            subject: format!("s{n}"),
            client_id: None,
            scopes: vec![],
            roles: vec![],
            expires_at: n,
        })
    }

    #[test]
    fn serves_until_expiry_only() {
        let c = TokenCache::new(10);
        let k = token_hash("a.b.c");
        c.insert(k, id(100), 100, 50);
        assert_eq!(c.get(&k, 99).map(|i| i.subject.clone()), Some("s100".to_owned()));
        // Refused from its expiry second on, as the validator refuses it (RFC 7519 4.1.4).
        assert_eq!(c.get(&k, 100), None);
        assert_eq!(c.get(&token_hash("a.b.d"), 50), None);
    }

    #[test]
    fn bounded_evicting_expired_first() {
        let c = TokenCache::new(3);
        c.insert(token_hash("1"), id(1), 10, 0);
        c.insert(token_hash("2"), id(2), 1000, 0);
        c.insert(token_hash("3"), id(3), 1000, 0);
        // At t = 20 entry 1 has expired: it goes, the live ones stay.
        c.insert(token_hash("4"), id(4), 1000, 20);
        assert_eq!(c.len(), 3);
        assert!(c.get(&token_hash("2"), 20).is_some());
        assert!(c.get(&token_hash("4"), 20).is_some());
        // All live: the one expiring soonest goes.
        c.insert(token_hash("5"), id(5), 500, 20);
        c.insert(token_hash("6"), id(6), 2000, 20);
        assert_eq!(c.len(), 3);
        assert!(c.get(&token_hash("5"), 20).is_none());
        assert!(c.get(&token_hash("6"), 20).is_some());
    }
}
