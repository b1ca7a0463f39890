#!/usr/bin/env bash
# Listing a large folder over SFTP: egme-ord against OpenSSH's sftp, on a throwaway sshd
# (bench/sshd.sh) on 127.0.0.1:
#
#   EGME_BENCH_DIR=/dev/shm bash bench/list.sh [NAMES] [RUNS]        (default: 300000 3)
#
# Makes a folder of NAMES empty files, then, alternately RUNS times each: `egme-ord
# validate-config` with that folder as the ORD's receive folder (it lists the folder whole, then
# probes it), the same with an empty folder (what validate-config costs besides the listing), and
# `sftp -b` with `ls -1` of the folder. Prints each run's wall time and the medians.
# EGME_BENCH_BIN: another egme-ord binary to time (e.g. an older build, to compare).
set -euo pipefail
NAMES=${1:-300000}
RUNS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v /usr/bin/time >/dev/null || { echo "bench needs GNU time (apt-get install -y time)" >&2; exit 2; }
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin egme-ord --example bench-month
BIN=${EGME_BENCH_BIN:-$ROOT/target/release/egme-ord}
GEN="$ROOT/target/release/examples/bench-month"
DIR=$(mktemp -d "${EGME_BENCH_DIR:-/tmp}/egme-list.XXXXXX")
SSHD_PID=
trap '[ -n "$SSHD_PID" ] && kill "$SSHD_PID"; rm -rf "$DIR"' EXIT
# shellcheck source=bench/sshd.sh
. "$ROOT/bench/sshd.sh"
start_sshd "$DIR/sshd"
mkdir -p "$DIR/big" "$DIR/empty" "$DIR/send"
(cd "$DIR/big" && seq -f 'f%07.0f.sgl' 1 "$NAMES" | xargs touch)
# A workspace of bench/month.sh's first day, its ORD's folders over SFTP.
for folder in big empty; do
  "$GEN" 1 "$DIR/ws-$folder" 0 "{ $SFTP_ENDPOINT, path = \"$DIR/$folder\" }" "{ $SFTP_ENDPOINT, path = \"$DIR/send\" }" >/dev/null
done
echo "ls -1 $DIR/big" >"$DIR/batch"
timed() { # timed LABEL COMMAND...
  /usr/bin/time -f "%e" -o "$DIR/time" "${@:2}" >/dev/null 2>"$DIR/stderr" \
    || { echo "$1 failed:" >&2; cat "$DIR/stderr" >&2; exit 1; }
  echo "$1 $(cat "$DIR/time")"
}
for ((i = 0; i < RUNS; i++)); do
  timed egme-ord "$BIN" validate-config --config "$DIR/ws-big/egme-ord.toml"
  timed empty "$BIN" validate-config --config "$DIR/ws-empty/egme-ord.toml"
  timed sftp sftp -q -b "$DIR/batch" -i "$DIR/sshd/userkey" -o UserKnownHostsFile="$DIR/sshd/known_hosts" \
    -o BatchMode=yes -P "$PORT" "$USER_NAME@127.0.0.1"
done | tee "$DIR/runs"
median() { grep "^$1 " "$DIR/runs" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "medians ($NAMES names): egme-ord validate-config $(median egme-ord) s (of which $(median empty) s with an empty folder), sftp ls -1 $(median sftp) s"
