#!/usr/bin/env bash
# check_exports.sh HOST_LIB HOST_EXE INTERPRETER_LIB
# Fails if the host library or executable exports any Py*/_Py* symbol, or if the
# interpreter library exports anything but pyfleet_interpreter_abi, pyfleet_redirect_* and
# Py*/_Py*.
set -euo pipefail
host_py=$(nm -D --defined-only "$1" "$2" | awk '{print $3}' | grep -E '^_?Py' || true)
if [ -n "$host_py" ]; then echo "host exports CPython symbols:"; echo "$host_py" | head; exit 1; fi
if nm -D --undefined-only "$1" | awk '{print $2}' | grep -qE '^_?Py'; then
  echo "host library needs CPython symbols"; exit 1
fi
# ... and the redirect targets of Note [Redirected references] (loader/library_loader.h).
extra=$(nm -D --defined-only "$3" | awk '{print $3}' | grep -vE '^_?Py' | grep -v '^pyfleet_interpreter_abi$' |
        grep -v '^pyfleet_redirect_' || true)
if [ -n "$extra" ]; then echo "interpreter library exports more than its ABI:"; echo "$extra" | head; exit 1; fi
nm -D --defined-only "$3" | awk '{print $3}' | grep -qx pyfleet_interpreter_abi || { echo "no pyfleet_interpreter_abi"; exit 1; }
echo "exports OK: host has no Py* symbol; interpreter library exports its ABI and CPython only"
