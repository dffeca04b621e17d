"""A pickle payload: unpickling an Evil runs os.system (the classic pickle attack).

The command creates the file named by $PYFLEET_SECURITY_MARKER, so a test can tell
whether it ran. Pickled, an Evil is the global posix.system called with the command:
this module itself is not needed to unpickle it.
"""
import os


class Evil:
    def __reduce__(self):
        return (os.system, ('touch "$PYFLEET_SECURITY_MARKER"',))
