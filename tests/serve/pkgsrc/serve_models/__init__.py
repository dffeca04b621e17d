"""Models for pyfleet-serve's tests (tests/serve/make_serve_packages.py packages them)."""
