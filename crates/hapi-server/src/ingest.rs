//! `hapi-server ingest`: append HAPI csv records to a dataset, all or nothing.

use std::io::BufRead;

use anyhow::{Context, Result, bail};
use hapi_core::decode::CsvDecoder;
use hapi_core::info::DatasetInfo;
use hapi_store::Store;

/// Rows decoded before they are handed to the store as one batch.
const BATCH_ROWS: usize = 65_536;

/// Validates every line of `input` against `info`, then appends all records in one
/// transaction. Nothing is written when any line is bad; the error names the line.
pub fn ingest(store: &dyn Store, info: &DatasetInfo, input: &mut dyn BufRead) -> Result<u64> {
    let last = store.extent(&info.id).context("reading the dataset's last record")?.map(|(_, b)| b);
    let mut dec = CsvDecoder::new(info, last);
    let mut batches = Vec::new();
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line).context("reading the input")?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        dec.line(number, &line)?;
        if dec.rows() >= BATCH_ROWS {
            batches.push(dec.take_batch());
        }
    }
    if dec.rows() > 0 {
        batches.push(dec.take_batch());
    }
    if batches.is_empty() {
        bail!("the input holds no records");
    }
    // Every line is valid: now one transaction, which the store rejects whole if
    // another writer appended meanwhile.
    let n = store.append(&info.id, &mut batches.into_iter()).context("appending to the store")?;
    Ok(n)
}
