#!/usr/bin/env bash
# What a copy of `ezenroll serve` costs when several share one Redis, on this machine
# (127.0.0.1 only). On a 2-core host more copies cannot add CPU: the point is the CPU each
# enrollment takes with 1, 2 and 3 copies, and what forwarding a request to the copy that
# owns its enrollment costs against handling it where it lands.
#
#   1. A redis-server of its own (free port, temp dir, --save '' --appendonly no). Then,
#      SERIES times in alternation (1 2 3 1 2 3 ...): N copies (`serve --threads THREADS`,
#      a short --document-delay and --payment-latency), ready when every /readyz is 200
#      and ezenroll_partitions_owned sums to 16; CLIENTS concurrent clients run full
#      journeys (customer every 10 plans; plan, document, long poll until issued,
#      proposal), each request to a copy picked at random, so about (N-1)/N of the
#      requests about an enrollment are forwarded; after WARMUP, a window of DURATION
#      measures enrollments/s, requests/s, failures (any non-2xx), the forwarded count from
#      /metrics, and the CPU (utime+stime from /proc) of the copies, of Redis and of the
#      driver per enrollment. The copies stop with SIGTERM and Redis is flushed after each.
#   2. With 2 copies: FORWARD_ENROLLMENTS enrollments, each one's owner found from the
#      forwarding counters, then FORWARD_ROUNDS alternating rounds of FORWARD_REQUESTS
#      sequential GET /enrollments/{id} through the owner (local) and through the other
#      copy (forwarded), on keep-alive connections; the same for PUT /enrollments/{id}/plan.
#
#   scripts/scale.sh                                  # about 5 minutes
#   SERIES=5 DURATION=30s CLIENTS=64 THREADS=2 scripts/scale.sh
#   COPIES="1 2" FORWARDING=0 scripts/scale.sh       # part 1 only, with 1 and 2 copies
#   SERIES=0 scripts/scale.sh                         # part 2 only
#
# Other settings: IDLE (3s of the copies' CPU at rest, measured first), WARMUP (5s),
# DOCUMENT_DELAY (50ms), PAYMENT_LATENCY (5ms), EZENROLL_BIN (target/release/ezenroll,
# built when missing), KEEP=1 keeps the temp dir with the copies' logs. The driver is scripts/scale.py (python3, standard library only).
# Exits 1 when any request failed in a measured window.
#
# Needs redis-server and redis-cli (apt-get installs them when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

SERIES=${SERIES:-3}
COPIES=${COPIES:-"1 2 3"}
CLIENTS=${CLIENTS:-128}
IDLE=${IDLE:-3s}
WARMUP=${WARMUP:-5s}
DURATION=${DURATION:-20s}
# One thread per copy: three copies of one thread and Redis already ask for more than
# the machine's two cores (serve's default is a thread per core, in every copy).
THREADS=${THREADS:-1}
DOCUMENT_DELAY=${DOCUMENT_DELAY:-50ms}
PAYMENT_LATENCY=${PAYMENT_LATENCY:-5ms}
FORWARDING=${FORWARDING:-1}
FORWARD_ENROLLMENTS=${FORWARD_ENROLLMENTS:-32}
FORWARD_ROUNDS=${FORWARD_ROUNDS:-10}
FORWARD_REQUESTS=${FORWARD_REQUESTS:-500}
KEEP=${KEEP:-0}
PARTITIONS=16

need() { command -v "$1" >/dev/null || { echo "installing $2" >&2; apt-get install -y "$2" >/dev/null; }; }
need redis-server redis-server
need redis-cli redis-tools

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# 20s, 2m or a bare number of seconds, as seconds.
seconds() { case $1 in *m) echo $((${1%m} * 60)) ;; *s) echo "${1%s}" ;; *) echo "$1" ;; esac; }

BIN=${EZENROLL_BIN:-${CARGO_TARGET_DIR:-target}/release/ezenroll}
if [ ! -x "$BIN" ]; then
  echo "building $BIN" >&2
  cargo build --release --bin ezenroll
fi
DRIVER=scripts/scale.py

WORK=$(mktemp -d)
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$WORK" --save "" --appendonly no \
  --daemonize no --logfile "$WORK/redis.log" &
REDIS=$!
PIDS=()
BASES=()
stop_copies() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    # serve answers what is in flight and stops; a copy still up after 40 s is reported.
    for _ in $(seq 1 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "copy $pid did not stop within 40 s of SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
  BASES=()
}
cleanup() {
  stop_copies
  kill "$REDIS" 2>/dev/null || true
  wait "$REDIS" 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
R() { redis-cli -p "$RPORT" "$@"; }
for _ in $(seq 1 50); do [ "$(R ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done

export EZENROLL_JWT_SECRET="scale-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
# Every request of the load carries one admin token (or none: one address), far over
# serve's default rate limit per caller. A limit the load never reaches keeps the limiter
# on every request, its cost in the figures, while refusing none. Through the
# environment, so an older binary (EZENROLL_BIN) without the flag runs too.
export EZENROLL_RATE_LIMIT=${EZENROLL_RATE_LIMIT:-1000000}
EZENROLL_TOKEN=$("$BIN" token --role admin --ttl 2h)
export EZENROLL_TOKEN

RUN=0
start_copies() { # N
  local i port
  RUN=$((RUN + 1))
  for i in $(seq 1 "$1"); do
    port=$(free_port)
    "$BIN" serve --listen "127.0.0.1:$port" --redis-url "redis://127.0.0.1:${RPORT}/" \
      --partitions "$PARTITIONS" --threads "$THREADS" --document-delay "$DOCUMENT_DELAY" \
      --payment-latency "$PAYMENT_LATENCY" --payment-queue 4096 \
      >"$WORK/run$RUN-copy$i.log" 2>&1 &
    PIDS+=("$!")
    BASES+=("http://127.0.0.1:$port")
  done
  # Ready: every copy's /readyz is 200, each sees N members and the shares add up to 16.
  local started=$SECONDS owned members ready
  while :; do
    owned=0 members=0 ready=0
    for base in "${BASES[@]}"; do
      [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")" = 200 ] && ready=$((ready + 1))
      read -r o m < <(curl -s "$base/metrics" | awk '$1 == "ezenroll_partitions_owned" {o = $2}
        $1 == "ezenroll_cluster_members" {m = $2} END {print o + 0, m + 0}')
      owned=$((owned + o))
      [ "$m" = "$1" ] && members=$((members + 1))
    done
    [ "$ready" = "$1" ] && [ "$members" = "$1" ] && [ "$owned" = "$PARTITIONS" ] && break
    if [ $((SECONDS - started)) -gt 60 ]; then
      echo "the $1 copies were not ready within 60 s (ready $ready, partitions owned $owned):" >&2
      tail -n 20 "$WORK"/run$RUN-copy*.log >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "  $1 copies ready in $((SECONDS - started)) s (pids ${PIDS[*]})" >&2
}

# After a run: what the copies logged besides 2xx answers (one line per run, the first
# such lines once), then a clean Redis.
after_run() { # label
  local logs n
  stop_copies
  logs=("$WORK"/run$RUN-copy*.log)
  # (/readyz answers 503 until a copy holds its share: start_copies asks it.)
  grep -h -v 'path="/readyz"' "${logs[@]}" | grep 'status=[45][0-9][0-9]\| WARN \| ERROR ' \
    >"$WORK/noted" || true
  n=$(wc -l <"$WORK/noted")
  if [ "$n" -gt 0 ]; then
    {
      printf '%s: %d lines in %d copies'"'"' logs:' "$1" "$n" "${#logs[@]}"
      # A forwarded request is logged by both copies, and again when it is retried.
      grep -o 'method=[A-Z]* path="[^"]*" status=[0-9]*\| WARN [a-z:_]*\| ERROR [a-z:_]*' "$WORK/noted" \
        | sed 's/path="\/enrollments\/[0-9a-f-]*/path="\/enrollments\/{id}/' | sort | uniq -c \
        | sort -rn | head -6 | awk '{$1 = $1; printf " %s ×%s;", substr($0, index($0, " ") + 1), $1}' || true
      echo
    } >>"$WORK/log-notes"
    [ -s "$WORK/log-first" ] || { echo "first of them ($1):"; head -4 "$WORK/noted" | cut -c 1-300; } \
      >"$WORK/log-first"
  fi
  [ "$KEEP" = 1 ] || rm -f "${logs[@]}"
  R flushall >/dev/null
}

describe() { python3 "$DRIVER" describe "$1"; }

echo "scale.sh $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')," \
  "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "SERIES=$SERIES COPIES=\"$COPIES\" CLIENTS=$CLIENTS IDLE=$IDLE WARMUP=$WARMUP DURATION=$DURATION" \
  "THREADS=$THREADS DOCUMENT_DELAY=$DOCUMENT_DELAY PAYMENT_LATENCY=$PAYMENT_LATENCY" \
  "FORWARD_ENROLLMENTS=$FORWARD_ENROLLMENTS FORWARD_ROUNDS=$FORWARD_ROUNDS FORWARD_REQUESTS=$FORWARD_REQUESTS"
echo "binary $BIN ($(stat -c %y "$BIN" | cut -d. -f1)); redis-server $(redis-server --version | grep -o 'v=[0-9.]*')"

RESULTS="$WORK/results"
: >"$RESULTS"
for series in $(seq 1 "$SERIES"); do
  for n in $COPIES; do
    start_copies "$n"
    line=$(python3 "$DRIVER" journeys --bases "$(IFS=,; echo "${BASES[*]}")" \
      --pids "$(IFS=,; echo "${PIDS[*]}")" --redis-pid "$REDIS" --clients "$CLIENTS" \
      --idle "$(seconds "$IDLE")" --warmup "$(seconds "$WARMUP")" --duration "$(seconds "$DURATION")" --series "$series")
    echo "$line" >>"$RESULTS"
    describe "$line"
    after_run "series $series N=$n"
  done
done

if [ "$FORWARDING" = 1 ]; then
  start_copies 2
  python3 "$DRIVER" forwarding --bases "$(IFS=,; echo "${BASES[*]}")" \
    --pids "$(IFS=,; echo "${PIDS[*]}")" --enrollments "$FORWARD_ENROLLMENTS" \
    --rounds "$FORWARD_ROUNDS" --requests "$FORWARD_REQUESTS" >>"$RESULTS"
  after_run "forwarding"
fi

status=0
python3 "$DRIVER" report "$RESULTS" || status=$?
if [ -s "$WORK/log-notes" ]; then
  echo
  echo "== What the copies logged besides 2xx answers =="
  cat "$WORK/log-notes" "$WORK/log-first"
fi
exit "$status"
