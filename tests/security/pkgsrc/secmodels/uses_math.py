"""Imports an extern module (math) at import time."""
import math


def hypot(a, b):
    return math.hypot(a, b)
