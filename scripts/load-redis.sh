#!/usr/bin/env bash
# Full enrollments over HTTP with the Redis backend, read as a fraction of what Redis
# allows, on one machine (127.0.0.1 only). In one run:
#
#   1. a redis-server of its own (free port, temp dir, AOF everysec unless AOF=no),
#   2. `ezenroll serve --redis-url` on it, driven for ROUNDS × DURATION by FLOWS customers
#      each clicking through customer, plan, document, poll, paid proposal: by default
#      examples/enrollment_load.rs (every flow a task on one thread); LOADGEN=wrk runs
#      scripts/wrk/enrollment.lua instead, which needs a wrk thread per flow and so takes
#      several times the CPU away from the server (both report their own CPU);
#      Redis's INFO commandstats before and after say how many append scripts (and Redis
#      commands in all) one enrollment costs;
#   3. redis-benchmark driving the very same Lua append script (SCRIPT LOAD of the
#      engine's source, `cargo run --example redis_append_script`) with a real snapshot's
#      and a real event's sizes taken from the enrollments just made, for ROUNDS × BENCH_N
#      calls: the Redis-bound limit is appends/s ÷ appends per enrollment.
#
#   scripts/load-redis.sh
#   ROUNDS=5 DURATION=15s FLOWS=64 PAYMENT_LATENCY=0ms THREADS=2 scripts/load-redis.sh
#   REDIS_ARGS="--auto-aof-rewrite-percentage 0" scripts/load-redis.sh   # more redis-server options
#   LOADGEN=wrk WRK_SCRIPT=my-flow.lua scripts/load-redis.sh   # another flow (same RESULT line)
#
# Needs wrk and redis-server/redis-benchmark (apt-get installs them when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
FLOWS=${FLOWS:-64}
# The server's threads (`serve --threads`). 1: Redis takes the machine's other core, and
# one thread doing everything spends the least CPU per enrollment (no hand-offs).
THREADS=${THREADS:-1}
PAYMENT_LATENCY=${PAYMENT_LATENCY:-0ms}
BENCH_N=${BENCH_N:-200000}
BENCH_CLIENTS=${BENCH_CLIENTS:-50}
AOF=${AOF:-yes}
PORT=${PORT:-18089}
BASE="http://127.0.0.1:${PORT}"

need() { command -v "$1" >/dev/null || { echo "installing $2" >&2; apt-get install -y "$2" >/dev/null; }; }
LOADGEN=${LOADGEN:-rust}
[ "$LOADGEN" = wrk ] && need wrk wrk
need redis-server redis-server
need redis-benchmark redis-tools

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --quiet --bin ezenroll \
  --example redis_append_script --example enrollment_load
BIN=${EZENROLL_BIN:-${CARGO_TARGET_DIR:-target}/release/ezenroll}
EXAMPLES=${CARGO_TARGET_DIR:-target}/release/examples
for example in redis_append_script enrollment_load; do
  [ -x "$EXAMPLES/$example" ] || { echo "missing $EXAMPLES/$example (run without SKIP_BUILD=1)" >&2; exit 1; }
done
WORK=$(mktemp -d)
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$WORK" --save "" --appendonly "$AOF" \
  --appendfsync everysec --daemonize no --logfile "$WORK/redis.log" ${REDIS_ARGS:-} &
REDIS=$!
SERVER=
cleanup() {
  [ -n "$SERVER" ] && { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  kill "$REDIS" 2>/dev/null || true; wait "$REDIS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
R() { redis-cli -p "$RPORT" "$@"; }
for _ in $(seq 1 50); do [ "$(R ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done

export EZENROLL_JWT_SECRET="load-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
# Every request of the load carries one admin token (or none: one address), far over
# serve's default rate limit per caller. A limit the load never reaches keeps the limiter
# on every request, its cost in the figures, while refusing none. Through the
# environment, so an older binary (EZENROLL_BIN) without the flag runs too.
export EZENROLL_RATE_LIMIT=${EZENROLL_RATE_LIMIT:-1000000}
"$BIN" serve --listen "127.0.0.1:${PORT}" --redis-url "redis://127.0.0.1:${RPORT}/" \
  --threads "$THREADS" --document-delay 0s --payment-latency "$PAYMENT_LATENCY" --payment-queue 4096 \
  >"$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 50); do curl -fsS "${BASE}/livez" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "${BASE}/readyz" >/dev/null || { echo "server did not start:"; cat "$WORK/serve.log"; exit 1; }
EZENROLL_TOKEN=$("$BIN" token --role admin --ttl 1h)
export EZENROLL_TOKEN

# Calls of every command so far, as "name calls" lines (evalsha and eval together).
calls() { R info commandstats | tr -d '\r' | sed -n 's/^cmdstat_\([a-z|]*\):calls=\([0-9]*\),.*/\1 \2/p'; }
# CPU time (user + system, clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# ... and its children that ended (Redis's AOF rewrites: it waits for each).
child_ticks() { awk '{print $16 + $17}' "/proc/$1/stat"; }
results="$WORK/results"
for _ in $(seq 1 "$ROUNDS"); do
  before=$(calls)
  cpu_before="$(ticks "$SERVER") $(ticks "$REDIS") $(child_ticks "$REDIS")"
  if [ "$LOADGEN" = wrk ]; then
    line=$(/usr/bin/time -f "%U %S" -o "$WORK/loadgen_cpu" \
      wrk -t"$FLOWS" -c"$FLOWS" -d"$DURATION" -s "${WRK_SCRIPT:-scripts/wrk/enrollment.lua}" "$BASE" | grep RESULT)
  else
    line=$(/usr/bin/time -f "%U %S" -o "$WORK/loadgen_cpu" \
      "$EXAMPLES/enrollment_load" "127.0.0.1:${PORT}" "$FLOWS" "$DURATION" | grep RESULT)
  fi
  loadgen_cpu=$(awk '{print $1 + $2}' "$WORK/loadgen_cpu")
  after=$(calls)
  cpu_after="$(ticks "$SERVER") $(ticks "$REDIS") $(child_ticks "$REDIS")"
  # Consumers behind at the end of the round: a rate they cannot keep up with is not one.
  printf '%s\n' "$before" >"$WORK/calls_before"; printf '%s\n' "$after" >"$WORK/calls_after"
  echo "$line" >"$WORK/last_line"
  # Read a little after the round: the last events of the round are still being handled
  # at its end (and the MyPage projector lingers 20 ms before it reads again).
  sleep 0.2
  lag=$(curl -fsS "${BASE}/metrics" | awk '/^ezenroll_consumer_lag/ {s += $2} END {print s + 0}')
  # Appends are the script calls of the command path; the other scripts (timers,
  # reservations, views, alarms) are counted with every other command.
  python3 - "$before" "$after" "$line" "$lag" "$cpu_before" "$cpu_after" "$(getconf CLK_TCK)" "$loadgen_cpu" >>"$results" <<'PY'
import sys
def parse(text):
    return {l.split()[0]: int(l.split()[1]) for l in text.splitlines() if l.strip()}
b, a = parse(sys.argv[1]), parse(sys.argv[2])
delta = {k: a.get(k, 0) - b.get(k, 0) for k in a}
fields = dict(kv.split("=") for kv in sys.argv[3].split()[1:])
print(f"http enrollments_per_s={fields['enrollments_per_s']} errors={fields['errors']} "
      f"commands={sum(delta.values())} scripts={delta.get('evalsha', 0) + delta.get('eval', 0)} "
      f"lag={sys.argv[4]} "
      f"server_cpu_s={(int(sys.argv[6].split()[0]) - int(sys.argv[5].split()[0])) / int(sys.argv[7])} "
      f"redis_cpu_s={(int(sys.argv[6].split()[1]) - int(sys.argv[5].split()[1])) / int(sys.argv[7])} "
      f"redis_children_cpu_s={(int(sys.argv[6].split()[2]) - int(sys.argv[5].split()[2])) / int(sys.argv[7])} "
      f"loadgen_cpu_s={sys.argv[8]}")
PY
done

# Which commands one enrollment costs (the last round), most first.
python3 - "$WORK/calls_before" "$WORK/calls_after" "$(cat "$WORK/last_line")" "$DURATION" <<'PY'
import re, sys
parse = lambda f: {l.split()[0]: int(l.split()[1]) for l in open(f) if l.strip()}
b, a = parse(sys.argv[1]), parse(sys.argv[2])
fields = dict(kv.split("=") for kv in sys.argv[3].split()[1:])
number, unit = re.fullmatch(r"(\d+)([smh]?)", sys.argv[4]).groups()
made = max(float(fields["enrollments_per_s"]) * int(number) * {"": 1, "s": 1, "m": 60, "h": 3600}[unit], 1e-9)
delta = sorted(((a[k] - b.get(k, 0)) / made, k) for k in a)
print("commands per enrollment (last round): " + ", ".join(f"{k} {n:.2f}" for n, k in reversed(delta) if n >= 0.005))
PY

# Real sizes from what the run stored: one contracted enrollment's snapshot and an event.
key=$(R --scan --pattern 'ez:{p*}:enr:*' | head -1 || true)
hist=${key/:enr:/:hist:}
snapshot_len=$(R hstrlen "$key" s)
document_field=$(R hkeys "$key" | grep '^doc:' | head -1 || true)
document_len=$( [ -n "$document_field" ] && R hstrlen "$key" "$document_field" || echo 0)
event_len=$(R lindex "$hist" 1 | wc -c)
events_per_enrollment=$(R llen "$hist")
source=$("$EXAMPLES/redis_append_script")
sha=$(R script load "$source")
filler() { head -c "$1" /dev/zero | tr '\0' x; }
snapshot=$(filler "$snapshot_len")
event=$(filler "$event_len")
# BENCH_N=0 leaves redis-benchmark out (scripts/ab-redis.sh compares builds without it).
[ "$BENCH_N" -gt 0 ] || ROUNDS_BENCH=0
for _ in $(seq 1 "${ROUNDS_BENCH:-$ROUNDS}"); do
  # A new enrollment per call (expected version 0, a random key), no document, one event,
  # one timer: the plan save. Later transitions differ only in the version check's outcome
  # and, once, the document (written with the event that issues it).
  redis-benchmark -p "$RPORT" -c "$BENCH_CLIENTS" -n "$BENCH_N" -r 100000000 -q \
    evalsha "$sha" 6 "b:enr:__rand_int__" "b:hist:__rand_int__" "b:{p0}:log" "b:timers" "b:attempts" \
    "b:{p0}:lease" 0 1 "$snapshot" 1000000 "" "" 1 "" "$event" S "__rand_int__:exp" 1790000000000000 0 \
    | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | sed 's/ requests per second//' \
    | tail -1 | sed 's/^/bench appends_per_s=/' >>"$results"
done

python3 - "$results" "$snapshot_len" "$event_len" "$events_per_enrollment" "$FLOWS" "$PAYMENT_LATENCY" "$DURATION" "$THREADS" "$document_len" <<'PY'
import os, re, statistics, sys
http, bench = [], []
for line in open(sys.argv[1]):
    kind, *rest = line.split()
    fields = {k: float(v) for k, v in (kv.split("=") for kv in rest)}
    (http if kind == "http" else bench).append(fields)
snapshot, event, events, flows, latency, duration, threads, document = sys.argv[2:10]
number, unit = re.fullmatch(r"(\d+)([smh]?)", duration).groups()
seconds = int(number) * {"": 1, "s": 1, "m": 60, "h": 3600}[unit]
rate = statistics.median(r["enrollments_per_s"] for r in http)
made = lambda r: max(r["enrollments_per_s"] * seconds, 1e-9)
# Every script call (appends, timer claims, reservations, views, alarms) per enrollment:
# the limit below treats them all as costing what an append costs.
per = [r["scripts"] / made(r) for r in http]
cmds = [r["commands"] / made(r) for r in http]
scripts_per = statistics.median(per)
http_rounds = ", ".join("%.0f" % r["enrollments_per_s"] for r in http)
print(f"full enrollments over HTTP on Redis: median {rate:.0f}/s "
      f"(rounds: {http_rounds}; {flows} flows, PG {latency}, server threads {threads}; "
      f"errors {sum(r['errors'] for r in http):.0f})")
lags = ", ".join("%.0f" % r["lag"] for r in http)
server_us = statistics.median(r["server_cpu_s"] / made(r) * 1e6 for r in http)
redis_us = statistics.median(r["redis_cpu_s"] / made(r) * 1e6 for r in http)
loadgen_us = statistics.median(r["loadgen_cpu_s"] / made(r) * 1e6 for r in http)
rewrite_us = statistics.median(r["redis_children_cpu_s"] / made(r) * 1e6 for r in http)
print(f"CPU per enrollment: ezenroll {server_us:.0f} µs, redis-server {redis_us:.0f} µs "
      f"(the two together on 2 cores allow ≈ {2e6 / (server_us + redis_us):.0f}/s); "
      f"besides, Redis's AOF rewrites (child processes that ended in the round) {rewrite_us:.0f} µs, "
      f"the load generator {loadgen_us:.0f} µs")
# The four share the machine's cores: their sum per enrollment is what bounds the rate
# when the machine is saturated, and it moves with the host's speed far more than with
# the code's (compare builds in alternating runs).
total_us = server_us + redis_us + rewrite_us + loadgen_us
cores = os.cpu_count() or 1
print(f"all four together: {total_us:.0f} µs of CPU per enrollment; {cores} cores allow ≈ "
      f"{cores * 1e6 / total_us:.0f}/s, measured = {rate * total_us / (cores * 1e6):.0%} of that")
print(f"consumer lag 0.2 s after each round (events not yet handled): {lags}")
print(f"Redis work per enrollment: {scripts_per:.1f} script calls, {statistics.median(cmds):.1f} commands in all; "
      f"{events} events; snapshot {snapshot} B, event {event} B, document {document} B (written once)")
if bench:
    appends = statistics.median(r["appends_per_s"] for r in bench)
    limit = appends / scripts_per
    bench_rounds = ", ".join("%.0f" % r["appends_per_s"] for r in bench)
    print(f"redis-benchmark, the append script alone: median {appends:.0f} calls/s "
          f"(rounds: {bench_rounds})")
    print(f"Redis-bound limit ≈ {limit:.0f} enrollments/s (append calls/s ÷ script calls per enrollment); "
          f"measured = {rate / limit:.0%} of it")
PY
