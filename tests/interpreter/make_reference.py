"""Build step: runs workload.compute() with Debian's python3 and writes the JSON result.

    /usr/bin/python3 make_reference.py OUT.json
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workload  # noqa: E402

with open(sys.argv[1], "w") as f:
    json.dump(workload.compute(), f)
