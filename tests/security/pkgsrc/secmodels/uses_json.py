"""Imports an extern module (json) at import time."""
import json


def dumps(value):
    return json.dumps(value)
