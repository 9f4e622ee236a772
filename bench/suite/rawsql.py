# SPDX-License-Identifier: MIT
"""The raw-SQL limit of a job queue on this PostgreSQL, measured with pgbench:
8 clients each claim 100 ready rows with FOR UPDATE SKIP LOCKED and mark them
succeeded, one transaction per batch, durable commits, on a minimal queue
table (bench/pgbench/rawsql_schema.sql) with jobwheel's partial claim index.
Rows are kept, as jobwheel keeps its history: that is the fair ceiling for
jobwheel's drain figure. A second variant deletes the rows instead.

Figure "drain jobs/s" of workload "drain" (rows/s = tps x 100), so the
report sets it next to jobwheel's drain."""
import os
import re
import subprocess
import sys
import time

import psycopg

from suite.common import ROOT, log

PGBENCH_DIR = os.path.join(ROOT, "bench", "pgbench")
PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
CLIENTS, THREADS, BATCH = 8, 2, 100

SYSTEMS = [("raw SQL limit (pgbench)", "rawsql_complete.sql"),
           ("raw SQL limit, delete (pgbench)", "rawsql_delete.sql")]


def pgbench(url, script, seconds, clients=CLIENTS, threads=THREADS):
    """Runs bench/pgbench/SCRIPT on url for `seconds` with pgbench (-n: no
    vacuum of pgbench's own tables, -M prepared) and returns a dict: tps
    (without the initial connection time), transactions, failed, latency_ms.
    Exits the bench if pgbench fails or any transaction failed."""
    path = script if os.path.isabs(script) else os.path.join(PGBENCH_DIR, script)
    cmd = [PGBENCH if os.path.exists(PGBENCH) else "pgbench", "-n", "-M", "prepared", "-c", str(clients),
           "-j", str(threads), "-T", str(seconds), "-f", path, url]
    out = subprocess.run(cmd, capture_output=True, text=True)
    text = out.stdout + out.stderr
    tps = re.search(r"^tps = ([0-9.]+) \(without initial connection time\)", text, re.M)
    txns = re.search(r"^number of transactions actually processed: (\d+)", text, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    lat = re.search(r"^latency average = ([0-9.]+) ms", text, re.M)
    if out.returncode != 0 or not tps or not txns or (failed and int(failed.group(1)) > 0):
        sys.exit(f"bench: pgbench {os.path.basename(path)} failed (exit {out.returncode}):\n{text[-3000:]}")
    return {"tps": float(tps.group(1)), "transactions": int(txns.group(1)),
            "failed": int(failed.group(1)) if failed else 0, "latency_ms": float(lat.group(1)) if lat else None}


def fill(b, name, rows):
    """A fresh database `name` holding the raw queue table with `rows` ready rows."""
    url = b.fresh_db(name, jobwheel=False)
    with open(os.path.join(PGBENCH_DIR, "rawsql_schema.sql")) as f:
        schema = f.read()
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(schema)
        c.execute("INSERT INTO rawq (payload) SELECT '{}' FROM generate_series(1, %s)", (rows,))
        c.execute("VACUUM ANALYZE rawq")
        # The shared buffers and WAL settle before the clock starts.
        c.execute("CHECKPOINT")
    return url


def run(b):
    seconds = 4 if b.short else 10
    # Enough ready rows that no client ever finds the queue empty (sized by
    # duration: 4*10^5 short, 1.2*10^6 full): checked after each run (rows
    # changed = transactions x 100), and doubled should a run drain them anyway.
    rows = (100_000 if b.short else 120_000) * seconds
    for rep in range(b.reps):
        for system, script in SYSTEMS:
            for _attempt in range(3):
                url = fill(b, "bench_rawsql", rows)
                t = time.monotonic()
                r = pgbench(url, script, seconds)
                wall = time.monotonic() - t
                with psycopg.connect(url) as c:
                    ready, total = c.execute(
                        "SELECT count(*) FILTER (WHERE state = 'ready'), count(*) FROM rawq").fetchone()
                changed = rows - ready
                if ready > 0:
                    break
                log(f"bench: rawsql: {system} drained all {rows} rows in {seconds} s; again with {2 * rows}")
                rows *= 2
            else:
                sys.exit("bench: rawsql: the raw queue kept running dry")
            # Every transaction must have moved a full batch: the figure is tps x 100.
            if changed != r["transactions"] * BATCH:
                sys.exit(f"bench: rawsql: {system}: {r['transactions']} transactions changed {changed} rows, "
                         f"not {r['transactions'] * BATCH}")
            if script == "rawsql_delete.sql" and total != ready:
                sys.exit(f"bench: rawsql: {system}: {total - ready} finished rows were not deleted")
            b.record("drain", system, "drain jobs/s", round(r["tps"] * BATCH), "jobs/s",
                     tps=r["tps"], batch=BATCH, clients=CLIENTS, threads=THREADS, seconds=seconds,
                     latency_ms=r["latency_ms"], rep=rep + 1, rows=rows, rows_changed=changed, wall_s=round(wall, 2))
    with psycopg.connect(b.server.url + "/postgres", autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS bench_rawsql WITH (FORCE)")  # no 10^6-row table left behind
