#!/usr/bin/env bash
# Builds in release mode, starts the server on a 2.6 M-record store and prints the
# benchmark table of docs/benchmarks.md. Takes a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin hapi-server --bin hapi-bench --bin hapi
exec target/release/hapi-bench "$@"
