#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: formatting and lints, the Rust
# unit and integration tests (those in tests/it/oidc.rs against a real OpenID provider,
# npm's oidc-provider), interoperability with the real Python client (hapiclient from
# PyPI, installed into the ignored .venv), then the browser login and the portal in headless
# Chromium (Debian's chromium, driven by npm's playwright-core). PostgreSQL and nginx
# (Debian) for the PostgreSQL store and the replicas behind nginx.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== end-to-end tools: oidc-provider, playwright-core (npm), chromium and postgresql (Debian)"
# npm ci only when package-lock.json changed since the last install (tests/oidc/node_modules is ignored).
if ! cmp -s tests/oidc/package-lock.json tests/oidc/node_modules/.installed-lock.json 2>/dev/null; then
  npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
  cp tests/oidc/package-lock.json tests/oidc/node_modules/.installed-lock.json
fi
# PostgreSQL 15 for the PostgreSQL store and replica tests (hapi-pgtest starts throwaway
# clusters), nginx in front of the replicas (docs/deploy/nginx.conf); neither as a service.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ ! -x /usr/sbin/nginx ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql nginx-light >/dev/null
fi
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

echo "== Python packages (.venv): hapiclient and the client tools' numpy, pandas, requests; cdflib for the CDF reference files"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

echo "== cargo test"
# The end-to-end tests skip without their npm packages under plain `cargo test`; here they must run.
HAPI_REQUIRE_E2E=1 cargo test --workspace --locked

echo "== hapiclient interoperability"
cargo build --locked --bin hapi-server --bin hapi
server_bin="$(realpath -m "${CARGO_TARGET_DIR:-target}")/debug/hapi-server"
HAPI_SERVER_BIN="$server_bin" .venv/bin/python -m pytest -q -p no:cacheprovider tests/python

echo "== browser: the login through the OpenID provider, the portal (headless chromium)"
HAPI_SERVER_BIN="$server_bin" node --test tests/browser/
