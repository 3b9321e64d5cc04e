//! Where the bytes come from: a file read with positioned reads, or bytes in memory
//! (a caller's buffer, or a whole-file-compressed CDF after inflating it). Every read is
//! checked against the size first, so no read can go past the end or allocate more
//! than the file holds.

use std::borrow::Cow;
use std::fs::File;
use std::sync::Arc;

use crate::error::{Error, Result};

#[derive(Debug)]
pub(crate) enum Source {
    File { file: File, len: u64 },
    Memory(Arc<[u8]>),
}

impl Source {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Source::File { len, .. } => *len,
            Source::Memory(b) => b.len() as u64,
        }
    }

    /// Checks that `[offset, offset + len)` lies inside the file, naming the block and
    /// field that pointed there when it does not.
    pub(crate) fn check(
        &self,
        block: &'static str,
        at: u64,
        field: &str,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        let size = self.len();
        match offset.checked_add(len) {
            Some(end) if end <= size => Ok(()),
            _ => Err(Error::corrupt(
                block,
                at,
                format!("{field}: {len} bytes at offset {offset} go beyond the file size {size}"),
            )),
        }
    }

    /// `len` bytes at `offset`: borrowed from memory, or read from the file.
    pub(crate) fn bytes(
        &self,
        block: &'static str,
        at: u64,
        field: &str,
        offset: u64,
        len: u64,
    ) -> Result<Cow<'_, [u8]>> {
        self.check(block, at, field, offset, len)?;
        match self {
            // In range of a slice's length, so these casts cannot truncate.
            Source::Memory(b) => Ok(Cow::Borrowed(&b[offset as usize..(offset + len) as usize])),
            Source::File { file, .. } => {
                let mut buf = vec![0; len as usize];
                read_exact_at(file, &mut buf, offset)?;
                Ok(Cow::Owned(buf))
            }
        }
    }

    /// Fills `out` from `offset`, checked like [`Source::bytes`].
    pub(crate) fn read_into(
        &self,
        block: &'static str,
        at: u64,
        field: &str,
        offset: u64,
        out: &mut [u8],
    ) -> Result<()> {
        self.check(block, at, field, offset, out.len() as u64)?;
        match self {
            Source::Memory(b) => {
                out.copy_from_slice(&b[offset as usize..offset as usize + out.len()]);
                Ok(())
            }
            Source::File { file, .. } => Ok(read_exact_at(file, out, offset)?),
        }
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
