//! The HAPI 3.3 specification as plain Rust: the restricted ISO 8601 time grammar,
//! dataset metadata and its validation, request parsing, the status table, and the
//! csv/binary/json encoders. This crate does no IO and fails only on bad input.

pub mod batch;
pub mod decode;
pub mod duration;
pub mod encode;
pub mod info;
pub mod percent;
pub mod request;
pub mod status;
pub mod time;

pub use batch::{Batch, Column, Wire};
pub use status::{HapiStatus, StatusError};
pub use time::Nanos;

/// The version string every response reports (the schema pattern is `^3\.3$`, never `3.3.1`).
pub const HAPI_VERSION: &str = "3.3";
