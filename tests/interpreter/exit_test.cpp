// Creates interpreters, imports torch in each, and returns from main with all of them
// alive. ctest (exit_check.sh) checks the exit status, that it ends in time, and that
// no file is left in $PYFLEET_TMPDIR (where library copies are written) or $TMPDIR.
#include <cstdio>

#include "pyfleet/interpreter.h"

int main() {
  auto libs = pyfleet::NativeLibraries::create();
  for (int i = 0; i < 2; ++i) {
    auto interp = pyfleet::Interpreter::create(libs);
    interp->run("import torch, numpy\nx = torch.ones(3)\nimport threading\n");
    interp.release();  // alive at exit, as a serving process leaves them
  }
  std::puts("exiting with 2 interpreters alive");
  return 0;
}
