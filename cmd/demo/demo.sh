#!/usr/bin/env bash
# Blueshift interim demo: the content-addressed index.
#
#   ./cmd/demo/demo.sh bin/blueshift
#
# Generates a folder, prints its Merkle root, edits one byte in the middle of
# a big file, shows which chunks changed and the new root, then undoes the
# edit and shows the root comes back. Exits non-zero if anything is off.
# (Until the daemon lands; the two-device demo replaces this.)
set -euo pipefail

BIN=${1:?usage: demo.sh PATH-TO-blueshift}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
[ -x "$BIN" ] || { echo "demo: $BIN is not an executable (run make build)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/blueshift-demo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
DIR=$WORK/folder

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { printf '\033[31mdemo FAILED: %s\033[0m\n' "$*" >&2; exit 1; }
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }

say "1. A folder: some notes, a source tree and a 32 MiB file"
mkdir -p "$DIR/notes" "$DIR/src/pkg"
for i in 1 2 3 4 5; do echo "note $i: the quick brown fox" > "$DIR/notes/note$i.txt"; done
printf 'package pkg\n\nfunc F() int { return 42 }\n' > "$DIR/src/pkg/f.go"
printf '*.tmp\n' > "$DIR/.blueshiftignore"
echo "scratch, ignored" > "$DIR/scratch.tmp"
head -c $((32 << 20)) /dev/urandom > "$DIR/big.bin"
(cd "$DIR" && find . -type f | sort | sed 's/^/   /')

say "2. blueshift inspect root: scan into a throw-away index, print the Merkle root"
OUT=$("$BIN" inspect root "$DIR")
echo "   $OUT"
ROOT1=$(echo "$OUT" | field root)
N1=$(echo "$OUT" | field records)
[ ${#ROOT1} -eq 64 ] || fail "no root in: $OUT"
# 5 notes + f.go + big.bin + .blueshiftignore + notes/ src/ src/pkg/ = 11; scratch.tmp is ignored
[ "$N1" -eq 11 ] || fail "expected 11 records, got $N1"
[ -z "$(find "$DIR" -name '.blueshift*' ! -name .blueshiftignore)" ] || fail "inspect wrote inside the folder"
echo "   11 records (scratch.tmp is ignored by .blueshiftignore); nothing was written inside the folder"

say "3. Same tree, same root: scanning again"
ROOT1b=$("$BIN" inspect root "$DIR" | field root)
[ "$ROOT1" = "$ROOT1b" ] || fail "two scans of one tree gave different roots"
echo "   $ROOT1b  (identical)"

say "4. blueshift inspect chunks big.bin: content-defined chunks"
"$BIN" inspect chunks "$DIR/big.bin" > "$WORK/before.jsonl"
NCH=$(wc -l < "$WORK/before.jsonl")
echo "   $NCH chunks; the first three:"
head -3 "$WORK/before.jsonl" | sed 's/^/   /'

say "5. Edit ONE byte in the middle of big.bin (offset 16 MiB)"
OFF=$((16 << 20))
touch -r "$DIR/big.bin" "$WORK/mtime.ref"
OLD=$(dd if="$DIR/big.bin" bs=1 skip=$OFF count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
NEW=$(( (OLD + 1) % 256 ))
printf "\\$(printf %03o "$NEW")" | dd of="$DIR/big.bin" bs=1 seek=$OFF conv=notrunc 2>/dev/null
echo "   byte at $OFF: $OLD -> $NEW"
"$BIN" inspect chunks "$DIR/big.bin" > "$WORK/after.jsonl"
CHANGED=$(diff "$WORK/before.jsonl" "$WORK/after.jsonl" | grep -c '^>' || true)
echo "   chunks that changed (old < > new):"
diff "$WORK/before.jsonl" "$WORK/after.jsonl" | grep '^[<>]' | sed 's/^/   /' || true
echo "   $CHANGED of $NCH chunks changed; every other chunk keeps its hash and would not be sent"
[ "$CHANGED" -ge 1 ] && [ "$CHANGED" -le 2 ] || fail "a one-byte edit changed $CHANGED chunks (want 1-2)"

say "6. The new root"
OUT2=$("$BIN" inspect root "$DIR")
ROOT2=$(echo "$OUT2" | field root)
echo "   before: $ROOT1"
echo "   after:  $ROOT2"
[ "$ROOT2" != "$ROOT1" ] || fail "the root did not change after an edit"

say "7. Undo the edit (byte and mtime): the root comes back (history-independent)"
printf "\\$(printf %03o "$OLD")" | dd of="$DIR/big.bin" bs=1 seek=$OFF conv=notrunc 2>/dev/null
touch -r "$WORK/mtime.ref" "$DIR/big.bin"
ROOT3=$("$BIN" inspect root "$DIR" | field root)
echo "   $ROOT3"
[ "$ROOT3" = "$ROOT1" ] || fail "the root after undoing the edit differs from the original"

printf '\n\033[32mdemo OK\033[0m: one byte edited -> %s chunk(s) of %s changed; roots are a function of the tree.\n' "$CHANGED" "$NCH"
