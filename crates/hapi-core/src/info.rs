//! Dataset metadata (`/info`), its validation and parameter subsetting.
//! STUB: the types are fixed; `DatasetInfo::from_json` and the JSON views are to be implemented.

use serde_json::{Map, Value};

use crate::time::{Nanos, TimeFormat};

/// The four HAPI parameter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// IEEE 754 binary64.
    Double,
    /// 32-bit signed.
    Integer,
    /// UTF-8 of at most `length` bytes.
    String,
    /// A HAPI time string of exactly `length` characters.
    IsoTime,
}

/// One validated parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// `name`.
    pub name: String,
    /// `type`.
    pub kind: ParamType,
    /// `size`; empty for a scalar.
    pub size: Vec<usize>,
    /// `length` (string and isotime only), in bytes.
    pub length: Option<usize>,
    /// `fill` as written in the metadata (always a JSON string or null).
    pub fill: Option<String>,
    /// The parameter object as published, with every `$ref` resolved.
    pub json: Map<String, Value>,
}

impl Parameter {
    /// Values per record: the product of `size`, 1 for a scalar.
    pub fn width(&self) -> usize {
        self.size.iter().product::<usize>().max(1)
    }

    /// Bytes per record in the binary format.
    pub fn binary_width(&self) -> usize {
        let each = match self.kind {
            ParamType::Double => 8,
            ParamType::Integer => 4,
            ParamType::String | ParamType::IsoTime => self.length.unwrap_or(0),
        };
        each * self.width()
    }
}

/// A validated `/info` for one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    /// The dataset id (any UTF-8 except the comma).
    pub id: String,
    /// Parameters in info order; `parameters[0]` is the primary time.
    pub parameters: Vec<Parameter>,
    /// `startDate`, when the metadata fixes it.
    pub start_date: Option<Nanos>,
    /// `stopDate`, when the metadata fixes it.
    pub stop_date: Option<Nanos>,
    /// `cadence` in nanoseconds, when given.
    pub cadence: Option<Nanos>,
    /// How the primary time is written (from its `length`).
    pub time_format: TimeFormat,
}
