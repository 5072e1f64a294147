#!/bin/sh
# SPDX-License-Identifier: MIT
# `waygate convert`: the seed's v1alpha1 manifests become the expected v1
# YAML; invalid input fails with exit code 2 and errors naming the file, the
# object and the field, and prints nothing on stdout.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${WAYGATE_BIN:-$here/../../../build/waygate}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$bin" convert "$here/convert/seed-v1alpha1.yaml" >"$tmp/out.yaml" 2>"$tmp/err" ||
	fail "convert of the seed failed: $(cat "$tmp/err")"
diff -u "$here/convert/seed-v1.yaml" "$tmp/out.yaml" || fail "seed output differs"
echo "ok: seed converted as expected"

# stdin works too
"$bin" convert - <"$here/convert/seed-v1alpha1.yaml" >"$tmp/out2.yaml" 2>/dev/null &&
	cmp -s "$tmp/out.yaml" "$tmp/out2.yaml" || fail "convert - (stdin) differs"
echo "ok: stdin"

# the converted output converts to itself (v1 passes through)
"$bin" convert "$tmp/out.yaml" >"$tmp/out3.yaml" 2>/dev/null &&
	cmp -s "$tmp/out.yaml" "$tmp/out3.yaml" || fail "v1 input is not passed through unchanged"
echo "ok: v1 passes through"

"$bin" convert "$here/convert/bad-v1alpha1.yaml" >"$tmp/bad.out" 2>"$tmp/bad.err"
rc=$?
[ "$rc" -eq 2 ] || fail "invalid input: exit code $rc, want 2"
[ -s "$tmp/bad.out" ] && fail "invalid input: something was printed on stdout"
grep -q "bad-v1alpha1.yaml: HTTPRoute team/broken: spec.rules: line 10: forwardTo\[0\] needs serviceName or backendRef" "$tmp/bad.err" ||
	fail "missing serviceName not reported as expected: $(cat "$tmp/bad.err")"
grep -q "Frobnicator f: kind: .*not a kind this command converts" "$tmp/bad.err" ||
	fail "unknown kind not reported: $(cat "$tmp/bad.err")"
echo "ok: invalid input reported (exit 2)"

"$bin" convert "$tmp/nosuch.yaml" 2>"$tmp/e" && fail "missing file accepted"
grep -q "nosuch.yaml" "$tmp/e" || fail "missing file not named"
echo "ok: missing file"
echo PASS
