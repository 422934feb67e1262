#!/usr/bin/env bash
# load_vs_pgbench.sh: `runner load` against pgbench, same cluster, same transaction.
#
# Is the course's writer a fair stand-in for a load tool? Both run, one after the
# other, against the same target with the same client count and duration:
#
#   - the transaction is the same single statement (a rental and its payment, one
#     round trip, autocommit), prepared once per connection (pgbench -M prepared;
#     the runner prepares too, see crates/lab-workload/src/load/mod.rs);
#   - pgbench's op ids are negative, so they never collide with the runner's
#     (positive, run_id << 32 | seq), and rise per client as the runner's rise;
#   - both connect from the host's network namespace to the published port on
#     127.0.0.1 (pgbench runs in the lab's postgres image with `docker run
#     --network host`, since the host has no pgbench): the same path through
#     docker's port publishing for both, so neither gets a shortcut;
#   - pgbench gets as many threads (-j) as the runner's async runtime has (one per
#     CPU, capped at the client count);
#   - both keep a per-transaction record: the runner its ledger (two unbuffered
#     writes per transaction), pgbench its --log (needed for its p99).
#
# Printed as `key: value` lines: each tool's throughput and p99, the ratios
# runner/pgbench, and the runner's CPU time and max RSS (from /usr/bin/time -v, or
# sampled with ps when that is missing) and pgbench's CPU time (bash's `time`).
#
# usage: scripts/bench/load_vs_pgbench.sh [--target SERVICE] [--workers N] [--duration SECS] [--rounds N]
#   SERVICE  pgbouncer (default) or postgres-primary
#   The cluster is the one `runner` would address: COMPOSE_PROJECT_NAME and the *_PORT
#   variables from the environment, else compose/.env. RUNNER names the runner binary
#   (default: target/release/runner, built if missing). The rows written are left in
#   the database (rental/payment grow by the transactions counted).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
target=pgbouncer
workers=4
duration=10
rounds=1
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "load_vs_pgbench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

# A setting as runner reads it: the environment first, then compose/.env.
setting() {
  local key=$1
  if [ -n "${!key:-}" ]; then
    printf '%s\n' "${!key}"
  else
    grep -E "^$key=" "$root/compose/.env" | tail -n 1 | cut -d= -f2-
  fi
}

case "$target" in
  pgbouncer) port=$(setting PGBOUNCER_PORT) ;;
  postgres-primary) port=$(setting PRIMARY_PORT) ;;
  *) echo "load_vs_pgbench: --target must be pgbouncer or postgres-primary" >&2; exit 2 ;;
esac
password=$(setting POSTGRES_PASSWORD)
image=replication-lab/postgres:17
cpus=$(nproc)
threads=$(( workers < cpus ? workers : cpus ))

runner=${RUNNER:-$root/target/release/runner}
if [ ! -x "$runner" ]; then
  echo "load_vs_pgbench: building $runner" >&2
  (cd "$root" && cargo build --release -p runner >&2)
fi
docker image inspect "$image" >/dev/null 2>&1 || {
  echo "load_vs_pgbench: image $image is missing (run: runner up)" >&2
  exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/load-vs-pgbench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 0777 "$tmp"

# pgbench's op ids: negative (the runner's are positive), ascending per client like the
# runner's (a random key would cost the unique index on op_id more than a rising one),
# from a random base per invocation so that reruns do not collide:
#   op = base + client_id * 2^34 + n,  base = -2^62 + R * 2^40,  R < 2^21 (per run)
cat >"$tmp/insert.sql" <<'SQL'
\set n :n + 1
\set op :base + :client_id * 17179869184 + :n
\set inv random(1, 4500)
\set cust random(1, 600)
\set cents random(99, 999)
WITH r AS (INSERT INTO rental (op_id, inventory_id, customer_id) VALUES (:op, :inv, :cust) RETURNING rental_id, customer_id) INSERT INTO payment (rental_id, customer_id, amount) SELECT rental_id, customer_id, :cents::int4 * 0.01 FROM r;
SQL

value() { # value KEY FILE: the value of a `key: value` line
  sed -n "s/^$1: //p" "$2" | head -n 1
}

run_runner() { # writes $tmp/runner.out and $tmp/runner.time (rss_kb, cpu_s, cpu_pct)
  local args=(load --target "$target" --workers "$workers" --duration "${duration}s"
    --ledger "$tmp/runner.ledger" --quiet)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v -o "$tmp/time-v" "$runner" "${args[@]}" >"$tmp/runner.out"
    local user sys
    user=$(sed -n 's/^\s*User time (seconds): //p' "$tmp/time-v")
    sys=$(sed -n 's/^\s*System time (seconds): //p' "$tmp/time-v")
    {
      echo "rss_kb: $(sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$tmp/time-v")"
      echo "cpu_s: $(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')"
      echo "cpu_pct: $(sed -n 's/^\s*Percent of CPU this job got: //p' "$tmp/time-v" | tr -d %)"
      echo "how: /usr/bin/time -v"
    } >"$tmp/runner.time"
  else
    "$runner" "${args[@]}" >"$tmp/runner.out" &
    local pid=$! rss=0 cpu=0 r c start
    start=$(date +%s.%N)
    while kill -0 "$pid" 2>/dev/null; do
      r=$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ' || true)
      c=$(ps -o cputimes= -p "$pid" 2>/dev/null | tr -d ' ' || true)
      [ -n "$r" ] && [ "$r" -gt "$rss" ] && rss=$r
      [ -n "$c" ] && cpu=$c
      sleep 0.2
    done
    wait "$pid"
    {
      echo "rss_kb: $rss"
      echo "cpu_s: $cpu"
      echo "cpu_pct: $(awk -v c="$cpu" -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f", 100 * c / (e - s) }')"
      echo "how: ps samples every 0.2 s (no /usr/bin/time)"
    } >"$tmp/runner.time"
  fi
}

run_pgbench() { # writes $tmp/pgbench.out and $tmp/pgbench.* per-transaction logs
  rm -f "$tmp"/pgbench_log.*
  local base=$(( -(1 << 62) + ((RANDOM << 6 | RANDOM & 63) << 40) ))
  docker run --rm --network host -v "$tmp:/out" -e PGPASSWORD="$password" \
    --entrypoint bash "$image" -c "
      TIMEFORMAT='cpu: %U %S'
      time pgbench -h 127.0.0.1 -p $port -U postgres -n -M prepared \
        -c $workers -j $threads -T $duration -f /out/insert.sql -D base=$base -D n=0 \
        --log --log-prefix=/out/pgbench_log db
      rc=\$?
      chmod a+r /out/pgbench_log.* 2>/dev/null || true
      exit \$rc
    " >"$tmp/pgbench.out" 2>&1 || {
    echo "load_vs_pgbench: pgbench failed:" >&2
    cat "$tmp/pgbench.out" >&2
    exit 1
  }
}

# p99 of pgbench's per-transaction latencies (3rd column, µs), in ms.
pgbench_p99_ms() {
  cat "$tmp"/pgbench_log.* | awk '{ print $3 }' | sort -n |
    awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f", v[i] / 1000 }'
}

echo "load_vs_pgbench: target $target (127.0.0.1:$port), $workers clients, ${duration}s, $rounds round(s), pgbench -j $threads" >&2
for round in $(seq 1 "$rounds"); do
  # Alternate who goes first: the tables grow as the rounds go.
  if [ $((round % 2)) -eq 1 ]; then order="runner pgbench"; else order="pgbench runner"; fi
  for tool in $order; do
    echo "load_vs_pgbench: round $round: $tool" >&2
    "run_$tool"
  done

  r_tps=$(value rate "$tmp/runner.out")
  r_p99=$(value p99_ms "$tmp/runner.out")
  r_ack=$(value acknowledged "$tmp/runner.out")
  r_err=$(value errors "$tmp/runner.out")
  r_stm=$(value statements "$tmp/runner.out")
  p_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$tmp/pgbench.out" | head -n 1)
  p_n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$tmp/pgbench.out")
  p_fail=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$tmp/pgbench.out")
  p_avg=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$tmp/pgbench.out")
  p_p99=$(pgbench_p99_ms)
  p_cpu=$(sed -n 's/^cpu: \([0-9.]*\) \([0-9.]*\)/\1 \2/p' "$tmp/pgbench.out" | awk '{ printf "%.2f", $1 + $2 }')

  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
  cat <<EOF
round: $round
target: $target
workers: $workers
duration_s: $duration
runner_statements: $r_stm
runner_tps: $r_tps
runner_acknowledged: $r_ack
runner_errors: $r_err
runner_p99_ms: $r_p99
runner_cpu_s: $(value cpu_s "$tmp/runner.time")
runner_cpu_pct: $(value cpu_pct "$tmp/runner.time")
runner_max_rss_kb: $(value rss_kb "$tmp/runner.time")
runner_resources_from: $(value how "$tmp/runner.time")
pgbench_tps: $p_tps
pgbench_transactions: $p_n
pgbench_failed: ${p_fail:-0}
pgbench_latency_avg_ms: $p_avg
pgbench_p99_ms: $p_p99
pgbench_cpu_s: $p_cpu
throughput_ratio: $(ratio "$r_tps" "$p_tps")
p99_ratio: $(ratio "$r_p99" "$p_p99")
EOF
done
