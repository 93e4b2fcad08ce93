"""Emulated peers for the tests, the demo and the benchmarks: GitHub's REST API and a runner."""
