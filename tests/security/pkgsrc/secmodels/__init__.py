"""Modules packaged by tests/security/make_security_packages.py (stock PackageExporter)."""
