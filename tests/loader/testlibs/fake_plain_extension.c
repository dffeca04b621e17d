/* A fake extension module with no Python-dependent library: it needs a Py* symbol of
 * its interpreter, libz (process-global) and a helper library found only through
 * DT_RUNPATH $ORIGIN. */
#include <zlib.h>

#define EXPORT __attribute__((visibility("default")))

void* PyLong_FromLong(long value);
int pyfleet_test_origin_helper(void);

EXPORT void* fake_plain_extension_python(void) { return PyLong_FromLong(3); }
EXPORT const void* fake_plain_extension_zlib_function(void) { return (const void*)&zlibVersion; }
EXPORT int fake_plain_extension_helper(void) { return pyfleet_test_origin_helper(); }
