//! One dataset of a [`Store`] as a [`BlockingSource`]: the embedded store behind the
//! server's source seam. It knows everything a source may tell: the exact count, the
//! n-th record's time, and one snapshot per scan.

use std::sync::Arc;

use hapi_core::Nanos;
use hapi_source::{Batches, BlockingSource, Count, Extent, Nth, Scan, ScanRequest, SourceError};

use crate::Store;

/// The read side of dataset `id` in `store`.
#[derive(Debug)]
pub struct StoreSource {
    store: Arc<dyn Store>,
    id: String,
}

impl StoreSource {
    /// Dataset `id` of `store`, which must have been opened there.
    pub fn new(store: Arc<dyn Store>, id: impl Into<String>) -> StoreSource {
        StoreSource { store, id: id.into() }
    }
}

impl BlockingSource for StoreSource {
    fn extent(&self) -> Result<Extent, SourceError> {
        Ok(self.store.extent(&self.id)?)
    }

    fn scan(&self, r: ScanRequest) -> Result<Scan, SourceError> {
        let snapshot = self.store.snapshot(&self.id, &r.columns, r.start, r.stop)?;
        let batches = snapshot.batches.map(|b| b.map_err(SourceError::from));
        Ok(Scan { count: Count::Exact(snapshot.count), batches: Batches::Blocking(Box::new(batches)) })
    }

    fn nth_time(&self, start: Nanos, n: u64) -> Result<Nth, SourceError> {
        Ok(match self.store.nth_time(&self.id, start, n)? {
            Some(t) => Nth::At(t),
            None => Nth::Past,
        })
    }

    /// A few records are an index seek and a few page reads (SQLite, see its
    /// `sqlite/block.rs`) or a lookup in memory.
    fn cheap_reads(&self) -> bool {
        true
    }
}
