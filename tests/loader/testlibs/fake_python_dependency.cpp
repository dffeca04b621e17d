// A library that depends on Python the way libtorch_python.so does: it has an undefined
// Py* symbol and an STB_GNU_UNIQUE symbol (the static local of an inline function).
#define EXPORT __attribute__((visibility("default")))

extern "C" void* PyLong_FromLong(long value);

inline int& uniqueCounter() {
  static int counter;  // g++ makes this STB_GNU_UNIQUE when it has default visibility
  return counter;
}

extern "C" EXPORT void* fake_dependency_python() { return PyLong_FromLong(1); }
extern "C" EXPORT int* fake_dependency_unique() { return &uniqueCounter(); }
