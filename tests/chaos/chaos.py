#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Chaos driver (issue 8): a real jobwheel cluster on one private PostgreSQL
(2 coordinators, 4 workers, one of them on a host of its own whose network
is cut, 1 gateway), each process logged in with its least-privilege role, a
seeded workload, faults from a seeded schedule, and invariants checked at
the end.

    /usr/bin/python3 tests/chaos/chaos.py --seed 1 --jobs 3000 --duration-s 45 [--out DIR]

Prints one JSON object (figures, fault log, failed invariants) on stdout and
exits 0 only if every invariant holds (1 otherwise). PostgreSQL runs with
fsync = on and synchronous_commit = on (durable commits), so the immediate-
mode restart is real crash recovery. Binaries come from $JW_BUILD_DIR
(default ./build). Without permission for network namespaces the cut-off
host is left out (the report says "worker_host": false).

The parts: cluster.py (PostgreSQL, roles, counting server, processes, the
worker host), workload.py, faults.py, verify.py."""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))

import psycopg  # noqa: E402

from cluster import (COORD_SETTINGS, GATEWAY_LOGIN, N_COORDS, N_WORKERS, OWNER,  # noqa: E402
                     WORKER_LOGIN, WORKER_SETTINGS, Counter, DurablePostgres, Proc, WorkerHost)
from conftest import COORDINATOR, GATEWAY, WEB_ROOT, WORKER, free_port, wait_for  # noqa: E402
from faults import Faults  # noqa: E402
from netns import LIBPQ_TCP  # noqa: E402
from verify import Verify  # noqa: E402
from workload import Workload  # noqa: E402


class Chaos(Workload, Faults, Verify):
    def __init__(self, args):
        self.args = args
        # two streams: the workload is the same for a seed whatever the faults' timing does
        self.rng = random.Random(args.seed)             # faults
        self.wrng = random.Random(args.seed * 7919 + 1)  # workload
        self.out = args.out
        self.faults = []          # (t, what, detail)
        self.failures = []
        self.figures = {}
        self.procs = []           # every process ever started
        self.workers = {}         # slot -> Proc (current)
        self.coords = {}
        self.expect = {}          # tag -> expected final state
        self.kinds = {}           # tag -> workload class
        self.enq_via = {"sql": 0, "gateway": 0}
        self.ambiguous_retries = 0
        self.stop_enqueue = threading.Event()
        self.enqueue_error = None
        self.t0 = time.monotonic()
        self.takeovers = []
        self.stops = self.stopped_running = 0
        self.host, self.cable_cut, self.cuts = None, False, 0
        self.timers = []
        self.pg = self.counter = None

    def t(self):
        return round(time.monotonic() - self.t0, 2)

    def fault(self, what, detail=""):
        self.faults.append({"t": self.t(), "fault": what, "detail": detail})

    def check(self, name, ok, detail=None):
        if not ok:
            self.failures.append({"invariant": name, "detail": detail})

    # -------------------------------------------------------------- database

    def connect(self, dsn=None, timeout=60):
        """As the superuser (who checks), unless dsn says otherwise; retried
        while PostgreSQL restarts."""
        def attempt():
            try:
                return psycopg.connect(dsn or self.dsn, autocommit=True, connect_timeout=3)
            except psycopg.OperationalError:
                return None
        return wait_for(attempt, timeout, 0.2, "PostgreSQL to accept a connection")

    def q(self, sql, *params):
        """The rows of sql, asked again if the connection is lost meanwhile."""
        def attempt():
            try:
                with self.connect() as c:
                    return [c.execute(sql, params).fetchall()]  # a list: no rows is an answer too
            except psycopg.OperationalError:
                return None
        return wait_for(attempt, 120, 0.3, "an answer through PostgreSQL restarts")[0]

    # ------------------------------------------------------------- processes

    def start_worker(self, slot):
        """The last slot lives on the worker host, when there is one."""
        gen = sum(1 for p in self.procs if p.role == "worker" and p.slot == slot)
        settings = dict(WORKER_SETTINGS, **{"http.allow": self.counter.address})
        if self.host and slot == N_WORKERS - 1:
            dsn = self.pg.url(WORKER_LOGIN, host=self.host.gateway_ip, params=LIBPQ_TCP)
            p = Proc(self.out, "worker", slot, gen, WORKER, dsn, settings, netns=self.host.ns)
        else:
            p = Proc(self.out, "worker", slot, gen, WORKER, self.pg.url(WORKER_LOGIN), settings)
        self.procs.append(p)
        self.workers[slot] = p
        return p

    def start_coord(self, slot):
        gen = sum(1 for p in self.procs if p.role == "coordinator" and p.slot == slot)
        p = Proc(self.out, "coordinator", slot, gen, COORDINATOR, self.pg.url(OWNER), COORD_SETTINGS)
        self.procs.append(p)
        self.coords[slot] = p
        return p

    def wait_registered(self, p, table, timeout=30):
        def registered():
            if not p.alive():
                raise RuntimeError(f"{p.role} exited early:\n{p.output()[-2000:]}")
            return self.q(f"SELECT 1 FROM jobwheel.{table} WHERE pid = %s", p.pid)
        wait_for(registered, timeout, 0.05, f"{p.role} {p.pid} to register in {table}")

    # ------------------------------------------------------------------- run

    def run(self):
        a = self.args
        os.makedirs(self.out, exist_ok=True)
        host = WorkerHost()
        base = tempfile.mkdtemp(prefix="jw-chaos-pg-")
        os.chmod(base, 0o755)
        try:
            self.host = host if host.build() else None
            self.figures["worker_host"] = self.host is not None
            self.pg = DurablePostgres(base, self.host and self.host.gateway_ip)
            self.pg.init()
            self.pg.start()
            # the webhook target: where the worker host reaches it too
            self.counter = Counter(self.host.gateway_ip if self.host else "127.0.0.1")
            self.token = self.pg.create_database()
            self.dsn = self.pg.dsn("chaos")
            self.producer_dsn = self.pg.url(GATEWAY_LOGIN)
            for s in range(N_COORDS):
                self.wait_registered(self.start_coord(s), "coordinators")
            for s in range(N_WORKERS):
                self.wait_registered(self.start_worker(s), "workers")
            self.gw_port = free_port()
            self.gateway = Proc(self.out, "gateway", 0, 0, GATEWAY, self.pg.url(GATEWAY_LOGIN),
                                {"gateway.web_root": WEB_ROOT}, "--listen", f"127.0.0.1:{self.gw_port}")
            self.procs.append(self.gateway)
            wait_for(self.gateway_ready, 30, 0.05, "the gateway to be ready")
            self.t0 = time.monotonic()
            plan = self.schedule()
            self.figures["schedule"] = plan
            enq = threading.Thread(target=self.enqueuer, daemon=True)
            enq.start()
            pending = [list(step) for step in plan]
            while pending:
                t, action = pending.pop(0)
                pause = self.t0 + t - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # until the fault's time in the schedule: nothing to poll
                try:
                    if self.do_fault(action) == "later" and t + 1.0 < a.duration_s - 3:
                        pending.append([round(t + 1.0, 2), action])
                        pending.sort()
                except Exception as e:
                    self.check("fault injected", False, f"{action}: {e!r}")
            pause = self.t0 + a.duration_s - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # until the end of the fault phase: nothing to poll
            enq.join(timeout=120)
            if enq.is_alive():
                self.stop_enqueue.set()
                self.check("enqueue finished", False, "enqueuer still running")
            for timer in self.timers:
                timer.join()
            self.figures["fault_phase_s"] = self.t()
            self.drain()
            self.verify()
        finally:
            self.shutdown()
            host.remove()

    def gateway_ready(self):
        if not self.gateway.alive():
            raise RuntimeError("gateway exited early:\n" + self.gateway.output()[-2000:])
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.gw_port, timeout=2)
            c.request("GET", "/readyz")
            return c.getresponse().status == 200
        except OSError:
            return False

    def drain(self):
        """Waits until every job is terminal (or the drain timeout: verify()
        then reports the jobs that are not)."""
        start = time.monotonic()
        left = "SELECT count(*) FROM jobwheel.jobs WHERE state NOT IN ('succeeded','dead','cancelled')"
        try:
            wait_for(lambda: self.q(left)[0][0] == 0, max(90.0, self.args.duration_s), 0.5, "every job terminal")
        except AssertionError:
            pass
        self.figures["drain_s"] = round(time.monotonic() - start, 2)

    def shutdown(self):
        for p in self.procs:
            if p.alive():
                if p.stopped:
                    p.proc.send_signal(signal.SIGCONT)
                p.proc.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()
            p.log.close()
        if self.counter:
            self.counter.close()
        if not self.pg:
            return
        try:
            self.pg.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        if self.args.keep_pg:
            self.figures["pg_dir"] = self.pg.base
        else:
            shutil.copy(self.pg.log, os.path.join(self.out, "postgres.log"))
            shutil.rmtree(self.pg.base, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--jobs", type=int, required=True)
    ap.add_argument("--duration-s", type=float, required=True)
    ap.add_argument("--out", default=None, help="directory for the process logs (default: a new temp dir)")
    ap.add_argument("--keep-pg", action="store_true", help="keep the PostgreSQL data directory")
    ap.add_argument("--strict-lease-guard", action="store_true",
                    help="also fail on stale-claim starts and attempts outliving their lease (worker logs)")
    args = ap.parse_args()
    args.out = os.path.abspath(args.out or tempfile.mkdtemp(prefix="jw-chaos-"))
    chaos = Chaos(args)
    wall = time.monotonic()
    error = None
    try:
        chaos.run()
    except Exception as e:
        import traceback
        error = traceback.format_exc()
        chaos.failures.append({"invariant": "driver ran to the end", "detail": repr(e)})
    chaos.figures["wall_s"] = round(time.monotonic() - wall, 1)
    report = {"seed": args.seed, "jobs": args.jobs, "duration_s": args.duration_s, "out": args.out,
              "fsync": "on", "figures": chaos.figures, "faults": chaos.faults,
              "failed": chaos.failures, "ok": not chaos.failures}
    if error:
        report["traceback"] = error
    print(json.dumps(report, default=str))
    with open(os.path.join(args.out, "report.json"), "w") as fh:
        json.dump(report, fh, indent=1, default=str)
    return 0 if not chaos.failures else 1


if __name__ == "__main__":
    sys.exit(main())
