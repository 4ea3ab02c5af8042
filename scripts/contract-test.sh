#!/usr/bin/env bash
# The contract test: the HTTP API against its own OpenAPI document.
#
# Starts `ezenroll serve` on the memory store (a fresh secret, a free port), checks that
# `GET /openapi.json` is a valid OpenAPI 3.1 document and the same as `ezenroll openapi`,
# then runs Schemathesis with every check on, once with an admin's token and once with a
# customer's, through all its phases (examples, coverage, fuzzing, stateful links).
# Settings are in tests/contract/schemathesis.toml. Exits non-zero on any failure.
#
# Schemathesis and openapi-spec-validator are installed from PyPI into a virtualenv
# (EZENROLL_CONTRACT_VENV, default target/contract-venv) on the first run.
#
#   scripts/contract-test.sh                 # the debug build, 50 cases per operation
#   CONTRACT_EXAMPLES=500 scripts/contract-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${EZENROLL_CONTRACT_VENV:-target/contract-venv}
examples=${CONTRACT_EXAMPLES:-50}
report=${CONTRACT_REPORT_DIR:-target/contract-report}
bin=target/debug/ezenroll

if [ ! -x "$venv/bin/schemathesis" ] || [ ! -x "$venv/bin/openapi-spec-validator" ]; then
    echo "== installing schemathesis into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        'schemathesis==4.32.5' 'openapi-spec-validator==0.9.0'
fi
"$venv/bin/schemathesis" --version

echo "== building ezenroll"
cargo build --locked --quiet
mkdir -p "$report"

work=$(mktemp -d)
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
EZENROLL_JWT_SECRET=$(head -c 32 /dev/urandom | base64)
export EZENROLL_JWT_SECRET
"$bin" serve --listen "127.0.0.1:$port" --log-format json > "$report/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
    if curl -fs "$base/readyz" > /dev/null 2>&1; then break; fi
    sleep 0.1
done
curl -fs "$base/readyz" > /dev/null

echo "== the document"
curl -fs "$base/openapi.json" > "$work/served.json"
"$bin" openapi > "$work/printed.json"
# The command adds a final newline.
cmp <(cat "$work/served.json"; echo) "$work/printed.json"
"$venv/bin/openapi-spec-validator" "$work/served.json"

admin=$("$bin" token --role admin --ttl 2h)
# A customer token names a registered customer, so its runs reach its own data.
customer_no=$(curl -fs -XPOST "$base/customers" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' \
    -d '{"name":"계약자","birthDate":"1986-05-01","gender":"female","mobilePhone":"010-2222-3333"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["customerNo"])')
customer=$("$bin" token --role customer --sub "$customer_no" --ttl 2h)

status=0
for who in admin customer; do
    token=$admin
    [ "$who" = customer ] && token=$customer
    echo "== schemathesis as $who"
    "$venv/bin/schemathesis" --config-file tests/contract/schemathesis.toml run "$base/openapi.json" \
        --checks all --max-examples "$examples" --no-color --seed 1 \
        --header "Authorization: Bearer $token" \
        --report junit --report-junit-path "$report/$who.xml" || status=1
done
exit "$status"
