//! Failed secret checks, counted per source address, per (client or user name,
//! address) and per name, so a flood of wrong secrets is refused before it reaches
//! Argon2. The sign-up form has a throttle of its own, with tighter [`Limits`], that
//! counts every sign-up, not only failed ones.
//!
//! - Every attempt is charged as a failure *before* its hash runs (64 requests that
//!   arrive together cannot all pass an empty counter) and refunded when it succeeds.
//! - The per-name limit is the loosest: it stops a guesser spread over many addresses,
//!   yet a flood of one client id or account from elsewhere cannot lock out its owner,
//!   because a (name, address) pair that succeeded within [`TRUST_FOR`] skips the
//!   address and name limits (its own pair limit still applies). A legitimate caller
//!   behind the flood's address gets through the same way.
//! - Leaky buckets in one bounded map: at most [`MAX_ENTRIES`] keys (a few MB), idle
//!   keys dropped first. Under a flood from more addresses than that, the oldest counts
//!   are forgotten: the limit weakens, memory does not grow, and the hashing semaphore
//!   still bounds the CPU.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// How many charges each key may have outstanding, and how fast they drain.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// One source address.
    address: Limit,
    /// One name from one address.
    pair: Limit,
    /// One name from all addresses.
    name: Limit,
}

/// The token endpoint and the login: 20 failures per address (then one per 3 s), five
/// per name and address (a mistyped password five times, then one per 12 s), 50 per name
/// (then one per 6 s).
pub const LOGIN: Limits = Limits {
    address: Limit { burst: 20.0, per_second: 1.0 / 3.0 },
    pair: Limit { burst: 5.0, per_second: 1.0 / 12.0 },
    name: Limit { burst: 50.0, per_second: 1.0 / 6.0 },
};

/// Sign-ups, each charged whether it succeeds or not: 5 per source address (then one per
/// 10 minutes), 3 per e-mail address, from one source address and from all (then one
/// per hour).
pub const SIGNUP: Limits = Limits {
    address: Limit { burst: 5.0, per_second: 1.0 / 600.0 },
    pair: Limit { burst: 3.0, per_second: 1.0 / 3600.0 },
    name: Limit { burst: 3.0, per_second: 1.0 / 3600.0 },
};
/// How long a success exempts its (name, address) pair from the address and name limits.
pub const TRUST_FOR: Duration = Duration::from_secs(24 * 3600);
/// Keys kept in each map (counts and trusted pairs).
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Limit {
    burst: f64,
    per_second: f64,
}

/// The caller's address, if the server recorded it (`ConnectInfo`); router tests
/// without a socket have none and share one anonymous address.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerAddr(crate::server::peer(&parts.extensions).map(|a| a.ip())))
    }
}

/// IPv6 callers get a /64 each (one subscriber); IPv4-mapped IPv6 is IPv4.
fn normalize(addr: Option<IpAddr>) -> IpAddr {
    match addr {
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        Some(v4) => v4,
    }
}

/// Names are kept as keyed hashes: fixed size, and no client id or user name in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    Pair(u64, IpAddr),
    Name(u64),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn drained(self, limit: Limit, now: Instant) -> f64 {
        (self.level - now.saturating_duration_since(self.at).as_secs_f64() * limit.per_second).max(0.0)
    }
}

/// An admitted attempt, charged as a failure until [`Throttle::succeeded`].
#[derive(Debug)]
#[must_use = "a ticket is a charged failure unless passed to Throttle::succeeded"]
pub struct Ticket {
    pair: Key,
    /// The address and name keys, unless the pair is trusted.
    wider: Option<(Key, Key)>,
}

impl Ticket {
    /// Whether the pair succeeded recently: its check may use the trusted hashing lane
    /// (`Builtin::hash_slot`) instead of queueing behind a flood for the shared slots.
    pub fn trusted(&self) -> bool {
        self.wider.is_none()
    }
}

/// The counters of one server.
#[derive(Debug)]
pub struct Throttle {
    limits: Limits,
    inner: Mutex<Inner>,
}

impl Throttle {
    /// A throttle with `limits` ([`LOGIN`] or [`SIGNUP`]).
    pub fn new(limits: Limits) -> Throttle {
        Throttle { limits, inner: Mutex::default() }
    }
}

#[derive(Debug, Default)]
struct Inner {
    names: RandomState,
    buckets: HashMap<Key, Bucket>,
    trusted: HashMap<Key, Instant>,
}

impl Throttle {
    /// Admits one secret check for `name` (client id or user name) from `addr`, or
    /// says how long to wait.
    pub fn admit(&self, name: &str, addr: Option<IpAddr>) -> Result<Ticket, Duration> {
        let now = Instant::now();
        let ip = normalize(addr);
        let mut g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let l = self.limits;
        let hashed = g.names.hash_one(name);
        let pair = Key::Pair(hashed, ip);
        let trusted = g.trusted.get(&pair).is_some_and(|&t| now.saturating_duration_since(t) < TRUST_FOR);
        let wider = (!trusted).then_some((Key::Address(ip), Key::Name(hashed)));
        let mut wait = g.wait(pair, l.pair, now);
        if let Some((a, n)) = wider {
            wait = wait.max(g.wait(a, l.address, now)).max(g.wait(n, l.name, now));
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        g.charge(pair, l, now, 1.0);
        if let Some((a, n)) = wider {
            g.charge(a, l, now, 1.0);
            g.charge(n, l, now, 1.0);
        }
        Ok(Ticket { pair, wider })
    }

    /// The secret was right: refund the charge and trust the pair.
    pub fn succeeded(&self, ticket: Ticket) {
        let pair = ticket.pair;
        self.refund(ticket);
        let now = Instant::now();
        let mut g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.trusted.len() >= MAX_ENTRIES {
            g.trusted.retain(|_, t| now.saturating_duration_since(*t) < TRUST_FOR);
            evict(&mut g.trusted);
        }
        g.trusted.insert(pair, now);
    }

    /// The attempt never reached a secret check (a malformed request) or failed for
    /// another reason than the secret: refund it, trust nothing.
    pub fn refund(&self, ticket: Ticket) {
        let now = Instant::now();
        let mut g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.charge(ticket.pair, self.limits, now, -1.0);
        if let Some((a, n)) = ticket.wider {
            g.charge(a, self.limits, now, -1.0);
            g.charge(n, self.limits, now, -1.0);
        }
    }
}

/// `Retry-After` in whole seconds, rounded up (RFC 9110 §10.2.3).
pub fn retry_after(wait: Duration) -> axum::http::HeaderValue {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    axum::http::HeaderValue::from(secs.max(1))
}

impl Limits {
    fn of(self, key: Key) -> Limit {
        match key {
            Key::Address(_) => self.address,
            Key::Pair(..) => self.pair,
            Key::Name(_) => self.name,
        }
    }
}

impl Inner {
    /// How long until one more failure fits under `limit`.
    fn wait(&self, key: Key, limit: Limit, now: Instant) -> Duration {
        let level = self.buckets.get(&key).map_or(0.0, |b| b.drained(limit, now));
        let over = level + 1.0 - limit.burst;
        if over <= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(over / limit.per_second) }
    }

    fn charge(&mut self, key: Key, limits: Limits, now: Instant, by: f64) {
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_ENTRIES {
            // Idle keys first (their count has drained to nothing), then any.
            self.buckets.retain(|k, b| b.drained(limits.of(*k), now) > 0.0);
            evict(&mut self.buckets);
        }
        let limit = limits.of(key);
        let b = self.buckets.entry(key).or_insert(Bucket { level: 0.0, at: now });
        *b = Bucket { level: (b.drained(limit, now) + by).max(0.0), at: now };
    }
}

/// Makes room for a tenth of [`MAX_ENTRIES`] when a map is still full: arbitrary
/// entries (the hash order), which is all a flood from that many addresses leaves.
fn evict<V>(m: &mut HashMap<Key, V>) {
    if m.len() >= MAX_ENTRIES {
        let drop: Vec<Key> = m.keys().take(m.len() - MAX_ENTRIES * 9 / 10).copied().collect();
        for k in drop {
            m.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn failures_are_limited_per_pair_and_per_address() {
        let t = Throttle::new(LOGIN);
        for _ in 0..5 {
            drop(t.admit("victim", ip("10.0.0.1")).unwrap());
        }
        let wait = t.admit("victim", ip("10.0.0.1")).unwrap_err();
        assert!(wait > Duration::from_secs(1) && wait <= Duration::from_secs(12), "{wait:?}");
        // The same name from another address is not locked out.
        t.succeeded(t.admit("victim", ip("10.0.0.2")).unwrap());
        // Other names from the flooding address: up to the address limit (20 in all).
        for n in 0..15 {
            drop(t.admit(&format!("n{n}"), ip("10.0.0.1")).unwrap());
        }
        assert!(t.admit("fresh", ip("10.0.0.1")).is_err());
    }

    #[test]
    fn a_success_refunds_and_lets_its_pair_past_the_address_limit() {
        let t = Throttle::new(LOGIN);
        for _ in 0..100 {
            t.succeeded(t.admit("good", ip("10.0.0.1")).unwrap());
        }
        for n in 0..20 {
            drop(t.admit(&format!("n{n}"), ip("10.0.0.1")).unwrap());
        }
        assert!(t.admit("other", ip("10.0.0.1")).is_err(), "address exhausted");
        t.succeeded(t.admit("good", ip("10.0.0.1")).expect("trusted pair passes"));
    }

    #[test]
    fn one_name_from_many_addresses_is_limited_but_its_trusted_pair_is_not() {
        let t = Throttle::new(LOGIN);
        t.succeeded(t.admit("victim", ip("10.0.0.1")).unwrap());
        // 50 failures from 50 addresses (each far under its own limits) use up the name.
        for n in 0..50u32 {
            drop(t.admit("victim", Some(IpAddr::V4((0x0b00_0000 + n).into()))).unwrap());
        }
        assert!(t.admit("victim", ip("10.9.9.9")).is_err(), "a new address must wait");
        assert!(t.admit("other", ip("10.9.9.9")).is_ok(), "other names are not affected");
        t.succeeded(t.admit("victim", ip("10.0.0.1")).expect("the owner's trusted pair passes"));
    }

    #[test]
    fn sign_ups_count_whether_or_not_they_succeed() {
        let t = Throttle::new(SIGNUP);
        for n in 0..5 {
            drop(t.admit(&format!("n{n}@x.org"), ip("10.0.0.1")).unwrap());
        }
        let wait = t.admit("n5@x.org", ip("10.0.0.1")).unwrap_err();
        assert!(wait > Duration::from_secs(60), "{wait:?}");
        for n in 0..3 {
            drop(t.admit("same@x.org", Some(IpAddr::V4((0x0b00_0000 + n).into()))).unwrap());
        }
        assert!(t.admit("same@x.org", ip("10.0.0.9")).is_err(), "one address, from anywhere");
    }

    #[test]
    fn ipv6_callers_share_a_slash_64_and_memory_is_bounded() {
        let t = Throttle::new(LOGIN);
        for n in 0..20 {
            drop(t.admit(&format!("n{n}"), ip(&format!("2001:db8::{n:x}"))).unwrap());
        }
        assert!(t.admit("x", ip("2001:db8::ffff")).is_err());
        for n in 0..(MAX_ENTRIES as u32 + 1000) {
            drop(t.admit("x", Some(IpAddr::V4(n.into()))));
        }
        let g = t.inner.lock().unwrap();
        assert!(g.buckets.len() <= MAX_ENTRIES, "{}", g.buckets.len());
    }
}
