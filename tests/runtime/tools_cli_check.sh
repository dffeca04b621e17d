#!/usr/bin/env bash
# tools_cli_check.sh EXEC DEMO INSPECT BENCH PYTHON: every command-line tool's --help
# (exit 0, a "Usage:" line, the tool's own flags) and that a failure is a message and a
# non-zero exit, never an uncaught exception (runtime/tools/tool_main.h).
set -u
exec_tool="$1" demo="$2" inspect="$3" bench="$4" python="$5"
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check_help TOOL FLAG...: --help and -h exit 0 and print Usage and every FLAG.
check_help() {
  local tool="$1"; shift
  local name; name=$(basename "$tool")
  for h in --help -h; do
    out=$("$tool" "$h" 2>&1)
    rc=$?
    [ $rc -eq 0 ] || fail "$name $h: exit status $rc, want 0: $out"
    echo "$out" | grep -q "^Usage: $name " || fail "$name $h: no 'Usage: $name' line in: $out"
    echo "$out" | grep -q "No flags matched" && fail "$name $h: absl matched no flags: $out"
    for flag in "$@"; do
      echo "$out" | grep -q -- "  $flag\b" || fail "$name $h: flag $flag not listed in: $out"
    done
  done
}
check_help "$exec_tool" --interpreters --code --help
check_help "$demo" --package --interpreters --seconds --help
check_help "$inspect" --include --exclude --json --help
check_help "$bench" --max_interpreters --repeats --py_iterations --torch_iterations --host_calls \
  --python_objects --help

# A package the demo cannot serve: model/example.pkl is a tuple, not the input tensor.
cat > "$tmp/make_bad.py" <<'PY'
import sys
import torch
from torch.package import PackageExporter
with PackageExporter(sys.argv[1]) as e:
    e.extern("torch.**")
    e.save_pickle("model", "model.pkl", torch.nn.Linear(2, 2))
    e.save_pickle("model", "example.pkl", (torch.ones(1, 2), torch.ones(1, 2)))
PY
PYTHONDONTWRITEBYTECODE=1 "$python" "$tmp/make_bad.py" "$tmp/tuple_example.pt" || fail "could not write the package"
err=$("$demo" --package "$tmp/tuple_example.pt" --interpreters 2 --seconds 0.2 2>&1 >/dev/null)
rc=$?
[ $rc -eq 1 ] || fail "pyfleet-demo on a tuple example: exit status $rc, want 1: $err"
echo "$err" | grep -q "terminate called" && fail "pyfleet-demo died of an uncaught exception: $err"
echo "$err" | grep -q "^pyfleet-demo: error: pyfleet::Error: INVALID_ARGUMENT: builtins.TypeError: " ||
  fail "no 'pyfleet-demo: error: pyfleet::Error: INVALID_ARGUMENT: builtins.TypeError' in: $err"
echo "$err" | grep -q "model/example.pkl must hold the model's input tensor, got tuple" ||
  fail "the error does not say what is wrong: $err"
echo "$err" | grep -q "^Traceback (most recent call last):" || fail "no Python traceback in: $err"

# An example the model cannot take: the error is raised on the throughput threads and
# must reach the main thread, not std::terminate.
cat > "$tmp/make_mismatch.py" <<'PY'
import sys
import torch
from torch.package import PackageExporter
with PackageExporter(sys.argv[1]) as e:
    e.extern("torch.**")
    e.save_pickle("model", "model.pkl", torch.nn.Linear(2, 2))
    e.save_pickle("model", "example.pkl", torch.ones(1, 3))
PY
PYTHONDONTWRITEBYTECODE=1 "$python" "$tmp/make_mismatch.py" "$tmp/mismatch.pt" || fail "could not write the package"
err=$("$demo" --package "$tmp/mismatch.pt" --interpreters 2 --seconds 0.2 2>&1 >/dev/null)
rc=$?
[ $rc -eq 1 ] || fail "pyfleet-demo on a mismatched example: exit status $rc, want 1: $err"
echo "$err" | grep -q "terminate called" && fail "pyfleet-demo died of an uncaught exception: $err"
echo "$err" | grep -q "^pyfleet-demo: error: pyfleet::Error: UNKNOWN: builtins.RuntimeError: .*mat1 and mat2 shapes cannot be multiplied (1x3 and 2x2)" ||
  fail "no RuntimeError from the worker threads in: $err"

# A package that does not exist: the host's own error, reported the same way.
err=$("$demo" --package "$tmp/missing.pt" --interpreters 1 2>&1 >/dev/null)
rc=$?
[ $rc -eq 1 ] || fail "pyfleet-demo on a missing package: exit status $rc, want 1: $err"
echo "$err" | grep -q "^pyfleet-demo: error: pyfleet::Error: NOT_FOUND: .*$tmp/missing.pt" ||
  fail "no NOT_FOUND naming the file in: $err"

# Usage errors are not exceptions either.
err=$("$demo" --interpreters 0 2>&1 >/dev/null)
rc=$?
[ $rc -eq 1 ] || fail "pyfleet-demo --interpreters 0: exit status $rc, want 1: $err"
echo "$err" | grep -q "^pyfleet-demo: error: pyfleet::Error: INVALID_ARGUMENT: --interpreters must be 1..64" ||
  fail "pyfleet-demo --interpreters 0: $err"
echo "tools: all checks passed"
