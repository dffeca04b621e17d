#!/usr/bin/env bash
# exit_check.sh EXIT_TEST: runs it with a private PYFLEET_TMPDIR (where library copies
# are written) and TMPDIR; fails on a non-zero status, a hang (timeout) or any file left
# behind.
set -u
tmp=$(mktemp -d)
PYFLEET_TMPDIR="$tmp" TMPDIR="$tmp" timeout 120 "$1"
rc=$?
left=$(find "$tmp" -mindepth 1 | head)
rm -rf "$tmp"
if [ $rc -ne 0 ]; then echo "exit status $rc"; exit 1; fi
if [ -n "$left" ]; then echo "files left behind: $left"; exit 1; fi
echo "clean exit, nothing left behind"
