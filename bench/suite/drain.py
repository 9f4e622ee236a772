# SPDX-License-Identifier: MIT
"""Drain throughput: N pre-enqueued no-op jobs, drained by jobwheel (2
workers x 256, finished jobs kept as `succeeded` rows), graphile-worker in
its best batched configuration (it deletes finished jobs) and pg-boss
(batch 100; far slower, so one smaller run), alternating, a fresh database
for every run. Full mode also searches graphile-worker's best configuration
first, and measures jobwheel's throughput against the number of workers."""
import json

from .common import GW, PGBOSS, log



def figure(n):
    """"drain 10^5 jobs", the figure's name for n jobs."""
    exp = len(str(n)) - 1
    return f"drain {n // 10**exp}·10^{exp} jobs".replace("1·", "") if n % 10**exp == 0 else f"drain {n} jobs"


def jobwheel(b, n, workers=2, concurrency=256):
    url = b.fresh_db("jw_drain")
    r = json.loads(b.cli(url, "--json", "bench", "drain", "--jobs", str(n), "--workers", str(workers),
                         "--concurrency", str(concurrency)))
    if r["succeeded"] != n:
        raise SystemExit(f"bench: jobwheel drained {r['succeeded']} of {n} jobs")
    return r["drain_per_s"]


def graphile(b, n, conc, lq):
    r = b.peer("gw_drain.mjs", b.fresh_db("gw_drain", jobwheel=False), N=n, BATCH=1, CONC=conc, LQ=lq)
    return r["drain_per_s"]


def best_graphile_config(b, n):
    """graphile-worker's fastest (concurrency, local queue) on this machine,
    one run each: the comparison is only fair against its best."""
    rates = {}
    for conc in (32, 64, 128):
        for lq in (500, 1000):
            rates[(conc, lq)] = graphile(b, n, conc, lq)
            b.record("drain", GW, "configuration search", rates[(conc, lq)], "jobs/s", jobs=n, concurrency=conc,
                     local_queue=lq)
    best = max(rates, key=rates.get)
    log(f"bench: graphile-worker's best: concurrency {best[0]}, local queue {best[1]}")
    return best


def run(b):
    sizes = [20000] if b.short else [100000, 1000000]
    conc, lq = (64, 1000) if b.short else best_graphile_config(b, 100000)
    for n in sizes:
        reps = b.reps if n <= 100000 else min(b.reps, 3)
        for rep in range(reps):
            log(f"bench: drain {n}, run {rep + 1} of {reps}")
            b.record("drain", "jobwheel", figure(n), jobwheel(b, n), "jobs/s", jobs=n)
            b.record("drain", GW, figure(n), graphile(b, n, conc, lq), "jobs/s", jobs=n, concurrency=conc,
                     local_queue=lq)
    n = 2000 if b.short else 20000
    r = b.peer("pgboss_bench.mjs", b.fresh_db("pb_drain", jobwheel=False), N=n, B=100, W=4)
    b.record("drain", PGBOSS, figure(n), r["drain_per_s"], "jobs/s", jobs=n, batch=100, workers=4)
    if not b.short:
        for workers in (1, 2, 3, 4):
            for _ in range(3):
                b.record("drain", "jobwheel", f"drain jobs/s, {workers} workers x 256", jobwheel(b, 100000, workers),
                         "jobs/s", jobs=100000, workers=workers)
