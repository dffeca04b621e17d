"""Starts a process at import time."""
import subprocess

RETURNCODE = subprocess.run(["/bin/true"]).returncode
