# SPDX-License-Identifier: MIT
"""jobwheel-gateway's GET /metrics in the Prometheus text format: job
counts by queue and state, completions, failures, histograms, SSE clients."""
import re

from conftest import one, wait_for
from gateway_client import connect, enqueue, enqueue_batch, metrics


def test_metrics_follow_jobs_as_a_worker_runs_them(gateways, workers, db):
    gw = gateways.start()
    enqueue_batch(gw, [{"kind": "noop", "queue": "m"}] * 5 + [{"kind": "sleep", "queue": "m",
                                                                 "payload": {"ms": 50}}])
    wait_for(lambda: metrics(gw).get('jobwheel_jobs{queue="m",state="ready"}') == 6, what="ready = 6")
    workers.start(concurrency=4, queues="m")

    def done():
        m = metrics(gw)
        return m.get('jobwheel_jobs{queue="m",state="succeeded"}') == 6 and m
    m = wait_for(done, 15, what="succeeded = 6 in /metrics")
    assert m.get('jobwheel_jobs{queue="m",state="ready"}', 0) == 0
    assert m.get('jobwheel_jobs{queue="m",state="running"}', 0) == 0
    assert m['jobwheel_job_completions_total{queue="m",kind="noop"}'] == 5
    assert m['jobwheel_job_completions_total{queue="m",kind="sleep"}'] == 1
    for hist in ("jobwheel_job_duration_seconds", "jobwheel_pickup_latency_seconds"):
        buckets = sorted(((float(re.search(r'le="([^"]+)"', k).group(1)), v) for k, v in m.items()
                          if k.startswith(hist + '_bucket{queue="m",')), key=lambda b: b[0])
        assert len(buckets) >= 3 and buckets[-1][0] == float("inf"), buckets
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets  # cumulative
        assert buckets[-1][1] == 6 == m[hist + '_count{queue="m"}']
        assert m[hist + '_sum{queue="m"}'] >= 0
    duration_sum = m['jobwheel_job_duration_seconds_sum{queue="m"}']
    assert 0.05 <= duration_sum < 10, duration_sum  # the sleep job alone ran 50 ms

    kill = enqueue(gw, kind="fail", queue="m", payload={"message": "x", "retryable": False})
    wait_for(lambda: metrics(gw).get('jobwheel_jobs{queue="m",state="dead"}') == 1, what="dead = 1")
    m = metrics(gw)
    assert m['jobwheel_jobs_dead_total{queue="m",kind="fail"}'] == 1
    assert m['jobwheel_job_failures_total{queue="m",kind="fail"}'] == 1
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", kill) == "dead"


def test_metrics_count_sse_clients(gateways, db):
    gw = gateways.start()
    assert metrics(gw)["jobwheel_sse_clients"] == 0
    socks = []
    for _ in range(2):
        s = connect(gw)
        s.sendall(b"GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n")
        assert s.recv(12).startswith(b"HTTP/1.1 200")
        socks.append(s)
    wait_for(lambda: metrics(gw)["jobwheel_sse_clients"] == 2, what="2 SSE clients")
    socks.pop().close()
    wait_for(lambda: metrics(gw)["jobwheel_sse_clients"] == 1, what="1 SSE client")
    socks.pop().close()
    wait_for(lambda: metrics(gw)["jobwheel_sse_clients"] == 0, what="0 SSE clients")


def test_metrics_counts_include_jobs_from_before_the_gateway_started(gateways, db):
    db.execute("SELECT jobwheel.enqueue('old', queue => 'early') FROM generate_series(1, 3)")
    gw = gateways.start()
    wait_for(lambda: metrics(gw).get('jobwheel_jobs{queue="early",state="ready"}') == 3, 5,
             what="ready = 3 from before the start")
