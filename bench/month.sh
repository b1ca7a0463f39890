#!/usr/bin/env bash
# A month of daily cycles with 30 days open (steady state), on local folders:
#
#   bash bench/month.sh [N] [DAYS]        (default: 500 31)
#   EGME_BENCH_DIR=/dev/shm bash bench/month.sh 10000 31
#
# Each day: N new ORD files, 2–3 sessions per CPE, corrections of 5 % of the CPEs' sessions of
# earlier days; then `egme-ord once` at 21:30 the day after (the D+1 send, with every earlier day
# still open). Prints per day: wall time, CPU (user+sys), peak RSS, CPE-days netted, files written, the names in the ORD's two folders that the cycle lists, and the disk egme-ord keeps (ledger + work folder) in all and per CPE-day so far.
# EGME_BENCH_DAY_FOLDERS=false: [reports] day_folders = false (no day folder rewritten per send).
# EGME_BENCH_RENET_ALL=1: every cycle with --renet-all (every open CPE-day netted, as before
# incremental netting). EGME_BENCH_SFTP=1: the ORD's folders over SFTP, through a throwaway
# sshd on 127.0.0.1 (bench/sshd.sh). EGME_BENCH_ORD_TAKES=1: after each cycle the ORD takes the
# files we put (moved out of its send folder, as an ORD that picks them up does); by default they
# pile up there (the fence lists them all at every send). EGME_BENCH_KEEP=1: the folder stays. Needs GNU time (/usr/bin/time) and bc.
set -euo pipefail
N=${1:-500}
DAYS=${2:-31}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v /usr/bin/time >/dev/null || { echo "bench needs GNU time (apt-get install -y time)" >&2; exit 2; }
command -v bc >/dev/null || { echo "bench needs bc (apt-get install -y bc)" >&2; exit 2; }
if [ "${EGME_BENCH_SFTP:-}" = 1 ] && [ "${EGME_BENCH_POLL:-}" = 1 ]; then
  command -v lftp >/dev/null || { echo "bench needs lftp for the poll's comparison (apt-get install -y lftp)" >&2; exit 2; }
fi
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin egme-ord --example bench-month
BIN="$ROOT/target/release/egme-ord"
GEN="$ROOT/target/release/examples/bench-month"
DIR=$(mktemp -d "${EGME_BENCH_DIR:-/tmp}/egme-month.XXXXXX")
# EGME_BENCH_KEEP=1: the folder is kept (its path printed) for a look at what is kept.
SSHD_PID=
ENDPOINTS=()
# EGME_BENCH_MOVE_TO=1: `receive = { ..., move_to = "processed" }` — each ORD file, once recorded,
# moved out of the folder the intake lists (by default the ORD's files stay there, and every cycle
# lists all of them: 10,000 more a day at N = 10,000).
MOVE=
[ "${EGME_BENCH_MOVE_TO:-}" = 1 ] && MOVE=', move_to = "processed"'

if [ "${EGME_BENCH_SFTP:-}" = 1 ]; then
  # shellcheck source=bench/sshd.sh
  . "$ROOT/bench/sshd.sh"
  start_sshd "$DIR/sshd"
  mkdir -p "$DIR/remote/from-ord" "$DIR/remote/to-ord"
  ENDPOINTS=("{ $SFTP_ENDPOINT, path = \"$DIR/remote/from-ord\"$MOVE }" "{ $SFTP_ENDPOINT, path = \"$DIR/remote/to-ord\" }")
elif [ -n "$MOVE" ]; then
  ENDPOINTS=("{ transport = \"local\", path = \"$DIR/remote/from-ord\"$MOVE }" "{ transport = \"local\", path = \"$DIR/remote/to-ord\" }")
fi
if [ -n "${EGME_BENCH_KEEP:-}" ]; then
  echo "kept in $DIR" >&2
  trap '[ -n "$SSHD_PID" ] && kill "$SSHD_PID"' EXIT
else
  trap '[ -n "$SSHD_PID" ] && kill "$SSHD_PID"; rm -rf "$DIR"' EXIT
fi
printf "%4s %10s %8s %8s %8s %8s %8s %9s %12s %12s\n" day date wall_s cpu_s rss_mb netted written listed kept_bytes per_cpe_day
for ((i = 0; i < DAYS; i++)); do
  "$GEN" "$N" "$DIR" "$i" "${ENDPOINTS[@]}" >/dev/null
  if [ "$i" = 0 ] && [ -n "${EGME_BENCH_DAY_FOLDERS:-}" ]; then
    printf '\n[reports]\nday_folders = %s\n' "$EGME_BENCH_DAY_FOLDERS" >>"$DIR/egme-ord.toml"
  fi
  day=$(date -u -d "2024-11-04 + $i days" +%F)
  now=$(date -u -d "$day + 1 day" +%FT21:30:00Z)
  extra=()
  [ "${EGME_BENCH_RENET_ALL:-}" = 1 ] && extra=(--renet-all)
  # The names the cycle lists: the ORD's receive and send folders (whatever their transport, they
  # are folders of this machine).
  listed=$(find "$DIR/remote/from-ord" "$DIR/remote/to-ord" -maxdepth 1 -type f 2>/dev/null | wc -l)
  /usr/bin/time -f "%e %U %S %M" -o "$DIR/time" \
    env EGME_ORD_LOG=warn,egme_ord::cycle::send=info "$BIN" once --json --config "$DIR/egme-ord.toml" --now "$now" "${extra[@]}" >"$DIR/summary.json" 2>"$DIR/stderr" \
    || { echo "once failed on $day:" >&2; cat "$DIR/stderr" >&2; exit 1; }
  read -r wall user sys rss <"$DIR/time"
  if [ "${EGME_BENCH_ORD_TAKES:-}" = 1 ]; then
    # Taken: gone from the folder (and not kept here: 80,000 files a day at N = 10,000).
    find "$DIR/remote/to-ord" -maxdepth 1 -type f -name '*.sgl' -delete
  fi
  netted=$(grep -o '"cpe_days_netted": *[0-9]*' "$DIR/summary.json" | head -1 | tr -dc 0-9)
  written=$(grep -o '"files_written": *[0-9]*' "$DIR/summary.json" | head -1 | tr -dc 0-9)
  kept=$(du -sb "$DIR/state" "$DIR/work" | awk '{s += $1} END {print s}')
  printf "%4d %10s %8.2f %8.2f %8.1f %8s %8s %9d %12d %12.0f\n" "$i" "$day" "$wall" "$(echo "$user + $sys" | bc)" \
    "$(echo "$rss / 1024" | bc -l)" "$netted" "$written" "$listed" "$kept" "$(echo "$kept / ($N * ($i + 1))" | bc -l)"
done
# EGME_BENCH_POLL=1: after the last day, a poll with nothing new (the next evening, an hour
# after the send: the intake and the fence list both folders, nothing to receive, send or deliver),
# three times, against listing the same two folders (names only) with OpenSSH's sftp and lftp
# over SFTP, three times each (best of three each).
if [ "${EGME_BENCH_POLL:-}" = 1 ]; then
  day=$(date -u -d "2024-11-04 + $DAYS days" +%F)
  now=$(date -u -d "$day" +%FT22:30:00Z)
  best() { sort -n | head -1; }
  poll=$(for _ in 1 2 3; do
    /usr/bin/time -f "%e" -o "$DIR/time" env EGME_ORD_LOG=warn "$BIN" once --json --config "$DIR/egme-ord.toml" --now "$now" >"$DIR/summary.json" 2>"$DIR/stderr" \
      || { echo "the poll failed:" >&2; cat "$DIR/stderr" >&2; exit 1; }
    cat "$DIR/time"
  done | best)
  names=$(find "$DIR/remote/from-ord" "$DIR/remote/to-ord" -maxdepth 1 -type f | wc -l)
  echo "poll with nothing new over $names names: best of 3 ${poll} s (egme-ord once)"
  if [ -n "$SSHD_PID" ]; then
    printf 'ls -1 %s\nls -1 %s\n' "$DIR/remote/from-ord" "$DIR/remote/to-ord" >"$DIR/sftp.batch"
    sftp_s=$(for _ in 1 2 3; do
      /usr/bin/time -f "%e" -o "$DIR/time" sftp -q -b "$DIR/sftp.batch" -i "$DIR/sshd/userkey" -o UserKnownHostsFile="$DIR/sshd/known_hosts" -o StrictHostKeyChecking=yes -P "$PORT" "$USER_NAME@127.0.0.1" >/dev/null
      cat "$DIR/time"
    done | best)
    lftp_s=$(for _ in 1 2 3; do
      /usr/bin/time -f "%e" -o "$DIR/time" lftp -c "set sftp:connect-program '$SSH_CMD'; open -u $USER_NAME, sftp://127.0.0.1:$PORT; cls -1 $DIR/remote/from-ord/ >/dev/null; cls -1 $DIR/remote/to-ord/ >/dev/null"
      cat "$DIR/time"
    done | best)
    echo "listing the same two folders: sftp ls -1 ${sftp_s} s, lftp cls -1 ${lftp_s} s (best of 3)"
    echo "poll / sftp: $(echo "$poll / $sftp_s" | bc -l | cut -c1-5), poll / lftp: $(echo "$poll / $lftp_s" | bc -l | cut -c1-5)"
  fi
fi
# What egme-ord keeps at the end, by part, per CPE-day.
echo "kept at the end, bytes per CPE-day:"
for part in state work/outbox work/archive work/reports work/quarantine; do
  [ -e "$DIR/$part" ] || continue
  b=$(du -sb "$DIR/$part" | awk '{print $1}')
  printf "  %-16s %12d %10.0f\n" "$part" "$b" "$(echo "$b / ($N * $DAYS)" | bc -l)"
done
