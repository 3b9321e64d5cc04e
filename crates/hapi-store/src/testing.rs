//! Test doubles: a store wrapper that fails scans after a number of batches (for the
//! mid-stream failure test) and counts live scans (to assert that a client that went away
//! also dropped its scan).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hapi_core::{Batch, Nanos};

use crate::{BatchIter, Layout, Snapshot, Store, StoreError};

/// Wraps a store; every scan is counted while alive and, if configured, yields
/// `Err(StoreError::Injected)` after a number of good batches.
#[derive(Debug)]
pub struct FailingStore<S: Store> {
    inner: S,
    fail_after: Option<usize>,
    probe: ScanProbe,
}

/// A cloneable view of a [`FailingStore`]'s scan counters that stays usable after the
/// store itself was moved into an `Arc<dyn Store>`.
#[derive(Debug, Clone, Default)]
pub struct ScanProbe {
    live: Arc<AtomicUsize>,
    started: Arc<AtomicUsize>,
}

impl ScanProbe {
    /// Scans created and not yet dropped.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Scans created so far.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }
}

impl<S: Store> FailingStore<S> {
    /// Counts scans and never fails.
    pub fn new(inner: S) -> FailingStore<S> {
        FailingStore { inner, fail_after: None, probe: ScanProbe::default() }
    }

    /// Every scan yields `batches` good batches, then one `Err(StoreError::Injected)`, then
    /// ends. With 0 the first item is the error. A scan with fewer batches ends normally.
    pub fn failing_after(inner: S, batches: usize) -> FailingStore<S> {
        FailingStore { inner, fail_after: Some(batches), probe: ScanProbe::default() }
    }

    /// The scan counters.
    pub fn probe(&self) -> ScanProbe {
        self.probe.clone()
    }

    /// Scans created and not yet dropped.
    pub fn live_scans(&self) -> usize {
        self.probe.live()
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Store> Store for FailingStore<S> {
    fn open_dataset(&self, id: &str, layout: &Layout) -> Result<(), StoreError> {
        self.inner.open_dataset(id, layout)
    }

    fn extent(&self, id: &str) -> Result<Option<(Nanos, Nanos)>, StoreError> {
        self.inner.extent(id)
    }

    fn count(&self, id: &str, start: Nanos, stop: Nanos) -> Result<u64, StoreError> {
        self.inner.count(id, start, stop)
    }

    fn nth_time(&self, id: &str, start: Nanos, n: u64) -> Result<Option<Nanos>, StoreError> {
        self.inner.nth_time(id, start, n)
    }

    fn snapshot(
        &self,
        id: &str,
        columns: &[usize],
        start: Nanos,
        stop: Nanos,
    ) -> Result<Snapshot, StoreError> {
        let inner = self.inner.snapshot(id, columns, start, stop)?;
        self.probe.started.fetch_add(1, Ordering::SeqCst);
        self.probe.live.fetch_add(1, Ordering::SeqCst);
        let batches = Box::new(Counted {
            inner: inner.batches,
            remaining: self.fail_after,
            done: false,
            live: Arc::clone(&self.probe.live),
        });
        Ok(Snapshot { count: inner.count, batches })
    }

    fn append(&self, id: &str, batches: &mut dyn Iterator<Item = Batch>) -> Result<u64, StoreError> {
        self.inner.append(id, batches)
    }
}

/// A scan that decrements the live count when dropped.
struct Counted {
    inner: BatchIter,
    remaining: Option<usize>,
    done: bool,
    live: Arc<AtomicUsize>,
}

impl Iterator for Counted {
    type Item = Result<Batch, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.remaining == Some(0) {
            self.done = true;
            return Some(Err(StoreError::Injected("scan failed on purpose".to_owned())));
        }
        let item = self.inner.next();
        match &item {
            Some(Ok(_)) => self.remaining = self.remaining.map(|r| r - 1),
            Some(Err(_)) | None => self.done = true,
        }
        item
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}
