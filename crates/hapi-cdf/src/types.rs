//! CDF data types, byte orders, and decoding raw element bytes into typed values.

use crate::error::{Error, Result};

/// The 17 CDF data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `CDF_INT1`
    Int1,
    /// `CDF_INT2`
    Int2,
    /// `CDF_INT4`
    Int4,
    /// `CDF_INT8`
    Int8,
    /// `CDF_UINT1`
    Uint1,
    /// `CDF_UINT2`
    Uint2,
    /// `CDF_UINT4`
    Uint4,
    /// `CDF_REAL4`
    Real4,
    /// `CDF_REAL8`
    Real8,
    /// `CDF_EPOCH`: milliseconds since 0000-01-01T00:00:00, as a double.
    Epoch,
    /// `CDF_EPOCH16`: seconds since 0000-01-01 and picoseconds, two doubles.
    Epoch16,
    /// `CDF_TIME_TT2000`: nanoseconds since J2000 in TT, counting leap seconds.
    TimeTt2000,
    /// `CDF_BYTE`
    Byte,
    /// `CDF_FLOAT`
    Float,
    /// `CDF_DOUBLE`
    Double,
    /// `CDF_CHAR`
    Char,
    /// `CDF_UCHAR`
    Uchar,
}

impl DataType {
    /// The type of a CDF type code.
    pub fn from_code(code: i32) -> Option<DataType> {
        use DataType::*;
        Some(match code {
            1 => Int1,
            2 => Int2,
            4 => Int4,
            8 => Int8,
            11 => Uint1,
            12 => Uint2,
            14 => Uint4,
            21 => Real4,
            22 => Real8,
            31 => Epoch,
            32 => Epoch16,
            33 => TimeTt2000,
            41 => Byte,
            44 => Float,
            45 => Double,
            51 => Char,
            52 => Uchar,
            _ => return None,
        })
    }

    /// The CDF type code.
    pub fn code(self) -> i32 {
        use DataType::*;
        match self {
            Int1 => 1,
            Int2 => 2,
            Int4 => 4,
            Int8 => 8,
            Uint1 => 11,
            Uint2 => 12,
            Uint4 => 14,
            Real4 => 21,
            Real8 => 22,
            Epoch => 31,
            Epoch16 => 32,
            TimeTt2000 => 33,
            Byte => 41,
            Float => 44,
            Double => 45,
            Char => 51,
            Uchar => 52,
        }
    }

    /// The name the CDF library uses (`CDF_DOUBLE`, ...).
    pub fn name(self) -> &'static str {
        use DataType::*;
        match self {
            Int1 => "CDF_INT1",
            Int2 => "CDF_INT2",
            Int4 => "CDF_INT4",
            Int8 => "CDF_INT8",
            Uint1 => "CDF_UINT1",
            Uint2 => "CDF_UINT2",
            Uint4 => "CDF_UINT4",
            Real4 => "CDF_REAL4",
            Real8 => "CDF_REAL8",
            Epoch => "CDF_EPOCH",
            Epoch16 => "CDF_EPOCH16",
            TimeTt2000 => "CDF_TIME_TT2000",
            Byte => "CDF_BYTE",
            Float => "CDF_FLOAT",
            Double => "CDF_DOUBLE",
            Char => "CDF_CHAR",
            Uchar => "CDF_UCHAR",
        }
    }

    /// Bytes of one element.
    pub fn size(self) -> usize {
        use DataType::*;
        match self {
            Int1 | Uint1 | Byte | Char | Uchar => 1,
            Int2 | Uint2 => 2,
            Int4 | Uint4 | Real4 | Float => 4,
            Int8 | Real8 | Double | Epoch | TimeTt2000 => 8,
            Epoch16 => 16,
        }
    }

    /// Whether values are text (one string per value of `num_elems` bytes).
    pub fn is_text(self) -> bool {
        matches!(self, DataType::Char | DataType::Uchar)
    }

    /// Whether values are one of the three epoch types.
    pub fn is_time(self) -> bool {
        matches!(self, DataType::Epoch | DataType::Epoch16 | DataType::TimeTt2000)
    }

    /// The default pad value of the CDF library (one element, little-endian), used for
    /// unwritten and sparse records when the variable sets none.
    pub(crate) fn default_pad(self) -> Vec<u8> {
        use DataType::*;
        match self {
            Int1 | Byte => (-127i8).to_le_bytes().to_vec(),
            Int2 => (-32767i16).to_le_bytes().to_vec(),
            Int4 => (-2_147_483_647i32).to_le_bytes().to_vec(),
            Int8 | TimeTt2000 => (-9_223_372_036_854_775_807i64).to_le_bytes().to_vec(),
            Uint1 => vec![254],
            Uint2 => 65534u16.to_le_bytes().to_vec(),
            Uint4 => 4_294_967_294u32.to_le_bytes().to_vec(),
            Real4 | Float => (-1.0e30f32).to_le_bytes().to_vec(),
            Real8 | Double => (-1.0e30f64).to_le_bytes().to_vec(),
            Epoch => 0f64.to_le_bytes().to_vec(),
            Epoch16 => vec![0; 16],
            Char | Uchar => vec![b' '],
        }
    }
}

/// The byte order of the data values (internal records are always big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// Most significant byte first.
    Big,
    /// Least significant byte first.
    Little,
}

impl ByteOrder {
    /// The byte order of a CDF encoding code; VAX floating point is refused.
    pub(crate) fn of_encoding(encoding: u32) -> Result<ByteOrder> {
        match encoding {
            1 | 2 | 5 | 7 | 9 | 11 | 12 | 18 => Ok(ByteOrder::Big),
            4 | 6 | 13 | 16 | 17 | 19 => Ok(ByteOrder::Little),
            3 | 14 | 15 | 20 | 21 => Err(Error::Unsupported(format!(
                "encoding {encoding} uses VAX floating point, which this reader does not convert"
            ))),
            e => Err(Error::corrupt("CDR", 8, format!("Encoding {e} is not a CDF encoding"))),
        }
    }
}

/// Decoded values, flat: records in order, each record's values in row-major order of
/// its varying dimensions (the last index fastest). Epochs are the file's raw values;
/// see [`crate::time`] and [`crate::Cdf::read_times`] for Unix nanoseconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// `CDF_INT1`, `CDF_BYTE`
    I8(Vec<i8>),
    /// `CDF_INT2`
    I16(Vec<i16>),
    /// `CDF_INT4`
    I32(Vec<i32>),
    /// `CDF_INT8`
    I64(Vec<i64>),
    /// `CDF_UINT1`
    U8(Vec<u8>),
    /// `CDF_UINT2`
    U16(Vec<u16>),
    /// `CDF_UINT4`
    U32(Vec<u32>),
    /// `CDF_REAL4`, `CDF_FLOAT`
    F32(Vec<f32>),
    /// `CDF_REAL8`, `CDF_DOUBLE`
    F64(Vec<f64>),
    /// `CDF_EPOCH`: milliseconds since year 0.
    Epoch(Vec<f64>),
    /// `CDF_EPOCH16`: (seconds since year 0, picoseconds).
    Epoch16(Vec<[f64; 2]>),
    /// `CDF_TIME_TT2000`: nanoseconds since J2000 TT.
    Tt2000(Vec<i64>),
    /// `CDF_CHAR`, `CDF_UCHAR`: UTF-8 (invalid bytes replaced), cut at the first NUL.
    Text(Vec<String>),
}

impl Values {
    /// An empty value list of the kind `data_type` decodes to.
    pub fn empty(data_type: DataType) -> Values {
        use DataType::*;
        match data_type {
            Int1 | Byte => Values::I8(Vec::new()),
            Int2 => Values::I16(Vec::new()),
            Int4 => Values::I32(Vec::new()),
            Int8 => Values::I64(Vec::new()),
            Uint1 => Values::U8(Vec::new()),
            Uint2 => Values::U16(Vec::new()),
            Uint4 => Values::U32(Vec::new()),
            Real4 | Float => Values::F32(Vec::new()),
            Real8 | Double => Values::F64(Vec::new()),
            Epoch => Values::Epoch(Vec::new()),
            Epoch16 => Values::Epoch16(Vec::new()),
            TimeTt2000 => Values::Tt2000(Vec::new()),
            Char | Uchar => Values::Text(Vec::new()),
        }
    }

    /// How many values.
    pub fn len(&self) -> usize {
        match self {
            Values::I8(v) => v.len(),
            Values::I16(v) => v.len(),
            Values::I32(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::U8(v) => v.len(),
            Values::U16(v) => v.len(),
            Values::U32(v) => v.len(),
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::Epoch(v) => v.len(),
            Values::Epoch16(v) => v.len(),
            Values::Tt2000(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` as a double (epochs: their raw number; EPOCH16: seconds), or `None`
    /// for text or out of range.
    pub fn get_f64(&self, i: usize) -> Option<f64> {
        Some(match self {
            Values::I8(v) => f64::from(*v.get(i)?),
            Values::I16(v) => f64::from(*v.get(i)?),
            Values::I32(v) => f64::from(*v.get(i)?),
            Values::I64(v) => *v.get(i)? as f64,
            Values::U8(v) => f64::from(*v.get(i)?),
            Values::U16(v) => f64::from(*v.get(i)?),
            Values::U32(v) => f64::from(*v.get(i)?),
            Values::F32(v) => f64::from(*v.get(i)?),
            Values::F64(v) | Values::Epoch(v) => *v.get(i)?,
            Values::Epoch16(v) => v.get(i)?[0],
            Values::Tt2000(v) => *v.get(i)? as f64,
            Values::Text(_) => return None,
        })
    }

    /// Appends values decoded from `raw`: whole elements of `data_type` in `order`;
    /// text is one string per `num_elems` bytes.
    pub(crate) fn extend_from(&mut self, raw: &[u8], order: ByteOrder, num_elems: usize) {
        macro_rules! num {
            ($v:expr, $t:ty, $n:literal) => {{
                let it = raw.chunks_exact($n).map(|c| {
                    let b: [u8; $n] = c.try_into().expect("exact chunk");
                    match order {
                        ByteOrder::Big => <$t>::from_be_bytes(b),
                        ByteOrder::Little => <$t>::from_le_bytes(b),
                    }
                });
                $v.extend(it)
            }};
        }
        match self {
            Values::I8(v) => v.extend(raw.iter().map(|&b| b as i8)),
            Values::U8(v) => v.extend_from_slice(raw),
            Values::I16(v) => num!(v, i16, 2),
            Values::U16(v) => num!(v, u16, 2),
            Values::I32(v) => num!(v, i32, 4),
            Values::U32(v) => num!(v, u32, 4),
            Values::F32(v) => num!(v, f32, 4),
            Values::I64(v) | Values::Tt2000(v) => num!(v, i64, 8),
            Values::F64(v) | Values::Epoch(v) => num!(v, f64, 8),
            Values::Epoch16(v) => {
                let mut halves = Vec::with_capacity(raw.len() / 8);
                num!(halves, f64, 8);
                v.extend(halves.chunks_exact(2).map(|p| [p[0], p[1]]));
            }
            Values::Text(v) => v.extend(raw.chunks_exact(num_elems.max(1)).map(text)),
        }
    }
}

/// A CDF string: its bytes up to the first NUL, as UTF-8.
fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Decodes a whole buffer (an attribute entry, a pad value).
pub(crate) fn decode(data_type: DataType, raw: &[u8], order: ByteOrder, num_elems: usize) -> Values {
    let mut v = Values::empty(data_type);
    let unit = if data_type.is_text() { num_elems.max(1) } else { data_type.size() };
    v.extend_from(&raw[..raw.len() / unit * unit], order, num_elems);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_utf8_cut_at_nul() {
        let raw = "h\u{e9}llo\0\0ab\u{2603}\0\0\0".as_bytes();
        assert_eq!(raw.len(), 16);
        let v = decode(DataType::Char, raw, ByteOrder::Little, 8);
        assert_eq!(v, Values::Text(vec!["h\u{e9}llo".to_owned(), "ab\u{2603}".to_owned()]));
        // Invalid UTF-8 is replaced, not an error.
        let v = decode(DataType::Uchar, b"a\xffb", ByteOrder::Little, 3);
        assert_eq!(v, Values::Text(vec!["a\u{fffd}b".to_owned()]));
    }

    #[test]
    fn both_byte_orders() {
        let v = decode(DataType::Int4, &[0, 0, 1, 2], ByteOrder::Big, 1);
        assert_eq!(v, Values::I32(vec![258]));
        let v = decode(DataType::Int4, &[2, 1, 0, 0], ByteOrder::Little, 1);
        assert_eq!(v, Values::I32(vec![258]));
        let mut e16 = 1.5f64.to_be_bytes().to_vec();
        e16.extend(2.5f64.to_be_bytes());
        assert_eq!(decode(DataType::Epoch16, &e16, ByteOrder::Big, 1), Values::Epoch16(vec![[1.5, 2.5]]));
    }
}
