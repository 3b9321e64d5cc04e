//! What comes back from an upstream `/data`: the `#` header, split from the records
//! whatever the read sizes, and checked against the parameters we asked for.

use std::borrow::Cow;

use hapi_core::info::Parameter;
use serde_json::Value;

/// Collects the `#` lines at the start of a response.
#[derive(Debug, Default)]
pub(crate) struct Header {
    buf: Vec<u8>,
    /// The header's JSON text, the `#` of each line removed.
    pub(crate) text: String,
    pub(crate) done: bool,
}

impl Header {
    /// Takes `chunk`; once the header is whole, returns what follows it (then every
    /// later chunk whole, not copied).
    pub(crate) fn feed<'a>(&mut self, chunk: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        if self.done {
            return Some(Cow::Borrowed(chunk));
        }
        self.buf.extend_from_slice(chunk);
        loop {
            match self.buf.first() {
                None => return None,
                Some(b'#') => {}
                // A record starts: binary times and csv lines never begin with `#`.
                Some(_) => {
                    self.done = true;
                    return Some(Cow::Owned(std::mem::take(&mut self.buf)));
                }
            }
            let nl = self.buf.iter().position(|&b| b == b'\n')?;
            self.text.push_str(&String::from_utf8_lossy(&self.buf[1..nl]));
            self.text.push('\n');
            self.buf.drain(..=nl);
        }
    }

    /// The response ended: the bytes of an unfinished header line, if any.
    pub(crate) fn unfinished(&self) -> bool {
        !self.done && !self.buf.is_empty()
    }
}

/// Checks that `header` describes exactly `expected` (the time first), in `format`: the
/// records can then be decoded by our info.
pub(crate) fn check(header: &str, expected: &[Parameter], format: &str) -> Result<(), String> {
    let v: Value = serde_json::from_str(header).map_err(|e| format!("its header is not JSON: {e}"))?;
    if let Some(f) = v.get("format").and_then(Value::as_str)
        && f != format
    {
        return Err(format!("it sent {f} where {format} was asked for"));
    }
    let params = v.get("parameters").and_then(Value::as_array).ok_or("its header has no parameters")?;
    let names = |ps: &mut dyn Iterator<Item = String>| ps.collect::<Vec<_>>().join(",");
    if params.len() != expected.len() {
        return Err(format!(
            "it sent parameters {} where {} were asked for",
            names(
                &mut params.iter().map(|p| p.get("name").and_then(Value::as_str).unwrap_or("?").to_owned())
            ),
            names(&mut expected.iter().map(|p| p.name.clone()))
        ));
    }
    for (i, (got, want)) in params.iter().zip(expected).enumerate() {
        let name = got.get("name").and_then(Value::as_str).unwrap_or("");
        if name != want.name {
            return Err(format!("its parameter {} is {name:?}, not {:?}", i + 1, want.name));
        }
        let kind = got.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != want.kind.as_str() {
            return Err(format!("its {name} is of type {kind:?}, not {}", want.kind.as_str()));
        }
        let length = got.get("length").and_then(Value::as_u64).map(|l| l as usize);
        if want.length.is_some() && length != want.length {
            return Err(format!("its {name} has length {length:?}, not {:?}", want.length));
        }
        let size: Vec<usize> = got
            .get("size")
            .and_then(Value::as_array)
            .map(|s| s.iter().map(|d| d.as_u64().unwrap_or(0) as usize).collect())
            .unwrap_or_default();
        if i > 0 && size.iter().product::<usize>().max(1) != want.width() {
            return Err(format!("its {name} has size {size:?}, not {:?}", want.size));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_split_from_the_records_whatever_the_reads() {
        let body = b"#{\"a\":\n#1}\n2020-01-01Z...";
        for step in [1, 2, 5, body.len()] {
            let mut h = Header::default();
            let mut data = Vec::new();
            for c in body.chunks(step) {
                if let Some(d) = h.feed(c) {
                    data.extend_from_slice(&d);
                }
            }
            assert!(h.done, "step {step}");
            assert_eq!(h.text, "{\"a\":\n1}\n");
            assert_eq!(data, b"2020-01-01Z...");
        }
        let mut h = Header::default();
        assert_eq!(h.feed(b"#{\"cut"), None);
        assert!(h.unfinished());
    }
}
