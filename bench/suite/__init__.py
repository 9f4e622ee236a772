# SPDX-License-Identifier: MIT
"""The workloads of bench/run, in the order they run: each is a module of
this package with run(b) (see common.py)."""
WORKLOADS = ["rawsql", "drain", "pickup", "delayed", "steady", "enqueue", "retained", "longtx", "memory"]
