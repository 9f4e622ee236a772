# SPDX-License-Identifier: MIT
"""The worker and the gateway under valgrind memcheck through a short real
workload and a SIGTERM: no invalid read or write, no use of uninitialised
memory, nothing definitely lost at exit. (The sanitizer build covers the
other suites; valgrind also sees what ASan cannot, e.g. uninitialised reads.)"""
import json
import shutil
import signal
import socket

import psycopg
import pytest

from conftest import GATEWAY, SANITIZER_DIR, WORKER, one, wait_for
from fakes import FakeHTTP, Reply
from test_gateway_sse import SSE

VALGRIND = shutil.which("valgrind")
pytestmark = [
    pytest.mark.skipif(VALGRIND is None, reason="valgrind is not installed (apt-get install valgrind)"),
    pytest.mark.skipif(SANITIZER_DIR is not None, reason="valgrind cannot run an ASan build (JW_BUILD_DIR)"),
]

ERROR_EXIT = 99
TERMINAL = "('succeeded', 'dead', 'cancelled')"


def memcheck(tmp_path, binary):
    """The valgrind command line for binary and where its report goes."""
    log = tmp_path / f"valgrind-{binary.rsplit('/', 1)[-1]}.log"
    return [VALGRIND, f"--error-exitcode={ERROR_EXIT}", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--track-fds=no", "--num-callers=30", f"--log-file={log}"], log


def assert_clean_exit(proc, log, timeout=60):
    """SIGTERM, then the exit status and valgrind's report must both be clean."""
    proc.signal(signal.SIGTERM)
    rc = proc.wait(timeout)
    report = log.read_text()
    assert rc != ERROR_EXIT, f"valgrind found errors:\n{report}"
    assert rc == 0, f"exit status {rc}:\n{proc.output()}\n{report}"
    assert "ERROR SUMMARY: 0 errors" in report, report
    assert "definitely lost in loss record" not in report, report


def test_worker_runs_a_mixed_workload_and_stops_cleanly_under_memcheck(dsn, db, workers, tmp_path):
    fake = FakeHTTP()
    try:
        fake.script("/hook", Reply(200, body={"ok": True}))
        fake.script("/flaky", Reply(503, body="busy"), Reply(200, body="ok"))
        fake.script("/gone", Reply(404, body="no such hook"))
        wrapper, log = memcheck(tmp_path, WORKER)
        w = workers.start(wrapper=wrapper, wait=False, concurrency=8, queues="default,hooks",
                          worker__poll_ms=100, worker__heartbeat_ms=200, worker__shutdown_grace_ms=300,
                          http__allow="127.0.0.1", http__signing_secret_env="HOOK_SECRET",
                          env={"HOOK_SECRET": "whsec_valgrind"})
        w.wait_registered(db, timeout=60)

        def many(n, kind, payload, queue="default", **kw):
            extra = "".join(f", {k} => {v}" for k, v in kw.items())
            db.execute(f"SELECT jobwheel.enqueue(%s, %s::jsonb, %s, backoff_base_ms => 100{extra}) "
                       "FROM generate_series(1, %s)", (kind, json.dumps(payload), queue, n))
        many(200, "noop", {"echo": {"n": [1, 2, 3]}})
        many(40, "sleep", {"ms": 20})
        many(40, "http", {"url": fake.url("/hook"), "body": {"event": "x"}}, "hooks")
        many(5, "http", {"url": fake.url("/flaky")}, "hooks")
        many(5, "http", {"url": fake.url("/gone")}, "hooks")
        many(10, "fail", {"message": "no", "retryable": False})
        many(3, "sleep", {"ms": 60000}, timeout_ms=300, max_attempts=1)
        wait_for(lambda: one(db, f"SELECT count(*) FROM jobwheel.jobs WHERE state NOT IN {TERMINAL}") == 0,
                 timeout=60, what="every job to finish")
        states = dict(db.execute("SELECT state, count(*) FROM jobwheel.jobs GROUP BY state").fetchall())
        assert states == {"succeeded": 285, "dead": 18}, states

        # A job still running at SIGTERM: drained, then given back after the grace.
        db.execute("SELECT jobwheel.enqueue('sleep', '{\"ms\": 60000}')")
        wait_for(lambda: one(db, "SELECT count(*) FROM jobwheel.jobs WHERE state = 'running'") == 1,
                 timeout=20, what="the long job to run")
        assert_clean_exit(w, log)
    finally:
        fake.close()


def test_gateway_serves_rest_and_sse_and_stops_cleanly_under_memcheck(dsn, db, gateways, tmp_path):
    wrapper, log = memcheck(tmp_path, GATEWAY)
    gw = gateways.start(wrapper=wrapper, wait=False)
    gw.wait_registered(timeout=60)
    stream = SSE(gw, "types=job", timeout=30).ready(timeout=30)

    ids = []
    for k in range(30):
        status, value = gw.post("/api/jobs", {"kind": "noop", "payload": {"k": k}, "priority": k % 3})
        assert status == 201, value
        ids.append(value["id"])
    status, value = gw.post("/api/jobs/batch", {"jobs": [{"kind": "noop", "queue": "bulk"}] * 200})
    assert status == 201 and len(value["ids"]) == 200, value
    status, wf = gw.post("/api/workflows", {"jobs": [{"key": "a", "kind": "x"},
                                                     {"key": "b", "kind": "y", "depends_on": ["a"]}]})
    assert status == 201, wf
    for job in ids[:10]:
        assert gw.get(f"/api/jobs/{job}")[0] == 200
        assert gw.post(f"/api/jobs/{job}/cancel")[0] == 200
        assert gw.post(f"/api/jobs/{job}/retry")[0] == 200
    for path in ("/api/jobs?state=ready&limit=50", "/api/queues", "/api/workers", "/api/dlq",
                 f"/api/workflows/{wf['workflow_id']}", "/api/workflows", "/metrics", "/healthz", "/"):
        assert gw.get(path)[0] == 200, path
    assert gw.get("/api/jobs/999999999")[0] == 404
    status, _, _ = gw.request("POST", "/api/jobs", raw=b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400

    # The stream relays the REST activity; a second client replays from an id.
    events = stream.until(lambda e: e.is_job(ids[9], "cancelled"), timeout=30, what="the last cancel")
    first = next(e.id for e in events if e.event == "job")
    replay = SSE(gw, "types=job", headers={"Last-Event-ID": str(first)}, timeout=30).ready(timeout=30)
    replay.until(lambda e: e.is_job(ids[0]), timeout=30, what="a replayed event")
    replay.close()

    # At SIGTERM: a stream client, and a request waiting for the database
    # (its token check blocks on a lock held here).
    with psycopg.connect(dsn) as locker:
        locker.execute("LOCK TABLE jobwheel.tokens IN ACCESS EXCLUSIVE MODE")
        waiting = socket.create_connection(("127.0.0.1", gw.port))
        waiting.sendall(b"GET /api/queues HTTP/1.1\r\nHost: t\r\n\r\n")
        try:
            wait_for(lambda: one(db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND query LIKE %s", "%token_scope%") == 1, timeout=30, what="the request to wait")
            assert_clean_exit(gw, log)
        finally:
            locker.rollback()
            waiting.close()
            stream.close()
