# SPDX-License-Identifier: MIT
"""steady: end-to-end latency under a steady load. The same Python producer
(P threads, one autocommit connection each, single-row enqueues paced on one
fixed schedule for a total of R jobs/s) feeds jobwheel (SELECT
jobwheel.enqueue('noop'); two workers --concurrency 64 and a coordinator)
and graphile-worker (SELECT graphile_worker.add_job('noop', {t: enqueue
time}); peer-scripts/gw_steady.mjs runs its worker). While the producers run
the workers drain, so a job waits only for pickup, not behind a backlog.

Figures per repetition and system:
  "enqueue -> start, R jobs/s"  latency of every job (p50/p99/max ms):
      jobwheel: started_at - created_at from the database clock;
      graphile-worker: task start - producer clock at the add_job call,
      both on this machine's clock;
  "achieved rate"  jobs/s the producers really issued (N / time from the
      first due time to the last enqueue's return): if it is well under R
      the producer, not the system, was the limit;
  "enqueue -> finish, R jobs/s" (jobwheel only) finished_at - created_at.
The samples of the last repetition go to OUT/steady_<system>.txt (one ms
value per line) for a CDF plot."""
import os
import re
import sys
import threading
import time

import psycopg

from suite.common import GW, latency_summary, log

JW = "jobwheel"
# Enough connections that the producers are not the limit. A durable
# single-row enqueue spends most of its call waiting for its commit, and
# graphile-worker's add_job NOTIFYs in every call (PostgreSQL commits
# notifying transactions one at a time): on this 2-core box it ran about
# 600/s from 4 to 32 connections. R must stay below what both systems
# accept; "achieved rate" tells whether it did.
PRODUCERS = 32
GW_LQ = int(os.environ.get("JW_BENCH_GW_LQ", 64))   # graphile-worker's local queue (0: off)


def params(b):
    """(rate jobs/s, seconds). At 1000/s graphile-worker's producers reached
    about 580/s on this 2-core box, so both modes run 500/s;
    JW_BENCH_STEADY_RATE overrides the rate on a faster machine."""
    rate = int(os.environ.get("JW_BENCH_STEADY_RATE", 500))
    return (rate, 6) if b.short else (rate, 20)


def produce(url, sql, n, rate, with_time):
    """Issues n single-row enqueues from PRODUCERS threads on one schedule:
    job j is due at t0 + j / rate (a thread that falls behind does not
    sleep until it has caught up). Returns the achieved rate (jobs/s)."""
    conns = [psycopg.connect(url, autocommit=True) for _ in range(PRODUCERS)]
    ends, errors = [0.0] * PRODUCERS, []
    t0 = time.time() + 0.2

    def loop(k):
        try:
            c = conns[k]
            for j in range(k, n, PRODUCERS):
                wait = t0 + j / rate - time.time()
                if wait > 0:
                    time.sleep(wait)
                if with_time:
                    c.execute(sql, (time.time() * 1000,), prepare=True)
                else:
                    c.execute(sql, prepare=True)
            ends[k] = time.time()
        except Exception as e:  # reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(PRODUCERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in conns:
        c.close()
    if errors:
        raise errors[0]
    return n / (max(ends) - t0)


def slug(system):
    return re.sub(r"[^a-z0-9]+", "-", system.split()[0].lower()).strip("-")


def write_samples(b, system, samples):
    os.makedirs(b.out, exist_ok=True)
    with open(os.path.join(b.out, f"steady_{slug(system)}.txt"), "w") as f:
        f.writelines(f"{v:.3f}\n" for v in samples)


def run_jobwheel(b, rate, seconds):
    n = rate * seconds
    url = b.fresh_db("bench_steady")
    procs = [b.spawn("coordinator/jobwheel-coordinator", url)]
    procs += [b.spawn("worker/jobwheel-worker", url, "--concurrency", "64") for _ in range(2)]
    try:
        with psycopg.connect(url, autocommit=True) as c:
            b.wait_until(c, "SELECT EXISTS (SELECT 1 FROM jobwheel.leader)", 30)
            b.wait_until(c, "SELECT count(*) >= 2 FROM jobwheel.workers", 30)
            achieved = produce(url, "SELECT jobwheel.enqueue('noop')", n, rate, False)
            b.wait_until(c, "SELECT NOT EXISTS (SELECT 1 FROM jobwheel.jobs WHERE state = 'ready')"
                            " AND NOT EXISTS (SELECT 1 FROM jobwheel.jobs WHERE state = 'running')", 120, 0.2)
            rows = c.execute("SELECT extract(epoch FROM started_at - created_at) * 1000,"
                             " extract(epoch FROM finished_at - created_at) * 1000"
                             " FROM jobwheel.jobs WHERE state = 'succeeded' ORDER BY id").fetchall()
    finally:
        b.stop(procs)
    if len(rows) != n:
        log(f"steady: jobwheel: {len(rows)} of {n} jobs succeeded")
    return achieved, [float(r[0]) for r in rows], [float(r[1]) for r in rows]


def run_gw(b, rate, seconds):
    n = rate * seconds
    url = b.fresh_db("bench_steady_gw", jobwheel=False)
    b.install_peers()
    out = {}

    def peer():
        try:
            out["result"] = b.peer("gw_steady.mjs", url, N=n, CONC=64, LQ=GW_LQ, TIMEOUT_S=seconds + 60)
        except BaseException as e:  # b.peer exits (SystemExit) on failure
            out["error"] = e

    t = threading.Thread(target=peer)
    t.start()
    achieved = None
    try:
        with psycopg.connect(url, autocommit=True) as c:
            deadline = time.monotonic() + 60
            while not c.execute("SELECT to_regclass('public.bench_ready') IS NOT NULL").fetchone()[0]:
                if not t.is_alive() or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            else:
                achieved = produce(url, "SELECT graphile_worker.add_job('noop', json_build_object('t', %s::float8))",
                                   n, rate, True)
    finally:
        t.join()
    if "error" in out:
        raise out["error"]
    if achieved is None:
        sys.exit("bench: steady: graphile-worker was not ready within 60 s")
    r = out["result"]
    if r["n"] != n:
        log(f"steady: {GW}: {r['n']} of {n} jobs started before the timeout")
    return achieved, r["start_ms"]


def run(b):
    rate, seconds = params(b)
    fig = f"enqueue -> start, {rate} jobs/s"
    extra = {"rate": rate, "seconds": seconds, "producers": PRODUCERS}
    for rep in range(b.reps):
        last = rep == b.reps - 1
        # Alternate which system goes first, so neither always runs on a warmer server.
        order = [JW, GW] if rep % 2 == 0 else [GW, JW]
        for system in order:
            if system == JW:
                achieved, start, finish = run_jobwheel(b, rate, seconds)
                b.record("steady", JW, fig, latency_summary(start), "ms", rep=rep, **extra,
                         setup="2 workers x 64 + coordinator")
                b.record("steady", JW, f"enqueue -> finish, {rate} jobs/s", latency_summary(finish), "ms", rep=rep,
                         **extra)
            else:
                achieved, start = run_gw(b, rate, seconds)
                b.record("steady", GW, fig, latency_summary(start), "ms", rep=rep, **extra,
                         setup=f"1 process, concurrency 64, local queue {GW_LQ}, completions batched" if GW_LQ else
                         "1 process, concurrency 64, no local queue")
            b.record("steady", system, "achieved rate", round(achieved, 1), "jobs/s", rep=rep, **extra)
            if last:
                write_samples(b, system, start)
