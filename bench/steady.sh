#!/usr/bin/env bash
# The daily cycle with 30 days open against the first day's, each rerun from a copy of the same
# folder (the same work every run; this machine's spread is ±20 % between identical runs):
#
#   bash bench/steady.sh [N] [RUNS]        (default: 500 7)
#   EGME_BENCH_DIR=/dev/shm bash bench/steady.sh 10000 5
#
# Builds the month of bench/month.sh for days 0–29 (local folders, the ORD takes its files, ORD
# files moved out once recorded), generates day 30, then runs `egme-ord once` RUNS times for day
# 30 (30 days open) and RUNS times for a fresh day 0 (a folder of its own), alternating, and prints
# each run's wall time and CPU (user + sys) and the medians' ratio. Needs GNU time and bc.
set -euo pipefail
N=${1:-500}
RUNS=${2:-7}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v /usr/bin/time >/dev/null || { echo "bench needs GNU time (apt-get install -y time)" >&2; exit 2; }
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin egme-ord --example bench-month
BIN="$ROOT/target/release/egme-ord"
GEN="$ROOT/target/release/examples/bench-month"
BASE=$(mktemp -d "${EGME_BENCH_DIR:-/tmp}/egme-steady.XXXXXX")
trap 'rm -rf "$BASE"' EXIT
endpoints() {
  echo "{ transport = \"local\", path = \"$1/remote/from-ord\", move_to = \"processed\" }"
  echo "{ transport = \"local\", path = \"$1/remote/to-ord\" }"
}
# The month: bench/month.sh's days 0–29 in a folder kept for the runs.
MONTH_OUT=$(EGME_BENCH_KEEP=1 EGME_BENCH_MOVE_TO=1 EGME_BENCH_ORD_TAKES=1 EGME_BENCH_DIR="$BASE" bash "$ROOT/bench/month.sh" "$N" 30 2>&1 >/dev/null)
D=$(echo "$MONTH_OUT" | sed -n 's/^kept in //p')
mapfile -t EP < <(endpoints "$D")
"$GEN" "$N" "$D" 30 "${EP[@]}" >/dev/null
cp -a "$D" "$BASE/day30.copy"
D0="$BASE/day0"
mkdir -p "$D0"
mapfile -t EP0 < <(endpoints "$D0")
"$GEN" "$N" "$D0" 0 "${EP0[@]}" >/dev/null
cp -a "$D0" "$BASE/day0.copy"
declare -A CPU
for ((k = 1; k <= RUNS; k++)); do
  for day in 0 30; do
    if [ "$day" = 0 ]; then dir=$D0; now=2024-11-05T21:30:00Z; else dir=$D; now=2024-12-05T21:30:00Z; fi
    rm -rf "$dir"
    cp -a "$BASE/day$day.copy" "$dir"
    /usr/bin/time -f "%e %U %S %M" -o "$BASE/time" "$BIN" once --json --config "$dir/egme-ord.toml" --now "$now" >"$BASE/summary.json" 2>"$BASE/stderr" \
      || { echo "once failed (day $day):" >&2; cat "$BASE/stderr" >&2; exit 1; }
    read -r wall user sys rss <"$BASE/time"
    cpu=$(echo "$user + $sys" | bc)
    CPU[$day]+="$cpu "
    netted=$(grep -o '"cpe_days_netted": *[0-9]*' "$BASE/summary.json" | head -1 | tr -dc 0-9)
    printf "day %2d run %d: wall %6.2f s  cpu %6.2f s  rss %5.1f MB  netted %s\n" "$day" "$k" "$wall" "$cpu" "$(echo "$rss / 1024" | bc -l)" "$netted"
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
m0=$(echo "${CPU[0]}" | median)
m30=$(echo "${CPU[30]}" | median)
printf "median cpu: day 0 %.2f s, day 30 %.2f s, ratio %.2f\n" "$m0" "$m30" "$(echo "$m30 / $m0" | bc -l)"
