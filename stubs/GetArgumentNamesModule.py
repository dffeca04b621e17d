"""Argument names of a Python callable, for pyfleet::PythonMethodWrapper.

Every InterpreterManager registers this file as module `GetArgumentNamesModule` (the
name torch::deploy used), so it is importable in each of its interpreters:

    >>> import GetArgumentNamesModule
    >>> GetArgumentNamesModule.getArgumentNames(lambda x, y=1: x)
    ['x', 'y']
"""

import inspect


def getArgumentNames(function):
    """The names of `function`'s parameters in order (a bound method's `self` is not
    one), or None when it takes none."""
    names = list(inspect.signature(function).parameters)
    return names or None
