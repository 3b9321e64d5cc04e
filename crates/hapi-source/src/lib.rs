//! The seam between the server and where a dataset's records live.
//!
//! A [`Source`] is the read side of one dataset: its extent, and scans of a time range
//! and a column subset that yield [`Batch`]es. What a source cannot tell cheaply is an
//! optional capability that defaults to "unknown" (an exact record count, a bound on
//! it, the time of the n-th record), as ripgrep's `Matcher` does with its optional
//! methods; the server plans around what is known (ARCHITECTURE.md, "Limits"). The
//! write side stays with the stores that accept records (`hapi_store::Store::append`),
//! as quickwit keeps its `Storage` apart from its `Metastore`.
//!
//! Sources that read local files or SQLite are blocking: they implement
//! [`BlockingSource`] and are wrapped in [`Blocking`], which answers the async calls on
//! tokio's blocking pool and also hands the server the blocking side, so that it reads
//! and encodes a whole chunk in one blocking task instead of one per batch.
//! Sources that wait on a network or a child process implement [`Source`] directly and
//! yield [`Batches::Async`].
//!
//! Errors carry an [`ErrorKind`] the server maps to a HAPI code and a log level; the
//! cause is for the log, never for the client.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use hapi_core::{Batch, Nanos};

mod ahead;
pub mod testing;

pub use ahead::read_ahead;

/// First and last record, if any.
pub type Extent = Option<(Nanos, Nanos)>;

/// Batches pulled on the calling (blocking) thread.
pub type BatchIter = Box<dyn Iterator<Item = Result<Batch, SourceError>> + Send>;

/// Batches pulled asynchronously.
pub type BatchStream = BoxStream<'static, Result<Batch, SourceError>>;

/// What a scan reads: `start <= t < stop`, and only the given columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    /// Indices of the dataset's parameters after the primary time (parameter `i + 1` of
    /// the info is column `i`), ascending; each batch holds them in this order.
    pub columns: Vec<usize>,
    /// First time included.
    pub start: Nanos,
    /// First time excluded.
    pub stop: Nanos,
    /// The caller takes batches in wire form ([`Batch::wire`], in the dataset's time
    /// format): a source that reads records so may pass them on whole. Others ignore it.
    pub wire: bool,
}

/// What a scan knows of its record count before the first batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Exactly this many records.
    Exact(u64),
    /// At most this many (e.g. from a granule index).
    AtMost(u64),
    /// Not known until the scan ends.
    Unknown,
}

impl Count {
    /// The least upper bound this count gives, if any.
    pub fn bound(self) -> Option<u64> {
        match self {
            Count::Exact(n) | Count::AtMost(n) => Some(n),
            Count::Unknown => None,
        }
    }
}

/// The batches of a scan, in time order, each of at most a few thousand rows. Dropping
/// them early is normal (a client went away) and must release whatever they hold.
pub enum Batches {
    /// Pull only on a blocking thread (file and SQLite reads).
    Blocking(BatchIter),
    /// Pull on the async runtime (network, child processes).
    Async(BatchStream),
}

impl fmt::Debug for Batches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Batches::Blocking(_) => "Batches::Blocking",
            Batches::Async(_) => "Batches::Async",
        })
    }
}

/// One read of a dataset: the records up to the extent as it was when the scan opened,
/// even while appends continue.
#[derive(Debug)]
pub struct Scan {
    /// What is known of the number of records before reading them.
    pub count: Count,
    /// The records.
    pub batches: Batches,
}

/// What a source knows of the n-th record from a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nth {
    /// Record `n` is at this time.
    At(Nanos),
    /// There are no more than `n` records from that time.
    Past,
    /// The source cannot tell cheaply.
    Unknown,
}

/// The read side of one dataset.
///
/// Object-safe: the server holds every dataset's source as `Arc<dyn Source>`.
pub trait Source: Send + Sync + fmt::Debug + 'static {
    /// Times of the first and last record now.
    fn extent(&self) -> BoxFuture<'_, Result<Extent, SourceError>>;

    /// Opens a scan: the count (as far as known) and the batches, from one snapshot.
    fn scan(&self, request: ScanRequest) -> BoxFuture<'_, Result<Scan, SourceError>>;

    /// Time of record `n` (0-based) among those with `t >= start`: the server uses it
    /// to tell the longest span that fits a size limit.
    fn nth_time(&self, start: Nanos, n: u64) -> BoxFuture<'_, Result<Nth, SourceError>> {
        let _ = (start, n);
        Box::pin(futures::future::ready(Ok(Nth::Unknown)))
    }

    /// The same source as blocking calls, when it has them: a caller already on a
    /// blocking thread then reads without a further hand-off.
    fn blocking(&self) -> Option<&dyn BlockingSource> {
        None
    }
}

/// A source whose reads block the calling thread (files, SQLite). Wrap it in
/// [`Blocking`] to use it as a [`Source`].
pub trait BlockingSource: Send + Sync + fmt::Debug + 'static {
    /// See [`Source::extent`].
    fn extent(&self) -> Result<Extent, SourceError>;

    /// See [`Source::scan`]; the batches must be [`Batches::Blocking`].
    fn scan(&self, request: ScanRequest) -> Result<Scan, SourceError>;

    /// See [`Source::nth_time`].
    fn nth_time(&self, start: Nanos, n: u64) -> Result<Nth, SourceError> {
        let _ = (start, n);
        Ok(Nth::Unknown)
    }

    /// Whether reading a few records costs less than handing the read to another thread
    /// (two context switches, about 10 µs on 2 cores): an index seek into memory or the
    /// OS page cache, as in the embedded store. The server then answers small requests
    /// on its async threads, as nginx reads files in its event loop unless told to use
    /// threads; a read from a cold disk then holds that thread for its duration. `false`
    /// (the default) for sources that open and parse files or wait on anything.
    fn cheap_reads(&self) -> bool {
        false
    }
}

/// A [`BlockingSource`] as a [`Source`]: each async call runs on tokio's blocking pool.
#[derive(Debug)]
pub struct Blocking<S>(pub Arc<S>);

impl<S: BlockingSource> Blocking<S> {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&S) -> Result<T, SourceError> + Send + 'static,
    ) -> Result<T, SourceError> {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| SourceError::new(ErrorKind::Internal, "a blocking source task failed", e))?
    }
}

impl<S: BlockingSource> Source for Blocking<S> {
    fn extent(&self) -> BoxFuture<'_, Result<Extent, SourceError>> {
        Box::pin(self.run(|s| s.extent()))
    }

    fn scan(&self, request: ScanRequest) -> BoxFuture<'_, Result<Scan, SourceError>> {
        Box::pin(self.run(move |s| s.scan(request)))
    }

    fn nth_time(&self, start: Nanos, n: u64) -> BoxFuture<'_, Result<Nth, SourceError>> {
        Box::pin(self.run(move |s| s.nth_time(start, n)))
    }

    fn blocking(&self) -> Option<&dyn BlockingSource> {
        Some(&*self.0 as &dyn BlockingSource)
    }
}

/// What a failure means to the server, whatever the source: it picks the HAPI code
/// (1501 for [`ErrorKind::Upstream`], the upstream's own for [`ErrorKind::Refused`],
/// 1500 otherwise), the log level and whether to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The dataset, column or file is not there (a configuration or server bug).
    NotFound,
    /// The data contradicts itself or the dataset's info: a corrupt block, a source file
    /// with a wrong column or an unordered time. Never served as data.
    Corrupt,
    /// An upstream server or a reader program failed (HAPI 1501).
    Upstream,
    /// An upstream HAPI server refused the request with this code (1400-1499), which
    /// the client is given in turn: its request was wrong there too.
    Refused(u16),
    /// The source cannot be read now (file, disk, permissions, connection).
    Unavailable,
    /// An operation waited too long.
    TimedOut,
    /// The caller's input was refused (an append out of order or of the wrong shape, a
    /// changed layout).
    Invalid,
    /// Anything else.
    Internal,
}

/// A failed source operation: a kind, what was being done, and the cause.
#[derive(Debug)]
pub struct SourceError {
    kind: ErrorKind,
    context: String,
    cause: Option<Box<dyn StdError + Send + Sync>>,
}

impl SourceError {
    /// A failure of `kind` while doing `context`, caused by `cause`.
    pub fn new(
        kind: ErrorKind,
        context: impl Into<String>,
        cause: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> SourceError {
        SourceError { kind, context: context.into(), cause: Some(cause.into()) }
    }

    /// A failure described by `message` alone.
    pub fn msg(kind: ErrorKind, message: impl Into<String>) -> SourceError {
        SourceError { kind, context: message.into(), cause: None }
    }

    /// The kind of this failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl StdError for SourceError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.cause.as_deref().map(|c| c as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Three;

    impl BlockingSource for Three {
        fn extent(&self) -> Result<Extent, SourceError> {
            Ok(Some((1, 3)))
        }
        fn scan(&self, r: ScanRequest) -> Result<Scan, SourceError> {
            let times: Vec<Nanos> = (1..=3).filter(|t| (r.start..r.stop).contains(t)).collect();
            let count = Count::Exact(times.len() as u64);
            let batch = Batch { times, columns: Vec::new(), wire: None };
            Ok(Scan { count, batches: Batches::Blocking(Box::new(std::iter::once(Ok(batch)))) })
        }
    }

    #[tokio::test]
    async fn a_blocking_source_answers_async_calls_and_offers_its_blocking_side() {
        let source: Arc<dyn Source> = Arc::new(Blocking(Arc::new(Three)));
        assert_eq!(source.extent().await.unwrap(), Some((1, 3)));
        let scan =
            source.scan(ScanRequest { columns: vec![], start: 2, stop: 10, wire: false }).await.unwrap();
        assert_eq!(scan.count, Count::Exact(2));
        assert_eq!(source.nth_time(0, 1).await.unwrap(), Nth::Unknown);
        assert!(source.blocking().is_some());
    }

    #[test]
    fn an_error_shows_what_was_done_and_why() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = SourceError::new(ErrorKind::NotFound, "reading /archive/2020/a.csv", io);
        assert_eq!(e.to_string(), "reading /archive/2020/a.csv: no such file");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.source().is_some());
        assert_eq!(Count::AtMost(4).bound(), Some(4));
        assert_eq!(Count::Unknown.bound(), None);
    }
}
