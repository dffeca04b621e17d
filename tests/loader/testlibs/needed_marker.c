/* Loaded by no test except through a DT_NEEDED that an ELF edit added. */
__attribute__((visibility("default"))) int pyfleet_test_needed_marker(void) { return 7; }
