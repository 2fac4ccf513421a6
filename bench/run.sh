#!/usr/bin/env bash
# Benchmark: rhscope against peers on the same files, in one run.
#   bench/run.sh [quick|full]
# quick: real fixtures and a 100 MB simulated trace; full adds 1 GB (and
# 4 GB with BENCH_4GB=1 when the disk has room). Peers: dissect.etl from
# PyPI in a throwaway venv. Results: bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-quick}
work=${BENCH_DIR:-/tmp/rhscope-bench}
mkdir -p "$work"

# The reader needs no polars; BENCH_FEATURES=polars measures the full build.
features=${BENCH_FEATURES:-}
if [ -n "$features" ]; then
  cargo build --release --locked --quiet --features "$features"
else
  cargo build --release --locked --quiet --no-default-features
fi
bin=target/release/rhscope

venv="$work/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "dissect.etl==3.14"
fi

# Simulated traces of the sizes asked for (records are ~250 bytes each).
sizes="100"
[ "$mode" = full ] && sizes="100 1000"
[ "$mode" = full ] && [ "${BENCH_4GB:-0}" = 1 ] && sizes="$sizes 4000"
traces=()
for f in tests/data/*.etl; do traces+=("$f"); done
for mb in $sizes; do
  f="$work/large-${mb}MB.etl"
  [ -f "$f" ] || "$bin" simulate large --seed 1 --scale $((mb * 4000)) -o "$f" 2>/dev/null
  traces+=("$f")
done

# Seconds and peak RSS (KiB) of a command, via GNU time.
measure() {
  local t="$work/time.out"
  /usr/bin/time -f '%e %M' -o "$t" "$@" >/dev/null 2>&1
  tail -1 "$t"
}

machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
{
  echo "# Benchmark results"
  echo
  echo "Machine: $machine. Date: $(date -u +%Y-%m-%d). rhscope built with: ${features:-no default features}."
  echo "Command: \`bench/run.sh $mode\`. Times are wall-clock seconds of one run; RSS is peak resident memory (the mapped trace's pages count in it)."
  echo
  echo "| file | MB | records | rhscope stats s | MB/s | records/s | RSS MiB | dump jsonl s | dump RSS MiB | rhscope analyze s | analyze RSS MiB | dissect.etl s | dissect / rhscope |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} > bench/RESULTS.md.new

for f in "${traces[@]}"; do
  bytes=$(stat -c %s "$f")
  mb=$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b/1048576}')
  records=$("$bin" stats --json --quiet "$f" | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
  read -r st_s st_kb <<<"$(measure "$bin" stats --quiet "$f")"
  read -r du_s du_kb <<<"$(measure "$bin" dump --quiet --format jsonl "$f")"
  du_kb=$(awk -v k="$du_kb" 'BEGIN {printf "%.0f", k/1024}')
  an_s="-"; an_kb="-"
  if [[ "$f" == *large-* ]]; then
    read -r an_s an_kb <<<"$(measure "$bin" analyze --quiet --format json "$f")"
    an_kb=$(awk -v k="$an_kb" 'BEGIN {printf "%.0f", k/1024}')
  fi
  # dissect.etl on files it can read in reasonable time (it is ~1000x slower).
  if [ "$bytes" -le $((120 * 1048576)) ]; then
    read -r d_s _ <<<"$(measure "$venv/bin/python" bench/dissect_count.py "$f")"
    ratio=$(awk -v a="$d_s" -v b="$st_s" 'BEGIN {printf "%.0fx", a/(b > 0.001 ? b : 0.001)}')
  else
    d_s="not run"; ratio="-"
  fi
  mbs=$(awk -v m="$mb" -v s="$st_s" 'BEGIN {printf "%.0f", m/(s > 0.001 ? s : 0.001)}')
  rps=$(awk -v r="$records" -v s="$st_s" 'BEGIN {printf "%.2fM", r/(s > 0.001 ? s : 0.001)/1e6}')
  echo "| $(basename "$f") | $mb | $records | $st_s | $mbs | $rps | $(awk -v k="$st_kb" 'BEGIN {printf "%.0f", k/1024}') | $du_s | $du_kb | $an_s | $an_kb | $d_s | $ratio |" >> bench/RESULTS.md.new
  echo "bench: $(basename "$f") done" >&2
done
# cluster.log: the same node's log for the 100 MB trace, read and analysed
# by rhscope (streamed) against a regex-per-line Python parser.
log="$work/large-100MB.cluster.log"
[ -f "$log" ] || "$bin" simulate large --seed 1 --scale 400000 -o "$work/large-100MB-log.etl" --cluster-log "$log" 2>/dev/null
{
  echo
  echo "| cluster.log | MB | lines | rhscope analyze s | MB/s | RSS MiB | python regex parse s | python / rhscope |"
  echo "|---|---|---|---|---|---|---|---|"
  lbytes=$(stat -c %s "$log")
  lmb=$(awk -v b="$lbytes" 'BEGIN {printf "%.1f", b/1048576}')
  lines=$(wc -l < "$log")
  read -r la_s la_kb <<<"$(measure "$bin" analyze --quiet --format json "$log")"
  read -r lp_s _ <<<"$(measure python3 bench/clusterlog_parse.py "$log")"
  echo "| $(basename "$log") | $lmb | $lines | $la_s | $(awk -v m="$lmb" -v s="$la_s" 'BEGIN {printf "%.0f", m/(s > 0.001 ? s : 0.001)}') | $(awk -v k="$la_kb" 'BEGIN {printf "%.0f", k/1024}') | $lp_s | $(awk -v a="$lp_s" -v b="$la_s" 'BEGIN {printf "%.1fx", a/(b > 0.001 ? b : 0.001)}') |"
} >> bench/RESULTS.md.new
mv bench/RESULTS.md.new bench/RESULTS.md
cat bench/RESULTS.md
