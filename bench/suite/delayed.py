# SPDX-License-Identifier: MIT
"""Delayed-job lateness (run_at -> started): N jobs spread over S seconds,
under jobwheel's coordinator with each timer (wheel, heap) and under
graphile-worker (which polls for them); then jobwheel's burst of M jobs due
in the same second. Times from the database clock for jobwheel, from
graphile-worker's process clock (the one that computed run_at) for it."""
from .common import GW, latency_summary, log
from .latency_common import cluster, keep_samples, lateness_ms, wait_started


def spread(b, timer, n, seconds):
    with cluster(b, "jw_delayed", timer) as conn:
        ids = [r[0] for r in conn.execute(
            "SELECT * FROM jobwheel.enqueue_batch((SELECT jsonb_agg(jsonb_build_object('kind', 'noop',"
            " 'delay_ms', 1000 + i * %s / %s)) FROM generate_series(0, %s - 1) i))", (seconds * 1000, n, n))]
        wait_started(b, conn, seconds + 30, interval=0.5)
        return lateness_ms(conn, ids)


def burst(b, timer, n):
    with cluster(b, "jw_burst", timer) as conn:
        ids = [r[0] for r in conn.execute(
            "SELECT * FROM jobwheel.enqueue_batch((SELECT jsonb_agg(jsonb_build_object('kind', 'noop',"
            " 'run_at', date_trunc('second', now()) + interval '5 s' + i * interval '1 ms' * 1000 / %s))"
            " FROM generate_series(0, %s - 1) i))", (n, n))]
        wait_started(b, conn, 120, interval=0.5)
        return lateness_ms(conn, ids)


def run(b):
    n, seconds = (1000, 10) if b.short else (10000, 60)
    reps = b.reps if b.short else min(b.reps, 3)
    figure = f"run_at -> start, {n} jobs over {seconds} s"
    samples = {}
    for rep in range(reps):
        for timer in ("wheel", "heap"):
            log(f"bench: delayed, --timer {timer}, run {rep + 1} of {reps}")
            samples[timer] = spread(b, timer, n, seconds)
            b.record("delayed", f"jobwheel ({timer})", figure, latency_summary(samples[timer]), "ms")
        log(f"bench: delayed, graphile-worker, run {rep + 1} of {reps}")
        samples["gw"] = b.peer("gw_delayed.mjs", b.fresh_db("gw_delayed", jobwheel=False), N=n,
                               SPREAD=seconds)["lateness_ms"]
        if len(samples["gw"]) < n:
            raise SystemExit(f"bench: graphile-worker started {len(samples['gw'])} of {n} delayed jobs")
        b.record("delayed", GW, figure, latency_summary(samples["gw"]), "ms")
    keep_samples(b, "delayed_wheel", samples["wheel"])
    keep_samples(b, "delayed_heap", samples["heap"])
    keep_samples(b, "delayed_graphile-worker", samples["gw"])
    m = 5000 if b.short else 50000
    for timer in ("wheel", "heap"):
        for rep in range(1 if b.short else 2):
            log(f"bench: burst of {m}, --timer {timer}")
            b.record("delayed", f"jobwheel ({timer})", f"run_at -> start, burst of {m} due in one second",
                     latency_summary(burst(b, timer, m)), "ms")
