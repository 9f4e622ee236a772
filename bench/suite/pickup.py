# SPDX-License-Identifier: MIT
"""Pickup latency on an idle system: single no-op jobs, one at a time,
enqueue -> started. jobwheel's times come from the database clock
(created_at, started_at); graphile-worker's from its own process clock
around add_job (its jobs are deleted when done).

Next to them, the machine's floor: bench/pickup_floor.c does what any
LISTEN/NOTIFY queue must do at the least (commit INSERT + NOTIFY, wake a
listening process, one UPDATE), with no queue around it."""
import subprocess
import time

from .common import BUILD, GW, latency_summary, log
from .latency_common import cluster, keep_samples, lateness_ms, wait_started

FIGURE = "enqueue -> start, idle system"
FLOOR = "raw SQL floor (C: INSERT+NOTIFY, LISTEN, UPDATE)"
GAP_MS = 20  # about the pause between jobwheel's jobs: its 10 ms poll for started, then 10 ms


def jobwheel(b, n):
    with cluster(b, "jw_pickup") as conn:
        ids = []
        for _ in range(n):
            ids.append(conn.execute("SELECT jobwheel.enqueue('noop')").fetchone()[0])
            wait_started(b, conn, 10, interval=0.01)
            time.sleep(0.01)
        return lateness_ms(conn, ids, "created_at")


def floor(b, n):
    out = subprocess.run([f"{BUILD}/bench/pickup_floor", b.fresh_db("floor_pickup", jobwheel=False), str(n),
                          str(GAP_MS)], check=True, capture_output=True, text=True).stdout
    return [float(x) for x in out.split()]


def run(b):
    n = 100 if b.short else 300
    for rep in range(b.reps):
        log(f"bench: pickup, run {rep + 1} of {b.reps}")
        jw = jobwheel(b, n)
        b.record("pickup", "jobwheel", FIGURE, latency_summary(jw), "ms")
        gw = b.peer("gw_pickup.mjs", b.fresh_db("gw_pickup", jobwheel=False), N=n)["pickup_ms"]
        b.record("pickup", GW, FIGURE, latency_summary(gw), "ms")
        fl = floor(b, n)
        b.record("pickup", FLOOR, FIGURE, latency_summary(fl), "ms")
    keep_samples(b, "pickup_jobwheel", jw)
    keep_samples(b, "pickup_graphile-worker", gw)
    keep_samples(b, "pickup_floor", fl)
