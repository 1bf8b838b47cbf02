#!/usr/bin/env bash
# Blueshift demo: two devices on this machine, one share, sync both ways.
#
#   ./cmd/demo/demo.sh bin/blueshift
#
# Creates devices "alice" and "bob" in temporary homes, generates a folder on
# alice, shares it, joins it on bob with the invite link, shows the files
# arriving, then times an edit on alice reaching bob and one on bob reaching
# alice, and checks that the trees are identical. Cleans up its processes and
# folders; exits non-zero if anything is off.
set -euo pipefail

BIN=${1:?usage: demo.sh PATH-TO-blueshift}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
[ -x "$BIN" ] || { echo "demo: $BIN is not an executable (run make build)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/blueshift-demo.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
A=$WORK/alice B=$WORK/bob
FA=$WORK/alice-folder FB=$WORK/bob-folder

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() {
	printf '\033[31mdemo FAILED: %s\033[0m\n' "$*" >&2
	for d in alice bob; do echo "--- $d log (last 20 lines)" >&2; tail -20 "$WORK/$d.log" >&2 || true; done
	exit 1
}
now() { date +%s%N; }
ms()  { echo $(( ($(now) - $1) / 1000000 )); }
# wait_for SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
	local until=$(( $(date +%s) + $1 )); shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$until" ] || return 1
		sleep 0.02
	done
}
same_tree() { diff -r --exclude=.blueshift "$FA" "$FB"; }
has() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
running() { "$BIN" --home "$1" status --json | tr -d ' \n' | grep -q '"listen":"[^"]'; }
connected() { "$BIN" --home "$1" status --json | tr -d ' \n' | grep -q '"connected":true'; }

say "1. Two devices, each with its own home: blueshift init"
echo "   alice: $("$BIN" --home "$A" init --name alice 2>/dev/null)"
echo "   bob:   $("$BIN" --home "$B" init --name bob 2>/dev/null)"

say "2. A folder on alice: 300 small files and 4 bigger ones (~20 MiB)"
mkdir -p "$FA/notes" "$FA/media"
for i in $(seq 1 300); do echo "note $i: $(head -c 24 /dev/urandom | base64)" > "$FA/notes/n$i.txt"; done
for i in 1 2 3 4; do head -c $((5 << 20)) /dev/urandom > "$FA/media/clip$i.bin"; done
echo "   $(find "$FA" -type f | wc -l) files, $(du -sh "$FA" | cut -f1)"

say "3. alice shares it; both daemons start (blueshift run, a free port each)"
SHARE=$("$BIN" --home "$A" share add "$FA" --name demo 2>/dev/null)
echo "   share $SHARE"
# Loopback only, and no LAN discovery: the demo sends nothing through a real
# network interface.
"$BIN" --home "$A" run --listen 127.0.0.1:0 --no-discovery 2>"$WORK/alice.log" & PIDS+=($!)
"$BIN" --home "$B" run --listen 127.0.0.1:0 --no-discovery --ui off 2>"$WORK/bob.log" & PIDS+=($!)
# `status` also answers with no daemon (from the config); a listen address
# in --json means the daemon itself answered.
wait_for 10 running "$A" || fail "alice's daemon did not start"
wait_for 10 running "$B" || fail "bob's daemon did not start"

say "4. alice: blueshift invite demo  ->  bob: blueshift join LINK PATH"
INVITE=$("$BIN" --home "$A" invite demo --single-use 2>/dev/null) # line 1: the link, line 2: a short code
LINK=$(sed -n 1p <<<"$INVITE")
echo "   $LINK" | cut -c1-100 | sed 's/$/…/'
echo "   short code for the same invitation: $(sed -n 2p <<<"$INVITE") (blueshift join CODE PATH, on the LAN)"
T0=$(now)
"$BIN" --home "$B" join "$LINK" "$FB" >/dev/null 2>&1 || fail "join failed"
wait_for 20 connected "$B" || fail "bob did not connect to alice"
echo "   paired and connected after $(ms "$T0") ms"

say "5. The files arrive on bob (blueshift status --watch)"
timeout 60 "$BIN" --home "$B" status --watch || true
wait_for 40 same_tree || fail "the folders differ after the first sync"
echo "   all $(find "$FB" -path "$FB/.blueshift" -prune -o -type f -print | wc -l) files on bob, $(ms "$T0") ms after join"

say "6. An edit on alice reaches bob"
T0=$(now)
echo "edited on alice at $(date +%T.%N)" > "$FA/notes/n1.txt"
wait_for 20 has "$FB/notes/n1.txt" "$(cat "$FA/notes/n1.txt")" || fail "alice's edit did not reach bob"
echo "   notes/n1.txt on bob after $(ms "$T0") ms"

say "7. An edit on bob reaches alice"
T0=$(now)
echo "written on bob at $(date +%T.%N)" > "$FB/from-bob.txt"
wait_for 20 has "$FA/from-bob.txt" "$(cat "$FB/from-bob.txt")" || fail "bob's edit did not reach alice"
echo "   from-bob.txt on alice after $(ms "$T0") ms"

say "8. The trees are identical"
wait_for 20 same_tree || { same_tree; fail "the trees differ"; }
echo "   diff -r: no differences ($(find "$FA" -path "$FA/.blueshift" -prune -o -type f -print | wc -l) files)"
"$BIN" --home "$B" status | sed 's/^/   /'

printf '\n\033[32mdemo OK\033[0m\n'
