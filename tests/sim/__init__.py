"""Deterministic whole-cluster simulator for the PBFT replica.

Entry points: `tests.sim.cluster.run_simulation` for one seed, and
scripts/simulate.py for many seeds in parallel.
"""
