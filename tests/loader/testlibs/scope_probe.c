/* Stands for a library loaded RTLD_GLOBAL or RTLD_LOCAL in global_scope_test.cpp; the
 * exported name is chosen per target (PYFLEET_SCOPE_PROBE). */
__attribute__((visibility("default"))) int PYFLEET_SCOPE_PROBE = 1;
