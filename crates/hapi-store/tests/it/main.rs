//! Integration tests of both stores, in one binary so SQLite is linked once.

mod append;
mod common;
mod concurrent;
mod corrupt;
mod failing;
mod oracle;
mod ranges;
mod roundtrip;
mod throughput;
