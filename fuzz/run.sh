#!/usr/bin/env bash
# Runs one fuzz target (or all) for SECONDS each, corpus seeded from the
# real fixtures. Needs the nightly toolchain and cargo-fuzz.
#   fuzz/run.sh [TARGET|all] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
targets=${1:-all}
seconds=${2:-30}
[ "$targets" = all ] && targets="lz77 buffers records tracelogging stats stacks providers clusterlog manifest"
for t in $targets; do
  mkdir -p "corpus/$t"
  # Seeds: the shipped data files for the TOML loaders, the start of every
  # real fixture for the rest (small inputs run fast).
  if [ "$t" = providers ]; then
    cp ../providers/*.toml "corpus/$t/"
  elif [ "$t" = clusterlog ]; then
    cp ../tests/data/cluster-sample.log "corpus/$t/"
    head -c 65536 ../traces/mixed.cluster.log > "corpus/$t/mixed.64k"
    # A node's log as Windows writes it (UTF-16LE), and cut pieces of it
    # without the byte-order mark, at a unit and inside one.
    head -c 65536 ../tests/data/clusterlog/NODE-A_cluster.log > "corpus/$t/node-a-utf16.64k"
    tail -c +3 ../tests/data/clusterlog/NODE-A_cluster.log | head -c 65536 > "corpus/$t/node-a-nobom.64k"
    tail -c +4 ../tests/data/clusterlog/NODE-A_cluster.log | head -c 65536 > "corpus/$t/node-a-nobom-odd.64k"
  elif [ "$t" = stacks ]; then
    # Traces with stack-walk and image events: the start of each.
    head -c 262144 ../tests/data/net.4.5.2.x86.etl > "corpus/$t/net.4.5.2.x86.256k"
    head -c 262144 ../traces/uninstrumented/SIM-NODE1.etl > "corpus/$t/SIM-NODE1.256k"
  elif [ "$t" = manifest ]; then
    cp ../manifests/*.man "corpus/$t/"
  else
    for f in ../tests/data/*.etl; do
      case $t in
        stats|buffers) head -c 65536 "$f" > "corpus/$t/$(basename "$f").64k" ;;
        *) head -c 4096 "$f" > "corpus/$t/$(basename "$f").4k" ;;
      esac
    done
  fi
  # libFuzzer grows corpus/$t; crashing inputs are kept in regressions/$t.
  mkdir -p "regressions/$t"
  # No sanitizer: the fuzzed code has no unsafe code (the Windows capture
  # session has, behind the `etw` feature; the span lists' spill file only
  # past 4 MiB of spans, beyond these inputs), and ASan costs 10x.
  cargo +nightly fuzz run --sanitizer none "$t" "corpus/$t" "regressions/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=262144 -print_final_stats=1
done
