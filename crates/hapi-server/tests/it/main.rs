//! Integration tests: a real server on 127.0.0.1:0 over a real SQLite store.

mod auth;
mod cdf;
mod cli;
mod command;
mod connections;
mod crash;
mod demo;
mod files;
mod flood;
mod ingest;
mod limits;
mod oidc;
mod ops;
mod portal;
mod prefix;
mod redirects;
mod reload;
mod robustness;
mod sessions;
mod slow_clients;
mod sources;
mod spec_table;
mod streaming;
mod support;
mod upstream;
mod view;
