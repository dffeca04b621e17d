/* A fake extension module that needs the fake Python-dependent library (found through
 * DT_RUNPATH $ORIGIN) and a Py* symbol of its interpreter. Built twice (two "modules"). */
#define EXPORT __attribute__((visibility("default")))

void* PyLong_FromLong(long value);
void* fake_dependency_python(void);
int* fake_dependency_unique(void);

EXPORT void* fake_extension_python(void) { return PyLong_FromLong(2); }
EXPORT void* fake_extension_dependency_python(void) { return fake_dependency_python(); }
EXPORT int* fake_extension_dependency_unique(void) { return fake_dependency_unique(); }
