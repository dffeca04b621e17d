#!/usr/bin/env bash
# Installs pyfleet from the build tree into a throwaway prefix, builds a user project
# against it with find_package(pyfleet), runs it on a real package, then builds the
# Debian package with cpack and checks its files and Depends.
#   install_check.sh BUILD_DIR USER_PROJECT_DIR PACKAGE.pt
# Environment: PYFLEET_EXT_SUFFIX (".cpython-311-x86_64-linux-gnu.so"), PYFLEET_EXPECTED_DEPENDS
# (the packages the .deb must depend on, space-separated); the ctest entry sets both.
set -euo pipefail
build="$(cd "$1" && pwd)" project="$2" package="$3"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$work/prefix" >/dev/null
for f in include/pyfleet/pyfleet.h include/pyfleet/torch_deploy.h lib/libpyfleet.so lib/libpyfleet_interpreter.so \
         lib/cmake/pyfleet/pyfleetConfig.cmake bin/pyfleet-exec bin/pyfleet-inspect \
         "lib/python3/dist-packages/pyfleet$PYFLEET_EXT_SUFFIX"; do
  [ -e "$work/prefix/$f" ] || fail "missing $f in the installed prefix"
done

cmake -S "$project" -B "$work/user" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null \
  || fail "configuring the user project against the prefix"
cmake --build "$work/user" >/dev/null || fail "building the user project"
out="$("$work/user/serve" "$package" 4 40)" || fail "the user's program failed: $out"
echo "$out"
echo "$out" | grep -q "answered 40 of 40 requests on 2 interpreters" || fail "unexpected output: $out"

# The installed tools run from the prefix (the interpreter library found beside libpyfleet.so).
"$work/prefix/bin/pyfleet-exec" --interpreters 1 --code 'import torch; print(torch.ones(2).sum().item())' \
  | grep -q "2.0" || fail "installed pyfleet-exec"
PYTHONPATH="$work/prefix/lib/python3/dist-packages" /usr/bin/python3 -c \
  "import pyfleet, sys; pyfleet.PackageImporter(sys.argv[1])" "$package" || fail "installed Python extension"

(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/deb" >/dev/null) || fail "cpack -G DEB"
deb="$(ls "$work"/deb/*.deb)"
depends="$(dpkg-deb -f "$deb" Depends)"
echo "Depends: $depends"
for p in $PYFLEET_EXPECTED_DEPENDS; do
  echo "$depends" | grep -q "$p" || fail "Depends lacks $p"
done
contents="$(dpkg-deb -c "$deb")"
for f in ./usr/lib/libpyfleet.so ./usr/lib/libpyfleet_interpreter.so ./usr/include/pyfleet/pyfleet.h \
         ./usr/lib/cmake/pyfleet/pyfleetConfig.cmake ./usr/bin/pyfleet-exec; do
  echo "$contents" | grep -q " $f\$" || fail "the .deb lacks $f"
done
echo "install_check: OK"
