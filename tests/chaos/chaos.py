#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Chaos driver (issue 8): a real jobwheel cluster on one private PostgreSQL
(2 coordinators, 4 workers, 1 gateway), a seeded workload, faults from a
seeded schedule, and invariants checked at the end.

    /usr/bin/python3 tests/chaos/chaos.py --seed 1 --jobs 3000 --duration-s 45 [--out DIR]

Prints one JSON object (figures, fault log, failed invariants) on stdout and
exits 0 only if every invariant holds (1 otherwise). PostgreSQL runs with
fsync = on and synchronous_commit = on (durable commits), so the immediate-
mode restart is real crash recovery. Binaries come from $JW_BUILD_DIR
(default ./build)."""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("JW_BUILD_DIR", os.path.join(ROOT, "build"))
PG_BIN = os.environ.get("JW_PG_BIN", "/usr/lib/postgresql/15/bin")
WORKER = os.path.join(BUILD, "worker", "jobwheel-worker")
COORDINATOR = os.path.join(BUILD, "coordinator", "jobwheel-coordinator")
CLI = os.path.join(BUILD, "cli", "jobwheel")
GATEWAY = os.path.join(BUILD, "gateway", "jobwheel-gateway")
WEB_ROOT = os.path.join(ROOT, "gateway", "web")

LEASE_MS, HEARTBEAT_MS = 3000, 500
BACKOFF_MS = 100          # backoff_base_ms of every job: retries after ~0.1, 0.5, 2.5, 12.5 s
N_WORKERS, N_COORDS = 4, 2
WORKER_SETTINGS = {"worker.concurrency": 8, "worker.lease_ms": LEASE_MS, "worker.heartbeat_ms": HEARTBEAT_MS,
                   "worker.poll_ms": 500, "http.allow": "127.0.0.1"}
COORD_SETTINGS = {"worker.lease_ms": LEASE_MS, "worker.heartbeat_ms": HEARTBEAT_MS,
                  "coordinator.maintenance_ms": 250}
CRASH_RE = re.compile(r"ASan|AddressSanitizer|runtime error|assertion|Assertion|Segmentation|core dumped")


def now_utc():
    return datetime.now(timezone.utc)


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBWHEEL_") and k != "EMAIL_FAILURE_RATE"}
    env["JOBWHEEL_CONFIG"] = "/dev/null"
    return env


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ PostgreSQL

class Postgres:
    """A private cluster on a free loopback port, durable (fsync on)."""

    def __init__(self, base):
        self.base, self.data = base, os.path.join(base, "data")
        self.port, self.log = free_port(), os.path.join(base, "postgres.log")
        self.runas = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.runas:
            shutil.chown(base, "postgres")

    def _run(self, *args):
        subprocess.run(self.runas + list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def init(self):
        self._run(os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.base}'\n"
                    "max_connections = 200\nfsync = on\nsynchronous_commit = on\nlog_min_messages = warning\n")

    def start(self):
        self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "120", "start")

    def stop(self, mode="fast"):
        self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "120", "stop")

    def dsn(self, db="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"


# ------------------------------------------------------------ counting server

class Counter:
    """Threaded HTTP server on 127.0.0.1 that records every delivery of
    POST /h/TAG: (tag, start, end, status), monotonic times taken on the
    server. TAG "fK-..." answers 500 to the first K deliveries of that tag,
    "die-..." always 500; while `outage` is set everything answers 503."""

    def __init__(self):
        self.lock = threading.Lock()
        self.deliveries = []     # (tag, start, end, status)
        self.seen = {}           # tag -> deliveries so far
        self.outage = False
        counter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                start = time.monotonic()
                tag = self.path.rsplit("/", 1)[-1]
                status = "aborted"
                try:
                    status = self.answer(tag)
                finally:  # a delivery counts even if the client went away meanwhile
                    with counter.lock:
                        counter.deliveries.append((tag, start, time.monotonic(), status))

            def answer(self, tag):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                with counter.lock:
                    k = counter.seen.get(tag, 0) + 1
                    counter.seen[tag] = k
                    outage = counter.outage
                m = re.match(r"f(\d+)-", tag)
                if outage:
                    status = 503
                elif tag.startswith("die-") or (m and k <= int(m.group(1))):
                    status = 500
                else:
                    status = 200
                # a delivery takes time, one in 8 a long one: overlaps would show
                h = zlib.crc32(tag.encode())
                time.sleep(1.0 if h % 8 == 0 else 0.02 + (h % 60) / 1000.0)
                body = json.dumps({"tag": tag, "n": k}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                return status

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client killed mid-request: recorded as an aborted delivery

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, tag):
        return f"http://127.0.0.1:{self.port}/h/{tag}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------ processes

class Proc:
    def __init__(self, out, role, slot, gen, binary, dsn, settings, *args):
        self.role, self.slot, self.gen = role, slot, gen
        self.log_path = os.path.join(out, f"{role}{slot}.{gen}.log")
        self.log = open(self.log_path, "w")
        cmd = [binary, "--set", "database.url=" + dsn, "--log-level", "debug"]
        for k, v in settings.items():
            cmd += ["--set", f"{k}={v}"]
        self.proc = subprocess.Popen(cmd + list(args), stdout=self.log, stderr=subprocess.STDOUT, env=clean_env())
        self.pid = self.proc.pid
        self.killed = False   # by the schedule
        self.stopped = False

    def alive(self):
        return self.proc.poll() is None

    def sigkill(self):
        self.killed = True
        if self.alive():
            self.proc.kill()
        self.proc.wait()

    def output(self):
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()


# ------------------------------------------------------------------- the run

class Chaos:
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

    def t(self):
        return round(time.monotonic() - self.t0, 2)

    def fault(self, what, detail=""):
        self.faults.append({"t": self.t(), "fault": what, "detail": detail})

    def check(self, name, ok, detail=None):
        if not ok:
            self.failures.append({"invariant": name, "detail": detail})

    # -------------------------------------------------------------- database

    def connect(self, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return psycopg.connect(self.dsn, autocommit=True, connect_timeout=3)
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def q(self, sql, *params):
        for _ in range(100):
            try:
                with self.connect() as c:
                    return c.execute(sql, params).fetchall()
            except psycopg.OperationalError:
                time.sleep(0.3)
        raise RuntimeError("database unreachable")

    # ------------------------------------------------------------- processes

    def start_worker(self, slot):
        gen = sum(1 for p in self.procs if p.role == "worker" and p.slot == slot)
        p = Proc(self.out, "worker", slot, gen, WORKER, self.dsn, WORKER_SETTINGS)
        self.procs.append(p)
        self.workers[slot] = p
        return p

    def start_coord(self, slot):
        gen = sum(1 for p in self.procs if p.role == "coordinator" and p.slot == slot)
        p = Proc(self.out, "coordinator", slot, gen, COORDINATOR, self.dsn, COORD_SETTINGS)
        self.procs.append(p)
        self.coords[slot] = p
        return p

    def wait_registered(self, p, table, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not p.alive():
                raise RuntimeError(f"{p.role} exited early:\n{p.output()[-2000:]}")
            try:
                if self.q(f"SELECT 1 FROM jobwheel.{table} WHERE pid = %s", p.pid):
                    return
            except RuntimeError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{p.role} {p.pid} did not register in {table}")

    # -------------------------------------------------------------- workload

    def make_jobs(self, n, base):
        """n job specs (enqueue_batch objects), each tagged."""
        rng, jobs = self.wrng, []
        for i in range(n):
            tag_n = base + i
            r = rng.random()
            common = {"backoff_base_ms": BACKOFF_MS, "max_attempts": 12}
            if r < 0.35:
                cls, spec, exp = "noop", {"kind": "noop", "payload": {}}, "succeeded"
            elif r < 0.60:
                ms = rng.randint(20, 300) if rng.random() < 0.7 else rng.randint(500, 2500)
                cls, spec, exp = "sleep", {"kind": "sleep", "payload": {"ms": ms}}, "succeeded"
            elif r < 0.80:
                tag = f"ok-{tag_n}"
                cls, spec, exp = "http", {"kind": "http", "payload": {"method": "POST", "url": self.counter.url(tag),
                                                                     "body": {"n": tag_n}, "timeout_ms": 5000}}, \
                    "succeeded"
            elif r < 0.88:
                k = rng.randint(1, 2)
                tag = f"f{k}-{tag_n}"
                cls, spec, exp = "http_flaky", {"kind": "http", "payload": {
                    "method": "POST", "url": self.counter.url(tag), "timeout_ms": 5000}}, "succeeded"
            elif r < 0.95:
                delay = rng.uniform(1.0, 5.0)
                run_at = (now_utc() + timedelta(seconds=delay)).isoformat()
                cls, spec, exp = "delayed", {"kind": "noop", "payload": {}, "run_at": run_at}, "succeeded"
            elif r < 0.97:
                tag = f"die-{tag_n}"
                cls, spec, exp = "http_die", {"kind": "http", "payload": {
                    "method": "POST", "url": self.counter.url(tag), "timeout_ms": 5000}}, "dead"
                common["max_attempts"] = 2
            elif r < 0.985:
                cls, spec, exp = "fail_retry", {"kind": "fail", "payload": {"message": "on purpose",
                                                                           "retryable": True}}, "dead"
                common["max_attempts"] = 3
            else:
                cls, spec, exp = "fail_final", {"kind": "fail", "payload": {"message": "on purpose, final",
                                                                           "retryable": False}}, "dead"
            spec.update(common)
            spec["payload"]["chaos"] = f"j{tag_n}"
            self.expect[f"j{tag_n}"] = exp
            self.kinds[f"j{tag_n}"] = cls
            jobs.append(spec)
        return jobs

    def make_workflow(self, idx):
        """a -> (b, c) -> d; with `doom`, b dies and d (all_success) is
        cancelled while e (all_done on b) runs."""
        doom = idx % 3 == 2
        w = f"w{idx}"
        jobs = [
            {"key": "a", "kind": "sleep", "payload": {"ms": 50}},
            {"key": "b", "kind": "fail" if doom else "noop",
             "payload": {"message": "workflow doom", "retryable": False} if doom else {}, "depends_on": ["a"]},
            {"key": "c", "kind": "sleep", "payload": {"ms": 100}, "depends_on": ["a"]},
            {"key": "d", "kind": "noop", "payload": {}, "depends_on": ["b", "c"]},
            {"key": "e", "kind": "noop", "payload": {}, "depends_on": ["b"], "trigger": "all_done"},
        ]
        exp = {"a": "succeeded", "b": "dead" if doom else "succeeded", "c": "succeeded",
               "d": "cancelled" if doom else "succeeded", "e": "succeeded"}
        for j in jobs:
            tag = f"{w}{j['key']}"
            j["payload"]["chaos"] = tag
            j["backoff_base_ms"] = BACKOFF_MS
            j["max_attempts"] = 12
            self.expect[tag] = exp[j["key"]]
            self.kinds[tag] = "workflow"
        return {"name": f"chaos-{w}", "jobs": jobs}

    def tags_present(self, tags):
        return self.q("SELECT count(*) FROM jobwheel.jobs WHERE payload->>'chaos' = ANY(%s)", list(tags))[0][0]

    def gw_post(self, path, body):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.gw_port, timeout=10)
        try:
            c.request("POST", path, body=json.dumps(body),
                      headers={"Authorization": "Bearer " + self.token, "Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def submit(self, via, path_or_fn, body, tags):
        """Submits once, retrying through database restarts; an ambiguous
        failure (connection lost around the commit) is resolved by looking
        for the tags: all present = done, none = try again."""
        for attempt in range(200):
            try:
                if via == "gateway":
                    status, text = self.gw_post(path_or_fn, body)
                    if status == 201:
                        return
                    if status < 500:
                        raise RuntimeError(f"gateway {path_or_fn} -> {status}: {text[:300]!r}")
                    raise OSError(f"gateway {status}")
                with self.connect() as c:
                    c.execute(path_or_fn, (json.dumps(body),)).fetchall()
                return
            except (OSError, psycopg.OperationalError) as e:
                self.ambiguous_retries += 1
                time.sleep(0.3)
                present = self.tags_present(tags)
                if present == len(tags):
                    return
                if present:
                    raise RuntimeError(f"partial enqueue: {present}/{len(tags)} of a batch ({e})")
        raise RuntimeError("could not enqueue a batch")

    def enqueuer(self):
        try:
            total, span = self.args.jobs, self.args.duration_s * 0.85
            n_wf = max(3, total // 500)
            batches = max(10, int(span / 0.25))
            per = max(1, total // batches)
            done, wf, b = 0, 0, 0
            start = time.monotonic()
            while done < total:
                if self.stop_enqueue.is_set():
                    break
                n = min(per, total - done)
                jobs = self.make_jobs(n, done)
                tags = [j["payload"]["chaos"] for j in jobs]
                via = "gateway" if b % 5 == 4 else "sql"
                if via == "gateway":
                    self.submit("gateway", "/api/jobs/batch", {"jobs": jobs}, tags)
                else:
                    self.submit("sql", "SELECT jobwheel.enqueue_batch(%s::jsonb)", jobs, tags)
                self.enq_via[via] += n
                done += n
                if wf < n_wf and b % max(1, batches // n_wf) == 0:
                    spec = self.make_workflow(wf)
                    wtags = [j["payload"]["chaos"] for j in spec["jobs"]]
                    if wf % 2:
                        self.submit("gateway", "/api/workflows", spec, wtags)
                        self.enq_via["gateway"] += len(wtags)
                    else:
                        self.submit("sql", "SELECT jobwheel.submit_workflow(%s::jsonb)", spec, wtags)
                        self.enq_via["sql"] += len(wtags)
                    wf += 1
                b += 1
                pause = start + b * span / batches - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            self.figures["workflows"] = wf
        except Exception as e:  # reported as an invariant failure
            self.enqueue_error = repr(e)

    # ---------------------------------------------------------------- faults

    def schedule(self):
        """The seeded fault schedule: (t, action) every 3-6 s; each fault
        class at least once, PostgreSQL restarted fast at ~35% and
        immediate at ~65% of the run if it lasts 30 s or more."""
        rng, d = self.rng, self.args.duration_s
        kinds = ["kill_worker", "stop_worker", "kill_leader", "outage_503"]
        first = kinds[:]
        rng.shuffle(first)  # every fault class early on, then a random mix
        plan, t = [], 3.0
        while t < d - 3:
            plan.append([round(t, 2), first.pop(0) if first else rng.choice(kinds + ["kill_worker", "stop_worker"])])
            t += rng.uniform(3.0, 6.0)
        if d >= 30:
            # the restarts take the place of no other fault
            plan.append([round(d * 0.35, 2), "pg_restart_fast"])
            plan.append([round(d * 0.65, 2), "pg_restart_immediate"])
        plan.sort()
        return plan

    def live_workers(self):
        return [s for s, p in self.workers.items() if p.alive() and not p.stopped]

    def running_on(self, p):
        return self.q("SELECT count(*) FROM jobwheel.jobs j JOIN jobwheel.workers w ON w.id = j.worker "
                      "WHERE j.state = 'running' AND w.pid = %s", p.pid)[0][0]

    def busiest(self, slots):
        """A random one of the workers running the most jobs now."""
        load = {s: self.running_on(self.workers[s]) for s in slots}
        top = max(load.values())
        return self.rng.choice(sorted(s for s in slots if load[s] == top)), top

    def do_fault(self, action):
        rng = self.rng
        if action == "kill_worker":
            slots = self.live_workers()
            if not slots:
                return
            s = rng.choice(slots)
            p = self.workers[s]
            running = self.running_on(p)
            p.sigkill()
            self.fault("SIGKILL worker", f"slot {s} pid {p.pid} ({running} running)")
            self.start_worker(s)
        elif action == "stop_worker":
            slots = self.live_workers()
            if len(slots) < 2:
                return
            s, running = self.busiest(slots)
            p = self.workers[s]
            hold = LEASE_MS / 1000.0 * 1.5 + rng.uniform(0.5, 2.0)
            p.proc.send_signal(signal.SIGSTOP)
            p.stopped = True
            self.stops += 1
            self.stopped_running += running
            self.fault("SIGSTOP worker", f"slot {s} pid {p.pid} for {hold:.1f}s ({running} running)")

            def resume(p=p, s=s):
                p.proc.send_signal(signal.SIGCONT)
                p.stopped = False
                self.fault("SIGCONT worker", f"slot {s} pid {p.pid}")
            timer = threading.Timer(hold, resume)
            timer.daemon = True
            self.timers.append(timer)
            timer.start()
        elif action == "kill_leader":
            leader, deadline = [], time.monotonic() + 15  # after a database restart: wait for a leader
            while not leader and time.monotonic() < deadline:
                rows = self.q("SELECT pid FROM jobwheel.leader")
                leader = [s for s, p in self.coords.items() if rows and p.pid == rows[0][0] and p.alive()]
                if not leader:
                    time.sleep(0.1)
            if not leader:
                self.check("a leader to kill", False, "no leader for 15 s")
                return
            s = leader[0]
            p = self.coords[s]
            p.sigkill()
            killed_at = time.monotonic()
            self.fault("SIGKILL leader", f"coordinator slot {s} pid {p.pid}")
            self.start_coord(s)
            other = [c.pid for c in self.coords.values() if c.alive()]
            while time.monotonic() - killed_at < 15:
                rows = self.q("SELECT pid FROM jobwheel.leader")
                if rows and rows[0][0] in other:
                    break
                time.sleep(0.05)
            took = round(time.monotonic() - killed_at, 2)
            self.takeovers.append(took)
            self.fault("new leader", f"after {took}s")
        elif action == "outage_503":
            secs = rng.uniform(2.0, 4.0)
            self.counter.outage = True
            self.fault("HTTP 503 on", f"{secs:.1f}s")

            def off():
                self.counter.outage = False
                self.fault("HTTP 503 off")
            timer = threading.Timer(secs, off)
            timer.daemon = True
            self.timers.append(timer)
            timer.start()
        elif action.startswith("pg_restart_"):
            mode = action.rsplit("_", 1)[1]
            t = time.monotonic()
            self.pg.stop(mode)
            self.pg.start()
            self.fault(f"PostgreSQL restart -m {mode}", f"down {time.monotonic() - t:.1f}s")

    # ------------------------------------------------------------------- run

    def run(self):
        a = self.args
        os.makedirs(self.out, exist_ok=True)
        base = tempfile.mkdtemp(prefix="jw-chaos-pg-")
        os.chmod(base, 0o755)
        self.pg = Postgres(base)
        self.pg.init()
        self.pg.start()
        self.counter = Counter()
        self.timers = []
        try:
            with psycopg.connect(self.pg.dsn(), autocommit=True) as c:
                c.execute("CREATE DATABASE chaos")
            self.dsn = self.pg.dsn("chaos")
            subprocess.run([CLI, "--set", "database.url=" + self.dsn, "migrate"], check=True, env=clean_env(),
                           stdout=subprocess.DEVNULL)
            r = subprocess.run([CLI, "--set", "database.url=" + self.dsn, "token", "create", "chaos", "--scope",
                                "write"], check=True, env=clean_env(), capture_output=True, text=True)
            self.token = r.stdout.strip().splitlines()[-1].strip()
            for s in range(N_COORDS):
                self.wait_registered(self.start_coord(s), "coordinators")
            for s in range(N_WORKERS):
                self.wait_registered(self.start_worker(s), "workers")
            self.gw_port = free_port()
            gw = Proc(self.out, "gateway", 0, 0, GATEWAY, self.dsn,
                      {"gateway.web_root": WEB_ROOT}, "--listen", f"127.0.0.1:{self.gw_port}")
            self.procs.append(gw)
            self.wait_gateway(gw)
            self.t0 = time.monotonic()
            plan = self.schedule()
            self.figures["schedule"] = plan
            enq = threading.Thread(target=self.enqueuer, daemon=True)
            enq.start()
            for t, action in plan:
                pause = self.t0 + t - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                try:
                    self.do_fault(action)
                except Exception as e:
                    self.check("fault injected", False, f"{action}: {e!r}")
            pause = self.t0 + a.duration_s - time.monotonic()
            if pause > 0:
                time.sleep(pause)
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

    def wait_gateway(self, gw):
        import http.client
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not gw.alive():
                raise RuntimeError("gateway exited early:\n" + gw.output()[-2000:])
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.gw_port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("gateway not ready")

    def drain(self):
        """Waits until every job is terminal (or the drain timeout)."""
        start = time.monotonic()
        timeout = max(90.0, self.args.duration_s)
        while time.monotonic() - start < timeout:
            left = self.q("SELECT count(*) FROM jobwheel.jobs WHERE state NOT IN ('succeeded','dead','cancelled')")
            if left[0][0] == 0:
                break
            time.sleep(0.5)
        self.figures["drain_s"] = round(time.monotonic() - start, 2)

    # --------------------------------------------------------------- checks

    def verify(self):
        f = self.figures
        self.check("enqueuer ran without error", self.enqueue_error is None, self.enqueue_error)
        rows = self.q("SELECT id, payload->>'chaos', kind, state, attempt, max_attempts, worker, run_at, "
                      "created_at, started_at, finished_at, backoff_base_ms, last_error FROM jobwheel.jobs")
        jobs = {r[0]: r for r in rows}
        by_tag = {}
        for r in rows:
            by_tag.setdefault(r[1], []).append(r[0])
        states = {}
        for r in rows:
            states[r[3]] = states.get(r[3], 0) + 1
        f["enqueued"] = len(self.expect)
        f["enqueued_via"] = dict(self.enq_via)
        f["in_db"] = len(rows)
        f["states"] = states
        f["ambiguous_enqueue_retries"] = self.ambiguous_retries
        nonterminal = [r[0] for r in rows if r[3] not in ("succeeded", "dead", "cancelled")]
        f["nonterminal"] = len(nonterminal)
        self.check("every job terminal", not nonterminal, nonterminal[:20])
        terminal = states.get("succeeded", 0) + states.get("dead", 0) + states.get("cancelled", 0)
        self.check("succeeded + dead + cancelled = enqueued", terminal == len(self.expect) == len(rows),
                   {"terminal": terminal, "enqueued": len(self.expect), "in_db": len(rows)})
        dup = {t: ids for t, ids in by_tag.items() if len(ids) != 1}
        missing = [t for t in self.expect if t not in by_tag]
        f["lost_jobs"], f["duplicated_jobs"] = len(missing), len(dup)
        self.check("no job lost or enqueued twice", not missing and not dup,
                   {"missing": missing[:10], "dup": list(dup.items())[:10]})
        wrong = [(t, jobs[ids[0]][3], e) for t, e in self.expect.items()
                 if (ids := by_tag.get(t)) and jobs[ids[0]][3] != e]
        f["unexpected_outcome"] = len(wrong)
        self.check("each job ended as designed", not wrong,
                   [(t, s, e, jobs[by_tag[t][0]][12]) for t, s, e in wrong[:10]])
        # DLQ = exactly the jobs designed to die
        dlq = {r[0] for r in self.q("SELECT id FROM jobwheel.dlq")}
        want_dead = {by_tag[t][0] for t, e in self.expect.items() if e == "dead" and t in by_tag}
        f["dlq"], f["designed_to_die"] = len(dlq), len(want_dead)
        self.check("DLQ = designed-to-die jobs", dlq == want_dead,
                   {"unexpected": sorted(dlq - want_dead)[:10], "absent": sorted(want_dead - dlq)[:10]})
        # delayed jobs not early
        early = [r[0] for r in rows if self.kinds.get(r[1]) == "delayed" and r[9] and r[9] < r[7]]
        self.check("delayed jobs not started before run_at", not early, early[:10])

        # errors per attempt; fencing
        errs = {}
        for job, attempt, worker, at, error in self.q(
                "SELECT job_id, attempt, worker, at, error FROM jobwheel.job_errors ORDER BY id"):
            errs.setdefault(job, []).append((attempt, worker, at, error))
        f["failed_attempts"] = sum(len(v) for v in errs.values())
        f["lease_expired_attempts"] = sum(1 for v in errs.values() for e in v if e[3].startswith("lease expired"))
        f["retried_jobs"] = sum(1 for r in rows if r[4] > 1)
        f["max_attempt"] = max((r[4] for r in rows), default=0)
        fence = []
        for jid, r in jobs.items():
            e = errs.get(jid, [])
            attempts = [x[0] for x in e]
            if len(set(attempts)) != len(attempts):
                fence.append((jid, "two errors for one attempt", attempts))
            if any(x > r[4] for x in attempts):
                fence.append((jid, "error for an attempt beyond the job's", attempts, r[4]))
            if r[3] == "succeeded":
                if r[4] in attempts:
                    fence.append((jid, "succeeded although its last attempt failed", attempts, r[4]))
                if sorted(attempts) != list(range(1, r[4])):
                    fence.append((jid, "attempts before the last one not each failed once", attempts, r[4]))
            if r[3] == "dead" and sorted(attempts) != list(range(1, r[4] + 1)):
                fence.append((jid, "dead but its attempts are not 1..n failed", attempts, r[4]))
            if r[3] in ("succeeded", "dead") and r[9] and r[10] and r[10] < r[9]:
                fence.append((jid, "finished before started"))
        # the worker recorded as running the last attempt of a succeeded job
        # logged that attempt's start and success (its late completions of
        # older attempts are fenced and leave no trace in the row)
        logs = {}
        for p in self.procs:
            if p.role == "worker":
                logs.setdefault(p.pid, []).append(p)
        wid_pid = {w: pid for w, pid in self.q("SELECT id, pid FROM jobwheel.workers")}
        succ_re = re.compile(r"job (\d+) \([\w.-]+\) attempt (\d+) succeeded")
        succeeded_by = {}
        for p in self.procs:
            if p.role == "worker":
                for m in succ_re.finditer(p.output()):
                    succeeded_by.setdefault((int(m.group(1)), int(m.group(2))), set()).add(p.pid)
        no_log = []
        for jid, r in jobs.items():
            if r[3] == "succeeded" and r[2] in ("noop", "sleep", "http"):
                pid = wid_pid.get(r[6])
                if pid is None or pid not in succeeded_by.get((jid, r[4]), set()):
                    no_log.append((jid, r[4], r[6]))
        f["succeeded_by_other_than_last_attempt_holder"] = len(no_log)
        fence += [(j, "succeeded, but its recorded worker did not log that attempt succeeding", a, w)
                  for j, a, w in no_log[:10]]
        f["fence_violations"] = len(fence)
        self.check("no fenced write landed", not fence, fence[:10])
        # late completions the workers reported that the database fenced
        late = 0
        for (jid, attempt), pids in succeeded_by.items():
            r = jobs.get(jid)
            if r and not (r[3] == "succeeded" and r[4] == attempt):
                late += 1
        f["late_successes_fenced"] = late

        # backoff respected
        bad_backoff, checked = [], 0
        for jid, e in errs.items():
            r = jobs[jid]
            base = r[11] / 1000.0
            e = sorted(e)
            for i, (attempt, worker, at, error) in enumerate(e):
                low = timedelta(seconds=min(base * 5 ** (attempt - 1), 3600) * 0.8 - 0.002)
                if i + 1 < len(e) and e[i + 1][0] == attempt + 1:
                    nxt = e[i + 1][2]   # the next attempt failed after it started
                elif attempt + 1 == r[4] and r[9] is not None:
                    nxt = r[9]          # started_at of the last attempt
                else:
                    continue
                if r[3] == "dead" and attempt == r[4]:
                    continue
                checked += 1
                if nxt < at + low:
                    bad_backoff.append((jid, attempt, str(at), str(nxt), low.total_seconds()))
        f["backoff_checked"] = checked
        f["backoff_violations"] = len(bad_backoff)
        self.check("every retry respected its backoff", not bad_backoff, bad_backoff[:10])

        # http deliveries
        with self.counter.lock:
            dl = list(self.counter.deliveries)
        with open(os.path.join(self.out, "deliveries.tsv"), "w") as fh:  # tag, start, end (monotonic), status
            fh.writelines(f"{t}\t{a:.4f}\t{b:.4f}\t{st}\n" for t, a, b, st in dl)
        per = {}
        for tag, s, e, status in dl:
            per.setdefault(tag, []).append((s, e, status))
        overlaps, too_many = [], []
        url_tag = {}
        for jid, r in jobs.items():
            if r[2] == "http":
                url_tag[jid] = None
        for jid, url in self.q("SELECT id, payload->>'url' FROM jobwheel.jobs WHERE kind = 'http'"):
            url_tag[jid] = url.rsplit("/", 1)[-1]
        for jid, tag in url_tag.items():
            d = sorted(per.get(tag, []))
            for x, y in zip(d, d[1:]):
                if y[0] < x[1]:
                    overlaps.append((jid, tag, round(x[1] - y[0], 3)))
            if len(d) > jobs[jid][4]:
                too_many.append((jid, len(d), jobs[jid][4]))
        f["http_jobs"] = len(url_tag)
        f["http_deliveries"] = len(dl)
        f["http_503"] = sum(1 for x in dl if x[3] == 503)
        f["http_overlaps"] = len(overlaps)
        # at-least-once: a job delivered again after a 200 (a lost completion, or a stale claim)
        f["http_deliveries_after_a_200"] = sum(
            1 for d in per.values() for i, x in enumerate(sorted(d)) if any(y[2] == 200 for y in sorted(d)[:i]))
        f["http_deliveries_over_attempts"] = len(too_many)
        self.check("no two deliveries of a job overlap", not overlaps, overlaps[:10])
        self.check("deliveries per job <= attempts", not too_many, too_many[:10])

        # processes and their states
        for s, p in self.workers.items():
            if p.stopped:
                p.proc.send_signal(signal.SIGCONT)
        time.sleep(0)
        wrows = {pid: st for pid, st in self.q("SELECT pid, state FROM jobwheel.workers")}
        bad_state = []
        for p in self.procs:
            if p.role != "worker":
                continue
            st = wrows.get(p.pid)
            if p.killed:
                if st not in (None, "lost"):
                    bad_state.append((p.pid, "killed", st))
            elif st != "active":
                bad_state.append((p.pid, "running", st))
        f["workers_final"] = {str(k): v for k, v in wrows.items()}
        self.check("workers active or cleanly gone", not bad_state, bad_state)
        leaders = self.q("SELECT pid FROM jobwheel.leader")
        live_coords = {p.pid for p in self.coords.values() if p.alive()}
        f["leaders"] = [x[0] for x in leaders]
        self.check("exactly one leader, a live coordinator", len(leaders) == 1 and leaders[0][0] in live_coords,
                   {"leaders": f["leaders"], "live": sorted(live_coords)})
        dead_procs, crash_lines = [], []
        for p in self.procs:
            if not p.killed and not p.alive():
                dead_procs.append((p.role, p.slot, p.pid, p.proc.returncode, p.output()[-1500:]))
            for line in p.output().splitlines():
                if CRASH_RE.search(line):
                    crash_lines.append((p.role, p.pid, line[:300]))
        f["processes_started"] = len(self.procs)
        f["processes_killed_by_schedule"] = sum(1 for p in self.procs if p.killed)
        f["unexpected_exits"] = len(dead_procs)
        f["crash_log_lines"] = len(crash_lines)
        self.check("no crash outside the injected ones", not dead_procs and not crash_lines,
                   {"exited": dead_procs[:5], "lines": crash_lines[:10]})
        # the lease guard: workers that gave jobs up after a SIGSTOP
        gave_up = 0
        for p in self.procs:
            if p.role == "worker":
                gave_up += len(re.findall(r"no heartbeat confirmed .* giving up", p.output()))
        f["lease_guard_give_ups"] = gave_up
        f["sigstops"], f["jobs_running_at_sigstop"] = self.stops, self.stopped_running
        self.check_attempt_order(jobs)
        f["leader_takeover_s"] = self.takeovers
        self.check("a new leader within 5 s of the leader's death (SPEC 8)",
                   all(x <= 5.5 for x in self.takeovers), self.takeovers)

    LOG_RE = re.compile(r"^(\S+?)Z? jobwheel-worker\[(\d+)\] \w+\s+job (\d+) \([\w.-]+\) attempt (\d+)(?:/\d+)? "
                        r"(started|succeeded|failed)")

    def check_attempt_order(self, jobs):
        """From the workers' debug logs (one clock, ms): an attempt must not
        start after the next attempt of its job started (a worker acting on
        a claim whose lease had expired: the job runs again); an attempt
        that ends after the next one started ran twice at once from the
        worker's side (its outcome was fenced, but a handler with side
        effects would have overlapped)."""
        f = self.figures
        starts, ends = {}, {}
        for p in self.procs:
            if p.role != "worker":
                continue
            for line in p.output().splitlines():
                m = self.LOG_RE.match(line)
                if m:
                    ts = datetime.fromisoformat(m.group(1)).timestamp()
                    key = (int(m.group(3)), int(m.group(4)))
                    (starts if m.group(5) == "started" else ends)[key] = (ts, int(m.group(2)), line[:200])
        stale, outlived = [], []
        for (job, a), (ts, pid, line) in starts.items():
            nxt = starts.get((job, a + 1))
            if nxt and ts > nxt[0]:
                stale.append({"job": job, "attempt": a, "kind": jobs.get(job, [None] * 3)[2], "line": line,
                              "next_attempt_started": nxt[2]})
        for (job, a), (ts, pid, line) in ends.items():
            nxt = starts.get((job, a + 1))
            if nxt and ts > nxt[0]:
                outlived.append({"job": job, "attempt": a, "line": line, "next_attempt_started": nxt[2]})
        f["stale_claim_starts"] = len(stale)
        f["attempts_outliving_their_lease"] = len(outlived)
        if stale:
            f["stale_claim_examples"] = stale[:3]
        if outlived:
            f["outlived_examples"] = outlived[:3]
        if self.args.strict_lease_guard:
            self.check("no attempt started after the next attempt of its job (stale claim)", not stale, stale[:5])
            self.check("no attempt outlived the start of the next one", not outlived, outlived[:5])

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
        self.counter.close()
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
