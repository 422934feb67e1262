#!/usr/bin/env bash
# Benchmark: the engine's overhead per live step, beyond the command's own time.
#
#   scripts/bench/step_overhead.sh [STEPS]
#
# Runs a generated chapter of STEPS trivial shell steps (`true`) and STEPS trivial SQL
# steps (`SELECT 1` through psql in postgres-primary) with `runner exec` against a
# running cluster (`runner up` first), and compares each step's recorded duration with
# the same command timed bare: `bash -c true` for shell steps, and
# `docker exec <primary> psql -c 'SELECT 1'` for SQL steps (the engine goes through the
# Docker API instead of the CLI). Prints the medians and the overhead per step.
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-30}
cargo build --release -q -p runner
runner=$PWD/target/release/runner

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/book/src"
cp -r compose "$work/compose"
{
  echo "# Overhead"
  for i in $(seq 1 "$steps"); do printf '\n```sh lab\ntrue\n```\n'; done
  for i in $(seq 1 "$steps"); do printf '\n```sql lab on=postgres-primary\nSELECT 1;\n```\n'; done
} >"$work/book/src/chapter-99-overhead.md"
LAB_ROOT=$work $runner exec 99 >/dev/null 2>&1

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
rec=$work/book/recorded/chapter-99-overhead.json
sh_ms=$(grep -A12 '"ran_on": "sh"' "$rec" | grep '"duration_ms"' | grep -o '[0-9]*' | median)
sql_ms=$(grep -A12 '"ran_on": "postgres-primary"' "$rec" | grep '"duration_ms"' | grep -o '[0-9]*' | median)

container=$(docker ps -q --filter label=com.docker.compose.service=postgres-primary \
  --filter "label=com.docker.compose.project=${COMPOSE_PROJECT_NAME:-replication-lab}" | head -n1)
bare() {
  for _ in $(seq 1 "$steps"); do
    local s e
    s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
    echo $(( (e - s) / 1000000 ))
  done | median
}
bare_sh=$(bare bash -c true)
bare_sql=$(bare docker exec "$container" psql -X -U postgres -d db -c 'SELECT 1')
awk -v n="$steps" -v s="$sh_ms" -v bs="$bare_sh" -v q="$sql_ms" -v bq="$bare_sql" 'BEGIN {
  printf "steps: %d of each kind (medians)\n", n
  printf "sh_step_ms: %.1f  bare bash -c true: %.1f  overhead_ms: %.1f\n", s, bs, s - bs
  printf "sql_step_ms: %.1f  bare docker exec psql: %.1f  overhead_ms: %.1f\n", q, bq, q - bq
}'
