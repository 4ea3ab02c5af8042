#!/usr/bin/env bash
# Load test against a local `ezenroll serve` (127.0.0.1 only): POST /quotes next to
# GET /livez on the same server, so the figure is a ratio, not an absolute that depends
# on how busy this shared machine is. Runs each `ROUNDS` times and prints medians.
#
#   scripts/load.sh                 # 3 rounds of 10 s at 64 connections
#   ROUNDS=5 DURATION=15s CONNECTIONS=64 FLOWS=64 scripts/load.sh
#
# Then full enrollments over HTTP (customer, plan, document, poll, paid proposal) with
# FLOWS concurrent customers, each a wrk thread with one connection. The server's
# simulated PG answers in PAYMENT_LATENCY (20 ms), so at FLOWS=64 the flow mostly waits
# on payments; PAYMENT_LATENCY=0ms measures the server itself.
#
# Needs wrk (apt-get install wrk); installs it when missing and apt-get is there.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
FLOWS=${FLOWS:-64}
PAYMENT_LATENCY=${PAYMENT_LATENCY:-20ms}   # the simulated PG's answer time
PORT=${PORT:-18088}
BASE="http://127.0.0.1:${PORT}"

if ! command -v wrk >/dev/null; then
  echo "installing wrk" >&2
  apt-get install -y wrk >/dev/null
fi

[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --quiet
BIN=${EZENROLL_BIN:-target/release/ezenroll}
LOG=$(mktemp)
# A throwaway secret for this run only (the server refuses to invent none silently).
export EZENROLL_JWT_SECRET="load-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
"$BIN" serve --listen "127.0.0.1:${PORT}" --document-delay 0s \
  --payment-latency "$PAYMENT_LATENCY" --payment-queue 4096 >"$LOG" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 50); do
  curl -fsS "${BASE}/livez" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "${BASE}/livez" >/dev/null || { echo "server did not start:"; cat "$LOG"; exit 1; }
# An admin token for the enrollment flow, when this build has authentication.
if "$BIN" token --help >/dev/null 2>&1; then
  EZENROLL_TOKEN=$("$BIN" token --role admin --ttl 1h)
  export EZENROLL_TOKEN
fi

run() { # name, then wrk arguments
  local name=$1; shift
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | grep RESULT | sed "s/^RESULT/${name}/"
}

results=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
  run livez -s scripts/wrk/report.lua "${BASE}/livez" | tee -a "$results"
  run quotes -s scripts/wrk/quote-report.lua "${BASE}/quotes" | tee -a "$results"
  wrk -t"$FLOWS" -c"$FLOWS" -d"$DURATION" -s scripts/wrk/enrollment.lua "$BASE" \
    | grep RESULT | sed "s/^RESULT/enrollments/" | tee -a "$results"
done

python3 - "$results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rest = line.split(" ", 1)
    fields = dict(kv.split("=") for kv in rest.split())
    rows.setdefault(name, []).append({k: float(v) for k, v in fields.items()})
med = lambda name, key: statistics.median(r[key] for r in rows[name])
for name in ("livez", "quotes", "enrollments"):
    print(f"{name:7s} median {med(name,'rps'):>9.0f} req/s   p50 {med(name,'p50_us')/1000:.2f} ms   "
          f"p99 {med(name,'p99_us')/1000:.2f} ms   errors {sum(r['errors'] for r in rows[name]):.0f}")
ratios = [q["rps"] / l["rps"] for l, q in zip(rows["livez"], rows["quotes"])]
print(f"POST /quotes / GET /livez throughput: median {statistics.median(ratios):.0%} "
      f"(rounds: {', '.join(f'{r:.0%}' for r in ratios)})")
print(f"full enrollments over HTTP: median {med('enrollments', 'enrollments_per_s'):.0f}/s")
PY
rm -f "$results"
