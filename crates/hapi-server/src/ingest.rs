//! Appending HAPI csv to a dataset of the embedded store, all or nothing: the one
//! decoder of `hapi-server ingest` and of `POST {prefix}/ingest`.
//!
//! An [`Upload`] takes the bytes as they arrive, in chunks of any size (gzip or plain),
//! splits lines across chunks and checks every line with the dataset's info while the
//! rest is still on its way. Only the decoded records are kept, for the one append
//! that commits them all ([`append`]); so the store's write transaction is short and
//! never waits on a slow sender.

use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use flate2::write::MultiGzDecoder;
use hapi_core::decode::{CsvDecoder, DecodeError};
use hapi_core::info::DatasetInfo;
use hapi_core::{Batch, Nanos};
use hapi_store::{Store, StoreError};

/// Rows decoded before they are handed to the store as one batch.
const BATCH_ROWS: usize = 65_536;

/// Why an upload was refused. Nothing is stored in any case.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A line breaks the info's rules (or is not after the last stored record).
    #[error("{0}")]
    Line(#[from] DecodeError),
    /// More csv than the limit (after decompression).
    #[error("the csv is larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// The gzip stream is corrupt or cut short.
    #[error("the body is not valid gzip, or it is cut short")]
    Gzip,
    /// No record at all.
    #[error("the input holds no records")]
    Empty,
    /// Another append committed records first: this line is no longer after the last
    /// stored record.
    #[error("line {line}: its time is not after the last stored record (another append was committed first)")]
    Overtaken {
        /// The line, from 1.
        line: usize,
    },
    /// The store failed.
    #[error("appending to the store: {0}")]
    Store(StoreError),
    /// The blocking task that decoded or appended failed.
    #[error("the ingest task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// How the bytes of an upload are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Plain csv.
    Identity,
    /// gzip (several members allowed, as `cat a.gz b.gz` makes).
    Gzip,
}

/// An upload being decoded.
#[derive(Debug)]
pub struct Upload {
    input: Input,
}

#[derive(Debug)]
enum Input {
    Plain(Box<Lines>),
    Gzip(Box<MultiGzDecoder<Lines>>),
}

/// The line splitter and decoder behind the (optional) gzip layer.
#[derive(Debug)]
struct Lines {
    dec: CsvDecoder<'static>,
    /// The bytes of the line not yet ended.
    partial: Vec<u8>,
    /// Lines seen.
    number: usize,
    /// The line of the first record.
    first_line: Option<usize>,
    batches: Vec<Batch>,
    records: u64,
    /// Csv bytes seen and the most allowed.
    bytes: u64,
    limit: u64,
    /// Why the last write failed (the gzip layer sees only an `io::Error`).
    failed: Option<IngestError>,
}

/// The decoded records of a whole upload, ready for one append.
#[derive(Debug)]
pub struct Records {
    batches: Vec<Batch>,
    /// How many.
    pub count: u64,
    first_line: usize,
    /// The first record's time.
    pub first: Nanos,
    /// The last record's time.
    pub last: Nanos,
}

impl Upload {
    /// An upload to the dataset of `info` whose last stored record is at `after`, of at
    /// most `limit` csv bytes (counted after decompression).
    pub fn new(info: DatasetInfo, after: Option<Nanos>, encoding: Encoding, limit: u64) -> Upload {
        let lines = Lines {
            dec: CsvDecoder::owned(info, after),
            partial: Vec::new(),
            number: 0,
            first_line: None,
            batches: Vec::new(),
            records: 0,
            bytes: 0,
            limit,
            failed: None,
        };
        let input = match encoding {
            Encoding::Identity => Input::Plain(Box::new(lines)),
            Encoding::Gzip => Input::Gzip(Box::new(MultiGzDecoder::new(lines))),
        };
        Upload { input }
    }

    /// Decodes the next bytes. After an error the upload is done for.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), IngestError> {
        match &mut self.input {
            Input::Plain(lines) => lines.feed(chunk),
            Input::Gzip(gz) => {
                gz.write_all(chunk).map_err(|_| gz.get_mut().failed.take().unwrap_or(IngestError::Gzip))
            }
        }
    }

    /// The end of the input: the last line (without a newline) is decoded too.
    pub fn finish(self) -> Result<Records, IngestError> {
        let mut lines = match self.input {
            Input::Plain(lines) => *lines,
            Input::Gzip(mut gz) => match gz.try_finish() {
                Ok(()) => gz.finish().map_err(|_| IngestError::Gzip)?,
                Err(_) => return Err(gz.get_mut().failed.take().unwrap_or(IngestError::Gzip)),
            },
        };
        if !lines.partial.is_empty() {
            let last = std::mem::take(&mut lines.partial);
            lines.line(&last)?;
        }
        if lines.dec.rows() > 0 {
            lines.batches.push(lines.dec.take_batch());
        }
        let (Some(first_line), Some(first), Some(last)) = (
            lines.first_line,
            lines.batches.first().and_then(|b| b.times.first().copied()),
            lines.batches.last().and_then(|b| b.times.last().copied()),
        ) else {
            return Err(IngestError::Empty);
        };
        Ok(Records { batches: lines.batches, count: lines.records, first_line, first, last })
    }
}

impl Lines {
    fn feed(&mut self, mut chunk: &[u8]) -> Result<(), IngestError> {
        self.bytes += chunk.len() as u64;
        if self.bytes > self.limit {
            return Err(IngestError::TooLarge(self.limit));
        }
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            let (head, rest) = (&chunk[..end], &chunk[end + 1..]);
            chunk = rest;
            if self.partial.is_empty() {
                self.line(head)?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                self.line(&line)?;
                line.clear();
                self.partial = line;
            }
        }
        self.partial.extend_from_slice(chunk);
        Ok(())
    }

    fn line(&mut self, line: &[u8]) -> Result<(), IngestError> {
        self.number += 1;
        let before = self.dec.rows();
        self.dec.line(self.number, line)?;
        if self.dec.rows() > before {
            self.records += 1;
            self.first_line.get_or_insert(self.number);
        }
        if self.dec.rows() >= BATCH_ROWS {
            self.batches.push(self.dec.take_batch());
        }
        Ok(())
    }
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.feed(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                self.failed = Some(e);
                Err(std::io::Error::other("the csv was refused"))
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Appends the records in one transaction. The store refuses the whole append when
/// its last record moved past the first one meanwhile (another writer came first).
pub fn append(store: &dyn Store, id: &str, records: Records) -> Result<u64, IngestError> {
    // Records are consecutive lines after the header lines.
    let first_line = records.first_line;
    let mut batches = records.batches.into_iter();
    store.append(id, &mut batches).map_err(|e| match e {
        StoreError::OutOfOrder { index, .. } => IngestError::Overtaken {
            line: usize::try_from(index).map_or(usize::MAX, |i| first_line.saturating_add(i)),
        },
        e => IngestError::Store(e),
    })
}

/// `hapi-server ingest`: validates every line of `input` against `info`, then appends
/// all records in one transaction. Nothing is written when any line is bad; the error
/// names the line.
pub fn ingest(store: &dyn Store, info: &DatasetInfo, input: &mut dyn BufRead) -> Result<u64> {
    let last = store.extent(&info.id).context("reading the dataset's last record")?.map(|(_, b)| b);
    let mut upload = Upload::new(info.clone(), last, Encoding::Identity, u64::MAX);
    loop {
        let chunk = input.fill_buf().context("reading the input")?;
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        upload.feed(chunk)?;
        input.consume(n);
    }
    let records = upload.finish()?;
    Ok(append(store, &info.id, records)?)
}
