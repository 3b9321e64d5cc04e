//! csv, binary and json encoders. STUB: only `Format` is fixed.

/// The output formats of `/data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/csv`, the default.
    Csv,
    /// Little-endian fixed-width records.
    Binary,
    /// The info header with `data` last.
    Json,
}

impl Format {
    /// All formats, in the order `/capabilities` lists them.
    pub const ALL: [Format; 3] = [Format::Csv, Format::Binary, Format::Json];

    /// The `format=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Binary => "binary",
            Format::Json => "json",
        }
    }

    /// The format named by a `format=` value.
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The response `Content-Type` (REQ-165).
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Binary => "application/octet-stream",
            Format::Json => "application/json",
        }
    }
}
