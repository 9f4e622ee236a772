# SPDX-License-Identifier: MIT
"""longtx: the known failure mode of SKIP LOCKED queues. One open
transaction holding back the xmin horizon keeps every row version a claim
or completion leaves behind: vacuum cannot remove them, index entries of
claimed jobs cannot be marked dead, and each claim walks further over them.

Drain capacity is what suffers, so it is measured with a standing backlog:
a producer thread tops the ready jobs up with jobwheel.enqueue_batch()
whenever fewer than BACKLOG are ready, while two workers (--concurrency 64)
and a coordinator drain. After a warm-up come three windows, all times from
the database clock:
  baseline  (10 s short / 60 s full): nothing else open;
  held      (15 s short / 180 s full): a separate connection sits in
            BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT txid_current();
  after     (5 s short / 30 s full): that transaction committed.
Completions are counted afterwards from finished_at of succeeded jobs.

Figures (jobwheel only; one repetition in both modes, a single long run):
  "throughput, baseline", "throughput, xmin held"  completions/s per window;
  "drop"  1 - held/baseline, in percent;
  "dead tuples at end of hold"  dead row versions in jobwheel.jobs at the
      end of the held window, exact from pgstattuple (contrib) when it can be
      installed, else n_dead_tup from the statistics system (approximate:
      busy backends flush their counts at most once a second; it also kept
      counting versions pruned before the hold: 412k against pgstattuple's
      190k in one short run); n_dead_tup rides along in extra;
  "claim latency, baseline", "claim latency, xmin held"  round trip of a
      probe claim(64) every 2 s in a transaction that is rolled back
      (p50/p99/max ms; the probe takes no job for good).
OUT/longtx_timeline.txt holds completions/s per 5 s: "seconds jobs_per_s phase"."""
import os
import threading
import time

import psycopg

from suite.common import latency_summary, log

JW = "jobwheel"
BACKLOG = 20000      # keep at least this many jobs ready
BATCH = 10000        # jobs per top-up
BUCKET = 5           # seconds per timeline point
PROBE_S = 2          # seconds between probe claims


def windows(b):
    """(warm-up, baseline, held, after) in seconds"""
    return (3, 10, 15, 5) if b.short else (10, 60, 180, 30)


class Background:
    """A loop on its own connection in a thread, until stop()."""

    def __init__(self, url, step):
        self.url, self.step, self.halt, self.error = url, step, threading.Event(), None
        self.thread = threading.Thread(target=self.loop)
        self.thread.start()

    def loop(self):
        try:
            with psycopg.connect(self.url, autocommit=True) as c:
                while not self.halt.is_set():
                    self.step(c, self.halt)
        except Exception as e:
            self.error = e

    def stop(self):
        self.halt.set()
        self.thread.join()
        if self.error:
            raise self.error


class TopUp:
    """Keeps at least BACKLOG jobs ready. Jobs here are claimed in id order
    (one priority; run_at is the enqueue's clock), so at least BACKLOG are
    ready while the job BACKLOG before the newest is: two primary-key
    lookups whatever the dead entries. Counting the ready jobs instead, even
    backward from the newest, visits 20 000 rows: cheap while vacuum keeps
    the visibility map set, 150 ms while the horizon is held, so it took
    more from the system measured in the held window than before it.
    `dry` counts the checks since the baseline began that found even the
    newest job claimed (the workers may have waited for work)."""

    def __init__(self):
        self.newest, self.dry = None, 0

    def __call__(self, c, halt):
        if self.newest is None:
            self.newest = c.execute("SELECT max(id) FROM jobwheel.jobs").fetchone()[0]
        enough, left = c.execute(
            "SELECT coalesce(bool_or(id = %(a)s AND state = 'ready'), false),"
            " coalesce(bool_or(id = %(n)s AND state = 'ready'), false)"
            " FROM jobwheel.jobs WHERE id IN (%(a)s, %(n)s)",
            {"a": self.newest - BACKLOG + 1, "n": self.newest}).fetchone()
        self.dry += not left
        if enough:
            halt.wait(0.2)
            return
        self.newest = c.execute("SELECT max(id) FROM jobwheel.enqueue_batch((SELECT jsonb_agg(jsonb_build_object("
                                "'kind', 'noop')) FROM generate_series(1, %s))) id", (BATCH,)).fetchone()[0]


class Prober:
    """Times claim(64) in a rolled-back transaction every PROBE_S, by phase.
    A rolled-back claim never enters cursor mode, so while the horizon is
    held each probe reads every dead entry: every 0.5 s (until 2026-12-06)
    that kept its backend busy 42 % of the held window."""

    def __init__(self):
        self.phase, self.samples = "warm-up", {}

    def __call__(self, c, halt):
        phase = self.phase
        t = time.perf_counter()
        with c.transaction(force_rollback=True):
            c.execute("SELECT count(*) FROM jobwheel.claim('bench-probe', ARRAY['default'], 64)")
        self.samples.setdefault(phase, []).append((time.perf_counter() - t) * 1000)
        halt.wait(PROBE_S)


def db_now(c):
    return c.execute("SELECT clock_timestamp()").fetchone()[0]


def run(b):
    warm, base_s, held_s, after_s = windows(b)
    url = b.fresh_db("bench_longtx")
    extra = {"reps": 1, "note": "one repetition (one long run)", "workers": "2 x 64 + coordinator",
             "backlog": BACKLOG}
    with psycopg.connect(url, autocommit=True) as c:
        try:
            c.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
            exact = True
        except psycopg.Error:
            exact = False
        c.execute("SELECT count(*) FROM jobwheel.enqueue_batch((SELECT jsonb_agg(jsonb_build_object('kind', 'noop'))"
                  " FROM generate_series(1, %s)))", (BACKLOG + BATCH,))
        procs = [b.spawn("coordinator/jobwheel-coordinator", url)]
        procs += [b.spawn("worker/jobwheel-worker", url, "--concurrency", "64") for _ in range(2)]
        loops = []
        try:
            b.wait_until(c, "SELECT EXISTS (SELECT 1 FROM jobwheel.leader)", 30)
            b.wait_until(c, "SELECT count(*) >= 2 FROM jobwheel.workers", 30)
            prober, topup = Prober(), TopUp()
            loops = [Background(url, topup), Background(url, prober)]
            time.sleep(warm)

            prober.phase, topup.dry = "baseline", 0
            t0 = db_now(c)
            time.sleep(base_s)
            with psycopg.connect(url, autocommit=True) as holder:
                holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                xid = holder.execute("SELECT txid_current()").fetchone()[0]
                t1 = db_now(holder)
                prober.phase = "xmin held"
                log(f"longtx: transaction {xid} holds the xmin horizon for {held_s} s")
                time.sleep(held_s)
                t2 = db_now(c)
                prober.phase = "after"
                c.execute("SELECT pg_stat_force_next_flush()")
                dead = c.execute("SELECT n_dead_tup FROM pg_stat_user_tables"
                                 " WHERE relid = 'jobwheel.jobs'::regclass").fetchone()[0]
                dead_exact = c.execute("SELECT dead_tuple_count FROM pgstattuple('jobwheel.jobs')").fetchone()[0] \
                    if exact else None
                holder.execute("COMMIT")
                t3 = db_now(c)
            time.sleep(after_s)
            t4 = db_now(c)
        finally:
            for loop in loops:
                loop.stop()
            b.stop(procs)

        base, held, after = c.execute(
            "SELECT count(*) FILTER (WHERE finished_at >= %(t0)s AND finished_at < %(t1)s),"
            " count(*) FILTER (WHERE finished_at >= %(t1)s AND finished_at < %(t2)s),"
            " count(*) FILTER (WHERE finished_at >= %(t3)s AND finished_at < %(t4)s)"
            " FROM jobwheel.jobs WHERE state = 'succeeded'", {"t0": t0, "t1": t1, "t2": t2, "t3": t3, "t4": t4}
        ).fetchone()
        timeline = c.execute(
            "SELECT floor(extract(epoch FROM finished_at - %(t0)s) / %(w)s)::int k, count(*) FROM jobwheel.jobs"
            " WHERE state = 'succeeded' AND finished_at >= %(t0)s AND finished_at < %(t4)s GROUP BY k ORDER BY k",
            {"t0": t0, "t4": t4, "w": BUCKET}).fetchall()

    secs = lambda a, z: (z - a).total_seconds()  # noqa: E731
    base_rate, held_rate = base / secs(t0, t1), held / secs(t1, t2)
    b.record("longtx", JW, "throughput, baseline", round(base_rate, 1), "jobs/s", window_s=round(secs(t0, t1), 1),
             jobs=base, **extra)
    b.record("longtx", JW, "throughput, xmin held", round(held_rate, 1), "jobs/s", window_s=round(secs(t1, t2), 1),
             jobs=held, **extra)
    b.record("longtx", JW, "drop", round((1 - held_rate / base_rate) * 100, 1) if base_rate else None, "%",
             after_jobs_per_s=round(after / secs(t3, t4), 1), times_backlog_ran_out=topup.dry, **extra)
    if dead_exact is not None:
        b.record("longtx", JW, "dead tuples at end of hold", dead_exact, "tuples",
                 source="pgstattuple('jobwheel.jobs').dead_tuple_count (exact)", n_dead_tup=dead, **extra)
    else:
        b.record("longtx", JW, "dead tuples at end of hold", dead, "tuples", source="pg_stat_user_tables.n_dead_tup"
                 " (approximate: cumulative statistics, flushed at most once a second per backend)", **extra)
    for phase in ("baseline", "xmin held"):
        if prober.samples.get(phase):
            b.record("longtx", JW, f"claim latency, {phase}", latency_summary(prober.samples[phase]), "ms",
                     probe=f"claim(64) in a rolled-back transaction every {PROBE_S} s", **extra)

    os.makedirs(b.out, exist_ok=True)
    held_from, held_to = secs(t0, t1), secs(t0, t3)
    with open(os.path.join(b.out, "longtx_timeline.txt"), "w") as f:
        counts, total = dict(timeline), secs(t0, t4)
        for k in range(int(total // BUCKET) + 1):
            start, end, n = k * BUCKET, min((k + 1) * BUCKET, total), counts.get(k, 0)
            if end - start < 1:
                continue
            mid = (start + end) / 2
            phase = "baseline" if mid < held_from else "held" if mid < held_to else "after"
            f.write(f"{start} {n / (end - start):.1f} {phase}\n")
