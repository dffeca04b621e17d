"""The example models pyfleet's benchmarks and demo package (make_example_packages.py)."""
