"""Models the host-API tests load from packages (tests/runtime/make_host_packages.py)."""
