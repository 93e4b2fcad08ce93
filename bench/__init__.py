"""Benchmarks: what a reconcile pass costs and how that grows, helper verb latency, convergence.

Figures are printed and written to docs/performance.md and docs/performance.png; nothing here
asserts on time (see docs/performance.md for how each figure is measured)."""
