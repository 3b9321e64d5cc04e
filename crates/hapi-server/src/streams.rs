//! Caps on concurrent `/data` streams: one for the whole server, one per client, so a
//! few scripts cannot take every stream and memory stays bounded by the cap.
//!
//! A client is its authenticated identity (subject and client id), or its address when
//! anonymous. Refusals are HTTP 429 with `Retry-After`, before any work is done.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Who a stream is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An authenticated caller: subject and client id.
    Identity(String, String),
    /// An anonymous caller, by address.
    Address(IpAddr),
    /// Neither is known (router tests without a socket).
    Unknown,
}

/// Which cap refused a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// The server runs its most streams.
    Server(usize),
    /// This client runs its most streams.
    Client(usize),
}

/// The two caps and the live counts.
#[derive(Debug)]
pub struct StreamGate {
    max_total: usize,
    max_per_client: usize,
    live: Arc<Mutex<Live>>,
}

#[derive(Debug, Default)]
struct Live {
    total: usize,
    per_client: HashMap<ClientKey, usize>,
}

/// One running stream; dropping it frees its places.
#[derive(Debug)]
pub struct StreamPermit {
    key: ClientKey,
    live: Arc<Mutex<Live>>,
}

impl StreamGate {
    /// Caps of `max_total` streams in all and `max_per_client` per client (both at least 1).
    pub fn new(max_total: usize, max_per_client: usize) -> StreamGate {
        StreamGate {
            max_total: max_total.max(1),
            max_per_client: max_per_client.max(1),
            live: Arc::default(),
        }
    }

    /// A place for one more stream of `key`, or which cap is full.
    pub fn try_acquire(&self, key: ClientKey) -> Result<StreamPermit, Busy> {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if live.total >= self.max_total {
            return Err(Busy::Server(self.max_total));
        }
        let mine = live.per_client.entry(key.clone()).or_insert(0);
        if *mine >= self.max_per_client {
            return Err(Busy::Client(self.max_per_client));
        }
        *mine += 1;
        live.total += 1;
        Ok(StreamPermit { key, live: Arc::clone(&self.live) })
    }

    /// Streams running now.
    pub fn active(&self) -> usize {
        self.live.lock().unwrap_or_else(PoisonError::into_inner).total
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.total -= 1;
        // Remove emptied entries, so the map holds only clients with a live stream.
        if let Some(n) = live.per_client.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                live.per_client.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_free_on_drop() {
        let gate = StreamGate::new(3, 2);
        let a = || ClientKey::Identity("alice".into(), "c".into());
        let b = ClientKey::Address("127.0.0.2".parse().unwrap());
        let a1 = gate.try_acquire(a()).unwrap();
        let a2 = gate.try_acquire(a()).unwrap();
        assert_eq!(gate.try_acquire(a()).unwrap_err(), Busy::Client(2));
        let b1 = gate.try_acquire(b.clone()).unwrap();
        assert_eq!(gate.try_acquire(b).unwrap_err(), Busy::Server(3));
        drop(a1);
        let a3 = gate.try_acquire(a()).unwrap();
        assert_eq!(gate.active(), 3);
        drop((a2, a3, b1));
        assert_eq!(gate.active(), 0);
        assert!(gate.live.lock().unwrap().per_client.is_empty(), "no entry outlives its streams");
    }
}
