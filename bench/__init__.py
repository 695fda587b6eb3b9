"""Benchmarks for the helpdesk: `python -m bench` (see bench/README.md). Not tests: never collected by pytest."""
