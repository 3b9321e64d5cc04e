//! What a variable is: its type, shape, records and attributes, as read from its VDR
//! and the attribute entries that name it.

use crate::types::{ByteOrder, DataType, Values};

/// How unwritten records between written ones read (the VDR's `SRecords`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sparse {
    /// Not sparse: an unwritten record reads as the pad value.
    No,
    /// Sparse records read as the pad value.
    Pad,
    /// Sparse records read as the last written record before them (the pad value when
    /// there is none).
    Previous,
}

/// How a variable's records are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain VVR blocks.
    None,
    /// GZIP CVVR blocks.
    Gzip,
    /// Another CDF compression (1 RLE, 2 Huffman, 3 adaptive Huffman): reading fails
    /// with an "unsupported compression" error.
    Unsupported(i32),
}

/// One variable's description.
#[derive(Debug, Clone)]
pub struct Variable {
    /// The name.
    pub name: String,
    /// A zVariable (own dimensions) or an rVariable (the file's rDimensions).
    pub z: bool,
    /// Its number among the z or r variables.
    pub number: u32,
    /// The data type.
    pub data_type: DataType,
    /// Elements per value: the string length for text, else 1.
    pub num_elems: u32,
    /// Dimension sizes, as the file declares them (row-major order).
    pub dims: Vec<u32>,
    /// Which dimensions vary; values exist only along varying ones.
    pub dim_varys: Vec<bool>,
    /// Whether records vary (false: one record holds the value for all).
    pub rec_vary: bool,
    /// Number of records: MaxRec + 1 (0 when none was written).
    pub records: u64,
    /// How unwritten records read.
    pub sparse: Sparse,
    /// How the blocks are compressed.
    pub compression: Compression,
    /// Variable attributes (`FILLVAL`, `UNITS`, `DEPEND_0`, ...) in file order.
    pub attributes: Vec<(String, Values)>,
    /// Offset of the VDR, for error messages.
    pub(crate) at: u64,
    pub(crate) vxr_head: u64,
    /// One element of the pad value in the file's byte order.
    pub(crate) pad: Vec<u8>,
}

impl Variable {
    /// The shape of one record's values: the varying dimensions.
    pub fn shape(&self) -> Vec<u32> {
        self.dims.iter().zip(&self.dim_varys).filter(|(_, v)| **v).map(|(d, _)| *d).collect()
    }

    /// Values in one record (strings count as one value each).
    pub fn values_per_record(&self) -> u64 {
        self.shape().iter().map(|&d| u64::from(d)).product()
    }

    /// Bytes of one value.
    pub fn value_bytes(&self) -> u64 {
        self.data_type.size() as u64 * u64::from(self.num_elems)
    }

    /// Bytes of one record in the file, `None` if it overflows.
    pub fn record_bytes(&self) -> Option<u64> {
        self.shape().iter().try_fold(self.value_bytes(), |acc, &d| acc.checked_mul(u64::from(d)))
    }

    /// The attribute `name` (exact name).
    pub fn attr(&self, name: &str) -> Option<&Values> {
        self.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// A text attribute's value (`UNITS`, `DEPEND_0`, ...).
    pub fn attr_text(&self, name: &str) -> Option<&str> {
        match self.attr(name)? {
            Values::Text(v) => v.first().map(String::as_str),
            _ => None,
        }
    }

    /// `FILLVAL` as a value of the variable's own type (ISTP says they match; files that
    /// store it as another numeric type get it converted), `None` when absent or not
    /// representable.
    pub fn fill(&self) -> Option<Values> {
        convert(self.attr("FILLVAL")?, self.data_type)
    }

    /// The pad value, one value of the variable's type.
    pub fn pad(&self, order: ByteOrder) -> Values {
        crate::types::decode(self.data_type, &self.pad, order, self.num_elems as usize)
    }
}

/// `v` as values of `to`, element by element; `None` when one does not fit.
pub(crate) fn convert(v: &Values, to: DataType) -> Option<Values> {
    let target = Values::empty(to);
    if std::mem::discriminant(v) == std::mem::discriminant(&target) {
        return Some(v.clone());
    }
    let ints = |i: usize| -> Option<i128> {
        Some(match v {
            Values::I8(x) => i128::from(*x.get(i)?),
            Values::I16(x) => i128::from(*x.get(i)?),
            Values::I32(x) => i128::from(*x.get(i)?),
            Values::I64(x) | Values::Tt2000(x) => i128::from(*x.get(i)?),
            Values::U8(x) => i128::from(*x.get(i)?),
            Values::U16(x) => i128::from(*x.get(i)?),
            Values::U32(x) => i128::from(*x.get(i)?),
            _ => {
                let f = v.get_f64(i)?;
                if f.fract() != 0.0 || !f.is_finite() || f.abs() > 1e38 {
                    return None;
                }
                f as i128
            }
        })
    };
    let n = v.len();
    macro_rules! int {
        ($t:ty, $var:ident) => {
            Values::$var((0..n).map(|i| <$t>::try_from(ints(i)?).ok()).collect::<Option<_>>()?)
        };
    }
    Some(match target {
        Values::I8(_) => int!(i8, I8),
        Values::I16(_) => int!(i16, I16),
        Values::I32(_) => int!(i32, I32),
        Values::I64(_) => int!(i64, I64),
        Values::Tt2000(_) => int!(i64, Tt2000),
        Values::U8(_) => int!(u8, U8),
        Values::U16(_) => int!(u16, U16),
        Values::U32(_) => int!(u32, U32),
        Values::F32(_) => Values::F32((0..n).map(|i| v.get_f64(i).map(|f| f as f32)).collect::<Option<_>>()?),
        Values::F64(_) => Values::F64((0..n).map(|i| v.get_f64(i)).collect::<Option<_>>()?),
        Values::Epoch(_) => Values::Epoch((0..n).map(|i| v.get_f64(i)).collect::<Option<_>>()?),
        Values::Epoch16(_) | Values::Text(_) => return None,
    })
}
