#!/usr/bin/env bash
# The whole daily cycle vs an lftp transfer-only baseline, against a throwaway sshd on 127.0.0.1.
#
#   bash bench/run.sh [N ...]          (default: 1000 5000 10000 20000)
#   EGME_BENCH_DIR=/dev/shm bash bench/run.sh 5000     (on tmpfs: no disk, no fsync cost)
#
# Needs: /usr/sbin/sshd (openssh-server), lftp, GNU time (/usr/bin/time). For each N it
#  (a) times `egme-ord once`: download the N ORD files over SFTP, parse, net against the CDRs,
#      write and upload every output file;
#  (b) times `lftp mirror --parallel=8` downloading the same N files, then uploading as many
#      files as egme-ord uploaded (the very files it wrote);
# and prints wall time, CPU time (user+sys, children included), peak RSS and egme-ord / lftp.
set -euo pipefail

SIZES=("$@")
[ ${#SIZES[@]} -eq 0 ] && SIZES=(1000 5000 10000 20000)
# EGME_BENCH_DAY_FOLDERS=false: [reports] day_folders = false (the daily send does not rewrite the
# day's report folder, which reads every file of the day back).
# EGME_BENCH_FSYNC=false: egme-ord skips the server-side fsync of each sent file (default true).
FSYNC=${EGME_BENCH_FSYNC:-true}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for tool in /usr/sbin/sshd lftp /usr/bin/time ssh-keygen; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (apt-get install -y openssh-server lftp time)" >&2; exit 2; }
done

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin egme-ord --example bench-generate
BIN="$ROOT/target/release/egme-ord"
GEN="$ROOT/target/release/examples/bench-generate"

# EGME_BENCH_DIR: where the data, the store and the "remote" folders live (default /tmp).
BASE=${EGME_BENCH_DIR:-/tmp}
# A run deletes its workspace at the end (tens of thousands of files). On ext4 without a journal
# (this project's build machine) the inode allocator then skips every inode freed in the last
# minute, or six while its block is dirty, and the next run's file creations pay for it — egme-ord
# or lftp, whichever creates files in that window: 0.8 or 2.3 for the same build (PERFORMANCE.md).
# So a run that follows another's clean-up waits until it is EGME_BENCH_SETTLE seconds old.
MARK="$BASE/.egme-bench-cleaned-up"
SETTLE=${EGME_BENCH_SETTLE:-360}
if [ -f "$MARK" ]; then
  age=$(( $(date +%s) - $(stat -c %Y "$MARK") ))
  if [ "$age" -lt "$SETTLE" ]; then
    echo "waiting $((SETTLE - age)) s: the previous run's clean-up is ${age} s old (EGME_BENCH_SETTLE=0 skips this)" >&2
    sleep $((SETTLE - age))
  fi
fi
W=$(mktemp -d "$BASE/egme-bench.XXXXXX")
SSHD_PID=
# EGME_BENCH_WRAP="perf record -a -g -o /tmp/perf.data" runs egme-ord under a profiler.
# EGME_BENCH_KEEP=1 keeps the workspace (and the sshd running until the script ends) for a look.
cleanup() {
  [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null
  [ -n "${EGME_BENCH_KEEP:-}" ] || { rm -rf "$W"; touch "$MARK"; }
}
trap cleanup EXIT

# --- a throwaway sshd --------------------------------------------------------------------------
# shellcheck source=bench/sshd.sh
. "$ROOT/bench/sshd.sh"
start_sshd "$W/sshd"

# measure LABEL CMD... → "wall cpu rss_kb" appended to $W/$LABEL
measure() {
  local label=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$W/$label.time" "$@" > "$W/$label.out" 2>&1 || {
    echo "$label failed:" >&2; tail -20 "$W/$label.out" >&2; exit 1; }
  awk '{ printf "%.2f %.2f %d\n", $1, $2 + $3, $4 }' "$W/$label.time"
}

printf "%-7s %-8s %9s %9s %10s %8s %9s\n" N side wall_s cpu_s peak_rss files_in files_out
for N in "${SIZES[@]}"; do
  D="$W/n$N"
  ENDPOINT="$SFTP_ENDPOINT"
  "$GEN" "$N" "$D" "{ $ENDPOINT, path = \"$D/remote/from-ord\" }" \
    "{ $ENDPOINT, path = \"$D/remote/to-ord\", fsync = $FSYNC }" > /dev/null
  if [ -n "${EGME_BENCH_DAY_FOLDERS:-}" ]; then
    printf '\n[reports]\nday_folders = %s\n' "$EGME_BENCH_DAY_FOLDERS" >>"$D/egme-ord.toml"
  fi
  sync
  read -r ew ec er < <(measure "egme-$N" ${EGME_BENCH_WRAP:-} env EGME_ORD_LOG="${EGME_BENCH_LOG:-warn}" "$BIN" once --config "$D/egme-ord.toml" --now 2024-11-05T21:30:00Z)
  sent=$(find "$D/remote/to-ord" -type f | wc -l)
  # Received files are archived in tar packs (one per batch): count their members.
  got=$(find "$D/work/archive" -type f -name 'pack-*.tar.zst' -exec tar --zstd -tf {} \; | grep -c '\.sgl$' || true)
  # The baseline moves the same files: the N ORD files down, the files egme-ord sent up.
  mkdir -p "$D/lftp-down" "$D/lftp-up-src" "$D/remote/lftp-up"
  cp -a "$D/remote/to-ord/." "$D/lftp-up-src/"
  sync
  read -r lw lc lr < <(measure "lftp-$N" lftp -c "set sftp:connect-program '$SSH_CMD'; set net:max-retries 1; \
      open -u $USER_NAME, sftp://127.0.0.1:$PORT; \
      mirror --parallel=8 $D/remote/from-ord $D/lftp-down; \
      mirror -R --parallel=8 $D/lftp-up-src $D/remote/lftp-up")
  down=$(find "$D/lftp-down" -type f | wc -l); up=$(find "$D/remote/lftp-up" -type f | wc -l)
  printf "%-7s %-8s %9s %9s %8sMB %8s %9s\n" "$N" egme-ord "$ew" "$ec" "$((er / 1024))" "$got" "$sent"
  printf "%-7s %-8s %9s %9s %8sMB %8s %9s\n" "$N" lftp "$lw" "$lc" "$((lr / 1024))" "$down" "$up"
  awk -v a="$ew" -v b="$lw" -v n="$N" 'BEGIN { printf "%-7s ratio egme-ord / lftp (wall) = %.2f\n", n, a / b }'
  # Nothing is deleted until the end: on ext4, creating files right after mass deletions is slowed
  # by the allocator skipping recently freed inodes, which would bias the next measurement.
done
if [ -n "${EGME_BENCH_KEEP:-}" ]; then echo "workspace kept: $W"; fi
