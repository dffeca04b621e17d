/* Stands in for the interpreter library in loader tests: it defines one Py* symbol, and
 * every private copy has its own `pyfleet_fake_interpreter_marker`, so a caller can tell
 * which copy a Py* reference bound to. */
#define EXPORT __attribute__((visibility("default")))

EXPORT int pyfleet_fake_interpreter_marker;

/* Returns the address of this copy's marker (a real CPython would return a PyLong). */
EXPORT void* PyLong_FromLong(long value) {
  (void)value;
  return &pyfleet_fake_interpreter_marker;
}
