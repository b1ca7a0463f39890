# A throwaway sshd on 127.0.0.1 for the benchmarks, sourced by bench/run.sh and bench/month.sh:
#   start_sshd DIR   → sshd running with its keys in DIR; sets SSHD_PID, PORT, USER_NAME, SSH_CMD
#                      and SFTP_ENDPOINT (the endpoint keys egme-ord's config needs, without path)
start_sshd() {
  local dir=$1
  [ -x /usr/sbin/sshd ] || { echo "bench needs /usr/sbin/sshd (apt-get install -y openssh-server)" >&2; exit 2; }
  mkdir -p /run/sshd "$dir"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/hostkey"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/userkey"
  cp "$dir/userkey.pub" "$dir/authorized_keys"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$dir/sshd_config" <<CFG
Port $PORT
ListenAddress 127.0.0.1
HostKey $dir/hostkey
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $dir/sshd.pid
MaxStartups 64
MaxSessions 64
Subsystem sftp internal-sftp
CFG
  /usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>"$dir/log" &
  SSHD_PID=$!
  for _ in $(seq 100); do grep -q "Server listening" "$dir/log" 2>/dev/null && break; sleep 0.1; done
  echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$dir/hostkey.pub")" > "$dir/known_hosts"
  USER_NAME=$(id -un)
  SSH_CMD="ssh -a -x -i $dir/userkey -o UserKnownHostsFile=$dir/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes"
  SFTP_ENDPOINT="transport = \"sftp\", host = \"127.0.0.1\", port = $PORT, user = \"$USER_NAME\", key = \"$dir/userkey\", known_hosts = \"$dir/known_hosts\", sessions = ${EGME_BENCH_SESSIONS:-8}"
}
