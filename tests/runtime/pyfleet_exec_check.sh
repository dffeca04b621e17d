#!/usr/bin/env bash
# pyfleet_exec_check.sh PYFLEET_EXEC: checks pyfleet-exec's contract on real interpreters.
set -u
exe="$1"
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every interpreter runs the code; output lines carry the interpreter's index.
out=$("$exe" --interpreters 3 --code 'import torch, json, sys; print("sum", int(torch.ones(4).sum())); print("exe", sys.executable)' 2>/dev/null)
rc=$?
[ $rc -eq 0 ] || fail "exit status $rc for code that succeeds"
for i in 0 1 2; do
  echo "$out" | grep -qx "\[$i\] sum 4" || fail "no '[$i] sum 4' in: $out"
  echo "$out" | grep -qx "\[$i\] exe torch_deploy" || fail "no '[$i] exe torch_deploy' in: $out"
done

# A script file; an exception in one interpreter: non-zero exit, its traceback prefixed,
# the others still finish.
cat > "$tmp/script.py" <<'PY'
import sys
marker = sys.argv[0]
def boom():
    raise ValueError("bad value 7")
print("ran", marker.endswith("script.py"))
if __import__("ctypes").pythonapi.Py_IsInitialized() != 1:
    raise SystemError("ctypes.pythonapi is not this interpreter's CPython")
boom()
PY
out=$("$exe" --interpreters 2 "$tmp/script.py" 2>&1)
rc=$?
[ $rc -eq 1 ] || fail "exit status $rc, want 1, when the code raises"
echo "$out" | grep -qx "\[0\] ran True" || fail "no '[0] ran True' in: $out"
echo "$out" | grep -q "^\[1\] ValueError: bad value 7" || fail "no prefixed ValueError in: $out"
echo "$out" | grep -q "^\[0\] Traceback (most recent call last):" || fail "no prefixed traceback in: $out"
echo "$out" | grep -q "script.py\", line 4, in boom" || fail "traceback does not name the script line: $out"

# Usage errors.
"$exe" --interpreters 0 --code 'pass' >/dev/null 2>&1; [ $? -eq 2 ] || fail "--interpreters 0 is not a usage error"
"$exe" --interpreters 1 >/dev/null 2>&1; [ $? -eq 2 ] || fail "no code is not a usage error"
"$exe" --interpreters 1 "$tmp/missing.py" >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing file is not a usage error"
echo "pyfleet-exec: all checks passed"
