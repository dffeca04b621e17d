"""Writes a file at import time: the path in $PYFLEET_SECURITY_WRITE_PATH."""
import os

with open(os.environ["PYFLEET_SECURITY_WRITE_PATH"], "w") as f:
    f.write("written by a package\n")
WROTE = True
