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
# Wait until ready, then start a case, so that reads and decisions meet real data as well as
# missing ids (Python rather than curl: it is already needed for schemathesis).
python3 - "$port" "$token" <<'PY'
import sys, time, urllib.request
port, token = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
for _ in range(100):
    try:
        urllib.request.urlopen(f"{base}/readyz", timeout=2)
        break
    except OSError:
        time.sleep(0.2)
body = open("tests/support/api-fuzz-case.json", "rb").read()
headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
urllib.request.urlopen(urllib.request.Request(f"{base}/api/v1/cases", data=body, headers=headers), timeout=10)
PY

schemathesis run "http://127.0.0.1:$port/api/openapi.json" \
  -H "Authorization: Bearer $token" --checks not_a_server_error \
  --max-examples "$examples" --seed 20261123 --no-color
if grep -q "internal error" "$work/serve.log"; then
  echo "the server logged internal errors:" >&2; grep "internal error" "$work/serve.log" >&2; exit 1
fi
