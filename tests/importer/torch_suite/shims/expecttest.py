"""Minimal stand-in for the `expecttest` PyPI package (not packaged by Debian 12).

torch.testing._internal.common_utils imports `expecttest` and subclasses
`expecttest.TestCase`; torch's test/package suite never calls assertExpectedInline, but the
import must succeed. run_torch_suite.py puts this folder on sys.path ONLY when the real
package is missing, and says so in its output.

    import expecttest
    class T(expecttest.TestCase):
        def test(self):
            self.assertExpectedInline("a\\nb", '''a
    b''')
"""
import textwrap
import unittest

# torch sets this from its --accept flag; accepting (rewriting test sources) is not supported.
ACCEPT = False


class TestCase(unittest.TestCase):
    longMessage = True

    def assertExpectedInline(self, actual, expect, skip=0):
        """Compares `actual` with the dedented `expect` (as expecttest does, minus --accept)."""
        if ACCEPT:
            raise NotImplementedError("expecttest shim: --accept (rewriting sources) is unsupported")
        expected = textwrap.dedent(expect)
        if expected.startswith("\n"):
            expected = expected[1:]
        self.assertMultiLineEqual(expected, actual)

    def assertExpectedRaisesInline(self, exc_type, callable, expect, *args, **kwargs):
        """Asserts `callable(*args, **kwargs)` raises `exc_type` whose str matches `expect`."""
        try:
            callable(*args, **kwargs)
        except exc_type as e:
            self.assertExpectedInline(str(e), expect, skip=1)
            return
        self.fail(f"Did not raise when expected to ({exc_type.__name__})")
