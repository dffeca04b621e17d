/* A user's own native extension for the tests: a module-level C counter. Each
 * interpreter must get its own copy of this .so, so the counters are independent. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static long counter = 0; /* one per loaded copy of this library */

static PyObject* bump(PyObject* self, PyObject* args) {
  (void)self;
  (void)args;
  return PyLong_FromLong(++counter);
}

static PyMethodDef methods[] = {
    {"bump", bump, METH_NOARGS, "Increments and returns this copy's counter."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "pyfleet_counter", NULL, -1, methods};

PyMODINIT_FUNC PyInit_pyfleet_counter(void) { return PyModule_Create(&module); }
