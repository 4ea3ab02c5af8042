#!/usr/bin/env bash
# Two builds (or two settings) of the server compared on Redis the only way this shared,
# drifting host allows: alternating runs of scripts/load-redis.sh (A B B A A B ...), one
# fresh redis-server each, then per-pair ratios and their medians. The host's speed moves
# by tens of percent within an hour, so figures from separate runs compare nothing; the
# CPU each process spends per enrollment moves less than the rate and is what a change
# to the code changes.
#
#   scripts/ab-redis.sh A_BIN B_BIN [PAIRS]          # default 4 pairs
#   A_ENV="EZENROLL_MYPAGE_LINGER=0ms" B_ENV="EZENROLL_MYPAGE_LINGER=20ms" \
#     scripts/ab-redis.sh target/release/ezenroll target/release/ezenroll
#   A_REDIS_ARGS="" B_REDIS_ARGS="--auto-aof-rewrite-percentage 400" scripts/ab-redis.sh BIN BIN
#
# ROUNDS (default 1) and DURATION (default 10s) are passed on; the load generator and the
# append-script example must be built (`cargo build --release --examples`), as with
# SKIP_BUILD=1. redis-benchmark is left out (BENCH_N=0): it measures the host, not a build.
#
# Read the ratios against an A/A run (the same binary on both sides), which shows how far
# ratios wander with nothing changed; docs/benchmarks.md has one.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 2 ]; then
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
A_BIN=$1
B_BIN=$2
PAIRS=${3:-4}
for bin in "$A_BIN" "$B_BIN"; do
  [ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 2; }
done
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

run() { # side: A or B
  local bin envs redis_args
  if [ "$1" = A ]; then bin=$A_BIN envs=${A_ENV:-} redis_args=${A_REDIS_ARGS:-}
  else bin=$B_BIN envs=${B_ENV:-} redis_args=${B_REDIS_ARGS:-}; fi
  local out
  # shellcheck disable=SC2086 # A_ENV/B_ENV are lists of NAME=value words
  out=$(env $envs EZENROLL_BIN="$bin" REDIS_ARGS="$redis_args" SKIP_BUILD=1 BENCH_N=0 \
    ROUNDS="${ROUNDS:-1}" DURATION="${DURATION:-10s}" scripts/load-redis.sh 2>&1) || {
    echo "$out" >&2; echo "load-redis.sh failed for $1" >&2; exit 1; }
  # One line per run: side, rate, server, redis, rewrites, load generator, commands.
  python3 - "$1" "$out" >>"$LOG" <<'PY'
import re, sys
side, out = sys.argv[1], sys.argv[2]
def num(pattern):
    m = re.search(pattern, out)
    if not m:
        sys.exit(f"no match for {pattern!r} in:\n{out}")
    return float(m.group(1))
print(side,
      num(r"median (\d+)/s"),
      num(r"ezenroll (\d+) µs"),
      num(r"redis-server (\d+) µs"),
      num(r"rewrites \(child processes that ended in the round\) (\d+) µs"),
      num(r"the load generator (\d+) µs"),
      num(r"([\d.]+) commands in all"))
PY
  tail -1 "$LOG" | awk '{printf "%s  %6.0f/s  server %4.0f  redis %4.0f  rewrites %4.0f  loadgen %3.0f µs  %5.1f commands\n", $1, $2, $3, $4, $5, $6, $7}'
}

for pair in $(seq 1 "$PAIRS"); do
  if [ $((pair % 2)) -eq 1 ]; then run A; run B; else run B; run A; fi
done

python3 - "$LOG" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
a = [list(map(float, r[1:])) for r in rows if r[0] == "A"]
b = [list(map(float, r[1:])) for r in rows if r[0] == "B"]
names = ["enrollments/s", "server µs", "Redis µs", "AOF rewrites µs", "load generator µs",
         "Redis commands"]
print(f"\n{len(a)} pairs, alternating; B against A (median of the per-pair ratios):")
for i, name in enumerate(names):
    ratios = [y[i] / x[i] for x, y in zip(a, b) if x[i] > 0]
    if not ratios:
        continue
    lower_is_better = i > 0
    wins = sum((r < 1) if lower_is_better else (r > 1) for r in ratios)
    print(f"  {name:18s} A {statistics.median(x[i] for x in a):8.1f}  B {statistics.median(y[i] for y in b):8.1f}"
          f"  B/A {statistics.median(ratios):.3f}  (B better in {wins} of {len(ratios)})")
total = lambda r: r[1] + r[2] + r[3] + r[4]
ratios = [total(y) / total(x) for x, y in zip(a, b)]
wins = sum(r < 1 for r in ratios)
print(f"  {'all four, CPU µs':18s} A {statistics.median(map(total, a)):8.1f}  B {statistics.median(map(total, b)):8.1f}"
      f"  B/A {statistics.median(ratios):.3f}  (B better in {wins} of {len(ratios)})")
PY
