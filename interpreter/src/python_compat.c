/* File: python_compat.c — see python_compat.h. C, not C++: CPython's internal headers
   are written for its own C sources (Py_BUILD_CORE), and the library embeds that very
   CPython statically, so the internal functions and inline helpers are the ones that
   run. */
#define Py_BUILD_CORE 1
#include <Python.h>
#include "internal/pycore_ceval.h"

#include "interpreter/src/python_compat.h"

void pyfleet_signal_async_exc(PyThreadState* ts) {
#if PY_VERSION_HEX >= 0x030D0000
  _Py_set_eval_breaker_bit(ts, _PY_ASYNC_EXCEPTION_BIT);
#else
  _PyEval_SignalAsyncExc(ts->interp);
#endif
}

#ifdef PYFLEET_STANDIN_SHA2
/* The built-in _sha2 that the inittab names, for an archive whose sha2module.o had to be
   left out: Note [An archive without HACL's SHA-2] in third_party/dependencies.cmake. */
PyMODINIT_FUNC PyInit__sha2(void) {
  PyErr_SetString(PyExc_ImportError,
                  "_sha2 is not available in pyfleet interpreters on this platform (the CPython "
                  "archive lacks HACL's SHA-2); hashlib's sha224/256/384/512 use OpenSSL");
  return NULL;
}
#endif
