#!/usr/bin/env bash
# Runs every test of Beslut on a fresh machine: installs and starts what the suites need
# (PostgreSQL when none answers), then formats, lints and tests the whole workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# PostgreSQL: use the one on 127.0.0.1:5432 if it answers, else install and start one.
ensure_postgres() {
  if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then return; fi
  log "starting PostgreSQL"
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local version; version=$(ls /etc/postgresql | sort -n | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return; sleep 1; done
  echo "PostgreSQL did not start" >&2; exit 1
}

# PostgreSQL's server binaries (initdb, pg_ctl) for the fault test that restarts a cluster of its
# own (tests/cli/nodes.rs), also when the shared server on 5432 runs elsewhere.
ensure_postgres_binaries() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && return
  log "installing postgresql (server binaries for the fault tests)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

# A real SMTP server for the email tests.
ensure_smtp() {
  /usr/bin/python3 -c "import aiosmtpd" 2>/dev/null && return
  log "installing python3-aiosmtpd"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-aiosmtpd >/dev/null
}

# Headless Chromium and its WebDriver for the browser test (tests/cli/browser.rs).
ensure_chromium() {
  [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] && return
  log "installing chromium and chromium-driver"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
}

# axe-core for the accessibility checks of the pages (tests/cli/pages.rs), pinned in
# tests/browser/package-lock.json.
ensure_axe() {
  [[ -f tests/browser/node_modules/axe-core/axe.min.js ]] && return
  log "installing axe-core from npm"
  if ! command -v npm >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  fi
  npm ci --prefix tests/browser --no-audit --no-fund --silent
}

ensure_postgres
ensure_postgres_binaries
ensure_smtp
ensure_chromium
ensure_axe
export BESLUT_TEST_POSTGRES_URL="${BESLUT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

log "beslut check workflows/"
cargo run --quiet -- check workflows/

log "beslut test workflows/ (scenarios, full state and transition coverage)"
cargo run --quiet -- test workflows/ --min-coverage 100 --format junit > "${CARGO_TARGET_DIR:-target}/scenarios.xml"

log "JSON Schema of the workflow format"
python3 -c "import jsonschema, yaml" 2>/dev/null || python3 -m pip install -q jsonschema pyyaml
python3 tests/schema_check.py . | tail -3

log "JSON API against its OpenAPI document (schemathesis)"
scripts/api-fuzz.sh 40 | tail -15

log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
