#!/usr/bin/env bash
# Rolling restart and crash test of three `ezenroll serve` copies behind haproxy, under
# load (127.0.0.1 only). Shows what clients see while copies go away and come back.
#
#   scripts/rolling-restart.sh                          # about 90 s with the defaults
#   CLIENTS=32 WARMUP=20 scripts/rolling-restart.sh
#   SERVE_ARGS='--drain-delay 2s --ownership-lease 5s' scripts/rolling-restart.sh
#   ALLOW_FAILURES=1 KEEP_LOGS=/tmp/rr-logs scripts/rolling-restart.sh
#
# It starts its own redis-server, three copies sharing it (one random --jwt-secret, made
# here for this run and written to no file), and haproxy in front
# (roundrobin, GET /readyz checks every 500 ms, fall 1 rise 2, redispatch, retry-on
# conn-failure, retries 3). scripts/journeys.py then runs CLIENTS concurrent enrollment
# journeys through haproxy (customer, plan, document, long poll, paid proposal,
# withdrawal, long poll until Withdrawn; every write with its own Idempotency-Key,
# retried with the same key on a connection error, 502, 503 or 504), while:
#
#   phase 1, rolling restart: after WARMUP seconds, each copy in turn gets SIGTERM, is
#     waited for, is started again on its port, is waited for until /readyz answers 200,
#     then RESTART_PAUSE seconds pass before the next;
#   phase 2, crash: after BETWEEN seconds, copy CRASH_COPY gets kill -9, stays down for
#     CRASH_DOWN seconds, is started again, and the phase ends AFTER_CRASH seconds after
#     it is ready. From the kill on a probe GETs PROBE_IDS enrollments made before the
#     load, every PROBE_INTERVAL_MS, through haproxy, until the phase ends.
#
# Then journeys.py prints the summary: requests sent and failed (5xx or connection error,
# as the client saw them before its own retry) per phase, retries, journeys completed,
# unexpected answers per step with their problem type, the baseline (median per second
# before phase 1) and the lowest 1 s and 3 s windows of each phase as a % of it, and the
# probe's recovery time. This script then digests the copies' and haproxy's logs.
# Exit status: 0, or 1 when any request failed (ALLOW_FAILURES=1 turns that into 0), or
# 2 when the run could not be set up.
#
# Environment (defaults in brackets):
#   EZENROLL_BIN [target/release/ezenroll, built with cargo when missing]
#   SERVE_ARGS [] extra `serve` arguments, split on spaces, for all three copies
#   DOCUMENT_DELAY [200ms]  CLIENTS [16]  WAIT_SECONDS [10] waitSeconds of the long polls
#   WARMUP [10]  RESTART_PAUSE [5]  BETWEEN [5]  CRASH_COPY [2] (1-3)  CRASH_DOWN [5]
#   AFTER_CRASH [10]  COOLDOWN [3]  PHASE1 [1]  PHASE2 [1] (0 skips a phase)
#   PROBE_IDS [32]  PROBE_INTERVAL_MS [100]  READY_TIMEOUT [30]  EXIT_TIMEOUT [60]
#   HAPROXY_RETRY_ON [conn-failure]  ALLOW_FAILURES [0]  TIMELINE [1] per-second table
#   BALANCE [roundrobin] haproxy's balance algorithm; 'uri depth 2' sends every request
#     about one enrollment (/enrollments/{id}/...) to the same copy while it is up
#   KEEP_LOGS [] a directory to copy the logs, markers and haproxy.cfg into before the
#     temp dir is removed
# Needs redis-server, curl and haproxy; installs haproxy (and redis-server) with apt-get
# when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DOCUMENT_DELAY=${DOCUMENT_DELAY:-200ms}
CLIENTS=${CLIENTS:-16}
WAIT_SECONDS=${WAIT_SECONDS:-10}
WARMUP=${WARMUP:-10}
RESTART_PAUSE=${RESTART_PAUSE:-5}
BETWEEN=${BETWEEN:-5}
CRASH_COPY=${CRASH_COPY:-2}
CRASH_DOWN=${CRASH_DOWN:-5}
AFTER_CRASH=${AFTER_CRASH:-10}
COOLDOWN=${COOLDOWN:-3}
PHASE1=${PHASE1:-1}
PHASE2=${PHASE2:-1}
READY_TIMEOUT=${READY_TIMEOUT:-30}
EXIT_TIMEOUT=${EXIT_TIMEOUT:-60}
HAPROXY_RETRY_ON=${HAPROXY_RETRY_ON:-conn-failure}
BALANCE=${BALANCE:-roundrobin}
TIMELINE=${TIMELINE:-1}
read -r -a EXTRA_ARGS <<<"${SERVE_ARGS:-}"
export CLIENTS WAIT_SECONDS

log() { printf '[rolling-restart %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$*"; exit 2; }

case $CRASH_COPY in 1 | 2 | 3) ;; *) die "CRASH_COPY must be 1, 2 or 3" ;; esac

# ---- tools

apt_install() {
  if [[ -z ${APT_UPDATED:-} ]]; then
    log "apt-get update"
    apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v haproxy >/dev/null || apt_install haproxy
command -v redis-server >/dev/null || apt_install redis-server
command -v curl >/dev/null || apt_install curl

if [[ -n ${EZENROLL_BIN:-} ]]; then
  BIN=$EZENROLL_BIN
else
  BIN=$ROOT/target/release/ezenroll
  if [[ ! -x $BIN ]]; then
    log "building $BIN (several minutes on a small machine)"
    cargo build --release --bin ezenroll
  fi
fi
[[ -x $BIN ]] || die "no ezenroll binary at $BIN"

# ---- the temp dir, and cleaning up whatever this script started

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rolling-restart.XXXXXX")
MARKERS=$TMP/markers
: >"$MARKERS"
declare -a PIDS=("" "" "" "")
REDIS_PID="" HAPROXY_PID="" LOAD_PID=""

stop_pid() { # pid, seconds to wait after SIGTERM before SIGKILL
  local pid=$1 t=$2 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < t * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$LOAD_PID" 5
  stop_pid "$HAPROXY_PID" 5
  local i
  for i in 1 2 3; do stop_pid "${PIDS[$i]}" 15; done
  stop_pid "$REDIS_PID" 5
  if [[ -n ${KEEP_LOGS:-} ]]; then
    mkdir -p "$KEEP_LOGS"
    cp "$TMP"/*.log "$TMP"/markers "$TMP"/haproxy.cfg "$KEEP_LOGS"/ 2>/dev/null || true
    [[ -f $TMP/summary.json ]] && cp "$TMP/summary.json" "$KEEP_LOGS"/
    log "logs kept in $KEEP_LOGS"
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mark() { printf '%s %s\n' "$(date +%s.%N)" "$*" >>"$MARKERS"; }

# Free ports, picked all at once so they differ (the kernel may still hand one out
# before it is bound here: rare, and the run then fails at start, not quietly).
read -r REDIS_PORT P1 P2 P3 LB_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)
PORTS=("" "$P1" "$P2" "$P3")
SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '\n/+=')
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/

# ---- redis

redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$TMP" \
  --logfile "$TMP/redis.log" --daemonize no &
REDIS_PID=$!
for ((i = 0; i < 100; i++)); do
  [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null || true) == PONG ]] && break
  kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server did not start: $(tail -5 "$TMP/redis.log")"
  sleep 0.1
done
[[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null || true) == PONG ]] || die "redis-server does not answer"

# ---- the three copies

START_COUNT=(0 0 0 0)
start_copy() { # copy number 1-3
  local n=$1
  START_COUNT[n]=$((START_COUNT[n] + 1))
  printf '===== start %d of copy %d at %s =====\n' "${START_COUNT[n]}" "$n" "$(date +%T.%N)" \
    >>"$TMP/serve-$n.log"
  "$BIN" serve --listen "127.0.0.1:${PORTS[n]}" --redis-url "$REDIS_URL" \
    --jwt-secret "$SECRET" --document-delay "$DOCUMENT_DELAY" ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"} \
    >>"$TMP/serve-$n.log" 2>&1 &
  PIDS[n]=$!
}

wait_ready() { # copy number; prints the seconds it took
  local n=$1 start end
  start=$(date +%s.%N)
  end=$(awk -v s="$start" -v t="$READY_TIMEOUT" 'BEGIN { printf "%.3f", s + t }')
  while :; do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:${PORTS[n]}/readyz" || true) == 200 ]]; then
      awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }'
      return 0
    fi
    kill -0 "${PIDS[n]}" 2>/dev/null || { log "copy $n exited while starting:"; tail -20 "$TMP/serve-$n.log" >&2; return 1; }
    if awk -v e="$end" -v now="$(date +%s.%N)" 'BEGIN { exit !(now > e) }'; then
      log "copy $n is not ready after ${READY_TIMEOUT}s"
      return 1
    fi
    sleep 0.1
  done
}

for n in 1 2 3; do start_copy "$n"; done
for n in 1 2 3; do wait_ready "$n" >/dev/null || die "copy $n did not get ready"; done
log "redis on $REDIS_PORT; copies on ${PORTS[1]} ${PORTS[2]} ${PORTS[3]}; binary $BIN ${SERVE_ARGS:+(SERVE_ARGS: $SERVE_ARGS)}"

# ---- haproxy

cat >"$TMP/haproxy.cfg" <<EOF
global
    log stdout format iso local0
    maxconn 4000

defaults
    mode http
    log global
    log-format "srv=%s status=%ST term=%tsc retries=%rc Ta=%Ta %HM %HU"
    option log-health-checks
    timeout connect 2s
    timeout client 60s
    # above the long polls' waitSeconds (at most 30)
    timeout server 40s
    timeout http-request 10s
    timeout http-keep-alive 60s
    timeout queue 10s
    retries 3
    retry-on $HAPROXY_RETRY_ON
    # redispatch to another copy on every retry, not only the last
    option redispatch 1

frontend fe
    bind 127.0.0.1:$LB_PORT
    default_backend copies

backend copies
    balance $BALANCE
    hash-type consistent
    option httpchk GET /readyz
    http-check expect status 200
    http-response set-header X-Served-By %s
    default-server inter 500ms fall 1 rise 2
    server copy1 127.0.0.1:${PORTS[1]} check
    server copy2 127.0.0.1:${PORTS[2]} check
    server copy3 127.0.0.1:${PORTS[3]} check
EOF
haproxy -c -q -f "$TMP/haproxy.cfg" || die "haproxy refuses its configuration"
haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
HAPROXY_PID=$!
for ((i = 0; i < 100; i++)); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$LB_PORT/readyz" || true) == 200 ]] && break
  kill -0 "$HAPROXY_PID" 2>/dev/null || die "haproxy did not start: $(tail -5 "$TMP/haproxy.log")"
  sleep 0.1
done
sleep 1.5 # until the checks have seen every copy up (rise 2 at 500 ms)
log "haproxy on $LB_PORT (balance $BALANCE, retry-on $HAPROXY_RETRY_ON)"

# ---- the load

TIMELINE_ARG=()
[[ $TIMELINE == 1 ]] || TIMELINE_ARG=(--no-timeline)
EZENROLL_JWT_SECRET=$SECRET python3 "$ROOT/scripts/journeys.py" --base "http://127.0.0.1:$LB_PORT" \
  --markers "$MARKERS" --clients "$CLIENTS" --wait-seconds "$WAIT_SECONDS" \
  --json "$TMP/summary.json" ${TIMELINE_ARG[@]+"${TIMELINE_ARG[@]}"} &
LOAD_PID=$!
for ((i = 0; i < 600; i++)); do
  grep -q ' load-started' "$MARKERS" && break
  kill -0 "$LOAD_PID" 2>/dev/null || { wait "$LOAD_PID" || true; die "journeys.py stopped before the load started"; }
  sleep 0.1
done
grep -q ' load-started' "$MARKERS" || die "journeys.py did not start the load within 60 s"
log "load running: $CLIENTS clients; warm-up ${WARMUP}s"
sleep "$WARMUP"

secs_since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }'; }

stop_copy_gracefully() { # copy number
  local n=$1 pid=${PIDS[$1]} t0 rc=0 i how=exited
  t0=$(date +%s.%N)
  mark sigterm copy="$n"
  kill -TERM "$pid"
  for ((i = 0; i < EXIT_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "copy $n still runs ${EXIT_TIMEOUT}s after SIGTERM: kill -9"
    kill -KILL "$pid" 2>/dev/null || true
    how=killed-after-timeout
  fi
  wait "$pid" || rc=$?
  PIDS[n]=""
  local took
  took=$(secs_since "$t0")
  mark "$how" copy="$n" rc="$rc" after="${took}s"
  log "copy $n: SIGTERM -> $how after ${took}s (exit status $rc)"
}

restart_copy() { # copy number
  local n=$1 took
  start_copy "$n"
  mark started copy="$n"
  took=$(wait_ready "$n") || die "copy $n did not get ready again"
  mark ready copy="$n" after="${took}s"
  log "copy $n: started again, /readyz 200 after ${took}s"
}

if [[ $PHASE1 == 1 ]]; then
  log "phase 1: rolling restart"
  mark phase1-start
  for n in 1 2 3; do
    stop_copy_gracefully "$n"
    restart_copy "$n"
    sleep "$RESTART_PAUSE"
  done
  mark phase1-end
  log "phase 1 done; ${BETWEEN}s before phase 2"
  [[ $PHASE2 == 1 ]] && sleep "$BETWEEN"
fi

if [[ $PHASE2 == 1 ]]; then
  log "phase 2: kill -9 copy $CRASH_COPY, down for ${CRASH_DOWN}s"
  mark phase2-start
  mark kill copy="$CRASH_COPY"
  kill -KILL "${PIDS[$CRASH_COPY]}"
  wait "${PIDS[$CRASH_COPY]}" 2>/dev/null || true
  PIDS[CRASH_COPY]=""
  sleep "$CRASH_DOWN"
  restart_copy "$CRASH_COPY"
  sleep "$AFTER_CRASH"
  mark phase2-end
  log "phase 2 done"
fi

sleep "$COOLDOWN"
mark stop
LOAD_RC=0
wait "$LOAD_PID" || LOAD_RC=$?
LOAD_PID=""

# ---- what the logs say

echo
echo "=== server logs (WARN and ERROR lines per copy, timestamps dropped, most frequent first) ==="
for n in 1 2 3; do
  f=$TMP/serve-$n.log
  echo "copy $n (${PORTS[n]}): $(grep -c . "$f") lines, $(grep -c ' WARN ' "$f" || true) WARN, $(grep -c ' ERROR ' "$f" || true) ERROR"
  # text format: "<time>  LEVEL target: message fields"; drop the time and ids
  { grep -E ' (WARN|ERROR) ' "$f" || true; } |
    sed -E 's/\x1b\[[0-9;]*m//g; s/^[^ ]+ +//; s/[0-9a-f]{8}-[0-9a-f-]{27,}/<id>/g; s/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z?/<t>/g' |
    cut -c1-220 | sort | uniq -c | sort -rn | head -12 | sed 's/^/   /'
done
echo
echo "=== haproxy: server state changes ==="
# its own log lines (ISO time first); the same, unstamped, also come on stderr as [WARNING]
{ grep -E '^[0-9]{4}-.*(is (UP|DOWN)|check for server .* failed)' "$TMP/haproxy.log" || true; } |
  sed -E 's/^[0-9-]+T([0-9:]+\.?[0-9]{0,3})[^ ]* [^ ]* /\1 /; s/, check duration.*//' |
  sed 's/^/   /' | cut -c1-170 | head -40
echo
echo "=== haproxy: answers of 5xx, or its own retries, by copy, status and termination state ==="
awk '/ srv=/ {
       for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
       if (v["status"] >= 500 || v["retries"] != "0") c[v["srv"] " status=" v["status"] " term=" v["term"] " retries=" v["retries"]]++
     }
     END { for (k in c) printf "   %6d  %s\n", c[k], k }' "$TMP/haproxy.log" | sort -rn | head -30
echo "   (term: the first letter says who ended the connection: C client, S server, P proxy, s server-side timeout; --: normally)"
exit "$LOAD_RC"
