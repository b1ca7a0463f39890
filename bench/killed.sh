#!/usr/bin/env bash
# The cycle after a SIGKILL a third into a send, against ProFTPD's mod_sftp with `AllowOverwrite
# off` (its default), compared with the same remaining files sent without the kill.
#
#   bash bench/killed.sh [N]     (default 300 ORD files: a send of 2,400 files)
#   EGME_BENCH_DIR=/dev/shm bash bench/killed.sh
#
# Needs ProFTPD unpacked by scripts/test-servers (it runs it when missing, as root), sshd's
# ssh-keygen, GNU time. It
#  (a) runs `egme-ord once` and SIGKILLs it once a third of the files to send are at the ORD;
#  (b) copies that workspace and its ORD folder (the twin), and in the twin removes from the ORD's
#      folder the files the ledger has not recorded delivered: the twin's next cycle must send every
#      pending file, as a send that was never interrupted would;
#  (c) times the next cycle of each: the killed one (`rerun`), which finds some pending files at
#      the ORD already and leftovers of the puts in flight, and the twin's (`uninterrupted`);
# and prints both, the files each put, and rerun / uninterrupted (the issue's bound: ≤ 1.2).
set -euo pipefail
N=${1:-300}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVERS="$ROOT/target/tmp/test-servers"
[ -x "$SERVERS/root/usr/sbin/proftpd" ] || bash "$ROOT/scripts/test-servers" "$SERVERS"
for tool in ssh-keygen /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool" >&2; exit 2; }
done
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin egme-ord --example bench-generate
BIN="$ROOT/target/release/egme-ord"
GEN="$ROOT/target/release/examples/bench-generate"
NOW=2024-11-05T21:30:00Z

W=$(mktemp -d "${EGME_BENCH_DIR:-/tmp}/egme-killed.XXXXXX")
PROFTPD_PID=
cleanup() {
  if [ -n "$PROFTPD_PID" ]; then pkill -P "$PROFTPD_PID" 2>/dev/null || true; kill "$PROFTPD_PID" 2>/dev/null || true; fi
  [ -n "${EGME_BENCH_KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT

# --- ProFTPD mod_sftp, AllowOverwrite off --------------------------------------------------------
S="$W/proftpd"
mkdir -p "$S"
ssh-keygen -q -t ed25519 -N '' -f "$S/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$S/userkey"
ssh-keygen -e -f "$S/userkey.pub" > "$S/authorized_keys"
USER_NAME=$(id -un)
echo "$USER_NAME:x:$(id -u):$(id -g)::$S:/bin/sh" > "$S/passwd"
chmod 600 "$S/passwd"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$S/proftpd.conf" <<CFG
ServerType standalone
ServerName "egme-ord bench"
DefaultAddress 127.0.0.1
SocketBindTight on
Port $PORT
User $USER_NAME
Group $(id -gn)
PidFile $S/proftpd.pid
ScoreboardFile $S/scoreboard
DelayTable none
WtmpLog off
UseIPv6 off
UseReverseDNS off
UseFtpUsers off
ModulePath $SERVERS/root/usr/lib/proftpd
AuthUserFile $S/passwd
AuthOrder mod_auth_file.c
RequireValidShell off
RootLogin on
SystemLog $S/proftpd.log
TransferLog none
MaxInstances 64
LoadModule mod_sftp.c
SFTPEngine on
SFTPHostKey $S/hostkey
SFTPAuthorizedUserKeys file:$S/authorized_keys
SFTPAuthMethods publickey
SFTPKeyBlacklist none
SFTPLog $S/sftp.log
AllowOverwrite off
CFG
"$SERVERS/root/usr/sbin/proftpd" -n -q -c "$S/proftpd.conf" >/dev/null 2>&1 &
PROFTPD_PID=$!
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null && break
  sleep 0.1
done
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$S/hostkey.pub")" > "$S/known_hosts"
ENDPOINT="transport = \"sftp\", host = \"127.0.0.1\", port = $PORT, user = \"$USER_NAME\", key = \"$S/userkey\", known_hosts = \"$S/known_hosts\", sessions = ${EGME_BENCH_SESSIONS:-8}"

# --- (a) the killed send -------------------------------------------------------------------------
A="$W/killed"
"$GEN" "$N" "$A" "{ $ENDPOINT, path = \"$A/remote/from-ord\" }" "{ $ENDPOINT, path = \"$A/remote/to-ord\" }" > "$W/generate.out"
TOTAL=$(sed -n 's/.*CDRs, \([0-9]*\) expected outputs/\1/p' "$W/generate.out")

sent_now() { find "$1" -maxdepth 1 -type f -name '[!.]*' | wc -l; }
EGME_ORD_LOG=warn "$BIN" once --config "$A/egme-ord.toml" --now "$NOW" > "$W/killed.out" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null && [ "$(sent_now "$A/remote/to-ord")" -lt $((TOTAL / 3)) ]; do sleep 0.02; done
kill -9 "$pid" 2>/dev/null || { echo "the send ended before a third of its files were at the ORD" >&2; exit 1; }
wait "$pid" 2>/dev/null || true
at_kill=$(sent_now "$A/remote/to-ord")
leftovers=$(find "$A/remote/to-ord" -maxdepth 1 -type f -name '.*' | wc -l)

# --- (b) the twin: what an uninterrupted send would still have to put ----------------------------
B="$W/twin"
cp -a "$A" "$B"
sed -i "s#$A/#$B/#g" "$B/egme-ord.toml"
recorded=$("$BIN" status --json --config "$B/egme-ord.toml" |
  python3 -c 'import json,sys; print(sum(d["files_sent"] for o in json.load(sys.stdin) for d in o["days"]))')
# The files at the ORD in transmission order (the id ends the name); those past the ledger's
# delivered ones are removed from the twin's ORD folder, and the leftovers with them.
pending_at_ord=0
while read -r f; do rm -f "$B/remote/to-ord/$f"; pending_at_ord=$((pending_at_ord + 1)); done < <(
  find "$B/remote/to-ord" -maxdepth 1 -type f -name '[!.]*' -printf '%f\n' |
    sort -t_ -k3 | tail -n +$((recorded + 1)))
find "$B/remote/to-ord" -maxdepth 1 -type f -name '.*' -delete

# --- (c) the next cycle of each ------------------------------------------------------------------
measure() {
  local label=$1; shift
  /usr/bin/time -f "%e" -o "$W/$label.time" "$@" > "$W/$label.out" 2>&1 || {
    echo "$label failed:" >&2; tail -20 "$W/$label.out" >&2; exit 1; }
  cat "$W/$label.time"
}
sync
t_rerun=$(measure rerun env EGME_ORD_LOG=warn "$BIN" once --config "$A/egme-ord.toml" --now "$NOW")
sync
t_twin=$(measure twin env EGME_ORD_LOG=warn "$BIN" once --config "$B/egme-ord.toml" --now "$NOW")
final_a=$(sent_now "$A/remote/to-ord"); final_b=$(sent_now "$B/remote/to-ord")
left_a=$(find "$A/remote/to-ord" -maxdepth 1 -type f -name '.*' | wc -l)
echo "send of $TOTAL files (N=$N) on ProFTPD mod_sftp, AllowOverwrite off"
echo "killed with $at_kill files at the ORD ($leftovers temporary), the ledger having recorded $recorded delivered"
echo "rerun:         ${t_rerun} s, $((final_a - at_kill)) files put, ${pending_at_ord} found there; at the end $final_a at the ORD, $left_a temporary"
echo "uninterrupted: ${t_twin} s, $((final_b - at_kill + pending_at_ord)) files put; at the end $final_b at the ORD"
awk -v a="$t_rerun" -v b="$t_twin" 'BEGIN { printf "rerun / uninterrupted (wall) = %.2f\n", a / b }'
[ "$final_a" -eq "$TOTAL" ] && [ "$final_b" -eq "$TOTAL" ] && [ "$left_a" -eq 0 ] || {
  echo "not every file delivered once, or temporary files left" >&2; exit 1; }
