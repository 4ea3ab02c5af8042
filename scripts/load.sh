#!/usr/bin/env bash
# Load test against a local `ezenroll serve` (127.0.0.1 only): POST /quotes next to
# GET /livez on the same server, so the figure is a ratio, not an absolute that depends
# on how busy this shared machine is. Runs each `ROUNDS` times and prints medians.
#
#   scripts/load.sh                 # 3 rounds of 10 s at 64 connections
#   ROUNDS=5 DURATION=15s CONNECTIONS=64 FLOWS=64 scripts/load.sh
#
# Then full enrollments over HTTP (customer, plan, document, poll, paid proposal) with
# FLOWS concurrent customers: by default examples/enrollment_load.rs, every flow a task on
# one thread; LOADGEN=wrk runs scripts/wrk/enrollment.lua, a wrk thread per flow, which
# takes several times the CPU away from the server on a 2-core machine. The server's
# simulated PG answers in PAYMENT_LATENCY (20 ms), so at FLOWS=64 the flow mostly waits
# on payments; PAYMENT_LATENCY=0ms measures the server itself.
#
# Then fault isolation, on a second server whose payment gateway is tiny and slow
# (--payment-queue OVERLOAD_QUEUE=4, --payment-concurrency OVERLOAD_CONCURRENCY=2,
# --payment-latency OVERLOAD_LATENCY=1s): POST /quotes and POST /enrollments (plan saves)
# alone, then again while OVERLOAD_FLOWS=16 flows drive proposals and payment retries
# (OVERLOAD_DELAY_MS=5 apart) that the gateway nearly all answers 503 busy. The ratios
# should stay near 100%: payment overload must not slow what does not pay. The overload
# driver shares this machine's cores with the server, so they can only be near, not at,
# 100%. ISOLATION=0 skips this part.
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
ISOLATION=${ISOLATION:-1}
OVERLOAD_QUEUE=${OVERLOAD_QUEUE:-4}
OVERLOAD_CONCURRENCY=${OVERLOAD_CONCURRENCY:-2}
OVERLOAD_LATENCY=${OVERLOAD_LATENCY:-1s}
OVERLOAD_FLOWS=${OVERLOAD_FLOWS:-16}
export OVERLOAD_DELAY_MS=${OVERLOAD_DELAY_MS:-5}
ISO_PORT=$((PORT + 1))
ISO_BASE="http://127.0.0.1:${ISO_PORT}"

if ! command -v wrk >/dev/null; then
  echo "installing wrk" >&2
  apt-get install -y wrk >/dev/null
fi

LOADGEN=${LOADGEN:-rust}
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --quiet --bin ezenroll --example enrollment_load
BIN=${EZENROLL_BIN:-${CARGO_TARGET_DIR:-target}/release/ezenroll}
FLOW_LOAD=${CARGO_TARGET_DIR:-target}/release/examples/enrollment_load
if [ "$LOADGEN" != wrk ] && [ ! -x "$FLOW_LOAD" ]; then
  echo "missing $FLOW_LOAD (run without SKIP_BUILD=1)" >&2
  exit 1
fi
LOG=$(mktemp)
ISO_LOG=$(mktemp)
# A throwaway secret for this run only (the server refuses to invent none silently).
export EZENROLL_JWT_SECRET="load-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
# Every request of the load carries one admin token (or none: one address), far over
# serve's default rate limit per caller. A limit the load never reaches keeps the limiter
# on every request, its cost in the figures, while refusing none. Through the
# environment, so an older binary (EZENROLL_BIN) without the flag runs too.
export EZENROLL_RATE_LIMIT=${EZENROLL_RATE_LIMIT:-1000000}
"$BIN" serve --listen "127.0.0.1:${PORT}" --document-delay 0s \
  --payment-latency "$PAYMENT_LATENCY" --payment-queue 4096 >"$LOG" 2>&1 &
SERVER=$!
ISO_SERVER=""
OVERLOAD=""
stop_all() {
  for pid in $OVERLOAD $SERVER $ISO_SERVER; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -f "$LOG" "$ISO_LOG"
}
trap stop_all EXIT
wait_live() { # base URL, log file
  for _ in $(seq 1 50); do
    curl -fsS "$1/livez" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  curl -fsS "$1/livez" >/dev/null || { echo "server did not start:"; cat "$2"; exit 1; }
}
wait_live "$BASE" "$LOG"
# An admin token for the enrollment flow.
EZENROLL_TOKEN=$("$BIN" token --role admin --ttl 1h)
export EZENROLL_TOKEN

run() { # name, then wrk arguments
  local name=$1; shift
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | grep RESULT | sed "s/^RESULT/${name}/"
}

results=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
  run livez -s scripts/wrk/report.lua "${BASE}/livez" | tee -a "$results"
  run quotes -s scripts/wrk/quote-report.lua "${BASE}/quotes" | tee -a "$results"
  if [ "$LOADGEN" = wrk ]; then
    wrk -t"$FLOWS" -c"$FLOWS" -d"$DURATION" -s scripts/wrk/enrollment.lua "$BASE"
  else
    "$FLOW_LOAD" "127.0.0.1:${PORT}" "$FLOWS" "$DURATION"
  fi | grep RESULT | sed "s/^RESULT/enrollments/" | tee -a "$results"
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

[ "$ISOLATION" = 1 ] || exit 0

# ---- fault isolation: quotes and plan saves alone, then while payment is overloaded.
kill "$SERVER" 2>/dev/null || true
wait "$SERVER" 2>/dev/null || true
SERVER=""
"$BIN" serve --listen "127.0.0.1:${ISO_PORT}" --document-delay 0s \
  --payment-queue "$OVERLOAD_QUEUE" --payment-concurrency "$OVERLOAD_CONCURRENCY" \
  --payment-latency "$OVERLOAD_LATENCY" >"$ISO_LOG" 2>&1 &
ISO_SERVER=$!
wait_live "$ISO_BASE" "$ISO_LOG"

seconds() { # a wrk duration (10s, 2m, 1h or a bare number of seconds) in seconds
  case $1 in
    *h) echo $(( ${1%h} * 3600 )) ;;
    *m) echo $(( ${1%m} * 60 )) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}
# The overload runs through both measurements under it, plus a second of warm-up each side.
OVERLOAD_SECONDS=$(( 2 * $(seconds "$DURATION") + 3 ))

iso=$(mktemp)
overload_out=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
  run quotes_alone -s scripts/wrk/quote-report.lua "${ISO_BASE}/quotes" | tee -a "$iso"
  run plans_alone -s scripts/wrk/plan.lua "$ISO_BASE" | tee -a "$iso"
  wrk -t"$OVERLOAD_FLOWS" -c"$OVERLOAD_FLOWS" -d"${OVERLOAD_SECONDS}s" -s scripts/wrk/overload.lua \
    "$ISO_BASE" >"$overload_out" &
  OVERLOAD=$!
  sleep 1
  run quotes_overloaded -s scripts/wrk/quote-report.lua "${ISO_BASE}/quotes" | tee -a "$iso"
  run plans_overloaded -s scripts/wrk/plan.lua "$ISO_BASE" | tee -a "$iso"
  wait "$OVERLOAD"
  OVERLOAD=""
  grep RESULT "$overload_out" | sed "s/^RESULT/overload/" | tee -a "$iso"
done

python3 - "$iso" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rest = line.split(" ", 1)
    fields = dict(kv.split("=") for kv in rest.split())
    rows.setdefault(name, []).append({k: float(v) for k, v in fields.items()})
med = lambda name, key: statistics.median(r[key] for r in rows[name])
print(f"payment overload: {med('overload', 'payments_per_s'):.0f} proposals and payment retries/s, "
      f"median {med('overload', 'busy_share'):.1%} answered 503, "
      f"{sum(r['contracted'] for r in rows['overload']):.0f} contracted in all")
for what, alone, loaded in (("POST /quotes", "quotes_alone", "quotes_overloaded"),
                            ("POST /enrollments (plan saves)", "plans_alone", "plans_overloaded")):
    ratios = [l["rps"] / a["rps"] for a, l in zip(rows[alone], rows[loaded])]
    print(f"{what}: alone median {med(alone, 'rps'):.0f} req/s (p99 {med(alone, 'p99_us')/1000:.2f} ms), "
          f"payment overloaded {med(loaded, 'rps'):.0f} req/s (p99 {med(loaded, 'p99_us')/1000:.2f} ms, "
          f"errors {sum(r['errors'] for r in rows[loaded]):.0f})")
    print(f"{what} while payment is overloaded / alone: median {statistics.median(ratios):.0%} "
          f"(rounds: {', '.join(f'{r:.0%}' for r in ratios)})")
PY
rm -f "$iso" "$overload_out"
