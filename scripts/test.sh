#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: formatting and lints, the Rust
# unit and integration tests, then interoperability with the real Python client
# (hapiclient from PyPI, installed into the ignored .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

echo "== hapiclient interoperability"
cargo build --locked --bin hapi-server
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
HAPI_SERVER_BIN="$PWD/target/debug/hapi-server" .venv/bin/python -m pytest -q -p no:cacheprovider tests/python
