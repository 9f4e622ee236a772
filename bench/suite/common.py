# SPDX-License-Identifier: MIT
"""What every workload of bench/run shares: the PostgreSQL server, fresh
databases, jobwheel processes from the build tree, the peers from npm, and
the record of results.

A workload is a module with `run(b)`: it measures, calls `b.record(...)`
once per repetition and figure, and returns. `b.short` says which mode runs."""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import psycopg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("JW_BUILD_DIR", os.path.join(ROOT, "build"))
PEERS = os.path.join(ROOT, "bench", "peers")          # npm install of the peers (not committed)
PEER_SCRIPTS = os.path.join(ROOT, "bench", "peer-scripts")
PG_BIN = "/usr/lib/postgresql/15/bin"
# No stray JOBWHEEL_* settings, and never a host's /etc/jobwheel/jobwheel.conf.
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("JOBWHEEL_")}, "JOBWHEEL_CONFIG": "/dev/null"}
GW = "graphile-worker 0.18.0"
PGBOSS = "pg-boss 10.4.2"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def pct(values, p):
    """The p-quantile (0..1) of values, nearest rank."""
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def latency_summary(values_ms):
    """p50/p99/max (ms) of a list of latencies, for one record()."""
    return {"n": len(values_ms), "p50": round(pct(values_ms, 0.5), 3), "p99": round(pct(values_ms, 0.99), 3),
            "max": round(max(values_ms), 3)}


class Server:
    """A PostgreSQL server: the one at `url`, or a private cluster started
    here (as the postgres user when run as root) and stopped on close()."""

    def __init__(self, url=None, port=55439, settings=()):
        self.url, self.dir, self.proc = url, None, None
        if url:
            return
        self.dir = f"/tmp/jwbench-{port}"
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        if as_pg:
            shutil.chown(self.dir, "postgres")
        subprocess.run([*as_pg, f"{PG_BIN}/initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres"],
                       check=True, stdout=subprocess.DEVNULL)
        opts = ["-c", f"port={port}", "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
                "-c", "max_connections=300"]
        for s in settings:
            opts += ["-c", s]
        subprocess.run([*as_pg, f"{PG_BIN}/pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/log", "-w",
                        "-o", " ".join(opts), "start"], check=True, stdout=subprocess.DEVNULL)
        self.as_pg = as_pg
        self.url = f"postgresql://postgres@127.0.0.1:{port}"

    def settings(self):
        """The server settings that matter to durability and speed, for the report."""
        names = ["server_version", "fsync", "synchronous_commit", "wal_level", "shared_buffers", "max_wal_size",
                 "checkpoint_timeout", "max_connections", "autovacuum"]
        with psycopg.connect(self.url + "/postgres") as c:
            return {n: c.execute(f"SHOW {n}").fetchone()[0] for n in names}

    def close(self):
        if self.dir:
            subprocess.run([*self.as_pg, f"{PG_BIN}/pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "stop"],
                           stdout=subprocess.DEVNULL)


class Bench:
    def __init__(self, server, short, reps, out):
        self.server, self.short, self.reps, self.out = server, short, reps, out
        self.results = []

    # ---------------------------------------------------------------- databases

    def fresh_db(self, name, jobwheel=True):
        """Drops and creates database `name`; migrates it for jobwheel unless
        jobwheel=False (a peer's database). Returns its URL."""
        with psycopg.connect(self.server.url + "/postgres", autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            c.execute(f"CREATE DATABASE {name}")
        url = f"{self.server.url}/{name}"
        if jobwheel:
            self.cli(url, "migrate")
        return url

    def cli(self, url, *args, stdin=None):
        """Runs the jobwheel CLI on url; returns its stdout."""
        return subprocess.run([f"{BUILD}/cli/jobwheel", "--set", "database.url=" + url, *args], check=True,
                              env=ENV, input=stdin, capture_output=True, text=True).stdout

    def spawn(self, binary, url, *args):
        """Starts build/BINARY (e.g. "worker/jobwheel-worker") on url, logging warnings only."""
        return subprocess.Popen([f"{BUILD}/{binary}", "--set", "database.url=" + url, "--log-level", "warn", *args],
                                env=ENV)

    @staticmethod
    def stop(procs):
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    @staticmethod
    def wait_until(conn, sql, timeout, interval=0.05, params=None):
        """Polls sql (one boolean) on conn until it is true; exits the bench on timeout."""
        deadline = time.monotonic() + timeout
        while not conn.execute(sql, params).fetchone()[0]:
            if time.monotonic() > deadline:
                sys.exit(f"bench: timed out after {timeout} s waiting for: {sql}")
            time.sleep(interval)

    # ---------------------------------------------------------------- peers

    def peer(self, script, url, **env):
        """Runs a peer's node script (from bench/peer-scripts)
        on url; returns the last JSON line it printed, as a dict."""
        self.install_peers()
        shutil.copy(os.path.join(PEER_SCRIPTS, script), PEERS)
        out = subprocess.run(["node", script], cwd=PEERS, capture_output=True, text=True,
                             env={**os.environ, "DATABASE_URL": url, **{k: str(v) for k, v in env.items()}})
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        if not lines:
            sys.exit(f"bench: {script} printed no result (exit {out.returncode}):\n{out.stderr[-2000:]}")
        return json.loads(lines[-1])

    @staticmethod
    def install_peers():
        if os.path.isdir(os.path.join(PEERS, "node_modules", "graphile-worker")):
            return
        os.makedirs(PEERS, exist_ok=True)
        log("bench: installing graphile-worker 0.18.0 and pg-boss 10.4.2 from npm into bench/peers")
        subprocess.run("npm init -y >/dev/null && npm install --no-audit --no-fund graphile-worker@0.18.0 "
                       "pg-boss@10.4.2 pg@8.23.1 >/dev/null", shell=True, cwd=PEERS, check=True)

    # ---------------------------------------------------------------- results

    def record(self, workload, system, figure, value, unit, **extra):
        """One measurement: value is a number, or a dict of latency figures
        (p50/p99/max in ms). Printed as a JSON line and kept for the report."""
        r = {"workload": workload, "system": system, "figure": figure, "value": value, "unit": unit, **extra}
        self.results.append(r)
        print(json.dumps(r), flush=True)

    def series(self, workload, system, figure):
        return [r["value"] for r in self.results
                if (r["workload"], r["system"], r["figure"]) == (workload, system, figure)]

    def median(self, workload, system, figure, key=None):
        v = self.series(workload, system, figure)
        if key:
            v = [x[key] for x in v]
        return statistics.median(v) if v else None


def rss_mib(pid, field="VmRSS"):
    """A process's resident set (or VmHWM: its peak) in MiB, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return None
