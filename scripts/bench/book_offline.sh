#!/usr/bin/env bash
# Benchmark: the offline book build, `runner book`, against a stock mdBook doing the
# same work.
#
#   scripts/bench/book_offline.sh [MDBOOK] [RUNS]
#
# Like with like: `runner book` (mdbook-driver in-process, the lab preprocessor called
# as a library) against the stock `mdbook build book` running the same preprocessor as
# the `mdbook-lab` binary this repository builds, offline — same sources, same records,
# same preprocessor output, same theme, and mdBook's search index built by both (stock
# mdBook builds it by default; runner's mdbook-driver has its `search` feature on). Before
# timing, both outputs are compared file by file (the search index as data): the script
# stops if they differ.
# For scale it also times the stock build of a copy without the lab preprocessor (plain
# code blocks, no records): what splicing the records costs.
#
# MDBOOK is an mdbook 0.5 binary (default: target/tools/bin/mdbook, else `mdbook` on
# PATH; `cargo install mdbook --version 0.5.4 --locked --root target/tools`). Prints the
# median wall time of each over RUNS runs (default 15) and the ratio runner/stock.
set -euo pipefail
cd "$(dirname "$0")/../.."
default_mdbook=mdbook
[ -x target/tools/bin/mdbook ] && default_mdbook=target/tools/bin/mdbook
mdbook=${1:-$default_mdbook}
runs=${2:-15}
command -v "$mdbook" >/dev/null || { echo "no mdbook binary: $mdbook" >&2; exit 2; }
"$mdbook" --version | grep -q '^mdbook v0\.5\.' || { echo "$mdbook is not mdbook 0.5" >&2; exit 2; }
cargo build --release -q -p runner -p mdbook-lab
runner=target/release/runner
$runner check >/dev/null || { echo "records are not fresh: run the chapters first" >&2; exit 2; }
# The stock build finds the preprocessor by book.toml's `command = "mdbook-lab"`; the
# offline mode comes from book.toml (and LAB_MODE must not override it).
export PATH="$PWD/target/release:$PATH"
unset LAB_MODE

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
plain="$work/plain"
mkdir -p "$plain"
cp -r book "$plain/book"
cp -r theme "$plain/theme"
rm -rf "$plain/book/book"
# Drop the [preprocessor.lab] table: everything up to the next table header.
awk '/^\[preprocessor\.lab\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' book/book.toml >"$plain/book/book.toml"

# One warm-up each (page cache), keeping what each wrote: the same book, search and all.
$runner book >/dev/null 2>&1
cp -r book/book "$work/runner-out"
"$mdbook" build book >/dev/null 2>&1
cp -r book/book "$work/stock-out"
"$mdbook" build "$plain/book" >/dev/null 2>&1
# The search index is the same data, but serialised with its keys in another order
# (stock mdBook's serde_json keeps struct order, the workspace's sorts them), so its
# content-hashed name differs: compare it as JSON, and the pages with its name masked.
for out in runner-out stock-out; do
  index=$(ls "$work/$out"/searchindex-*.js 2>/dev/null) || { echo "$out: no search index" >&2; exit 2; }
  mv "$index" "$work/$out.searchindex"
  grep -rlZ 'searchindex-[0-9a-f]*\.js' "$work/$out" | xargs -0 -r sed -i 's/searchindex-[0-9a-f]*\.js/searchindex.js/g'
done
if ! diff -rq "$work/runner-out" "$work/stock-out" >"$work/diff"; then
  echo "runner book and stock mdbook + mdbook-lab wrote different books:" >&2
  cat "$work/diff" >&2
  exit 2
fi
python3 - "$work/runner-out.searchindex" "$work/stock-out.searchindex" <<'PY' || exit 2
import json, re, sys
def index(path):
    text = open(path, encoding="utf-8").read()
    literal = re.search(r"JSON\.parse\('(.*)'\)\);?\s*$", text, re.S).group(1)
    return json.loads(literal.replace("\\'", "'").replace("\\\\", "\\"))
if index(sys.argv[1]) != index(sys.argv[2]):
    sys.exit("runner book and stock mdbook + mdbook-lab built different search indexes")
PY
echo "outputs: the same book ($(find "$work/runner-out" -type f | wc -l) files; the same search index in both)"

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
elapsed_us() {
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 2; }
  end=$(date +%s%N)
  echo $(( (end - start) / 1000 ))
}
# Interleaved, so that a change in the machine's load falls on all three alike.
for _ in $(seq 1 "$runs"); do
  elapsed_us $runner book >>"$work/runner.us"
  elapsed_us "$mdbook" build book >>"$work/stock.us"
  elapsed_us "$mdbook" build "$plain/book" >>"$work/plain.us"
done
runner_us=$(median <"$work/runner.us")
stock_us=$(median <"$work/stock.us")
plain_us=$(median <"$work/plain.us")
awk -v r="$runner_us" -v s="$stock_us" -v p="$plain_us" -v n="$runs" 'BEGIN {
  printf "runs: %d\nrunner_book_ms: %.1f\nstock_mdbook_lab_ms: %.1f\nratio: %.3f\nstock_mdbook_plain_ms: %.1f\n",
    n, r / 1000, s / 1000, r / s, p / 1000
}'
