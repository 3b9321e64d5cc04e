//! The one error type of the crate. A corrupt file names the block (by its kind and
//! offset) and the field that is wrong, so a bad archive file can be found and reported.

use std::io;

/// What can go wrong opening or reading a CDF file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system failed a read.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    /// The file is not a CDF, or one of its blocks is inconsistent.
    #[error("{block} at offset {offset}: {msg}")]
    Corrupt {
        /// The kind of block (`CDR`, `VXR`, ...).
        block: &'static str,
        /// Where the block starts in the (uncompressed) file.
        offset: u64,
        /// The field and what is wrong with it.
        msg: String,
    },
    /// A valid CDF feature this reader does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A caller's request that does not fit the file.
    #[error("{0}")]
    Request(String),
}

impl Error {
    pub(crate) fn corrupt(block: &'static str, offset: u64, msg: impl Into<String>) -> Error {
        Error::Corrupt { block, offset, msg: msg.into() }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
