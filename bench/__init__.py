"""Benchmarks of the bridge (issue 7); see bench/README.md. Not part of the package."""
