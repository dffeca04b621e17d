#!/usr/bin/env bash
# library_dir_check.sh TEST INTERPRETER_LIBRARY: runs library_dir_test (TEST) in a private
# mount namespace with four small tmpfs mounts for $PYFLEET_TMPDIR: read-only, 1 MiB (no
# room for the interpreter library), the interpreter library's size + 1 MiB (no room for
# libtorch_python's copy) and noexec; their paths go to the test as
# PYFLEET_FAULT_{RO,TINY,SMALL,NOEXEC}_DIR. As root `unshare -m` suffices, otherwise a user
# namespace (`unshare -rm`); if neither is allowed the test runs without the mounts and
# skips those cases.
set -euo pipefail
if [ "${1:-}" = --inside ]; then
  test=$2 lib=$3 base=$4
  small_kb=$(( $(stat -L -c %s "$lib") / 1024 + 1024 ))
  mount -t tmpfs -o size=1m pyfleet-fault-tiny "$base/tiny"
  mount -t tmpfs -o "size=${small_kb}k" pyfleet-fault-small "$base/small"
  mount -t tmpfs -o size=1m,ro pyfleet-fault-ro "$base/ro"
  mount -t tmpfs -o size=64m,noexec pyfleet-fault-noexec "$base/noexec"
  PYFLEET_FAULT_TINY_DIR="$base/tiny" PYFLEET_FAULT_SMALL_DIR="$base/small" \
    PYFLEET_FAULT_RO_DIR="$base/ro" PYFLEET_FAULT_NOEXEC_DIR="$base/noexec" exec "$test"
fi
test=$1 lib=$2
base="$(mktemp -d)"
trap 'rm -rf "$base"' EXIT
mkdir "$base/tiny" "$base/small" "$base/ro" "$base/noexec"
if unshare -m true 2>/dev/null; then
  unshare -m "$0" --inside "$test" "$lib" "$base"
elif unshare -rm true 2>/dev/null; then
  unshare -rm "$0" --inside "$test" "$lib" "$base"
else
  echo "library_dir_check.sh: no mount namespace allowed here; the mount cases are skipped" >&2
  "$test"
fi
