# SPDX-License-Identifier: MIT
"""What the latency workloads share: a jobwheel cluster (one coordinator,
two workers x 64) on a fresh database, latencies read from the database
clock, and the samples of the last run kept for the plots."""
import contextlib
import os

import psycopg


@contextlib.contextmanager
def cluster(b, name, timer="wheel", *coordinator_args):
    """Yields an autocommit connection to a fresh database with one
    coordinator (--timer) and two workers running and registered."""
    url = b.fresh_db(name)
    procs = [b.spawn("coordinator/jobwheel-coordinator", url, "--timer", timer, *coordinator_args)]
    procs += [b.spawn("worker/jobwheel-worker", url, "--concurrency", "64") for _ in range(2)]
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            b.wait_until(conn, "SELECT count(*) > 0 FROM jobwheel.leader", 30)
            b.wait_until(conn, "SELECT count(*) >= 2 FROM jobwheel.workers WHERE state = 'active'", 30)
            yield conn
    finally:
        b.stop(procs)


def wait_started(b, conn, timeout, interval=0.05):
    """Waits until no job is left to start. A poll must not load the server
    it measures: two partial-index probes."""
    b.wait_until(conn, "SELECT NOT (EXISTS (SELECT 1 FROM jobwheel.jobs WHERE state = 'scheduled')"
                       " OR EXISTS (SELECT 1 FROM jobwheel.jobs WHERE state = 'ready'))", timeout, interval)


def lateness_ms(conn, ids, since="run_at"):
    """started_at - since (run_at or created_at) of each job, in ms."""
    return [float(r[0]) for r in conn.execute(
        f"SELECT extract(epoch FROM started_at - {since}) * 1000 FROM jobwheel.jobs WHERE id = ANY(%s)", (ids,))]


def keep_samples(b, name, values):
    """Writes the samples of one run to OUT/NAME.txt (one ms value a line) for the plots."""
    os.makedirs(b.out, exist_ok=True)
    with open(os.path.join(b.out, name + ".txt"), "w") as f:
        f.writelines(f"{v:.3f}\n" for v in sorted(values))
