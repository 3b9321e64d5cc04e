//! Test doubles for the seam: a source that hides what another one knows.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use futures::future::BoxFuture;

use crate::{Batches, Count, ErrorKind, Extent, Scan, ScanRequest, Source, SourceError};

/// Another source seen as an async source that cannot count: scans say
/// [`Count::Unknown`] (or [`Count::AtMost`] the true count plus a slack), there is no
/// `nth_time` and no blocking side. Its batches are pulled on the runtime even when the
/// inner source blocks, which is fine for the small data of tests only.
#[derive(Debug)]
pub struct Opaque {
    inner: Arc<dyn Source>,
    slack: Option<u64>,
    scans: AtomicUsize,
    fail: Mutex<Option<ErrorKind>>,
}

impl Opaque {
    /// `inner`, without its count.
    pub fn hiding(inner: Arc<dyn Source>) -> Opaque {
        Opaque { inner, slack: None, scans: AtomicUsize::new(0), fail: Mutex::new(None) }
    }

    /// `inner`, telling only that a scan holds at most `slack` more records than it does.
    pub fn bounded(inner: Arc<dyn Source>, slack: u64) -> Opaque {
        Opaque { slack: Some(slack), ..Opaque::hiding(inner) }
    }

    /// Scans opened so far.
    pub fn scans(&self) -> usize {
        self.scans.load(Ordering::Relaxed)
    }

    /// Makes every later scan fail with `kind` (`None`: succeed again).
    pub fn fail_with(&self, kind: Option<ErrorKind>) {
        *self.fail.lock().unwrap_or_else(|e| e.into_inner()) = kind;
    }
}

impl Source for Opaque {
    fn extent(&self) -> BoxFuture<'_, Result<Extent, SourceError>> {
        self.inner.extent()
    }

    fn scan(&self, request: ScanRequest) -> BoxFuture<'_, Result<Scan, SourceError>> {
        Box::pin(async move {
            self.scans.fetch_add(1, Ordering::Relaxed);
            if let Some(kind) = *self.fail.lock().unwrap_or_else(|e| e.into_inner()) {
                return Err(SourceError::msg(kind, "injected failure"));
            }
            let scan = self.inner.scan(request).await?;
            let count = match (self.slack, scan.count.bound()) {
                (Some(slack), Some(n)) => Count::AtMost(n + slack),
                _ => Count::Unknown,
            };
            let batches = match scan.batches {
                Batches::Blocking(batches) => futures::stream::iter(batches).boxed(),
                Batches::Async(batches) => batches,
            };
            Ok(Scan { count, batches: Batches::Async(batches) })
        })
    }
}
