/* Found by fake_plain_extension through DT_RUNPATH $ORIGIN only. */
__attribute__((visibility("default"))) int pyfleet_test_origin_helper(void) { return 42; }
