# SPDX-License-Identifier: MIT
"""Memory of the jobwheel processes, against the bars of the design: a
worker at concurrency 64 within 10 MiB, a coordinator holding 10^6 timers
within 32 MiB. Resident sizes come from /proc/PID/status (VmRSS now, VmHWM
the peak since the process started) and /proc/PID/smaps_rollup (anonymous
vs file-backed, i.e. heap and stacks vs mapped binaries and libraries).

Worker (system "jobwheel", fresh database and a fresh worker per
repetition; `--concurrency 64`):
  "worker RSS, idle"                       VmRSS once registered, nothing to do;
  "worker RSS, concurrency 64"             VmHWM after draining 20 000 no-op
                                           jobs (short 5 000), VmRSS in extra;
  "worker RSS, 64 jobs running"            VmHWM after 128 `sleep` jobs of
                                           1.5 s, i.e. every slot in use at
                                           once (max_running in extra).
Coordinator (systems "jobwheel (wheel)" / "jobwheel (heap)"):
  "coordinator RSS, idle leader"           VmRSS of a leader with no timers;
  "coordinator RSS, 10^6 timers"           (short: 10^5) VmRSS once it has
                                           loaded every scheduled job into
                                           its timer, VmHWM in extra.
The scheduled jobs (run_at spread over 10 minutes, an hour ahead) are
inserted once; the coordinator runs with coordinator.horizon_ms = 2 h so
all of them are inside its horizon, and nothing falls due while measuring.
"Loaded" is read from the database's own statistics: the horizon read,
scheduled_between(), is the only scan of the partial index
jobs_scheduled_idx (the cursor read uses jobs_sched_xid_idx and finds
nothing: every job was inserted before the coordinator started), so the
coordinator has read all N jobs once that index has returned N tuples
since it started; then we wait for its RSS to settle."""
import time

import psycopg

from .common import log, rss_mib

WORKER = "worker/jobwheel-worker"
COORD = "coordinator/jobwheel-coordinator"
HORIZON_MS = 2 * 3600 * 1000


def smaps(pid):
    """Resident MiB from smaps_rollup: anonymous (heap, stacks, relocated
    library data) and file-backed (mapped binary and shared libraries,
    shared with every process that maps them), Pss (shared pages divided
    among their users) and private (USS: what exiting would free)."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1]) / 1024
    except OSError:
        return {}
    return {"rss_anon_mib": round(out.get("Anonymous", 0), 2),
            "rss_file_mib": round(out.get("Rss", 0) - out.get("Anonymous", 0), 2),
            "pss_mib": round(out.get("Pss", 0), 2),
            "private_mib": round(out.get("Private_Clean", 0) + out.get("Private_Dirty", 0), 2)}


def mib(x):
    return round(x, 2)


def settle(pid, timeout=10, interval=0.5):
    """Waits until VmRSS stops moving (two samples within 64 KiB), at most timeout s."""
    last = rss_mib(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = rss_mib(pid)
        if abs(now - last) < 1 / 16:
            return now
        last = now
    return last


# ---------------------------------------------------------------- worker

def worker_run(b, njobs):
    url = b.fresh_db("jw_memory")
    p = b.spawn(WORKER, url, "--concurrency", "64")
    try:
        with psycopg.connect(url, autocommit=True) as c:
            b.wait_until(c, "SELECT EXISTS (SELECT 1 FROM jobwheel.workers WHERE pid = %s AND state = 'active')",
                         30, params=(p.pid,))
            idle = settle(p.pid, timeout=3)
            b.record("memory", "jobwheel", "worker RSS, idle", mib(idle), "MiB", concurrency=64,
                     **smaps(p.pid))

            c.execute("INSERT INTO jobwheel.jobs (kind) SELECT 'noop' FROM generate_series(1, %s)", (njobs,))
            c.execute("SELECT jobwheel._wake('default')")
            t0 = time.monotonic()
            b.wait_until(c, "SELECT NOT EXISTS (SELECT 1 FROM jobwheel.jobs WHERE state = 'ready')"
                         " AND NOT EXISTS (SELECT 1 FROM jobwheel.jobs WHERE state = 'running')", 300)
            drain_s = time.monotonic() - t0
            done = c.execute("SELECT count(*) FROM jobwheel.jobs WHERE state = 'succeeded'").fetchone()[0]
            if done != njobs:
                raise SystemExit(f"bench: memory: worker finished {done} of {njobs} jobs")
            hwm, rss = rss_mib(p.pid, "VmHWM"), rss_mib(p.pid)
            b.record("memory", "jobwheel", "worker RSS, concurrency 64", mib(hwm), "MiB", peak="VmHWM",
                     rss_after_mib=mib(rss), jobs=njobs, drain_s=round(drain_s, 2), **smaps(p.pid))

            # Every slot busy at once: sleep jobs outlast a claim round.
            nsleep = 128
            c.execute("INSERT INTO jobwheel.jobs (kind, payload) SELECT 'sleep', '{\"ms\": 1500}'"
                      " FROM generate_series(1, %s)", (nsleep,))
            c.execute("SELECT jobwheel._wake('default')")
            max_running, max_rss, busy = 0, 0.0, {}
            deadline = time.monotonic() + 60
            while True:
                running = c.execute("SELECT count(*) FROM jobwheel.jobs WHERE state = 'running'").fetchone()[0]
                r = rss_mib(p.pid)
                if running >= max_running:
                    max_running = running
                    if running == 64:
                        busy = smaps(p.pid)
                max_rss = max(max_rss, r)
                if not running and not c.execute(
                        "SELECT EXISTS (SELECT 1 FROM jobwheel.jobs WHERE state = 'ready')").fetchone()[0]:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("bench: memory: sleep jobs did not finish within 60 s")
                time.sleep(0.05)
            done = c.execute("SELECT count(*) FROM jobwheel.jobs WHERE kind = 'sleep' AND state = 'succeeded'"
                             ).fetchone()[0]
            if done != nsleep:
                raise SystemExit(f"bench: memory: {done} of {nsleep} sleep jobs succeeded")
            b.record("memory", "jobwheel", "worker RSS, 64 jobs running", mib(rss_mib(p.pid, "VmHWM")), "MiB",
                     peak="VmHWM", max_rss_sampled_mib=mib(max_rss), max_running=max_running, jobs=nsleep,
                     **busy)
    finally:
        b.stop([p])


# ---------------------------------------------------------------- coordinator

def idx_tuples(c):
    return c.execute("SELECT idx_tup_read FROM pg_stat_user_indexes"
                     " WHERE indexrelname = 'jobs_scheduled_idx'").fetchone()[0]


def coordinator_run(b, url, timer, ntimers, timeout):
    """Starts a coordinator; once it leads and (ntimers > 0) has read every
    scheduled job, returns (VmRSS, VmHWM, smaps, seconds to load)."""
    with psycopg.connect(url, autocommit=True) as c:
        before = idx_tuples(c)
        p = b.spawn(COORD, url, "--timer", timer, "--set", f"coordinator.horizon_ms={HORIZON_MS}")
        try:
            b.wait_until(c, "SELECT EXISTS (SELECT 1 FROM jobwheel.leader WHERE pid = %s)", 30, params=(p.pid,))
            t0 = time.monotonic()
            if ntimers:
                b.wait_until(c, "SELECT (SELECT idx_tup_read FROM pg_stat_user_indexes"
                             " WHERE indexrelname = 'jobs_scheduled_idx') - %s >= %s", timeout, interval=0.2,
                             params=(before, ntimers))
            load_s = time.monotonic() - t0
            rss = settle(p.pid, timeout=10 if ntimers else 3)
            if p.poll() is not None:
                raise SystemExit(f"bench: memory: the coordinator exited ({p.returncode})")
            return rss, rss_mib(p.pid, "VmHWM"), smaps(p.pid), load_s, idx_tuples(c) - before
        finally:
            b.stop([p])


def coordinator(b, ntimers):
    label = f"10^{len(str(ntimers)) - 1}"
    url = b.fresh_db("jw_memory_coord")
    idle = {}
    for timer in ("wheel", "heap"):
        rss, hwm, sm, _, _ = coordinator_run(b, url, timer, 0, 0)
        idle[timer] = rss
        b.record("memory", f"jobwheel ({timer})", "coordinator RSS, idle leader", mib(rss), "MiB",
                 vm_hwm_mib=mib(hwm), **sm)

    t0 = time.monotonic()
    with psycopg.connect(url, autocommit=True) as c:
        # One events row listing 10^6 inserted jobs is no part of what is measured.
        c.execute("SET session_replication_role = replica")
        step = 100000
        for lo in range(0, ntimers, step):
            c.execute("INSERT INTO jobwheel.jobs (kind, state, run_at)"
                      " SELECT 'noop', 'scheduled', now() + interval '1 hour' + interval '10 min' * i / %s"
                      " FROM generate_series(%s::bigint, %s::bigint) i", (ntimers, lo, min(lo + step, ntimers) - 1))
        c.execute("RESET session_replication_role")
        c.execute("VACUUM ANALYZE jobwheel.jobs")
    log(f"bench: memory: {ntimers} scheduled jobs inserted in {time.monotonic() - t0:.1f} s")

    for rep in range(b.reps):
        for timer in (("wheel", "heap") if rep % 2 == 0 else ("heap", "wheel")):
            rss, hwm, sm, load_s, read = coordinator_run(b, url, timer, ntimers, 600)
            log(f"bench: memory: {timer} loaded {ntimers} timers in {load_s:.1f} s")
            b.record("memory", f"jobwheel ({timer})", f"coordinator RSS, {label} timers", mib(rss), "MiB",
                     vm_hwm_mib=mib(hwm), timers=ntimers, load_s=round(load_s, 1), index_tuples_read=read,
                     bytes_per_timer=round((rss - idle[timer]) * 2**20 / ntimers, 1), **sm)
    with psycopg.connect(b.server.url + "/postgres", autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS jw_memory_coord WITH (FORCE)")


def run(b):
    njobs = 5000 if b.short else 20000
    for rep in range(b.reps):
        log(f"bench: memory: worker, run {rep + 1} of {b.reps}")
        worker_run(b, njobs)
    coordinator(b, 10**5 if b.short else 10**6)
