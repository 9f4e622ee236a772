# SPDX-License-Identifier: MIT
"""The parts of the chaos cluster: a durable PostgreSQL with jobwheel's
least-privilege roles, the counting webhook server, the processes, and the
worker host whose network cable can be pulled."""
import json
import os
import re
import subprocess
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

from conftest import CLI, PG_BIN, ROOT, Postgres, clean_env
from netns import free_subnet, run

# The login roles of the run, each in the group roles.sql grants to its
# process (SPEC §12): the coordinator and the CLI's admin commands connect as
# the owner of schema jobwheel, a role that is not a superuser.
OWNER, WORKER_LOGIN, GATEWAY_LOGIN = "chaos_owner", "chaos_w", "chaos_g"
ROLES_SQL = os.path.join(ROOT, "deploy", "sql", "roles.sql")
LEASE_MS, HEARTBEAT_MS = 3000, 500
N_WORKERS, N_COORDS = 4, 2
WORKER_SETTINGS = {"worker.concurrency": 8, "worker.lease_ms": LEASE_MS, "worker.heartbeat_ms": HEARTBEAT_MS,
                   "worker.poll_ms": 500}
COORD_SETTINGS = {"worker.lease_ms": LEASE_MS, "worker.heartbeat_ms": HEARTBEAT_MS,
                  "coordinator.maintenance_ms": 250}


class DurablePostgres(Postgres):
    """The test harness's private cluster, but with durable commits (fsync
    on), so that the immediate-mode restart is real crash recovery; it
    listens on `extra_address` too when a worker host needs it."""

    def __init__(self, base, extra_address=None):
        super().__init__(base)
        self.extra_address = extra_address

    def init(self):
        super().init()
        listen = "127.0.0.1" + (f",{self.extra_address}" if self.extra_address else "")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:  # later lines win
            f.write(f"listen_addresses = '{listen}'\nfsync = on\nfull_page_writes = on\n"
                    "synchronous_commit = on\nlog_min_messages = warning\n")
        if self.extra_address:
            with open(os.path.join(self.data, "pg_hba.conf"), "a") as f:
                f.write(f"host all all {self.extra_address}/30 trust\n")

    def start(self):
        self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "120", "start")

    def url(self, user, db="chaos", host="127.0.0.1", params=""):
        return f"postgresql://{user}@{host}:{self.port}/{db}" + (f"?{params}" if params else "")

    def create_database(self):
        """Database `chaos` owned by OWNER, migrated by OWNER, roles.sql
        applied (by the superuser, as an operator would), and the login roles
        of the worker and the gateway. Returns a write token for the gateway."""
        with psycopg.connect(self.dsn(), autocommit=True) as c:
            c.execute(f"CREATE ROLE {OWNER} LOGIN")
            c.execute(f"CREATE DATABASE chaos OWNER {OWNER}")
        owner = self.url(OWNER)
        subprocess.run([CLI, "--set", "database.url=" + owner, "migrate"], check=True, env=clean_env(),
                       stdout=subprocess.DEVNULL)
        subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.dsn("chaos"),
                        "-f", ROLES_SQL], check=True, capture_output=True)
        with psycopg.connect(self.dsn(), autocommit=True) as c:
            c.execute(f"CREATE ROLE {WORKER_LOGIN} LOGIN IN ROLE jobwheel_worker")
            c.execute(f"CREATE ROLE {GATEWAY_LOGIN} LOGIN IN ROLE jobwheel_gateway")
        r = subprocess.run([CLI, "--set", "database.url=" + owner, "token", "create", "chaos", "--scope", "write"],
                           check=True, env=clean_env(), capture_output=True, text=True)
        return r.stdout.strip().splitlines()[-1].strip()


class WorkerHost:
    """A network namespace joined to the root namespace by one veth pair
    (10.x.y.1 here, 10.x.y.2 there): a worker in it reaches PostgreSQL and
    the counting server over that link only. Pulling the cable (the link
    down on the host's side) leaves its connections open with nobody
    answering: no FIN, no RST reaches PostgreSQL."""

    def __init__(self):
        tag = f"jwc{os.getpid()}"
        self.ns, self.link = f"{tag}-w", f"{tag}w"[:15]
        self.made = False

    def build(self):
        """False if network namespaces are not permitted here."""
        if run("ip", "netns", "add", self.ns, check=False).returncode != 0:
            return False
        self.made = True
        prefix = free_subnet()
        self.gateway_ip, self.ip = f"{prefix}.1", f"{prefix}.2"
        run("ip", "link", "add", self.link, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        run("ip", "addr", "add", f"{self.gateway_ip}/30", "dev", self.link)
        run("ip", "link", "set", self.link, "up")
        run("ip", "-n", self.ns, "addr", "add", f"{self.ip}/30", "dev", "eth0")
        run("ip", "-n", self.ns, "link", "set", "eth0", "up")
        run("ip", "-n", self.ns, "link", "set", "lo", "up")
        return True

    def cable(self, state):
        run("ip", "-n", self.ns, "link", "set", "eth0", state)

    def remove(self):
        if self.made:  # deleting the namespace deletes both veth ends
            for pid in run("ip", "netns", "pids", self.ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            run("ip", "netns", "del", self.ns, check=False)


class Counter:
    """Threaded HTTP server that records every delivery of POST /h/TAG:
    (tag, start, end, status), monotonic times taken on the server. TAG
    "fK-..." answers 500 to the first K deliveries of that tag, "die-..."
    always 500; while `outage` is set everything answers 503."""

    def __init__(self, address):
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

        self.address = address
        self.server = Server((address, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, tag):
        return f"http://{self.address}:{self.port}/h/{tag}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Proc:
    """A jobwheel daemon with its output in out/ROLE SLOT.GEN.log; `netns`
    runs it in that namespace (`ip netns exec` execs it: same pid)."""

    def __init__(self, out, role, slot, gen, binary, dsn, settings, *args, netns=None):
        self.role, self.slot, self.gen = role, slot, gen
        self.log_path = os.path.join(out, f"{role}{slot}.{gen}.log")
        self.log = open(self.log_path, "w")
        cmd = [binary, "--set", "database.url=" + dsn, "--log-level", "debug"]
        for k, v in settings.items():
            cmd += ["--set", f"{k}={v}"]
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        self.proc = subprocess.Popen(cmd + list(args), stdout=self.log, stderr=subprocess.STDOUT, env=clean_env())
        self.pid = self.proc.pid
        self.netns = netns
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
