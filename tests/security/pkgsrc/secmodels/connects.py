"""Opens a TCP connection at import time, to the port in $PYFLEET_SECURITY_PORT."""
import os
import socket

with socket.create_connection(("127.0.0.1", int(os.environ["PYFLEET_SECURITY_PORT"])), timeout=10):
    CONNECTED = True
