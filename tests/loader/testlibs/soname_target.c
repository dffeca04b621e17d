/* A library with a DT_SONAME that only soname_user needs and no test loads otherwise:
 * a private copy of it made first must not answer for that name
 * (Note [A copy is known only by its own path]). */
__attribute__((visibility("default"))) int pyfleet_test_soname_target(void) { return 11; }
