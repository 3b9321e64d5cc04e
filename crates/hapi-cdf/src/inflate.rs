//! Bounded GZIP inflation: a compressed block may never produce more than the size its
//! records claim, so a hostile block cannot make the reader allocate more than that.

use std::io::Read;

use crate::error::{Error, Result};

/// Deflate cannot expand data by more than about 1032:1, so a claimed size beyond that
/// ratio is a lie, and refusing it caps the allocation by the compressed size.
const MAX_RATIO: u64 = 1032;

/// Inflates the gzip `data` of the block at `at`, which must give exactly `claimed`
/// bytes (at least `needed` of them when `exact` is false).
pub(crate) fn gunzip(
    data: &[u8],
    claimed: u64,
    needed: u64,
    block: &'static str,
    at: u64,
) -> Result<Vec<u8>> {
    let limit = (data.len() as u64).saturating_mul(MAX_RATIO).saturating_add(64);
    if needed > limit {
        return Err(Error::corrupt(
            block,
            at,
            format!("claims {needed} bytes from {} compressed bytes, beyond what gzip can give", data.len()),
        ));
    }
    let claimed = claimed.min(limit);
    let mut out = Vec::with_capacity(usize::try_from(claimed).unwrap_or(0));
    let mut dec = flate2::bufread::MultiGzDecoder::new(data).take(claimed + 1);
    dec.read_to_end(&mut out).map_err(|e| Error::corrupt(block, at, format!("gzip data: {e}")))?;
    let got = out.len() as u64;
    if got > claimed {
        return Err(Error::corrupt(
            block,
            at,
            format!("gzip data inflates to more than the {claimed} bytes its records claim"),
        ));
    }
    if got < needed {
        return Err(Error::corrupt(
            block,
            at,
            format!("gzip data inflates to {got} bytes, fewer than the {needed} its records need"),
        ));
    }
    Ok(out)
}
