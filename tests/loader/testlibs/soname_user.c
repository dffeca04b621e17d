/* Needs libpyfleet_test_soname_target.so (found through DT_RPATH $ORIGIN) and libz.so.1,
 * and tells which loaded objects its references bound to. */
#include <zlib.h>

#define EXPORT __attribute__((visibility("default")))

int pyfleet_test_soname_target(void);

EXPORT const void* soname_user_target_function(void) { return (const void*)&pyfleet_test_soname_target; }
EXPORT const void* soname_user_zlib_function(void) { return (const void*)&zlibVersion; }
