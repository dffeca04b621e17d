"""Model code that fails in every way the fault tests (tests/faults) need.

Registered in every interpreter of a test's manager as module `fault_functions`
(InterpreterManager::registerModuleSource); functions are replicated by reference
(createMovable pickles a module-level function as its module and name).
"""
import os
import sys


def echo(x):
    return x


def add(a, b):
    return a + b


def raise_value_error(x):
    raise ValueError("bad input: %r" % (x,))


def raise_system_exit(code):
    sys.exit(code)


def raise_keyboard_interrupt():
    raise KeyboardInterrupt("interrupted by model code")


def exhaust_memory():
    # One allocation far beyond any machine (2**60 bytes): malloc returns NULL and
    # CPython raises MemoryError, leaving the heap as it was.
    return len(b"x" * (1 << 60))


def recurse_forever(depth=0):
    return recurse_forever(depth + 1) + 1


def recurse(depth):
    return 0 if depth == 0 else recurse(depth - 1) + 1


def spin():
    # Pure Python that never returns: only an interrupt (a call deadline) stops it.
    n = 0
    while True:
        n += 1


def spin_ignoring_interrupts(release_path):
    # Swallows every exception (the deadline's TimeoutError included) until the file
    # `release_path` exists: an interpreter that cannot be taken back by interrupting.
    while True:
        try:
            while not os.path.exists(release_path):
                pass
            return "released"
        except BaseException:
            pass


def pid():
    return os.getpid()
