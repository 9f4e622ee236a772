# SPDX-License-Identifier: MIT
"""Claim latency against the number of finished jobs kept: 10^3, 10^5 and
10^7 `succeeded` rows retained (short mode: 10^3 and 10^5).

For each size: a fresh database whose jobwheel.jobs is filled with that many
succeeded rows (INSERT ... SELECT FROM generate_series, in chunks of 10^6
with a commit each, the change-feed trigger skipped for the fill), then
VACUUM ANALYZE so the visibility map and statistics are those of a steady
system. Then, on one warm connection with prepared statements, each
iteration enqueues one no-op job (committed), times only the call
`jobwheel.claim(worker, ARRAY['default'], 10, 30000)` client-side
(time.perf_counter) and completes the job. No worker or coordinator runs:
this is the claim statement's own cost as the table grows.

Figures (system "jobwheel"): "claim, 10^K retained" (latency, ms, once per
repetition; the last one of a run carries the p50 ratio largest/10^3) and
"jobs table size, 10^K retained" (pg_total_relation_size, MiB, once per
size, before the measurement)."""
import math
import statistics
import socket
import time

import psycopg

from .common import latency_summary, log

CHUNK = 1_000_000
WORKER = "bench-retained"


def exp_name(n):
    return f"10^{round(math.log10(n))}"


def fill(url, n):
    """n succeeded rows, finished over the last 6 days (inside the default
    7-day retention), with the columns a real completion leaves."""
    with psycopg.connect(url, autocommit=True) as c:
        # The statement-level feed trigger would write one events row
        # listing every inserted job; a steady system has pruned those
        # long ago. replica role skips ordinary triggers for this session.
        c.execute("SET session_replication_role = replica")
        c.execute("SET synchronous_commit = off")
        done = 0
        t0 = time.monotonic()
        while done < n:
            m = min(CHUNK, n - done)
            c.execute("""
                INSERT INTO jobwheel.jobs (kind, payload, state, attempt, max_attempts, run_at, created_at,
                                           started_at, finished_at, lease_until, worker, result)
                SELECT 'noop', '{}', 'succeeded', 1, 4, f - interval '20 ms', f - interval '25 ms',
                       f - interval '2 ms', f, NULL, 'bench-fill:1:x', NULL
                FROM (SELECT now() - interval '6 days' * (%(n)s::bigint - i) / %(n)s::bigint AS f
                      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) i) s""",
                      {"n": n, "lo": done + 1, "hi": done + m})
            done += m
            if n > CHUNK:
                log(f"bench: retained {exp_name(n)}: {done:,} rows filled, {time.monotonic() - t0:.0f} s")
        c.execute("RESET session_replication_role")
        t1 = time.monotonic()
        c.execute("VACUUM ANALYZE jobwheel.jobs")
        log(f"bench: retained {exp_name(n)}: filled in {t1 - t0:.1f} s, VACUUM ANALYZE {time.monotonic() - t1:.1f} s")
        got = c.execute("SELECT count(*) FROM jobwheel.jobs WHERE state = 'succeeded'").fetchone()[0]
        if got != n:
            raise SystemExit(f"bench: retained: filled {got} rows, wanted {n}")
        return c.execute("SELECT pg_total_relation_size('jobwheel.jobs')").fetchone()[0] / 2**20


def measure(url, iterations, warmup=30):
    """Claim latencies (ms) of `iterations` single-job claims."""
    lat = []
    with psycopg.connect(url, autocommit=True, prepare_threshold=0) as c:
        c.execute("SELECT jobwheel.register_worker(%s, %s, %s, ARRAY['default'], 10)",
                  (WORKER, socket.gethostname(), 0))
        for i in range(warmup + iterations):
            c.execute("SELECT jobwheel.enqueue('noop')")
            t = time.perf_counter()
            rows = c.execute("SELECT id, attempt FROM jobwheel.claim(%s, ARRAY['default'], 10, 30000)",
                             (WORKER,)).fetchall()
            dt = (time.perf_counter() - t) * 1000
            if len(rows) != 1:
                raise SystemExit(f"bench: retained: claim returned {len(rows)} jobs, wanted 1")
            if not c.execute("SELECT jobwheel.complete(%s, %s)", rows[0]).fetchone()[0]:
                raise SystemExit(f"bench: retained: completing job {rows[0][0]} failed")
            if i >= warmup:
                lat.append(dt)
        c.execute("SELECT jobwheel.deregister_worker(%s)", (WORKER,))
    return lat


def run(b):
    sizes = [10**3, 10**5] if b.short else [10**3, 10**5, 10**7]
    iterations = 300 if b.short else 1000
    p50 = {}
    for n in sizes:
        url = b.fresh_db("jw_retained")
        log(f"bench: retained {exp_name(n)}: filling")
        size = fill(url, n)
        b.record("retained", "jobwheel", f"jobs table size, {exp_name(n)} retained", round(size, 1), "MiB",
                 rows=n)
        for rep in range(b.reps):
            lat = measure(url, iterations)
            s = latency_summary(lat)
            p50.setdefault(n, []).append(s["p50"])
            extra = {}
            if n == sizes[-1] and rep == b.reps - 1:
                # medians over the repetitions of each size
                med = {k: statistics.median(v) for k, v in p50.items()}
                extra[f"p50_ratio_{exp_name(n)}_vs_10^3"] = round(med[n] / med[sizes[0]], 2)
            b.record("retained", "jobwheel", f"claim, {exp_name(n)} retained", s, "ms", rows=n,
                     iterations=iterations, **extra)
    with psycopg.connect(b.server.url + "/postgres", autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS jw_retained WITH (FORCE)")
