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

# The binary users get (default features): its size is one of the targets.
cargo build --release --locked --quiet
bin=target/release/rhscope
features="default features"

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

# Seconds (to the microsecond) and peak RSS (KiB) of a command.
measure() {
  python3 bench/measure.py "$@"
}

machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
{
  echo "# Benchmark results"
  echo
  echo "Machine: $machine. Date: $(date -u +%Y-%m-%d). rhscope built with: $features."
  echo "Command: \`bench/run.sh $mode\`. Times are wall-clock seconds, the fastest of three runs for commands under 5 s; RSS is peak resident memory (the mapped trace's pages count in it). Where the time goes, and what the targets below would take: bench/README.md."
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
# cluster.log: a node's log as `simulate --cluster-log` writes it for an
# instrumented DLL (every line maps to a record: the costly case), in two
# sizes for memory's growth, and the smaller one with a real node's chatter
# between its lines (bench/noise_log.py), that one also in UTF-16 as
# nodes write it, against `wc -l` and a regex-per-line Python parser on
# the same file.
log_sizes="400000 1600000"
[ "$mode" = full ] && log_sizes="400000 16000000"
log_rows=()
for scale in $log_sizes; do
  log="$work/large-$scale.cluster.log"
  [ -f "$log" ] || "$bin" simulate large --seed 1 --scale "$scale" -o "$work/large-$scale-log.etl" --cluster-log "$log" 2>/dev/null
  lbytes=$(stat -c %s "$log")
  read -r wc_s _ <<<"$(measure wc -l "$log")"
  read -r la_s la_kb <<<"$(measure "$bin" analyze --quiet --format json "$log")"
  read -r py_s _ <<<"$(measure python3 bench/clusterlog_parse.py "$log")"
  log_rows+=("$(basename "$log") $lbytes $wc_s $la_s $la_kb $py_s")
done
# The same log in the shape a real node's has: four lines of the cluster's
# other chatter (nothing maps them) after each of its lines.
base_log="$work/large-${log_sizes%% *}.cluster.log"
noisy_rows=()
for encoding in utf8 utf16; do
  # utf16: as a node writes it (Get-ClusterLog's files are UTF-16LE).
  noisy="$work/noisy-${log_sizes%% *}x4.cluster.log"
  [ "$encoding" = utf16 ] && noisy="$work/noisy-${log_sizes%% *}x4.utf16.cluster.log"
  [ -f "$noisy" ] || python3 bench/noise_log.py "$base_log" "$noisy" 4 ${encoding/utf8/}
  read -r wc_s _ <<<"$(measure wc -l "$noisy")"
  read -r la_s la_kb <<<"$(measure "$bin" analyze --quiet --format json "$noisy")"
  read -r py_s _ <<<"$(measure python3 bench/clusterlog_parse.py "$noisy")"
  noisy_rows+=("$(basename "$noisy") $(stat -c %s "$noisy") $wc_s $la_s $la_kb $py_s")
done
{
  echo
  echo "| cluster.log | MB | wc -l s | rhscope analyze s | MB/s | analyze / wc | RSS MiB | python regex parse s | python / rhscope |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for r in "${log_rows[@]}" "${noisy_rows[@]}"; do
    read -r name bytes w a kb py <<<"$r"
    awk -v n="$name" -v b="$bytes" -v w="$w" -v a="$a" -v k="$kb" -v p="$py" 'BEGIN {printf "| %s | %.1f | %.3f | %.3f | %.0f | %.1fx | %.0f | %.2f | %.1fx |\n", n, b/1048576, w, a, b/1048576/a, a/w, k/1024, p, p/a}'
  done
} >> bench/RESULTS.md.new

# What users open at scale: the HTML report (every chart as SVG and PNG)
# and the Perfetto export of the largest log and trace, beside `analyze`
# on the same file (the report draws what the analysis found; charts and
# the export used to grow with every call drawn).
outputs=()
for input in "$work/large-${log_sizes##* }.cluster.log" "${traces[${#traces[@]}-1]}"; do
  rm -rf "$work/report-out" "$work/export-out.json"
  # Measured first, read after: a failing command stops the run (`read`
  # from a substitution would hide its status and leave a row of zeros).
  a_m=$(measure "$bin" analyze --quiet --format json "$input")
  r_m=$(measure "$bin" report --quiet "$input" -o "$work/report-out")
  e_m=$(measure "$bin" export --quiet "$input" --perfetto "$work/export-out.json")
  read -r oa_s oa_kb <<<"$a_m"
  read -r or_s or_kb <<<"$r_m"
  read -r oe_s oe_kb <<<"$e_m"
  or_bytes=$(du -sb "$work/report-out" | cut -f1)
  oe_bytes=$(stat -c %s "$work/export-out.json")
  outputs+=("$(basename "$input") $oa_s $oa_kb $or_s $or_kb $or_bytes $oe_s $oe_kb $oe_bytes")
done
rm -rf "$work/report-out" "$work/export-out.json"
{
  echo
  echo "| input | analyze s | analyze RSS MiB | report s | report / analyze | report RSS MiB | report MiB | export s | export RSS MiB | export MiB |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for r in "${outputs[@]}"; do
    read -r name a akb rs rkb rb es ekb eb <<<"$r"
    awk -v n="$name" -v a="$a" -v ak="$akb" -v r="$rs" -v rk="$rkb" -v rb="$rb" -v e="$es" -v ek="$ekb" -v eb="$eb" 'BEGIN {printf "| %s | %.3f | %.0f | %.3f | %.1fx | %.0f | %.1f | %.3f | %.0f | %.1f |\n", n, a, ak/1024, r, r/a, rk/1024, rb/1048576, e, ek/1024, eb/1048576}'
  done
} >> bench/RESULTS.md.new

# The targets of issue #19, each a ratio from this one run.
big="${traces[${#traces[@]}-1]}"
read -r st_s st_kb <<<"$(measure "$bin" stats --quiet "$big")"
read -r an_s an_kb <<<"$(measure "$bin" analyze --quiet --format json "$big")"
big_mb=$(awk -v b="$(stat -c %s "$big")" 'BEGIN {printf "%.1f", b/1048576}')
net=tests/data/net.4.5.2.x86.etl
read -r net_s _ <<<"$(measure "$bin" stats --quiet "$net")"
read -r net_d _ <<<"$(measure "$venv/bin/python" bench/dissect_count.py "$net")"
size=$(stat -c %s "$bin")
# Memory on a 1 GB trace itself (full mode has read it above; quick mode
# makes one): a smaller trace's peak scaled up would count its fixed
# start-up ten times over.
gb="$work/large-1000MB.etl"
[ -f "$gb" ] || "$bin" simulate large --seed 1 --scale 4000000 -o "$gb" 2>/dev/null
read -r gb_s gb_kb <<<"$(measure "$bin" analyze --quiet --format json "$gb")"
gb_mb=$(awk -v b="$(stat -c %s "$gb")" 'BEGIN {printf "%.0f", b/1048576}')
# And a 2 GB cluster.log itself (its trace, 4 GB, deleted at once): the
# small logs' slope would count the fixed part of their peak, the spans'
# first few MiB held before a spill file pays, over and over.
log2g="$work/large-17800000.cluster.log"
if [ ! -f "$log2g" ]; then
  "$bin" simulate large --seed 1 --scale 17800000 -o "$work/large-17800000-log.etl" --cluster-log "$log2g" 2>/dev/null
  rm -f "$work/large-17800000-log.etl" "$work/large-17800000-log.expected.json"
fi
read -r log2g_s log2g_kb <<<"$(measure "$bin" analyze --quiet --format json "$log2g")"
log2g_mb=$(awk -v b="$(stat -c %s "$log2g")" 'BEGIN {printf "%.0f", b/1048576}')
read -r _ first_bytes first_w first_a first_kb _ <<<"${log_rows[0]}"
read -r _ last_bytes last_w last_a last_kb _ <<<"${log_rows[${#log_rows[@]}-1]}"
holds() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {ok = (op == "<=") ? v <= t : v >= t; print ok ? "yes" : "no"}'; }
{
  echo
  echo "## Targets"
  echo
  echo "| target | measured | holds |"
  echo "|---|---|---|"
  r=$(awk -v a="$last_a" -v w="$last_w" 'BEGIN {printf "%.1f", a/w}')
  echo "| cluster.log analyze <= 10x wc -l ($(basename "${log_rows[${#log_rows[@]}-1]%% *}")) | ${r}x | $(holds "$r" "<=" 10) |"
  grow=$(awk -v a="$first_kb" -v b="$last_kb" -v x="$first_bytes" -v y="$last_bytes" 'BEGIN {printf "%.0f MiB at %.0f MB, %.0f MiB at %.0f MB", a/1024, x/1048576, b/1024, y/1048576}')
  per_gb=$(awk -v a="$first_kb" -v b="$last_kb" -v x="$first_bytes" -v y="$last_bytes" 'BEGIN {printf "%.0f", (a + (b - a) * (2147483648 - x) / (y - x)) / 1024}')
  read -r nname _ nw na _ _ <<<"${noisy_rows[0]}"
  r=$(awk -v a="$na" -v w="$nw" 'BEGIN {printf "%.1f", a/w}')
  echo "| (for reference, no target) the same on a real-shaped log, 4 of 5 lines mapping nothing ($nname) | ${r}x | - |"
  read -r nname _ nw na _ _ <<<"${noisy_rows[1]}"
  r=$(awk -v a="$na" -v w="$nw" 'BEGIN {printf "%.1f", a/w}')
  echo "| (for reference, no target) that log in UTF-16, as nodes write it ($nname) | ${r}x | - |"
  mem=$(awk -v k="$log2g_kb" 'BEGIN {printf "%.0f", k/1024}')
  echo "| cluster.log memory flat: a 2 GB log < 300 MiB ($(basename "$log2g"), ${log2g_mb} MiB, ${log2g_s} s) | ${mem} MiB ($grow; ~${per_gb} MiB at 2 GB by their slope) | $(holds "$mem" "<=" 300) |"
  r=$(awk -v a="$an_s" -v s="$st_s" 'BEGIN {printf "%.1f", a/s}')
  echo "| .etl analyze <= 3x stats ($(basename "$big"), ${big_mb} MB) | ${r}x ($an_s s / $st_s s) | $(holds "$r" "<=" 3) |"
  mem=$(awk -v k="$gb_kb" 'BEGIN {printf "%.0f", k/1024}')
  echo "| .etl analyze < 400 MiB for 1 GB ($(basename "$gb"), ${gb_mb} MiB, ${gb_s} s) | ${mem} MiB | $(holds "$mem" "<=" 400) |"
  mbs=$(awk -v mb="$big_mb" -v s="$st_s" 'BEGIN {printf "%.0f", mb/s}')
  echo "| reader >= 1 GB/s ($(basename "$big")) | ${mbs} MB/s | $(holds "$mbs" ">=" 1000) |"
  r=$(awk -v d="$net_d" -v s="$net_s" 'BEGIN {printf "%.0f", d/s}')
  echo "| reader >= 300x dissect.etl on the compressed net.4.5.2.x86.etl | ${r}x ($net_s s / $net_d s) | $(holds "$r" ">=" 300) |"
  mb=$(awk -v b="$size" 'BEGIN {printf "%.1f", b/1048576}')
  echo "| release binary <= 40 MB, stripped | ${mb} MiB | $(holds "$mb" "<=" 40) |"
} >> bench/RESULTS.md.new
mv bench/RESULTS.md.new bench/RESULTS.md
cat bench/RESULTS.md
