#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""DAG workflow benchmarks.

    bench/dag.py PGURL [--width 9998] [--depth 1000] [--reps 3]

PGURL names a server (postgresql://postgres@127.0.0.1:5432); database jw_dag
is created there afresh. Two jobwheel-workers (from JW_BUILD_DIR, default
build/) run the jobs. Measures, with times from the database's clock:
  fan-out/fan-in  1 root -> WIDTH children -> 1 sink: submit time (one
                  submit_workflow call), completion time, and the per-edge
                  overhead against WIDTH + 2 independent no-op jobs;
  chain           DEPTH jobs each depending on the previous one: release
                  latency = child started_at - parent finished_at (p50, p99).
"""
import argparse
import json
import statistics
import time

import psycopg

from jwbench import fresh_database, spawn


def wait_all(conn, ids, timeout=300):
    deadline = time.monotonic() + timeout
    while conn.execute("SELECT count(*) FROM jobwheel.jobs WHERE id = ANY(%s) AND state <> 'succeeded'",
                       (ids,)).fetchone()[0]:
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.05)


def span(conn, ids):
    """Seconds from the first job's start to the last job's finish."""
    return float(conn.execute("SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM jobwheel.jobs "
                              "WHERE id = ANY(%s)", (ids,)).fetchone()[0])


def fan(conn, width):
    jobs = [{"key": "root", "kind": "noop"}]
    jobs += [{"key": f"c{i}", "kind": "noop", "depends_on": ["root"]} for i in range(width)]
    jobs.append({"key": "sink", "kind": "noop", "depends_on": [f"c{i}" for i in range(width)]})
    t0 = time.perf_counter()
    out = conn.execute("SELECT jobwheel.submit_workflow(%s)", (json.dumps({"name": "fan", "jobs": jobs}),)).fetchone()[0]
    submit = time.perf_counter() - t0
    ids = list(out["jobs"].values())
    wait_all(conn, ids)
    return submit, span(conn, ids), len(ids)


def independent(conn, n):
    ids = [r[0] for r in conn.execute(
        "SELECT * FROM jobwheel.enqueue_batch((SELECT jsonb_agg(jsonb_build_object('kind', 'noop')) "
        "FROM generate_series(1, %s)))", (n,))]
    wait_all(conn, ids)
    return span(conn, ids)


def chain(conn, depth):
    jobs = [{"key": "j0", "kind": "noop"}] + [
        {"key": f"j{i}", "kind": "noop", "depends_on": [f"j{i - 1}"]} for i in range(1, depth)]
    out = conn.execute("SELECT jobwheel.submit_workflow(%s)", (json.dumps({"name": "chain", "jobs": jobs}),)).fetchone()[0]
    ids = [out["jobs"][f"j{i}"] for i in range(depth)]
    wait_all(conn, ids)
    return [float(r[0]) for r in conn.execute(
        "SELECT extract(epoch FROM c.started_at - p.finished_at) * 1000 FROM jobwheel.jobs c "
        "JOIN jobwheel.jobs p ON p.id = c.depends_on[1] WHERE c.id = ANY(%s)", (ids,))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--width", type=int, default=9998)
    ap.add_argument("--depth", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    url = fresh_database(a.url, "jw_dag")
    workers = [spawn("worker/jobwheel-worker", url, "--concurrency", "256") for _ in range(2)]
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            while conn.execute("SELECT count(*) FROM jobwheel.workers").fetchone()[0] < 2:
                time.sleep(0.05)
            submits, flows, plains, releases = [], [], [], []
            for _ in range(a.reps):
                submit, flow, n = fan(conn, a.width)
                submits.append(submit)
                flows.append(flow)
                plains.append(independent(conn, n))
                releases += chain(conn, a.depth)
            edges = 2 * a.width
            over = [(f - p) / edges * 1e6 for f, p in zip(flows, plains)]
            print(json.dumps({"figure": f"fan-out/fan-in 1 -> {a.width} -> 1", "runs": a.reps,
                              "submit_s_median": round(statistics.median(submits), 3),
                              "submit_s_max": round(max(submits), 3),
                              "complete_s_median": round(statistics.median(flows), 3),
                              "independent_jobs_s_median": round(statistics.median(plains), 3),
                              "overhead_us_per_edge_median": round(statistics.median(over), 1)}))
            releases.sort()
            print(json.dumps({"figure": f"chain of {a.depth}", "runs": a.reps,
                              "release_ms_p50": round(releases[len(releases) // 2], 2),
                              "release_ms_p99": round(releases[int(len(releases) * 0.99)], 2),
                              "release_ms_max": round(releases[-1], 2)}))
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait()


if __name__ == "__main__":
    main()
