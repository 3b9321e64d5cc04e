//! Integration tests: a real server on 127.0.0.1:0 over a real SQLite store.

mod auth;
mod demo;
mod ingest;
mod limits;
mod robustness;
mod spec_table;
mod streaming;
mod support;
