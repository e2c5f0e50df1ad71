#!/usr/bin/env bash
# Property-based test of the JSON API: schemathesis generates requests from the OpenAPI
# document (valid and invalid ones) against a real `beslut serve` on a fresh SQLite file, and
# fails on any 5xx answer. Usage: scripts/api-fuzz.sh [MAX_EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-40}"

command -v schemathesis >/dev/null || python3 -m pip install -q 'schemathesis>=4,<5'
cargo build --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/beslut"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export BESLUT_DATA_DIR="$work/data" BESLUT_LISTEN="127.0.0.1:$port" BESLUT_WORKFLOWS="$PWD/workflows"
token=$("$bin" token create api-fuzz --scopes admin 2>/dev/null)
"$bin" serve >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done

# A case to find, so that reads and decisions meet real data as well as missing ids.
curl -fs -o /dev/null -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  "http://127.0.0.1:$port/api/v1/cases" -d @tests/support/api-fuzz-case.json

schemathesis run "http://127.0.0.1:$port/api/openapi.json" \
  -H "Authorization: Bearer $token" --checks not_a_server_error \
  --max-examples "$examples" --seed 20261123 --no-color
if grep -q "internal error" "$work/serve.log"; then
  echo "the server logged internal errors:" >&2; grep "internal error" "$work/serve.log" >&2; exit 1
fi
