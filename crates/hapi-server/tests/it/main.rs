//! Integration tests: a real server on 127.0.0.1:0 over a real SQLite store.

mod auth;
mod cli;
mod crash;
mod demo;
mod flood;
mod ingest;
mod limits;
mod oidc;
mod redirects;
mod robustness;
mod spec_table;
mod streaming;
mod support;
