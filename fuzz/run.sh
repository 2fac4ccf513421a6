#!/usr/bin/env bash
# Runs one fuzz target (or all) for SECONDS each, corpus seeded from the
# real fixtures. Needs the nightly toolchain and cargo-fuzz.
#   fuzz/run.sh [TARGET|all] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
targets=${1:-all}
seconds=${2:-30}
[ "$targets" = all ] && targets="lz77 buffers records tracelogging stats"
for t in $targets; do
  mkdir -p "corpus/$t"
  case $t in
    stats|buffers) cp -n ../tests/data/*.etl "corpus/$t/" ;;
    lz77) for f in ../tests/data/*.etl; do head -c 4096 "$f" > "corpus/$t/$(basename "$f").head"; done ;;
  esac
  # The corpus is seeded, libFuzzer grows it; regressions live in regressions/.
  cargo +nightly fuzz run "$t" "corpus/$t" regressions/ -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=1048576 -print_final_stats=1
done
