# SPDX-License-Identifier: MIT
"""Enqueue throughput, workload "enqueue", three ways:

- single-row SQL, 8 producers (pgbench -c 8 -j 2, one job per transaction,
  durable commits): jobwheel.enqueue('noop'); the same call with its
  wake-up (jobwheel._wake) removed, the reference of the bar "not slowed
  by NOTIFY contention: >= 80% of the same insert without notification";
  the row as a plain INSERT into jobwheel.jobs (same table, indexes and
  change-feed trigger: what the enqueue function's checks cost); and
  graphile_worker.add_job('noop', '{}'). Scripts in bench/pgbench/.
- batch: `jobwheel enqueue --batch` reading N NDJSON lines (wall clock of
  the CLI process) as "batch via CLI"; one jobwheel.enqueue_batch() and one
  graphile_worker.add_jobs() call of N jobs as "batch via SQL function".
- over HTTP: POST /api/jobs (and POST /api/jobs/batch, 100 jobs a request)
  to jobwheel-gateway driven by wrk, 8 connections, 2 threads; the jobs in
  the database are checked against wrk's count of 201 responses."""
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import psycopg

from suite.common import GW, log
from suite.rawsql import pgbench

W = "enqueue"
CLIENTS, THREADS = 8, 2
HTTP_BATCH = 100

# wrk script: POSTs BODY to PATH and counts the status codes of the replies
# across threads; done() prints one line "JWBENCH {json}".
WRK_LUA = r"""
wrk.method = "POST"
wrk.path = "%(path)s"
wrk.body = '%(body)s'
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) created = 0; other = 0; first_other = "" end
function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    if other == 0 then first_other = status .. " " .. string.sub(body, 1, 200) end
    other = other + 1
  end
end
function done(summary, latency, requests)
  local c, o, f = 0, 0, ""
  for _, t in ipairs(threads) do
    c = c + t:get("created"); o = o + t:get("other")
    if f == "" then f = t:get("first_other") end
  end
  local e = summary.errors
  io.write(string.format('JWBENCH {"created": %%d, "other": %%d, "requests": %%d, "duration_us": %%d, ' ..
    '"connect_errors": %%d, "read_errors": %%d, "write_errors": %%d, "timeouts": %%d, ' ..
    '"p50_ms": %%.3f, "p99_ms": %%.3f}\n', c, o, summary.requests, summary.duration,
    e.connect, e.read, e.write, e.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
  if f ~= "" then io.write("JWBENCH-FIRST-OTHER ", f, "\n") end
end
"""


def jobs_in(url):
    with psycopg.connect(url) as c:
        return c.execute("SELECT count(*) FROM jobwheel.jobs").fetchone()[0]


def single_row(b, seconds):
    """(a) one job per transaction from 8 pgbench clients."""
    ratios = []
    quiet = "jobwheel.enqueue without NOTIFY"
    for rep in range(b.reps):
        res = {}
        for system, script in [("jobwheel", "enqueue_jobwheel.sql"),
                               (quiet, "enqueue_jobwheel.sql"),
                               ("jobwheel, plain INSERT", "enqueue_insert.sql"),
                               (GW, "enqueue_graphile.sql")]:
            if system == GW:
                url = b.fresh_db("bench_enqueue_gw", jobwheel=False)
                b.peer("gw_enqueue.mjs", url, N=0)  # graphile-worker's schema only
            else:
                url = b.fresh_db("bench_enqueue")
            if system == quiet:
                # The bar's reference: the same call with its wake-up removed.
                with psycopg.connect(url, autocommit=True) as c:
                    c.execute("CREATE OR REPLACE FUNCTION jobwheel._wake(queue text) RETURNS void"
                              " LANGUAGE sql AS 'SELECT'")
            r = pgbench(url, script, seconds)
            if system != GW:  # every committed transaction left one job
                n = jobs_in(url)
                if n != r["transactions"]:
                    sys.exit(f"bench: enqueue: {script}: {r['transactions']} transactions but {n} jobs")
            res[system] = r
        ratio = res["jobwheel"]["tps"] / res[quiet]["tps"]
        ratios.append(ratio)
        for system, r in res.items():
            extra = {"vs_without_notify": round(ratio, 3)} if system == "jobwheel" else {}
            b.record(W, system, "single-row SQL, 8 producers", round(r["tps"]), "jobs/s", tps=r["tps"],
                     clients=CLIENTS, threads=THREADS, seconds=seconds, latency_ms=r["latency_ms"],
                     rep=rep + 1, **extra)
    log(f"bench: enqueue: jobwheel.enqueue with / without its NOTIFY = {statistics.median(ratios):.2f} "
        f"(median of {', '.join(f'{x:.2f}' for x in ratios)})")


def batches(b, n):
    """(b) n jobs at once: the CLI's NDJSON batch, and one SQL call of each system."""
    ndjson = "".join(json.dumps({"kind": "noop", "payload": {"i": i}}) + "\n" for i in range(1, n + 1))
    one_call = ("SELECT count(*) FROM jobwheel.enqueue_batch((SELECT jsonb_agg(jsonb_build_object("
                "'kind', 'noop', 'payload', jsonb_build_object('i', i)) ORDER BY i) "
                "FROM generate_series(1, %s) i))")
    for rep in range(b.reps):
        url = b.fresh_db("bench_enqueue")
        t = time.monotonic()
        b.cli(url, "enqueue", "--batch", stdin=ndjson)
        s = time.monotonic() - t
        if jobs_in(url) != n:
            sys.exit(f"bench: enqueue: jobwheel enqueue --batch of {n} left {jobs_in(url)} jobs")
        b.record(W, "jobwheel", "batch via CLI", round(n / s), "jobs/s", n=n, seconds=round(s, 3), rep=rep + 1)

        url = b.fresh_db("bench_enqueue")
        with psycopg.connect(url, autocommit=True) as c:
            t = time.monotonic()
            got = c.execute(one_call, (n,)).fetchone()[0]
            s = time.monotonic() - t
        if got != n or jobs_in(url) != n:
            sys.exit(f"bench: enqueue: jobwheel.enqueue_batch of {n} returned {got} ids, {jobs_in(url)} jobs")
        b.record(W, "jobwheel", "batch via SQL function", round(n / s), "jobs/s", n=n, seconds=round(s, 3),
                 rep=rep + 1)

        url = b.fresh_db("bench_enqueue_gw", jobwheel=False)
        r = b.peer("gw_enqueue.mjs", url, N=n)
        b.record(W, GW, "batch via SQL function", r["enqueue_per_s"], "jobs/s", n=n, seconds=round(r["seconds"], 3),
                 rep=rep + 1)


def wait_ready(port, timeout=10):
    """/readyz, not /healthz: the gateway answers 503 until a pool connection
    is up, and wrk must not start before that."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"bench: enqueue: the gateway was not ready on 127.0.0.1:{port} within {timeout} s")
        time.sleep(0.05)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(port, path, body, seconds):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA % {"path": path, "body": body})
    try:
        out = subprocess.run(["wrk", "-c", str(CLIENTS), "-t", str(THREADS), "-d", f"{seconds}s", "--timeout", "10s",
                              "-s", f.name, f"http://127.0.0.1:{port}"], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    m = re.search(r"^JWBENCH (\{.*\})$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        sys.exit(f"bench: enqueue: wrk failed (exit {out.returncode}):\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    r = json.loads(m.group(1))
    other = re.search(r"^JWBENCH-FIRST-OTHER (.*)$", out.stdout, re.M)
    r["first_other"] = other.group(1) if other else None
    return r


def http(b, seconds):
    """(c) single jobs and batches of 100 over the gateway's REST API."""
    single = json.dumps({"kind": "noop"})
    batch = json.dumps({"jobs": [{"kind": "noop"}] * HTTP_BATCH})
    for rep in range(b.reps):
        for figure, path, body, per in [("single job over HTTP, 8 connections", "/api/jobs", single, 1),
                                        (f"batch of {HTTP_BATCH} over HTTP, 8 connections", "/api/jobs/batch",
                                         batch, HTTP_BATCH)]:
            url = b.fresh_db("bench_enqueue")
            port = free_port()
            gw = b.spawn("gateway/jobwheel-gateway", url, "--set", f"gateway.listen=127.0.0.1:{port}")
            try:
                wait_ready(port)
                r = wrk(port, path, body, seconds)
            finally:
                b.stop([gw])
            # Every 201 is a committed job (or batch); requests still in
            # flight when wrk stopped may have committed too, at most one per
            # connection. Any other status or socket error fails the bench.
            n = jobs_in(url)
            errors = r["other"] + r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
            if errors or r["created"] == 0 or not r["created"] * per <= n <= (r["created"] + CLIENTS) * per:
                sys.exit(f"bench: enqueue: {path}: wrk saw {r['created']} x 201 ({r}), the database holds {n} jobs")
            s = r["duration_us"] / 1e6
            b.record(W, "jobwheel", figure, round(r["created"] * per / s), "jobs/s", requests=r["created"],
                     per_request=per, jobs_in_db=n, seconds=round(s, 3), connections=CLIENTS, threads=THREADS,
                     p50_ms=r["p50_ms"], p99_ms=r["p99_ms"], rep=rep + 1)


def run(b):
    single_row(b, 3 if b.short else 10)
    batches(b, 20_000 if b.short else 100_000)
    http(b, 3 if b.short else 10)
    with psycopg.connect(b.server.url + "/postgres", autocommit=True) as c:
        for db in ("bench_enqueue", "bench_enqueue_gw"):
            c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
