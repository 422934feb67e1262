#!/usr/bin/env bash
# k6_vs_load.sh: k6 through the application tier against `runner load`, same cluster.
#
# What does the HTTP tier cost? Both write the same transaction (a rental and its
# payment, one statement, prepared per connection) through pgbouncer, one after the
# other, with the same concurrency, duration and bookkeeping:
#
#   - concurrency: k6's virtual users (closed model: each sends its next request when
#     the last one is answered) = `runner load`'s workers (each sends its next
#     transaction when the last one committed);
#   - bookkeeping: both keep a per-op record — k6 its `--out json` (two samples of its
#     own per op, plus its ~13 built-in ones), the runner its ledger (two unbuffered
#     writes per op);
#   - the app (`runner serve`, pool of 16) runs only during k6's turn, and its CPU is
#     k6's turn's cost too: k6 + app is what the HTTP path spends per write, against
#     the runner's one process.
#
# Printed as `key: value` lines per round: acknowledged writes per second, p50/p99 as
# each client measured them (k6: http_req_duration; the runner: its commit latency),
# the app's own commit p50/p99 (the database part of k6's latency: the difference is
# HTTP's), the CPU seconds each side spent, and CPU per 1 000 writes.
#
# usage: scripts/bench/k6_vs_load.sh [--clients N] [--duration SECS] [--rounds N]
#   The cluster is the one `runner` addresses (COMPOSE_PROJECT_NAME, *_PORT, APP_PORT
#   from the environment, else compose/.env); it must be up (`runner up`). RUNNER
#   names the runner binary (default: target/release/runner, built if missing); K6
#   the k6 binary (default: target/tools/bin/k6, as `./course test` installs it).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
clients=4
duration=20
rounds=1
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) clients=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "k6_vs_load: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

setting() { # the environment first, then compose/.env
  local key=$1
  if [ -n "${!key:-}" ]; then
    printf '%s\n' "${!key}"
  else
    grep -E "^$key=" "$root/compose/.env" | tail -n 1 | cut -d= -f2-
  fi
}
app_port=$(setting APP_PORT)
runner=${RUNNER:-$root/target/release/runner}
k6=${K6:-$root/target/tools/bin/k6}
if [ ! -x "$runner" ]; then
  echo "k6_vs_load: building $runner" >&2
  (cd "$root" && cargo build --release -p runner >&2)
fi
[ -x "$k6" ] || { echo "k6_vs_load: no k6 at $k6 (./course test installs it)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/k6-vs-load.XXXXXX")
app_pid=
cleanup() {
  [ -n "$app_pid" ] && kill -INT "$app_pid" 2>/dev/null && wait "$app_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

value() { sed -n "s/^$1: //p" "$2" | head -n 1; }
# CPU seconds (user + system) a live process has used, from /proc.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }

run_load() {
  TIMEFORMAT='cpu: %U %S'
  { time "$runner" load --target pgbouncer --workers "$clients" --duration "${duration}s" \
      --ledger "$tmp/load.ledger" --quiet >"$tmp/load.out"; } 2>"$tmp/load.time"
  load_cpu=$(awk '/^cpu:/ { printf "%.2f", $2 + $3 }' "$tmp/load.time")
}

run_k6() {
  (cd "$root/compose" && exec "$runner" serve --quiet --listen "127.0.0.1:$app_port") >"$tmp/app.out" &
  app_pid=$!
  TIMEFORMAT='cpu: %U %S'
  { time (cd "$root/compose" && APP_URL="http://127.0.0.1:$app_port" VUS=$clients DURATION=${duration}s \
      "$k6" run --quiet --no-thresholds --out "json=$tmp/k6.json" \
      --summary-export "$tmp/k6-summary.json" k6/write.js >"$tmp/k6.out" 2>&1); } 2>"$tmp/k6.time"
  app_cpu=$(cpu_of "$app_pid")
  kill -INT "$app_pid"
  wait "$app_pid"
  app_pid=
  k6_cpu=$(awk '/^cpu:/ { printf "%.2f", $2 + $3 }' "$tmp/k6.time")
}

echo "k6_vs_load: $clients clients, ${duration}s, $rounds round(s), through pgbouncer" >&2
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then order="load k6"; else order="k6 load"; fi
  for tool in $order; do
    echo "k6_vs_load: round $round: $tool" >&2
    "run_$tool"
  done
  k6_figures=$(python3 - "$tmp/k6-summary.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
d = m["http_req_duration"]
acked, failed = m["checks"]["passes"], m["checks"]["fails"]
# Acknowledged writes per second: iterations per second, times the share that got a 201.
print(f"k6_writes_per_s: {m['iterations']['rate'] * acked / max(1, acked + failed):.1f}")
print(f"k6_p50_ms: {d['med']:.2f}")
print(f"k6_p99_ms: {d['p(99)']:.2f}")
print(f"k6_failed: {failed}")
print(f"k6_acknowledged: {acked}")
PY
)
  k6_ack=$(sed -n 's/^k6_acknowledged: //p' <<<"$k6_figures")
  load_ack=$(value acknowledged "$tmp/load.out")
  per_k() { awk -v c="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.1f", 1e6 * c / n; else print "n/a" }'; }
  cat <<EOF
round: $round
clients: $clients
duration_s: $duration
load_writes_per_s: $(value rate "$tmp/load.out")
load_p50_ms: $(value p50_ms "$tmp/load.out")
load_p99_ms: $(value p99_ms "$tmp/load.out")
load_acknowledged: $load_ack
load_cpu_s: $load_cpu
load_cpu_ms_per_1000_writes: $(per_k "$load_cpu" "$load_ack")
$k6_figures
app_p50_ms: $(value p50_ms "$tmp/app.out")
app_p99_ms: $(value p99_ms "$tmp/app.out")
k6_cpu_s: $k6_cpu
app_cpu_s: $app_cpu
k6_and_app_cpu_ms_per_1000_writes: $(per_k "$(awk -v a="$k6_cpu" -v b="$app_cpu" 'BEGIN { print a + b }')" "$k6_ack")
k6_json_mb: $(du -m "$tmp/k6.json" | cut -f1)
load_ledger_mb: $(du -m "$tmp/load.ledger" | cut -f1)
EOF
done
