#!/usr/bin/env bash
# hilander cluster --save-state and hilander assign: the flow, stable ids, both policies,
# repeated assigns, models, and one-line errors with exit code 2 for bad input.
# Usage: test_assign.sh HILANDER_BINARY PROJECT_DIR
set -uo pipefail
bin=$1
root=$2
data=$root/tests/cli/data
tmp=$(mktemp -d /tmp/hltest.assign.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect CODE "substring-of-stderr" ARGS...: exit code, one stderr line containing the text.
expect() {
  local code=$1 text=$2
  shift 2
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ "$rc" -eq "$code" ] || { fail "hilander $*: exit $rc, want $code ($(head -c 300 "$tmp/err"))"; return; }
  if [ -n "$text" ]; then
    grep -qF -- "$text" "$tmp/err" || fail "hilander $*: stderr lacks '$text': $(cat "$tmp/err")"
    [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "hilander $*: error is not one line: $(cat "$tmp/err")"
  fi
}

# npy helpers (perl, no numpy): rows FIRST..FIRST+COUNT-1 of a (300, 16) float32 file, with
# the shape in the 128-byte header rewritten; negated rows (points far from every blob);
# int32 values of a 1-D file; two int32 files concatenated.
rows() { # src dst first count
  perl -e 'open(F, "<:raw", $ARGV[0]) or die; local $/; my $b = <F>; my $h = substr($b, 0, 128);
    $h =~ s/\(300,/sprintf("(%3d,", $ARGV[3])/e or die "shape";
    open(O, ">:raw", $ARGV[1]) or die; print O $h, substr($b, 128 + $ARGV[2] * 64, $ARGV[3] * 64);' \
    "$1" "$2" "$3" "$4"
}
negate() { # src dst
  perl -e 'open(F, "<:raw", $ARGV[0]) or die; local $/; my $b = <F>;
    for (my $i = 128 + 3; $i < length($b); $i += 4) { substr($b, $i, 1) = chr(ord(substr($b, $i, 1)) ^ 0x80); }
    open(O, ">:raw", $ARGV[1]) or die; print O $b;' "$1" "$2"
}
ints() { perl -e 'open(F, "<:raw", $ARGV[0]) or die; local $/; my $b = <F>; my $hl = unpack("v", substr($b, 8, 2));
  print join(" ", unpack("l<*", substr($b, 10 + $hl))), "\n";' "$1"; }
concat() { # a b dst (1-D int32 .npy written by hilander: 128-byte headers)
  perl -e 'sub rd { open(F, "<:raw", $_[0]) or die; local $/; my $b = <F>; return $b; }
    my ($a, $b) = (rd($ARGV[0]), rd($ARGV[1])); my $n = (length($a) + length($b) - 256) / 4;
    my $h = substr($a, 0, 128); $h =~ s/\((\d+),\)/"(" . $n . ",)" . (" " x (length($1) - length($n)))/e or die;
    open(O, ">:raw", $ARGV[2]) or die; print O $h, substr($a, 128), substr($b, 128);' "$1" "$2" "$3"
}

rows "$data/blobs.features.npy" "$tmp/stored.npy" 0 200
rows "$data/blobs.features.npy" "$tmp/new.npy" 200 100
rows "$data/blobs.features.npy" "$tmp/new10.npy" 200 10
negate "$tmp/new.npy" "$tmp/far.npy"

# Help and argument errors.
expect 0 "" assign --help
grep -q "usage: hilander assign" "$tmp/out" || fail "assign --help lacks usage"
grep -q -- "--new-clusters" "$tmp/out" || fail "assign --help lacks --new-clusters"
expect 0 "" --help
grep -q "assign" "$tmp/out" || fail "--help does not list assign"
expect 2 "--state is required" assign --in "$tmp/new.npy" --out "$tmp/a.npy"
expect 2 "--new-clusters must be open or unassigned, got 'maybe'" assign --state x --in y \
  --out z --new-clusters maybe
expect 2 "--attach must be any or denser" assign --state x --in y --out z --attach all

# The model-free flow: cluster 200 points, assign the other 100 of the same blobs.
expect 0 "" cluster --in "$tmp/stored.npy" --out "$tmp/stored.labels.npy" --save-state "$tmp/s.hls" --quiet
[ -s "$tmp/s.hls" ] || fail "cluster --save-state wrote no state"
expect 0 "" assign --state "$tmp/s.hls" --in "$tmp/new.npy" --out "$tmp/a.npy" --scores-out "$tmp/sc.npy" \
  --update-state "$tmp/s2.hls" --threads 2
grep -q "assigned 100 points: 100 joined existing clusters, 0 new clusters, 0 unassigned; $tmp/s2.hls has 300 points" \
  "$tmp/err" || fail "assign summary: $(tail -1 "$tmp/err")"
[ "$(stat -c %s "$tmp/sc.npy")" -eq $((128 + 100 * 4)) ] || fail "scores file has the wrong size"
concat "$tmp/stored.labels.npy" "$tmp/a.npy" "$tmp/all.npy"
expect 0 "" eval --pred "$tmp/all.npy" --true "$data/blobs.labels.npy" --json
fp=$(sed -n 's/.*"fp": \([0-9.]*\).*/\1/p' "$tmp/out")
awk -v f="$fp" 'BEGIN { exit !(f > 0.9) }' || fail "stored + assigned Fp $fp <= 0.9"

# Repeating the assign on the updated state: the same points (now stored) get the same ids.
expect 0 "" assign --state "$tmp/s2.hls" --in "$tmp/new.npy" --out "$tmp/a2.npy" --quiet
cmp -s "$tmp/a.npy" "$tmp/a2.npy" || fail "re-assigning stored points changed their ids"
[ -s "$tmp/err" ] && fail "--quiet still wrote to stderr: $(cat "$tmp/err")"

# Far points: -1 with the unassigned policy (state unchanged), fresh ids with open.
max=$(ints "$tmp/stored.labels.npy" | tr ' ' '\n' | sort -n | tail -1)
expect 0 "" assign --state "$tmp/s2.hls" --in "$tmp/far.npy" --out "$tmp/f.npy" --new-clusters unassigned \
  --update-state "$tmp/s3.hls"
grep -q "0 joined existing clusters, 0 new clusters, 100 unassigned; $tmp/s3.hls has 300 points" "$tmp/err" ||
  fail "unassigned summary: $(cat "$tmp/err")"
[ "$(ints "$tmp/f.npy" | tr ' ' '\n' | sort -u)" = "-1" ] || fail "far points not all -1"
expect 0 "" assign --state "$tmp/s2.hls" --in "$tmp/far.npy" --out "$tmp/f2.npy" --update-state "$tmp/s2.hls"
grep -q "has 400 points" "$tmp/err" || fail "open policy did not add the far points: $(cat "$tmp/err")"
for v in $(ints "$tmp/f2.npy"); do
  [ "$v" -gt "$max" ] || { fail "new cluster id $v is not above $max"; break; }
done
# The stored points' ids are still those of the first clustering (and their duplicates join
# them: without a model the score is the similarity, highest for a duplicate).
expect 0 "" assign --state "$tmp/s2.hls" --in "$tmp/stored.npy" --out "$tmp/again.npy" --quiet
cmp -s "$tmp/again.npy" "$tmp/stored.labels.npy" || fail "stored ids changed after two updates"
expect 0 "" state-info --state "$tmp/s2.hls" --labels-out "$tmp/s2.labels.npy" --levels-out "$tmp/s2.levels.npy"
[ "$(ints "$tmp/s2.labels.npy")" = "$(ints "$tmp/stored.labels.npy") $(ints "$tmp/a.npy") $(ints "$tmp/f2.npy")" ] ||
  fail "state labels are not stored + assigned + far"

# Corrupt, truncated and foreign state files; bad new points.
printf 'not a state' >"$tmp/bad.hls"
expect 2 "$tmp/bad.hls: bad magic" assign --state "$tmp/bad.hls" --in "$tmp/new.npy" --out "$tmp/x.npy"
head -c 1000 "$tmp/s.hls" >"$tmp/trunc.hls"
expect 2 "truncated" assign --state "$tmp/trunc.hls" --in "$tmp/new.npy" --out "$tmp/x.npy"
cp "$tmp/s.hls" "$tmp/flip.hls"
printf '\x55' | dd of="$tmp/flip.hls" bs=1 seek=$(($(stat -c %s "$tmp/s.hls") - 100)) conv=notrunc 2>/dev/null
expect 2 "payload checksum mismatch" assign --state "$tmp/flip.hls" --in "$tmp/new.npy" --out "$tmp/x.npy"
expect 2 "$tmp/missing.hls" assign --state "$tmp/missing.hls" --in "$tmp/new.npy" --out "$tmp/x.npy"
expect 2 "bad magic: not a clustering state file" assign --state "$data/blobs.features.npy" \
  --in "$tmp/new.npy" --out "$tmp/x.npy"
expect 2 "the new points have dimension 8, the clustering 16" assign --state "$tmp/s.hls" \
  --in "$data/blobs8.features.npy" --out "$tmp/x.npy"
expect 2 "magic" assign --state "$tmp/s.hls" --in "$tmp/bad.hls" --out "$tmp/x.npy"
[ -e "$tmp/x.npy" ] && fail "a failed assign wrote its output"

# Models: the state remembers the model's checksum and refuses any other.
expect 0 "" train --kind universal --data "$data/blobs.features.npy" --labels "$data/blobs.labels.npy" \
  --epochs 2 --hidden 8 --n-conv 2 --tau 0.5 --out "$tmp/m1.hlm" --quiet --threads 1 --seed 1
expect 0 "" train --kind universal --data "$data/blobs.features.npy" --labels "$data/blobs.labels.npy" \
  --epochs 2 --hidden 8 --n-conv 2 --tau 0.5 --out "$tmp/m2.hlm" --quiet --threads 1 --seed 2
expect 0 "" cluster --in "$tmp/stored.npy" --model "$tmp/m1.hlm" --out "$tmp/ml.npy" --save-state "$tmp/sm.hls" --quiet
expect 0 "" assign --state "$tmp/sm.hls" --model "$tmp/m1.hlm" --in "$tmp/new.npy" --out "$tmp/ma.npy" \
  --update-state "$tmp/sm2.hls" --quiet
expect 0 "" state-info --state "$tmp/sm2.hls" --labels-out "$tmp/sm2.labels.npy"
grep -q "^points          300" "$tmp/out" || fail "state-info: $(cat "$tmp/out")"
grep -q "^model           'universal' (universal, crc32c:" "$tmp/out" || fail "state-info model: $(cat "$tmp/out")"
[ "$(ints "$tmp/sm2.labels.npy" | cut -d' ' -f1-200)" = "$(ints "$tmp/ml.npy")" ] ||
  fail "model state: stored points did not keep their ids"
[ "$(ints "$tmp/sm2.labels.npy" | cut -d' ' -f201-300)" = "$(ints "$tmp/ma.npy")" ] ||
  fail "model state: the assigned labels were not stored"
crc=$("$bin" model-info "$tmp/m1.hlm" | awk '/^checksum/ {print $2}')
expect 2 "was made with model 'universal' ($crc); pass that model file with --model" \
  assign --state "$tmp/sm.hls" --in "$tmp/new.npy" --out "$tmp/x.npy"
expect 2 "is not the model that made $tmp/sm.hls ('universal', $crc)" \
  assign --state "$tmp/sm.hls" --model "$tmp/m2.hlm" --in "$tmp/new.npy" --out "$tmp/x.npy"
expect 2 "was made without a model; use --model none" \
  assign --state "$tmp/s.hls" --model "$tmp/m1.hlm" --in "$tmp/new.npy" --out "$tmp/x.npy"
# Threads do not change the result.
expect 0 "" assign --state "$tmp/sm.hls" --model "$tmp/m1.hlm" --in "$tmp/new.npy" --out "$tmp/t1.npy" \
  --scores-out "$tmp/t1s.npy" --threads 1 --quiet
expect 0 "" assign --state "$tmp/sm.hls" --model "$tmp/m1.hlm" --in "$tmp/new.npy" --out "$tmp/t2.npy" \
  --scores-out "$tmp/t2s.npy" --threads 2 --quiet
cmp -s "$tmp/t1.npy" "$tmp/t2.npy" && cmp -s "$tmp/t1s.npy" "$tmp/t2s.npy" || fail "threads changed the result"
cmp -s "$tmp/t1.npy" "$tmp/ma.npy" || fail "assign is not deterministic"

if [ "$fails" -gt 0 ]; then
  echo "$fails failure(s)"
  exit 1
fi
echo "cli assign: all passed"
