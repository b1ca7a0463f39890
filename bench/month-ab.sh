#!/usr/bin/env bash
# The untidy month's last day against its first, run alternately on copies (the machine's speed
# varies over minutes: runs taken apart do not compare), on local folders:
#
#   EGME_BENCH_DIR=/dev/shm bash bench/month-ab.sh [N] [DAYS] [PAIRS]   (default: 500 31 7)
#
# Builds a month with bench/month.sh (untidy: no move_to, the ORD takes nothing), then runs, PAIRS
# times each and alternately, the cycle of day DAYS (a new day of files over the whole month's
# folders and ledger), the same cycle with the folders emptied (the same history, nothing old
# listed), and a first day's cycle. Prints the medians (wall, CPU, peak RSS) and the ratios.
set -euo pipefail
N=${1:-500}
DAYS=${2:-31}
PAIRS=${3:-7}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=$(mktemp -d "${EGME_BENCH_DIR:-/tmp}/egme-ab.XXXXXX")
trap 'rm -rf "$BASE"' EXIT
BIN="$ROOT/target/release/egme-ord"
GEN="$ROOT/target/release/examples/bench-month"
# The month: bench/month.sh keeps its folder (its path on stderr).
kept=$(EGME_BENCH_KEEP=1 EGME_BENCH_DIR="$BASE" bash "$ROOT/bench/month.sh" "$N" "$DAYS" 2>&1 >/dev/null | sed -n 's/^kept in //p')
[ -d "$kept" ] || { echo "bench/month.sh kept no folder" >&2; exit 1; }
# The day's files come after the stamp: the emptied run keeps only them.
touch "$BASE/stamp" && sleep 1
"$GEN" "$N" "$kept" "$DAYS" >/dev/null
cp -a "$kept" "$BASE/month"
mkdir "$BASE/first-kept" && "$GEN" "$N" "$BASE/first-kept" 0 >/dev/null
cp -a "$BASE/first-kept" "$BASE/first"
last_now=$(date -u -d "2024-11-04 + $((DAYS + 1)) days" +%FT21:30:00Z)
# Each run works on a copy at the folder's own path: the send folder's record names its folder.
run() { # run WHAT SNAPSHOT WHERE NOW
  rm -rf "$3" && cp -a "$BASE/$2" "$3"
  if [ "$1" = emptied ]; then
    find "$3/remote/to-ord" -maxdepth 1 -type f -delete
    find "$3/remote/from-ord" -maxdepth 1 -type f ! -newer "$BASE/stamp" -delete
  fi
  /usr/bin/time -f "%e %U %S %M" -o "$BASE/time" env EGME_ORD_LOG=warn "$BIN" once --json \
    --config "$3/egme-ord.toml" --now "$4" >/dev/null 2>"$BASE/stderr" \
    || { echo "$1 failed:" >&2; cat "$BASE/stderr" >&2; exit 1; }
  read -r wall user sys rss <"$BASE/time"
  echo "$1 $wall $(echo "$user + $sys" | bc) $rss"
}
for ((i = 0; i < PAIRS; i++)); do
  run first first "$BASE/first-kept" 2024-11-05T21:30:00Z
  run last month "$kept" "$last_now"
  run emptied month "$kept" "$last_now"
done >"$BASE/runs"
median() { grep "^$1 " "$BASE/runs" | awk -v c="$2" '{print $c}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf "%-8s %8s %8s %8s\n" cycle wall_s cpu_s rss_mb
for what in first last emptied; do
  printf "%-8s %8s %8s %8.1f\n" "$what" "$(median "$what" 2)" "$(median "$what" 3)" "$(echo "$(median "$what" 4) / 1024" | bc -l)"
done
echo "last / first: wall $(echo "$(median last 2) / $(median first 2)" | bc -l | cut -c1-4), RSS $(echo "$(median last 4) / $(median first 4)" | bc -l | cut -c1-4); last / emptied (what the folders add): wall $(echo "$(median last 2) / $(median emptied 2)" | bc -l | cut -c1-4)"
