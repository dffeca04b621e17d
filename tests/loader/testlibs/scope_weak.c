/* Defines symbols, but only weak ones: nothing firstExportedSymbol() could probe with. */
__attribute__((visibility("default"), weak)) int pyfleet_test_scope_weak_probe(void) { return 5; }
