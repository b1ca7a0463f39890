#!/usr/bin/env bash
# Runs `egme-ord demo` with two binaries and compares every file the demo produced (what the ORDs
# received, the outbox and archive packs, reports, quarantine), byte for byte. The ledger itself and
# the outbox's high-water marks and send-folder records are left out: they carry the ledger's random id
# (and the record a random key).
# Usage: scripts/compare-demo.sh OLD_BINARY NEW_BINARY
set -euo pipefail
old=$(realpath "$1") new=$(realpath "$2")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && "$old" demo old >/dev/null 2>&1 && "$new" demo new >/dev/null 2>&1)
listing() {
  (cd "$tmp/$1" && find exchange work -type f ! -name .high-water-mark ! -name .send-folder-seen -print0 | sort -z | xargs -0 sha256sum)
}
if diff <(listing old) <(listing new) >"$tmp/diff"; then
  echo "identical: $(listing new | wc -l) files"
else
  cat "$tmp/diff"
  exit 1
fi
