//! A columnar chunk of records: what stores yield and encoders consume.

use crate::time::Nanos;

/// A run of consecutive records, column by column.
///
/// `columns` hold the selected non-time parameters in info order; the primary
/// time is `times`. Every column has exactly `times.len() * width` elements.
/// A batch in wire form (`wire` set) has no columns: its values are in the records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Primary time of each record, strictly increasing.
    pub times: Vec<Nanos>,
    /// One entry per selected non-time parameter; none when `wire` is set.
    pub columns: Vec<Column>,
    /// The records whole, in the binary encoder's form, when a source read them so and
    /// the scan asked for them so (a HAPI upstream's binary, passed on without being
    /// taken apart into columns and put together again).
    pub wire: Option<Wire>,
}

/// Records exactly as the binary encoder writes them for the dataset's time format and
/// the scan's parameters: each `record_len` bytes, the primary time's text, then every
/// element of every selected parameter in order, doubles and integers little-endian
/// with every NaN the canonical quiet one, texts NUL-padded to their `length` with
/// nothing but NUL after the first.
#[derive(Debug, Clone, PartialEq)]
pub struct Wire {
    /// Bytes per record.
    pub record_len: usize,
    /// `times.len() * record_len` bytes.
    pub bytes: Vec<u8>,
}

/// The values of one parameter for every record of a batch, array elements
/// unrolled row-major (last index fastest), as in csv and binary.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// `double` parameters.
    Double {
        /// Elements per record: the product of `size` (1 for a scalar).
        width: usize,
        /// `rows * width` values.
        values: Vec<f64>,
    },
    /// `integer` parameters.
    Integer {
        /// Elements per record.
        width: usize,
        /// `rows * width` values.
        values: Vec<i32>,
    },
    /// `string` and non-primary `isotime` parameters: every element occupies exactly
    /// `len` bytes of UTF-8 followed by NUL padding, which is the binary wire form.
    Text {
        /// Elements per record.
        width: usize,
        /// The parameter's `length` in bytes.
        len: usize,
        /// `rows * width * len` bytes.
        bytes: Vec<u8>,
    },
}

impl Column {
    /// Elements per record.
    pub fn width(&self) -> usize {
        match self {
            Column::Double { width, .. } | Column::Integer { width, .. } | Column::Text { width, .. } => {
                *width
            }
        }
    }

    /// Number of records held.
    pub fn rows(&self) -> usize {
        match self {
            Column::Double { width, values } => values.len() / (*width).max(1),
            Column::Integer { width, values } => values.len() / (*width).max(1),
            Column::Text { width, len, bytes } => bytes.len() / (width * len).max(1),
        }
    }

    /// The text of element `i` (counting across records), without its NUL padding.
    pub fn text(&self, i: usize) -> Option<&[u8]> {
        match self {
            Column::Text { len, bytes, .. } => {
                let raw = bytes.get(i * len..(i + 1) * len)?;
                let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                Some(&raw[..end])
            }
            _ => None,
        }
    }
}

impl Batch {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// True when the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Keeps the records with `start <= t < stop`, in place; `true` when a record was at
    /// or after `stop`, so that an ordered scan needs no later batch.
    pub fn keep_times(&mut self, start: Nanos, stop: Nanos) -> bool {
        let a = self.times.partition_point(|&t| t < start);
        let z = self.times.partition_point(|&t| t < stop);
        let past = z < self.times.len();
        self.keep(a..z);
        past
    }

    /// The batch with only the columns `wanted` (indices into `columns`, ascending, each
    /// once), moved, not copied.
    ///
    /// # Panics
    /// On a batch in wire form, whose records are not split into columns.
    pub fn select(self, wanted: &[usize]) -> Batch {
        assert!(self.wire.is_none(), "select of a batch in wire form");
        let mut all: Vec<Option<Column>> = self.columns.into_iter().map(Some).collect();
        let columns = wanted.iter().filter_map(|&i| all.get_mut(i).and_then(Option::take)).collect();
        Batch { times: self.times, columns, wire: None }
    }

    /// Keeps only the records `rows` (indices clamped to the batch), in place.
    pub fn keep(&mut self, rows: std::ops::Range<usize>) {
        let end = rows.end.min(self.len());
        let start = rows.start.min(end);
        self.times.truncate(end);
        self.times.drain(..start);
        if let Some(w) = &mut self.wire {
            keep(&mut w.bytes, start, end, w.record_len);
        }
        for c in &mut self.columns {
            match c {
                Column::Double { width, values } => keep(values, start, end, *width),
                Column::Integer { width, values } => keep(values, start, end, *width),
                Column::Text { width, len, bytes } => keep(bytes, start, end, *width * *len),
            }
        }
    }
}

fn keep<T>(values: &mut Vec<T>, start: usize, end: usize, per_row: usize) {
    values.truncate(end * per_row);
    values.drain(..start * per_row);
}

/// Pads `s` with NULs to exactly `len` bytes and appends it; `false` if `s` is longer.
pub fn push_text(bytes: &mut Vec<u8>, s: &[u8], len: usize) -> bool {
    if s.len() > len {
        return false;
    }
    bytes.extend_from_slice(s);
    bytes.resize(bytes.len() + (len - s.len()), 0);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_cuts_every_column_at_the_same_records() {
        let mut b = Batch {
            times: vec![1, 2, 3, 4],
            columns: vec![
                Column::Double { width: 2, values: (0..8).map(f64::from).collect() },
                Column::Text { width: 1, len: 2, bytes: b"aabbccdd".to_vec() },
            ],
            wire: None,
        };
        b.keep(1..3);
        assert_eq!(b.times, vec![2, 3]);
        assert_eq!(b.columns[0], Column::Double { width: 2, values: vec![2.0, 3.0, 4.0, 5.0] });
        assert_eq!(b.columns[1], Column::Text { width: 1, len: 2, bytes: b"bbcc".to_vec() });
        assert!(!b.clone().keep_times(0, 10));
        let mut c = b.clone();
        assert!(c.keep_times(3, 3) && c.is_empty(), "a record at stop ends an ordered scan");
        let picked = b.clone().select(&[1]);
        assert_eq!(picked.columns, vec![Column::Text { width: 1, len: 2, bytes: b"bbcc".to_vec() }]);
        b.keep(5..9);
        assert!(b.is_empty() && b.columns[0].rows() == 0);
    }
}
