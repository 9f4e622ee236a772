#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Latency benchmarks of jobwheel, with graphile-worker's measured in the same run.

    bench/latency.py PGURL [--timer wheel|heap] [--delayed N] [--spread S] [--burst N] [--pickups N] [--peer]

PGURL names a server (postgresql://postgres@127.0.0.1:5432); database
jw_latency is created there afresh. Starts one jobwheel-coordinator and two
jobwheel-workers from JW_BUILD_DIR (default build/), then measures:
  pickup    enqueue -> started_at of single jobs on an idle system;
  delayed   run_at -> started_at of N jobs spread over S seconds;
  burst     run_at -> started_at of N jobs due in the same second.
Times come from the database (created_at, run_at, started_at: one clock).
--peer also runs ../shared/peers/gw_latency.mjs (graphile-worker) on its own
database on the same server (bench/peers must hold its npm install; see
bench/drain-vs-peers)."""
import argparse
import json
import os
import subprocess
import sys
import time

import psycopg

from jwbench import ROOT, fresh_database, spawn


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def summary(name, values):
    return {"figure": name, "n": len(values), "p50_ms": round(pct(values, 0.5), 2),
            "p99_ms": round(pct(values, 0.99), 2), "max_ms": round(max(values), 2)}


def wait_done(conn, ids, timeout, interval=0.05):
    """Waits until no job is left to start. The database holds only this
    benchmark's jobs, so the partial indexes answer cheaply: a poll must not
    load the server it measures."""
    deadline = time.monotonic() + timeout
    while conn.execute("SELECT EXISTS (SELECT 1 FROM jobwheel.jobs WHERE state = 'scheduled')"
                       " OR EXISTS (SELECT 1 FROM jobwheel.jobs WHERE state = 'ready')").fetchone()[0]:
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for jobs to start")
        time.sleep(interval)


def lateness(conn, ids, since="run_at"):
    return [float(r[0]) for r in conn.execute(
        f"SELECT extract(epoch FROM started_at - {since}) * 1000 FROM jobwheel.jobs WHERE id = ANY(%s)", (ids,))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--timer", default="wheel")
    ap.add_argument("--delayed", type=int, default=10000)
    ap.add_argument("--spread", type=float, default=60)
    ap.add_argument("--burst", type=int, default=50000)
    ap.add_argument("--pickups", type=int, default=300)
    ap.add_argument("--peer", action="store_true")
    a = ap.parse_args()

    url = fresh_database(a.url, "jw_latency")
    procs = [spawn("coordinator/jobwheel-coordinator", url, "--timer", a.timer)]
    procs += [spawn("worker/jobwheel-worker", url, "--concurrency", "64") for _ in range(2)]
    results = []
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            while not conn.execute("SELECT count(*) FROM jobwheel.leader").fetchone()[0]:
                time.sleep(0.05)
            while conn.execute("SELECT count(*) FROM jobwheel.workers").fetchone()[0] < 2:
                time.sleep(0.05)

            ids = []
            for _ in range(a.pickups):
                job = conn.execute("SELECT jobwheel.enqueue('noop')").fetchone()[0]
                ids.append(job)
                wait_done(conn, [job], 10)
            results.append(summary("pickup (enqueue -> start, idle)", lateness(conn, ids, "created_at")))

            if a.delayed:
                ids = [r[0] for r in conn.execute(
                    "SELECT * FROM jobwheel.enqueue_batch((SELECT jsonb_agg(jsonb_build_object('kind', 'noop',"
                    " 'delay_ms', 1000 + i * %s / %s)) FROM generate_series(0, %s - 1) i))",
                    (int(a.spread * 1000), a.delayed, a.delayed))]
                wait_done(conn, ids, a.spread + 30, interval=0.5)
                results.append(summary(f"delayed ({a.delayed} over {a.spread:g} s, {a.timer})", lateness(conn, ids)))

            if a.burst:
                ids = [r[0] for r in conn.execute(
                    "SELECT * FROM jobwheel.enqueue_batch((SELECT jsonb_agg(jsonb_build_object('kind', 'noop',"
                    " 'run_at', date_trunc('second', now()) + interval '5 s' + i * interval '1 ms' * 1000 / %s))"
                    " FROM generate_series(0, %s - 1) i))", (a.burst, a.burst))]
                wait_done(conn, ids, 120, interval=0.5)
                results.append(summary(f"burst ({a.burst} due in one second, {a.timer})", lateness(conn, ids)))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
    for r in results:
        print(json.dumps({"system": "jobwheel", **r}))

    if a.peer:
        with psycopg.connect(a.url + "/postgres", autocommit=True) as c:
            c.execute("DROP DATABASE IF EXISTS gw_latency WITH (FORCE)")
            c.execute("CREATE DATABASE gw_latency")
        peers = os.path.join(ROOT, "bench", "peers")
        subprocess.run(["cp", os.path.join(ROOT, "..", "shared", "peers", "gw_latency.mjs"), peers], check=True)
        out = subprocess.run(["node", "gw_latency.mjs"], cwd=peers, capture_output=True, text=True,
                             env={**os.environ, "DATABASE_URL": a.url + "/gw_latency"})
        print([line for line in out.stdout.splitlines() if line.startswith("{")][-1])


if __name__ == "__main__":
    main()
