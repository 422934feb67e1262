#!/usr/bin/env bash
# Benchmark: the offline book build against a plain mdBook build of the same sources.
#
#   scripts/bench/book_offline.sh [MDBOOK] [RUNS]
#
# `runner book` (in-process mdbook-driver + the lab preprocessor splicing the records)
# against the stock `mdbook build` of a copy of book/ without the [preprocessor.lab]
# table (so the lab blocks render as plain code). MDBOOK is an mdbook 0.5 binary
# (default: `mdbook` on PATH; `cargo install mdbook --version 0.5.4 --locked`).
# Prints the median wall time of each over RUNS runs (default 15) and their ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
mdbook=${1:-mdbook}
runs=${2:-15}
command -v "$mdbook" >/dev/null || { echo "no mdbook binary: $mdbook" >&2; exit 2; }
cargo build --release -q -p runner
runner=target/release/runner
$runner check >/dev/null || { echo "records are not fresh: run the chapters first" >&2; exit 2; }

plain=$(mktemp -d)
trap 'rm -rf "$plain"' EXIT
cp -r book "$plain/book"
cp -r theme "$plain/theme"
rm -rf "$plain/book/book"
# Drop the [preprocessor.lab] table: everything up to the next table header.
awk '/^\[preprocessor\.lab\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' book/book.toml >"$plain/book/book.toml"

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
time_runs() {
  for _ in $(seq 1 "$runs"); do
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s%N)
    echo $(( (end - start) / 1000 ))
  done | median
}
# One warm-up each (page cache).
$runner book >/dev/null 2>&1
"$mdbook" build "$plain/book" >/dev/null 2>&1

lab_us=$(time_runs $runner book)
plain_us=$(time_runs "$mdbook" build "$plain/book")
awk -v l="$lab_us" -v p="$plain_us" -v n="$runs" 'BEGIN {
  printf "runs: %d\nrunner_book_ms: %.1f\nplain_mdbook_ms: %.1f\nratio: %.3f\n", n, l / 1000, p / 1000, l / p
}'
