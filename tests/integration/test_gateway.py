# SPDX-License-Identifier: MIT
"""jobwheel-gateway over real HTTP against a real database: every route of
docs/API.md "HTTP API" with its JSON shape, status codes and the rows it
writes; validation that refuses bad input and writes nothing; keyset paging;
tokens and scopes; keep-alive, pipelining and 100-continue; /metrics.
The event stream (GET /api/events) is in test_gateway_sse.py."""
import http.client
import json
import re
import socket
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import GATEWAY, clean_env, cli, free_port, one, wait_for

JOB_KEYS = {"id", "queue", "kind", "state", "priority", "attempt", "max_attempts", "run_at", "created_at",
            "started_at", "finished_at", "last_error", "workflow_id"}
JOB_DETAIL_KEYS = JOB_KEYS | {"payload", "result", "unique_key", "timeout_ms", "worker", "errors", "parents",
                              "children"}
STATES = ["blocked", "scheduled", "ready", "running", "succeeded", "dead", "cancelled"]
ANY = object()


# ---------------------------------------------------------------- helpers

def make_token(dsn, name, scope):
    """A new token from `jobwheel token create` (alone on the last line)."""
    return cli(dsn, "token", "create", name, "--scope", scope).stdout.splitlines()[-1]


def count(db, table="jobs"):
    return one(db, f"SELECT count(*) FROM jobwheel.{table}")


def written(db):
    """Row counts of every table a request could write to."""
    return {t: count(db, t) for t in ("jobs", "events", "workflows", "job_deps", "queues", "job_errors")}


def assert_error(status, value, want_status, code, field=ANY):
    """The error shape of docs/API.md: {"error": {"code", "message", "field"?}}."""
    assert status == want_status, value
    assert isinstance(value, dict) and set(value) == {"error"}, value
    err = value["error"]
    assert err["code"] == code, value
    assert isinstance(err["message"], str) and err["message"], value
    assert set(err) <= {"code", "message", "field"}, value
    if field is not ANY:
        assert err.get("field") == field, value


def parse_ts(text):
    """An RFC 3339 timestamp in UTC (Z or +00:00) as an aware datetime."""
    assert isinstance(text, str) and re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", text), text
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert ts.utcoffset() == timedelta(0), f"{text} is not UTC"
    return ts


def enqueue(gw, token=None, **job):
    status, value = gw.post("/api/jobs", job, token=token)
    assert status == 201, value
    return value["id"]


def enqueue_batch(gw, jobs, token=None):
    status, value = gw.post("/api/jobs/batch", {"jobs": jobs}, token=token)
    assert status == 201, value
    return value["ids"]


def kill_jobs(db, ids, error="boom"):
    """Runs the jobs' only attempt through the SQL worker API and fails them
    for good: they end `dead` (in the DLQ) with one error each."""
    for job_id in ids:
        db.execute("UPDATE jobwheel.jobs SET max_attempts = 1 WHERE id = %s", (job_id,))
    queues = [r[0] for r in db.execute(
        "SELECT DISTINCT queue FROM jobwheel.jobs WHERE id = ANY(%s)", (list(ids),)).fetchall()]
    claimed = db.execute("SELECT id, attempt FROM jobwheel.claim('test-worker', %s, 10000)", (queues,)).fetchall()
    assert {r[0] for r in claimed} >= set(ids), claimed
    for job_id, attempt in claimed:
        if job_id in ids:
            assert one(db, "SELECT jobwheel.fail(%s, %s, %s, false)", job_id, attempt, error)
        else:  # not ours: put it back as it was
            db.execute("UPDATE jobwheel.jobs SET state = 'ready', attempt = attempt - 1, lease_until = NULL, "
                       "started_at = NULL, worker = NULL WHERE id = %s", (job_id,))
    assert one(db, "SELECT count(*) FROM jobwheel.jobs WHERE id = ANY(%s) AND state = 'dead'", list(ids)) == len(ids)


def recv_response(sock, buf=b""):
    """Reads one HTTP/1.1 response (Content-Length framed) from sock.
    Returns (status, headers with lower-case names, body bytes, bytes left over)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a whole response head; got {buf!r}")
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), lines[0]
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    n = int(headers.get("content-length", "0"))
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed inside a body of {n} bytes; got {buf!r}")
        buf += chunk
    return status, headers, buf[:n], buf[n:]


def connect(gw, timeout=10):
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=timeout)
    return s


def closed_by_peer(sock, timeout=5):
    """Whether the server closes the connection (EOF) within timeout."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def post_raw(gw, path, data, content_type="application/json", headers=None):
    h = dict(headers or {})
    if content_type is not None:
        h["Content-Type"] = content_type
    status, value, _ = gw.request("POST", path, raw=data, headers=h)
    return status, value


# ---------------------------------------------------------------- POST /api/jobs

def test_enqueue_answers_201_with_id_and_state_and_writes_every_field(gateways, db):
    gw = gateways.start()
    body = {"kind": "email", "payload": {"to": "a@example.com", "n": [1, 2]}, "queue": "mail", "priority": -3,
            "max_attempts": 7, "unique_key": "u-1", "timeout_ms": 5000, "backoff_base_ms": 250}
    status, value, headers = gw.request("POST", "/api/jobs", body)
    assert status == 201, value
    assert headers["Content-Type"].startswith("application/json")
    assert set(value) == {"id", "state"} and isinstance(value["id"], int) and value["state"] == "ready"
    row = db.execute("SELECT kind, payload, queue, priority, max_attempts, unique_key, timeout_ms, "
                     "backoff_base_ms, state, attempt, trigger FROM jobwheel.jobs WHERE id = %s",
                     (value["id"],)).fetchone()
    assert row == ("email", body["payload"], "mail", -3, 7, "u-1", 5000, 250, "ready", 0, "all_success")
    assert count(db) == 1


def test_enqueue_with_defaults(gateways, db):
    gw = gateways.start()
    job_id = enqueue(gw, kind="noop")
    row = db.execute("SELECT queue, payload, priority, max_attempts, state FROM jobwheel.jobs WHERE id = %s",
                     (job_id,)).fetchone()
    assert row == ("default", {}, 0, 4, "ready")


def test_enqueue_run_at_in_the_future_is_scheduled_at_that_instant(gateways, db):
    gw = gateways.start()
    at = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(microsecond=123000)
    status, value = gw.post("/api/jobs", {"kind": "noop", "run_at": at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"})
    assert status == 201 and value["state"] == "scheduled", value
    assert one(db, "SELECT run_at FROM jobwheel.jobs WHERE id = %s", value["id"]) == at
    # The same instant written with another offset.
    local = at.astimezone(timezone(timedelta(hours=2))).isoformat()
    status, value = gw.post("/api/jobs", {"kind": "noop", "run_at": local})
    assert status == 201 and value["state"] == "scheduled", value
    assert one(db, "SELECT run_at FROM jobwheel.jobs WHERE id = %s", value["id"]) == at


def test_enqueue_delay_ms_schedules_the_job_that_much_later(gateways, db):
    gw = gateways.start()
    status, value = gw.post("/api/jobs", {"kind": "noop", "delay_ms": 60000})
    assert status == 201 and value["state"] == "scheduled", value
    delay = one(db, "SELECT extract(epoch FROM run_at - created_at) FROM jobwheel.jobs WHERE id = %s", value["id"])
    assert 59 <= float(delay) <= 61


def test_enqueue_depends_on_blocks_the_child_and_links_parents_and_children(gateways, db):
    gw = gateways.start()
    parent = enqueue(gw, kind="fetch")
    status, value = gw.post("/api/jobs", {"kind": "merge", "depends_on": [parent], "trigger": "all_done"})
    assert status == 201 and value["state"] == "blocked", value
    child = value["id"]
    assert db.execute("SELECT depends_on, trigger, state FROM jobwheel.jobs WHERE id = %s",
                      (child,)).fetchone() == ([parent], "all_done", "blocked")
    status, value = gw.get(f"/api/jobs/{child}")
    assert status == 200 and value["parents"] == [{"id": parent, "kind": "fetch", "state": "ready"}], value
    assert value["children"] == []
    status, value = gw.get(f"/api/jobs/{parent}")
    assert status == 200 and value["children"] == [{"id": child, "kind": "merge", "state": "blocked"}], value
    assert value["parents"] == []


def test_enqueue_same_unique_key_twice_gives_the_same_job(gateways, db):
    gw = gateways.start()
    first = enqueue(gw, kind="report", unique_key="report-2026-11")
    status, value = gw.post("/api/jobs", {"kind": "report", "unique_key": "report-2026-11"})
    assert status in (200, 201) and value == {"id": first, "state": "ready"}, value
    assert count(db) == 1


def test_enqueue_with_an_unknown_parent_is_400_naming_depends_on_and_writes_nothing(gateways, db):
    gw = gateways.start()
    before = written(db)
    status, value = gw.post("/api/jobs", {"kind": "merge", "depends_on": [987654]})
    assert_error(status, value, 400, "bad_request", "depends_on")
    assert "987654" in value["error"]["message"]
    assert written(db) == before


# ---------------------------------------------------------------- POST /api/jobs/batch

def test_batch_answers_201_with_ids_in_input_order(gateways, db):
    gw = gateways.start()
    jobs = [{"kind": "a"}, {"kind": "b", "queue": "mail", "delay_ms": 60000}, {"kind": "c", "priority": 5}]
    status, value = gw.post("/api/jobs/batch", {"jobs": jobs})
    assert status == 201 and set(value) == {"ids"} and len(value["ids"]) == 3, value
    ids = value["ids"]
    assert len(set(ids)) == 3 and all(isinstance(i, int) for i in ids)
    rows = [db.execute("SELECT kind, queue, state, priority FROM jobwheel.jobs WHERE id = %s", (i,)).fetchone()
            for i in ids]
    assert rows == [("a", "default", "ready", 0), ("b", "mail", "scheduled", 0), ("c", "default", "ready", 5)]
    assert count(db) == 3


def test_batch_of_10000_jobs_is_accepted_and_10001_refused(gateways, db):
    gw = gateways.start()
    status, value = gw.post("/api/jobs/batch", {"jobs": [{"kind": "a"}] * 10001})
    assert_error(status, value, 400, "bad_request", "jobs")
    assert count(db) == 0
    status, value = gw.post("/api/jobs/batch", {"jobs": [{"kind": "a"}] * 10000})
    assert status == 201 and len(value["ids"]) == 10000
    assert count(db) == 10000


# ---------------------------------------------------------------- GET /api/jobs/{id}

def test_get_job_gives_the_job_with_payload_errors_worker_and_result(gateways, workers, db):
    gw = gateways.start()
    w = workers.start(concurrency=2)
    ok = enqueue(gw, kind="noop", payload={"x": 1}, unique_key="k1", timeout_ms=9000)
    bad = enqueue(gw, kind="fail", payload={"message": "it broke", "retryable": False}, max_attempts=3)
    wait_for(lambda: one(db, "SELECT count(*) FROM jobwheel.jobs WHERE state IN ('succeeded', 'dead')") == 2,
             what="both jobs to finish")

    status, value = gw.get(f"/api/jobs/{ok}")
    assert status == 200 and set(value) == JOB_DETAIL_KEYS, value
    row = db.execute("SELECT result, worker, attempt FROM jobwheel.jobs WHERE id = %s", (ok,)).fetchone()
    assert value["id"] == ok and value["kind"] == "noop" and value["queue"] == "default"
    assert value["state"] == "succeeded" and value["attempt"] == 1 and value["max_attempts"] == 4
    assert value["payload"] == {"x": 1} and value["unique_key"] == "k1" and value["timeout_ms"] == 9000
    assert value["result"] == row[0] and value["worker"] == w.name == row[1]
    assert value["errors"] == [] and value["last_error"] is None and value["workflow_id"] is None
    created, started, finished = (parse_ts(value[k]) for k in ("created_at", "started_at", "finished_at"))
    assert created <= started <= finished
    parse_ts(value["run_at"])

    status, value = gw.get(f"/api/jobs/{bad}")
    assert status == 200 and set(value) == JOB_DETAIL_KEYS, value
    assert value["state"] == "dead" and value["last_error"] == "it broke" and value["attempt"] == 1
    assert len(value["errors"]) == 1 and set(value["errors"][0]) == {"attempt", "worker", "at", "error"}
    e = value["errors"][0]
    assert (e["attempt"], e["worker"], e["error"]) == (1, w.name, "it broke")
    parse_ts(e["at"])
    assert value["result"] is None


def test_unknown_job_and_workflow_are_404(gateways, db):
    gw = gateways.start()
    for path in ("/api/jobs/987654", "/api/workflows/987654"):
        status, value = gw.get(path)
        assert_error(status, value, 404, "not_found")
    for path in ("/api/jobs/987654/cancel", "/api/jobs/987654/retry"):
        status, value = gw.post(path)
        assert_error(status, value, 404, "not_found")


# ---------------------------------------------------------------- cancel and retry

def test_cancel_a_ready_job_then_again_is_409(gateways, db):
    gw = gateways.start()
    job = enqueue(gw, kind="noop")
    status, value = gw.post(f"/api/jobs/{job}/cancel")
    assert status == 200 and value == {"id": job, "state": "cancelled"}, value
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", job) == "cancelled"
    events = count(db, "events")
    status, value = gw.post(f"/api/jobs/{job}/cancel")
    assert_error(status, value, 409, "conflict")
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", job) == "cancelled"
    assert count(db, "events") == events


def test_cancel_a_parent_cancels_its_blocked_child(gateways, db):
    gw = gateways.start()
    parent = enqueue(gw, kind="fetch", delay_ms=600000)
    child = enqueue(gw, kind="merge", depends_on=[parent])
    status, value = gw.post(f"/api/jobs/{parent}/cancel")
    assert status == 200 and value == {"id": parent, "state": "cancelled"}, value
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", child) == "cancelled"


def test_cancel_a_running_and_a_succeeded_job(gateways, workers, db):
    gw = gateways.start()
    workers.start(concurrency=2)
    long = enqueue(gw, kind="sleep", payload={"ms": 30000})
    quick = enqueue(gw, kind="noop")
    wait_for(lambda: one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", long) == "running", what="running")
    wait_for(lambda: one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", quick) == "succeeded",
             what="succeeded")
    status, value = gw.post(f"/api/jobs/{long}/cancel")
    assert status == 200 and value == {"id": long, "state": "cancelled"}, value
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", long) == "cancelled"
    status, value = gw.post(f"/api/jobs/{quick}/cancel")
    assert_error(status, value, 409, "conflict")
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", quick) == "succeeded"


def test_retry_puts_dead_and_cancelled_jobs_back_to_ready_and_refuses_others(gateways, db):
    gw = gateways.start()
    dead, cancelled, ready, running = enqueue_batch(gw, [{"kind": "a"}, {"kind": "b"}, {"kind": "c"},
                                                          {"kind": "d", "queue": "other"}])
    kill_jobs(db, [dead])
    assert gw.post(f"/api/jobs/{cancelled}/cancel")[0] == 200
    db.execute("SELECT jobwheel.claim('test-worker', ARRAY['other'], 1)")

    status, value = gw.post(f"/api/jobs/{dead}/retry")
    assert status == 200 and value == {"id": dead, "state": "ready"}, value
    assert db.execute("SELECT state, attempt FROM jobwheel.jobs WHERE id = %s", (dead,)).fetchone() == ("ready", 0)
    status, value = gw.post(f"/api/jobs/{cancelled}/retry")
    assert status == 200 and value == {"id": cancelled, "state": "ready"}, value
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", cancelled) == "ready"

    events = count(db, "events")
    for job, state in ((ready, "ready"), (running, "running")):
        status, value = gw.post(f"/api/jobs/{job}/retry")
        assert_error(status, value, 409, "conflict")
        assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", job) == state
    assert count(db, "events") == events


def test_retry_refused_by_a_unique_key_is_422_and_changes_nothing(gateways, db):
    gw = gateways.start()
    old = enqueue(gw, kind="report", unique_key="nov")
    assert gw.post(f"/api/jobs/{old}/cancel")[0] == 200
    live = enqueue(gw, kind="report", unique_key="nov")  # the key is free again
    assert live != old
    before = written(db)
    status, value = gw.post(f"/api/jobs/{old}/retry")
    assert_error(status, value, 422, "unprocessable")
    assert written(db) == before
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", old) == "cancelled"


# ---------------------------------------------------------------- workflows

def submit_workflow(gw, name="wf", token=None):
    spec = {"name": name, "jobs": [
        {"key": "fetch", "kind": "fetch"},
        {"key": "parse", "kind": "parse", "depends_on": ["fetch"]},
        {"key": "tidy", "kind": "tidy", "depends_on": ["fetch", "parse"], "trigger": "all_done"},
    ]}
    status, value = gw.post("/api/workflows", spec, token=token)
    assert status == 201, value
    return value


def test_submit_workflow_answers_201_with_ids_by_key(gateways, db):
    gw = gateways.start()
    value = submit_workflow(gw, "monthly")
    assert set(value) == {"workflow_id", "jobs"} and set(value["jobs"]) == {"fetch", "parse", "tidy"}, value
    wf, ids = value["workflow_id"], value["jobs"]
    assert one(db, "SELECT name FROM jobwheel.workflows WHERE id = %s", wf) == "monthly"
    rows = dict((r[0], r[1:]) for r in db.execute(
        "SELECT id, kind, state, workflow_id, depends_on FROM jobwheel.jobs").fetchall())
    assert rows == {ids["fetch"]: ("fetch", "ready", wf, None),
                    ids["parse"]: ("parse", "blocked", wf, [ids["fetch"]]),
                    ids["tidy"]: ("tidy", "blocked", wf, [ids["fetch"], ids["parse"]])}


def test_get_workflow_and_list_workflows(gateways, db):
    gw = gateways.start()
    value = submit_workflow(gw, "monthly")
    wf, ids = value["workflow_id"], value["jobs"]

    status, value = gw.get(f"/api/workflows/{wf}")
    assert status == 200 and set(value) == {"id", "name", "created_at", "state", "jobs"}, value
    assert (value["id"], value["name"], value["state"]) == (wf, "monthly", "running")
    parse_ts(value["created_at"])
    assert all(set(j) == {"id", "kind", "state", "depends_on"} for j in value["jobs"]), value
    graph = {j["id"]: (j["kind"], j["state"], sorted(j["depends_on"])) for j in value["jobs"]}
    assert graph == {ids["fetch"]: ("fetch", "ready", []),
                     ids["parse"]: ("parse", "blocked", [ids["fetch"]]),
                     ids["tidy"]: ("tidy", "blocked", sorted([ids["fetch"], ids["parse"]]))}

    assert gw.post(f"/api/jobs/{ids['fetch']}/cancel")[0] == 200  # parse: cancelled upstream; tidy runs anyway
    status, value = gw.get("/api/workflows")
    assert status == 200 and set(value) == {"workflows", "next_before"} and value["next_before"] is None, value
    assert len(value["workflows"]) == 1
    w = value["workflows"][0]
    assert set(w) == {"id", "name", "created_at", "state", "jobs", "succeeded", "dead", "cancelled", "active"}, w
    assert (w["id"], w["name"], w["state"], w["jobs"], w["succeeded"], w["dead"], w["cancelled"], w["active"]) == \
        (wf, "monthly", "running", 3, 0, 0, 2, 1)

    status, value = gw.get(f"/api/jobs?workflow_id={wf}")
    assert status == 200 and sorted(j["id"] for j in value["jobs"]) == sorted(ids.values()), value
    assert all(j["workflow_id"] == wf for j in value["jobs"])


def test_list_workflows_pages_newest_first(gateways, db):
    gw = gateways.start()
    wfs = [submit_workflow(gw, f"wf{i}")["workflow_id"] for i in range(5)]
    seen, before = [], None
    while True:
        status, value = gw.get("/api/workflows?limit=2" + (f"&before={before}" if before else ""))
        assert status == 200 and len(value["workflows"]) <= 2, value
        seen += [w["id"] for w in value["workflows"]]
        before = value["next_before"]
        if before is None:
            break
    assert seen == sorted(wfs, reverse=True)


@pytest.mark.parametrize("spec, needle, field", [
    ({"jobs": [{"key": "a", "kind": "x", "depends_on": ["c"]}, {"key": "b", "kind": "x", "depends_on": ["a"]},
               {"key": "c", "kind": "x", "depends_on": ["b"]}]}, "cycle: a -> c -> b -> a", "depends_on"),
    ({"jobs": [{"key": "a", "kind": "x"}, {"key": "a", "kind": "y"}]}, 'duplicate key "a"', "key"),
    ({"jobs": [{"key": "a", "kind": "x", "depends_on": ["zz"]}]}, 'unknown key "zz"', "depends_on"),
    ({"jobs": [{"key": "a", "kind": "x", "depends_on": ["a"]}]}, "depends on itself", "depends_on"),
])
def test_workflow_graph_the_database_refuses_is_400_and_writes_nothing(gateways, db, spec, needle, field):
    gw = gateways.start()
    before = written(db)
    status, value = gw.post("/api/workflows", spec)
    assert_error(status, value, 400, "bad_request")
    assert needle in value["error"]["message"], value
    assert value["error"].get("field", "").endswith(field), value
    assert written(db) == before


@pytest.mark.parametrize("spec, field", [
    ({"jobs": [{"kind": "x"}]}, "jobs[0].key"),
    ({"jobs": [{"key": "a", "kind": "x"}, {"key": "has space", "kind": "x"}]}, "jobs[1].key"),
    ({"jobs": [{"key": "a", "kind": "x"}, {"key": "b", "kind": "Bad"}]}, "jobs[1].kind"),
    ({"jobs": [{"key": "a", "kind": "x", "depends_on": [1]}]}, "jobs[0].depends_on"),
    ({"name": 5, "jobs": [{"key": "a", "kind": "x"}]}, "name"),
    ({"name": "n", "jobs": [{"key": "a", "kind": "x"}], "owner": "me"}, "owner"),
    ({"name": "n"}, "jobs"),
    ({"jobs": []}, "jobs"),
])
def test_workflow_with_a_bad_field_is_400_naming_it(gateways, db, spec, field):
    gw = gateways.start()
    before = written(db)
    status, value = gw.post("/api/workflows", spec)
    assert_error(status, value, 400, "bad_request", field)
    assert written(db) == before


# ---------------------------------------------------------------- queues, workers

def test_list_queues_with_counts_throughput_and_oldest_ready_age(gateways, workers, db):
    gw = gateways.start()
    enqueue_batch(gw, [{"kind": "noop", "queue": "mail"}, {"kind": "noop", "queue": "mail"},
                       {"kind": "noop", "queue": "later", "delay_ms": 600000}])
    status, value = gw.get("/api/queues")
    assert status == 200 and set(value) == {"queues"}, value
    queues = {q["name"]: q for q in value["queues"]}
    assert set(queues) == {"mail", "later"}, value
    for q in queues.values():
        assert set(q) == {"name", "paused", "counts", "throughput_per_s", "oldest_ready_age_ms"}, q
        assert set(q["counts"]) == set(STATES), q
    assert queues["mail"]["counts"] == dict.fromkeys(STATES, 0) | {"ready": 2}
    assert queues["later"]["counts"] == dict.fromkeys(STATES, 0) | {"scheduled": 1}
    assert queues["mail"]["paused"] is False
    assert isinstance(queues["mail"]["oldest_ready_age_ms"], int) and queues["mail"]["oldest_ready_age_ms"] >= 0
    assert queues["later"]["oldest_ready_age_ms"] is None
    assert queues["mail"]["throughput_per_s"] == 0

    workers.start(concurrency=4, queues="mail")
    wait_for(lambda: one(db, "SELECT count(*) FROM jobwheel.jobs WHERE state = 'succeeded'") == 2, what="jobs run")
    status, value = gw.get("/api/queues")
    mail = {q["name"]: q for q in value["queues"]}["mail"]
    assert mail["counts"]["succeeded"] == 2 and mail["counts"]["ready"] == 0, mail
    assert mail["throughput_per_s"] > 0 and mail["oldest_ready_age_ms"] is None, mail


def test_pause_and_resume_a_queue(gateways, workers, db):
    gw = gateways.start()
    status, value = gw.post("/api/queues/mail/pause")
    assert status == 200 and value == {"name": "mail", "paused": True}, value
    assert one(db, "SELECT paused FROM jobwheel.queues WHERE name = 'mail'") is True
    assert {q["name"]: q["paused"] for q in gw.get("/api/queues")[1]["queues"]} == {"mail": True}
    # A paused queue is not claimed from: a worker of both queues runs a
    # job of the other queue enqueued after it, and leaves this one.
    workers.start(concurrency=2, queues="mail,other")
    job = enqueue(gw, kind="noop", queue="mail")
    other = enqueue(gw, kind="noop", queue="other")
    wait_for(lambda: one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", other) == "succeeded",
             what="the other queue's job to run")
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", job) == "ready"

    status, value = gw.post("/api/queues/mail/resume")
    assert status == 200 and value == {"name": "mail", "paused": False}, value
    assert one(db, "SELECT paused FROM jobwheel.queues WHERE name = 'mail'") is False
    wait_for(lambda: one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", job) == "succeeded",
             what="the job to run after resume")


@pytest.mark.parametrize("name", ["Mail", "a%20b", "x" * 65])
def test_pause_a_bad_queue_name_is_400(gateways, db, name):
    gw = gateways.start()
    status, value = gw.post(f"/api/queues/{name}/pause")
    assert_error(status, value, 400, "bad_request", "queue")
    assert count(db, "queues") == 0


def test_list_workers(gateways, workers, db):
    gw = gateways.start()
    status, value = gw.get("/api/workers")
    assert status == 200 and value == {"workers": []}, value
    w = workers.start(concurrency=3, queues="mail,default")
    status, value = gw.get("/api/workers")
    assert status == 200 and len(value["workers"]) == 1, value
    row = value["workers"][0]
    assert set(row) == {"id", "host", "pid", "queues", "concurrency", "state", "started_at", "heartbeat_at",
                        "heartbeat_age_ms", "running"}, row
    assert (row["id"], row["pid"], row["concurrency"], row["state"], row["running"]) == \
        (w.name, w.proc.pid, 3, "active", 0)
    assert sorted(row["queues"]) == ["default", "mail"]
    assert row["host"] == one(db, "SELECT host FROM jobwheel.workers WHERE id = %s", w.name) != ""
    assert isinstance(row["heartbeat_age_ms"], int) and 0 <= row["heartbeat_age_ms"] < 60000
    assert parse_ts(row["started_at"]) <= parse_ts(row["heartbeat_at"])

    enqueue(gw, kind="sleep", payload={"ms": 30000}, queue="mail")
    wait_for(lambda: gw.get("/api/workers")[1]["workers"][0]["running"] == 1, what="running = 1")


# ---------------------------------------------------------------- DLQ

DLQ_KEYS = {"id", "queue", "kind", "payload", "attempt", "died_at", "last_error", "errors"}


def test_dlq_lists_dead_jobs_newest_first_and_pages(gateways, db):
    gw = gateways.start()
    ids = enqueue_batch(gw, [{"kind": f"k{i}", "queue": "mail" if i % 2 else "default", "payload": {"i": i}}
                             for i in range(7)])
    alive = enqueue(gw, kind="alive")
    kill_jobs(db, ids, error="no luck")
    status, value = gw.get("/api/dlq")
    assert status == 200 and set(value) == {"jobs", "next_before"} and value["next_before"] is None, value
    assert [j["id"] for j in value["jobs"]] == sorted(ids, reverse=True) and alive not in value["jobs"]
    j = value["jobs"][-1]
    assert set(j) == DLQ_KEYS, j
    assert (j["id"], j["queue"], j["kind"], j["payload"], j["attempt"], j["last_error"]) == \
        (ids[0], "default", "k0", {"i": 0}, 1, "no luck")
    parse_ts(j["died_at"])
    assert len(j["errors"]) == 1 and j["errors"][0]["error"] == "no luck" and j["errors"][0]["attempt"] == 1

    seen, before = [], None
    while True:
        status, value = gw.get("/api/dlq?limit=3" + (f"&before={before}" if before else ""))
        assert status == 200 and len(value["jobs"]) <= 3, value
        seen += [j["id"] for j in value["jobs"]]
        before = value["next_before"]
        if before is None:
            break
    assert seen == sorted(ids, reverse=True)

    status, value = gw.get("/api/dlq?queue=mail")
    assert [j["id"] for j in value["jobs"]] == sorted(ids[1::2], reverse=True), value


def test_dlq_requeue_by_ids_then_all_of_a_queue_then_all(gateways, db):
    gw = gateways.start()
    ids = enqueue_batch(gw, [{"kind": "a", "queue": "mail"}, {"kind": "a", "queue": "mail"},
                             {"kind": "a"}, {"kind": "a"}, {"kind": "a"}])
    alive = enqueue(gw, kind="alive")
    kill_jobs(db, ids)

    def states():
        return dict(db.execute("SELECT id, state FROM jobwheel.jobs").fetchall())

    status, value = gw.post("/api/dlq/requeue", {"ids": [ids[0], alive, 987654]})
    assert status == 200 and value == {"requeued": 1}, value
    assert states() == {ids[0]: "ready", ids[1]: "dead", ids[2]: "dead", ids[3]: "dead", ids[4]: "dead",
                        alive: "ready"}
    assert one(db, "SELECT attempt FROM jobwheel.jobs WHERE id = %s", ids[0]) == 0

    status, value = gw.post("/api/dlq/requeue", {"all": True, "queue": "mail"})
    assert status == 200 and value == {"requeued": 1}, value
    assert states()[ids[1]] == "ready" and states()[ids[2]] == "dead"

    status, value = gw.post("/api/dlq/requeue", {"all": True})
    assert status == 200 and value == {"requeued": 3}, value
    assert set(states().values()) == {"ready"}
    assert gw.get("/api/dlq")[1]["jobs"] == []


@pytest.mark.parametrize("body, field", [
    ({}, ANY),
    ({"ids": []}, "ids"),
    ({"ids": "1"}, "ids"),
    ({"ids": [0]}, "ids"),
    ({"ids": [1.5]}, "ids"),
    ({"ids": [1], "all": True}, ANY),
    ({"all": False}, "all"),
    ({"ids": [1], "queue": "mail"}, "queue"),
    ({"all": True, "queue": "Bad"}, "queue"),
    ({"all": True, "queues": "mail"}, "queues"),
])
def test_dlq_requeue_bad_bodies_are_400_and_requeue_nothing(gateways, db, body, field):
    gw = gateways.start()
    ids = enqueue_batch(gw, [{"kind": "a", "queue": "mail"}])
    kill_jobs(db, ids)
    status, value = gw.post("/api/dlq/requeue", body)
    assert_error(status, value, 400, "bad_request", field)
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", ids[0]) == "dead"


# ---------------------------------------------------------------- health, static, methods, routes

def test_health_readiness_metrics_and_dashboard(gateways, db):
    gw = gateways.start()
    assert gw.get("/healthz") == (200, {"status": "ok"})
    assert gw.get("/readyz") == (200, {"status": "ready"})
    status, text, headers = gw.request("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain") and "jobwheel_" in text
    status, text, headers = gw.request("GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and "<html" in text.lower()


def test_dashboard_files_carry_security_headers(gateways, db):
    gw = gateways.start()
    for path in ("/", "/app.js"):
        status, _, headers = gw.request("GET", path)
        assert status == 200, path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        csp = {d.split()[0]: d.split()[1:] for d in headers["Content-Security-Policy"].split(";") if d.strip()}
        assert csp["default-src"] == ["'self'"] and "script-src" not in csp, csp  # no inline script, no eval
        assert csp["frame-ancestors"] == ["'none'"], csp


@pytest.mark.parametrize("path", ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                                  "/..%2f..%2f..%2fetc%2fpasswd", "/index.html/../../../../etc/passwd",
                                  "//etc/passwd", "/.git/config", "/%00index.html", "/app.js%00.html"])
def test_static_files_only_from_the_web_root(gateways, db, path):
    gw = gateways.start()
    with connect(gw) as s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        status, _, body, _ = recv_response(s)
    assert status in (400, 404), (path, status)
    assert b"root:" not in body and b"[core]" not in body


@pytest.mark.parametrize("method, path, allow", [
    ("DELETE", "/api/jobs", "GET, POST"),
    ("PUT", "/api/jobs/1", "GET"),
    ("DELETE", "/api/jobs/1", "GET"),
    ("GET", "/api/jobs/1/cancel", "POST"),
    ("GET", "/api/jobs/1/retry", "POST"),
    ("PUT", "/api/workflows", "GET, POST"),
    ("POST", "/api/workflows/1", "GET"),
    ("POST", "/api/queues", "GET"),
    ("GET", "/api/queues/mail/pause", "POST"),
    ("POST", "/api/workers", "GET"),
    ("POST", "/api/dlq", "GET"),
    ("GET", "/api/dlq/requeue", "POST"),
    ("POST", "/api/events", "GET"),
    ("POST", "/healthz", None),
])
def test_a_route_with_another_method_is_405(gateways, db, method, path, allow):
    gw = gateways.start()
    before = written(db)
    status, value, headers = gw.request(method, path, body={"kind": "a"} if method != "GET" else None)
    assert_error(status, value, 405, "method_not_allowed")
    if allow:  # every method the route has, as HTTP asks of a 405
        got = {m.strip() for m in headers.get("Allow", "").split(",") if m.strip()}
        assert got == set(allow.split(", ")), headers
    assert written(db) == before


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/nope"),
    ("GET", "/api/jobs/1/bogus"),
    ("POST", "/api/jobs/1/delete"),
    ("GET", "/api/queues/mail"),
    ("GET", "/api"),
    ("GET", "/api/"),
    ("POST", "/api/nope"),
    ("GET", "/no-such-file.html"),
])
def test_an_unknown_route_is_404(gateways, db, method, path):
    gw = gateways.start()
    status, value, _ = gw.request(method, path, body={"kind": "a"} if method == "POST" else None)
    assert_error(status, value, 404, "not_found")
    assert count(db) == 0


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("data, content_type, status, code", [
    (b'{"kind": ', "application/json", 400, "bad_request"),
    (b'{"kind": "a"} x', "application/json", 400, "bad_request"),
    (b"", "application/json", 400, "bad_request"),
    (b'[{"kind": "a"}]', "application/json", 400, "bad_request"),
    (b'"noop"', "application/json", 400, "bad_request"),
    (b"null", "application/json", 400, "bad_request"),
    (b"42", "application/json", 400, "bad_request"),
    (b'{"kind": "a"}', "text/plain", 415, "unsupported_media_type"),
    (b'{"kind": "a"}', "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    (b'{"kind": "a"}', "application/jsonx", 415, "unsupported_media_type"),
    (b'{"kind": "a"}', None, 415, "unsupported_media_type"),
    (b'{"kind": "a", "payload": ' + b'{"a":' * 70 + b"1" + b"}" * 70 + b"}",
     "application/json", 400, "bad_request"),
])
def test_enqueue_refuses_a_body_that_is_not_a_json_object(gateways, db, data, content_type, status, code):
    gw = gateways.start()
    before = written(db)
    got, value = post_raw(gw, "/api/jobs", data, content_type)
    assert_error(got, value, status, code)
    assert written(db) == before


def test_json_content_type_with_charset_is_accepted(gateways, db):
    gw = gateways.start()
    status, value = post_raw(gw, "/api/jobs", b'{"kind": "a"}', "application/json; charset=utf-8")
    assert status == 201, value
    assert count(db) == 1


@pytest.mark.parametrize("job, field", [
    ({}, "kind"),
    ({"kind": 5}, "kind"),
    ({"kind": "Bad Kind"}, "kind"),
    ({"kind": ""}, "kind"),
    ({"kind": "a", "payload": [1]}, "payload"),
    ({"kind": "a", "payload": "x"}, "payload"),
    ({"kind": "a", "priority": "1"}, "priority"),
    ({"kind": "a", "priority": 1.5}, "priority"),
    ({"kind": "a", "priority": 2 ** 31}, "priority"),
    ({"kind": "a", "max_attempts": 0}, "max_attempts"),
    ({"kind": "a", "max_attempts": 1001}, "max_attempts"),
    ({"kind": "a", "timeout_ms": 0}, "timeout_ms"),
    ({"kind": "a", "backoff_base_ms": -1}, "backoff_base_ms"),
    ({"kind": "a", "delay_ms": -1}, "delay_ms"),
    ({"kind": "a", "delay_ms": "5"}, "delay_ms"),
    ({"kind": "a", "queue": "Mail"}, "queue"),
    ({"kind": "a", "queue": ""}, "queue"),
    ({"kind": "a", "queue": "with space"}, "queue"),
    ({"kind": "a", "queue": "q" * 65}, "queue"),
    ({"kind": "a", "queue": 5}, "queue"),
    ({"kind": "a", "queue": "mail/x"}, "queue"),
    ({"kind": "a", "prority": 1}, "prority"),
    ({"kind": "a", "Kind": "b"}, "Kind"),
    ({"kind": "a", "run_at": "tomorrow"}, "run_at"),
    ({"kind": "a", "run_at": "2026-11-27 12:00"}, "run_at"),
    ({"kind": "a", "run_at": "2026-11-27"}, "run_at"),
    ({"kind": "a", "run_at": "2026-11-27T12:00:00"}, "run_at"),
    ({"kind": "a", "run_at": 1764244800}, "run_at"),
    ({"kind": "a", "run_at": "2026-13-45T12:00:00Z"}, "run_at"),
    ({"kind": "a", "run_at": "2026-11-27T25:61:00Z"}, "run_at"),
    ({"kind": "a", "depends_on": "1"}, "depends_on"),
    ({"kind": "a", "depends_on": [0]}, "depends_on"),
    ({"kind": "a", "depends_on": ["x"]}, "depends_on"),
    ({"kind": "a", "trigger": "any"}, "trigger"),
    ({"kind": "a", "unique_key": ""}, "unique_key"),
    ({"kind": "a", "unique_key": 5}, "unique_key"),
])
def test_enqueue_refuses_a_bad_field_naming_it(gateways, db, job, field):
    gw = gateways.start()
    before = written(db)
    status, value = gw.post("/api/jobs", job)
    assert_error(status, value, 400, "bad_request", field)
    assert written(db) == before


def test_enqueue_refuses_run_at_with_delay_ms(gateways, db):
    gw = gateways.start()
    status, value = gw.post("/api/jobs", {"kind": "a", "run_at": "2030-01-01T00:00:00Z", "delay_ms": 5})
    assert_error(status, value, 400, "bad_request")
    assert value["error"].get("field") in ("run_at", "delay_ms"), value
    assert count(db) == 0


@pytest.mark.parametrize("body, field", [
    ({"jobs": [{"kind": "a"}, {"kind": "b"}, {"kind": "c", "priority": "x"}]}, "jobs[2].priority"),
    ({"jobs": [{"kind": "a"}, {"kind": "b", "prority": 1}]}, "jobs[1].prority"),
    ({"jobs": [{"kind": "a"}, {"queue": "mail"}]}, "jobs[1].kind"),
    ({"jobs": [{"kind": "a"}, {"kind": "b", "run_at": "soon"}]}, "jobs[1].run_at"),
    ({"jobs": [{"kind": "a"}, {"kind": "b", "run_at": "2026-02-30T10:00:00Z"}]}, "jobs[1].run_at"),
    ({"jobs": [{"kind": "a"}, 5]}, "jobs[1]"),
    ({"jobs": [{"kind": "a"}, [{"kind": "b"}]]}, "jobs[1]"),
    ({"jobs": []}, "jobs"),
    ({"jobs": {"kind": "a"}}, "jobs"),
    ({}, "jobs"),
    ({"jobs": [{"kind": "a"}], "extra": 1}, "extra"),
])
def test_batch_refuses_a_bad_element_naming_it_and_writes_none(gateways, db, body, field):
    gw = gateways.start()
    before = written(db)
    status, value = gw.post("/api/jobs/batch", body)
    assert_error(status, value, 400, "bad_request", field)
    assert written(db) == before


def test_batch_with_an_unknown_parent_writes_none_and_names_the_element(gateways, db):
    gw = gateways.start()
    before = written(db)
    status, value = gw.post("/api/jobs/batch", {"jobs": [{"kind": "a"}, {"kind": "b", "depends_on": [987654]}]})
    assert_error(status, value, 400, "bad_request")
    assert "jobs[1]" in value["error"]["message"] and "987654" in value["error"]["message"], value
    assert written(db) == before


def test_batch_error_found_by_the_database_names_the_element_field(gateways, db):
    """As for errors the gateway finds itself (jobs[2].priority), `field`
    names the element and its field."""
    gw = gateways.start()
    status, value = gw.post("/api/jobs/batch", {"jobs": [{"kind": "a"}, {"kind": "b", "depends_on": [987654]}]})
    assert_error(status, value, 400, "bad_request", "jobs[1].depends_on")
    assert count(db) == 0


# ---------------------------------------------------------------- limits

def test_a_body_over_max_body_is_413_and_writes_nothing(gateways, db):
    gw = gateways.start(gateway__max_body="2KiB")
    status, value = gw.post("/api/jobs", {"kind": "a", "payload": {"pad": "x" * 1500}})
    assert status == 201, value  # under the limit
    before = written(db)
    status, value = gw.post("/api/jobs", {"kind": "a", "payload": {"pad": "x" * 3000}})
    assert_error(status, value, 413, "too_large")
    assert written(db) == before


def test_a_chunked_body_is_read_and_one_over_max_body_is_413(gateways, db):
    gw = gateways.start(gateway__max_body="2KiB")

    def chunked(body, size=500):
        out = b""
        for i in range(0, len(body), size):
            part = body[i:i + size]
            out += b"%x\r\n%s\r\n" % (len(part), part)
        return out + b"0\r\n\r\n"

    head = (b"POST /api/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    small = json.dumps({"kind": "chunky", "payload": {"pad": "y" * 1200}}).encode()
    with connect(gw) as s:
        s.sendall(head + chunked(small))
        status, _, body, _ = recv_response(s)
    assert status == 201, body
    assert one(db, "SELECT payload->>'pad' FROM jobwheel.jobs WHERE id = %s", json.loads(body)["id"]) == "y" * 1200

    before = written(db)
    big = json.dumps({"kind": "chunky", "payload": {"pad": "y" * 3000}}).encode()
    with connect(gw) as s:
        try:
            s.sendall(head + chunked(big))
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, headers, body, _ = recv_response(s)
    assert_error(status, json.loads(body), 413, "too_large")
    assert written(db) == before


def test_a_client_still_sending_a_body_over_max_body_reads_the_413(gateways, db):
    """The answer comes before the body is read. Closing at once would reset
    the connection while the client still sends, and the reset discards the
    413 on its way (behind nginx: a 502). The gateway drains instead."""
    gw = gateways.start(gateway__max_body="2KiB")
    before = written(db)
    body = b'{"kind": "a", "payload": {"pad": "' + b"z" * (4 << 20) + b'"}}'
    with connect(gw) as s:
        s.sendall(b"POST /api/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        status, _, answer, _ = recv_response(s)
    assert_error(status, json.loads(answer), 413, "too_large")
    assert written(db) == before


def test_headers_over_max_header_are_431(gateways, db):
    gw = gateways.start(gateway__max_header="4KiB")
    status, value, _ = gw.request("GET", "/api/jobs", headers={"X-Pad": "p" * 3000})
    assert status == 200, value
    with connect(gw) as s:
        s.sendall(b"POST /api/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"X-Pad: " + b"p" * 5000 + b"\r\nContent-Length: 13\r\n\r\n" + b'{"kind": "a"}')
        status, headers, body, _ = recv_response(s)
    assert_error(status, json.loads(body), 431, "too_large")
    assert count(db) == 0


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/jobs/abc"),
    ("GET", "/api/jobs/0"),
    ("GET", "/api/jobs/-1"),
    ("GET", "/api/jobs/1.5"),
    ("GET", "/api/jobs/+1"),
    ("GET", "/api/jobs/99999999999999999999"),
    ("POST", "/api/jobs/abc/cancel"),
    ("POST", "/api/jobs/0/retry"),
    ("GET", "/api/workflows/abc"),
    ("GET", "/api/workflows/0"),
])
def test_a_bad_id_is_400(gateways, db, method, path):
    gw = gateways.start()
    job = enqueue(gw, kind="a")
    before = written(db)
    status, value, _ = gw.request(method, path)
    assert_error(status, value, 400, "bad_request", "id")
    assert written(db) == before
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", job) == "ready"


@pytest.mark.parametrize("path, field", [
    ("/api/jobs?limit=0", "limit"),
    ("/api/jobs?limit=1001", "limit"),
    ("/api/jobs?limit=abc", "limit"),
    ("/api/jobs?limit=", "limit"),
    ("/api/jobs?limit=5x", "limit"),
    ("/api/jobs?before=0", "before"),
    ("/api/jobs?before=x", "before"),
    ("/api/jobs?state=bogus", "state"),
    ("/api/jobs?state=READY", "state"),
    ("/api/jobs?queue=Bad", "queue"),
    ("/api/jobs?kind=a%20b", "kind"),
    ("/api/jobs?workflow_id=x", "workflow_id"),
    ("/api/jobs?foo=1", ANY),
    ("/api/jobs?limit=5&sort=id", ANY),
    ("/api/dlq?limit=0", "limit"),
    ("/api/dlq?state=dead", ANY),
    ("/api/dlq?queue=Bad", "queue"),
    ("/api/workflows?limit=abc", "limit"),
    ("/api/workflows?queue=mail", ANY),
    ("/api/queues?x=1", ANY),
    ("/api/workers?x=1", ANY),
    ("/api/jobs/1?x=1", ANY),
])
def test_a_bad_query_parameter_is_400(gateways, db, path, field):
    gw = gateways.start()
    enqueue(gw, kind="a")
    status, value = gw.get(path)
    assert_error(status, value, 400, "bad_request", field)
    if field is ANY:  # an unknown parameter: the message names it
        name = path.split("?")[1].split("&")[-1].split("=")[0]
        assert name in value["error"]["message"], value


def test_a_query_parameter_on_a_post_is_refused_and_writes_nothing(gateways, db):
    gw = gateways.start()
    status, value = gw.post("/api/jobs?queue=mail", {"kind": "a"})
    assert_error(status, value, 400, "bad_request")
    assert count(db) == 0


# ---------------------------------------------------------------- paging and filters

def walk(gw, query, limit):
    """Every page of GET /api/jobs?query, following next_before; the jobs in order."""
    jobs, before, pages = [], None, 0
    while True:
        q = f"{query}&limit={limit}" + (f"&before={before}" if before else "")
        status, value = gw.get("/api/jobs?" + q.lstrip("&"))
        assert status == 200 and set(value) == {"jobs", "next_before"}, value
        assert len(value["jobs"]) <= limit
        jobs += value["jobs"]
        before = value["next_before"]
        pages += 1
        assert pages < 1000
        if before is None:
            return jobs
        assert before == value["jobs"][-1]["id"], value


def test_list_jobs_newest_first_walks_every_job_exactly_once(gateways, db):
    gw = gateways.start()
    ids = enqueue_batch(gw, [{"kind": f"k{i % 3}", "queue": f"q{i % 2}"} for i in range(23)])
    jobs = walk(gw, "", 5)
    assert [j["id"] for j in jobs] == sorted(ids, reverse=True)
    assert all(set(j) == JOB_KEYS for j in jobs), jobs[0]
    j = next(j for j in jobs if j["id"] == ids[4])
    assert (j["kind"], j["queue"], j["state"], j["priority"], j["attempt"], j["max_attempts"], j["workflow_id"],
            j["last_error"], j["started_at"], j["finished_at"]) == \
        ("k1", "q0", "ready", 0, 0, 4, None, None, None, None)
    assert parse_ts(j["created_at"]) <= parse_ts(j["run_at"]) + timedelta(seconds=1)

    # A page of exactly `limit` jobs at the end, and limit=1.
    assert [j["id"] for j in walk(gw, "", 23)] == sorted(ids, reverse=True)
    assert [j["id"] for j in walk(gw, "", 1)] == sorted(ids, reverse=True)
    # before= is exclusive.
    status, value = gw.get(f"/api/jobs?before={ids[10]}&limit=3")
    assert [j["id"] for j in value["jobs"]] == [ids[9], ids[8], ids[7]], value


def test_list_jobs_walk_is_stable_while_jobs_are_added(gateways, db):
    gw = gateways.start()
    ids = enqueue_batch(gw, [{"kind": "a"}] * 12)
    seen, before = [], None
    while True:
        status, value = gw.get("/api/jobs?limit=4" + (f"&before={before}" if before else ""))
        seen += [j["id"] for j in value["jobs"]]
        enqueue(gw, kind="newer")  # arrives at the front, never inside the walk
        before = value["next_before"]
        if before is None:
            break
    assert seen == sorted(ids, reverse=True)


def test_list_jobs_default_and_largest_limit(gateways, db):
    gw = gateways.start()
    ids = enqueue_batch(gw, [{"kind": "a"}] * 60)
    status, value = gw.get("/api/jobs")
    assert status == 200 and [j["id"] for j in value["jobs"]] == sorted(ids, reverse=True)[:50], value
    assert value["next_before"] == sorted(ids, reverse=True)[49]
    status, value = gw.get("/api/jobs?limit=1000")
    assert len(value["jobs"]) == 60 and value["next_before"] is None


def test_list_jobs_filters_by_state_queue_kind_and_workflow(gateways, db):
    gw = gateways.start()
    ids = enqueue_batch(gw, [{"kind": ["email", "noop"][i % 2], "queue": ["mail", "default", "bulk"][i % 3]}
                             for i in range(12)])
    wf = submit_workflow(gw)
    for job in ids[:4]:
        assert gw.post(f"/api/jobs/{job}/cancel")[0] == 200
    everything = db.execute("SELECT id, state, queue, kind, workflow_id FROM jobwheel.jobs").fetchall()

    def expect(pred):
        return sorted((r[0] for r in everything if pred(*r[1:])), reverse=True)

    cases = {
        "state=cancelled": expect(lambda s, q, k, w: s == "cancelled"),
        "state=ready": expect(lambda s, q, k, w: s == "ready"),
        "state=blocked": expect(lambda s, q, k, w: s == "blocked"),
        "state=dead": [],
        "queue=mail": expect(lambda s, q, k, w: q == "mail"),
        "kind=email": expect(lambda s, q, k, w: k == "email"),
        "kind=fetch": expect(lambda s, q, k, w: k == "fetch"),
        f"workflow_id={wf['workflow_id']}": sorted(wf["jobs"].values(), reverse=True),
        "state=ready&queue=mail&kind=noop": expect(lambda s, q, k, w: (s, q, k) == ("ready", "mail", "noop")),
        "queue=nosuch": [],
    }
    for query, want in cases.items():
        assert want or query in ("state=dead", "queue=nosuch"), query
        assert [j["id"] for j in walk(gw, query, 2)] == want, query


# ---------------------------------------------------------------- tokens and scopes

def test_open_api_until_a_token_exists_then_scopes_apply(dsn, gateways, db):
    gw = gateways.start()
    # No token yet: everything is open (on loopback).
    assert gw.get("/api/jobs")[0] == 200
    job = enqueue(gw, kind="a")
    assert gw.post("/api/queues/mail/pause")[0] == 200

    read = make_token(dsn, "reader", "read")  # no gateway restart
    write = make_token(dsn, "writer", "write")
    admin = make_token(dsn, "admin", "admin")
    before = written(db)

    for method, path, body in (("GET", "/api/jobs", None), ("GET", f"/api/jobs/{job}", None),
                               ("POST", "/api/jobs", {"kind": "a"}), ("POST", f"/api/jobs/{job}/cancel", None),
                               ("POST", "/api/queues/mail/resume", None), ("GET", "/api/events", None)):
        status, value, headers = gw.request(method, path, body=body)
        assert_error(status, value, 401, "unauthorized")
        assert headers.get("WWW-Authenticate", "").startswith("Bearer"), headers
        status, value, _ = gw.request(method, path, body=body, token="jw_" + "0" * 64)
        assert_error(status, value, 401, "unauthorized")
        status, value, _ = gw.request(method, path, body=body, headers={"Authorization": "Basic " + read})
        assert_error(status, value, 401, "unauthorized")
    assert written(db) == before

    # read: GETs only.
    for path in ("/api/jobs", f"/api/jobs/{job}", "/api/queues", "/api/workers", "/api/dlq", "/api/workflows"):
        assert gw.get(path, token=read)[0] == 200, path
    status, value = gw.post("/api/jobs", {"kind": "a"}, token=read)
    assert_error(status, value, 403, "forbidden")
    status, value = gw.post(f"/api/jobs/{job}/cancel", token=read)
    assert_error(status, value, 403, "forbidden")
    status, value = gw.post("/api/workflows", {"jobs": [{"key": "a", "kind": "a"}]}, token=read)
    assert_error(status, value, 403, "forbidden")
    assert written(db) == before

    # write: also enqueue, cancel, retry; not pause or the DLQ.
    second = enqueue(gw, token=write, kind="b")
    assert enqueue_batch(gw, [{"kind": "c"}], token=write)
    assert submit_workflow(gw, token=write)
    assert gw.post(f"/api/jobs/{second}/cancel", token=write) == (200, {"id": second, "state": "cancelled"})
    assert gw.post(f"/api/jobs/{second}/retry", token=write) == (200, {"id": second, "state": "ready"})
    status, value = gw.post("/api/queues/mail/resume", token=write)
    assert_error(status, value, 403, "forbidden")
    assert one(db, "SELECT paused FROM jobwheel.queues WHERE name = 'mail'") is True
    status, value = gw.post("/api/dlq/requeue", {"all": True}, token=write)
    assert_error(status, value, 403, "forbidden")

    # admin: everything.
    assert gw.post("/api/queues/mail/resume", token=admin) == (200, {"name": "mail", "paused": False})
    assert one(db, "SELECT paused FROM jobwheel.queues WHERE name = 'mail'") is False
    kill_jobs(db, [job])
    assert gw.post("/api/dlq/requeue", {"ids": [job]}, token=admin) == (200, {"requeued": 1})
    assert enqueue(gw, token=admin, kind="d")

    # The token is taken case-insensitively after "Bearer" as HTTP says.
    assert gw.request("GET", "/api/jobs", headers={"Authorization": "bearer " + read})[0] == 200

    # Revoked: refused at once, the others still work.
    cli(dsn, "token", "revoke", "reader")
    status, value = gw.get("/api/jobs", token=read)
    assert_error(status, value, 401, "unauthorized")
    assert gw.get("/api/jobs", token=write)[0] == 200

    # These never need a token.
    for path in ("/healthz", "/readyz", "/metrics", "/"):
        assert gw.request("GET", path)[0] == 200, path


def test_non_loopback_listen_refused_while_no_token_exists(dsn, db, tmp_path):
    port = free_port()
    r = subprocess.run([GATEWAY, "--set", "database.url=" + dsn, "--listen", f"0.0.0.0:{port}"],
                       capture_output=True, text=True, env=clean_env(), timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "gateway.listen" in r.stderr, r.stderr
    with socket.socket() as s:  # and nothing listens there
        assert s.connect_ex(("127.0.0.1", port)) != 0

    # With a token it listens, and asks for it.
    token = make_token(dsn, "ops", "read")
    log = open(tmp_path / "gw-public.log", "w")
    p = subprocess.Popen([GATEWAY, "--set", "database.url=" + dsn, "--listen", f"0.0.0.0:{port}"],
                         stdout=log, stderr=subprocess.STDOUT, env=clean_env())
    try:
        def get(path, token=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", path, headers={"Authorization": "Bearer " + token} if token else {})
            return c.getresponse().status

        def ready():
            assert p.poll() is None, (tmp_path / "gw-public.log").read_text()
            try:
                return get("/readyz") == 200
            except OSError:
                return False
        wait_for(ready, 10, what="the public gateway's /readyz")
        assert get("/api/jobs") == 401
        assert get("/api/jobs", token) == 200
        # Revoking the last token must not reopen a public API.
        cli(dsn, "token", "revoke", "ops")
        assert get("/api/jobs") == 401
        assert get("/api/jobs", token) == 401
    finally:
        p.kill()
        p.wait()
        log.close()


# ---------------------------------------------------------------- connections

def test_keep_alive_serves_many_requests_on_one_connection(gateways, db):
    gw = gateways.start()
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    c.connect()
    sock = c.sock
    ids = []
    for i in range(5):
        c.request("POST", "/api/jobs", body=json.dumps({"kind": "a"}), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        assert r.status == 201 and r.getheader("Connection", "").lower() != "close"
        ids.append(json.loads(r.read())["id"])
        c.request("GET", f"/api/jobs/{ids[-1]}")
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["id"] == ids[-1]
    assert c.sock is sock  # never reconnected
    c.close()
    assert count(db) == 5


def test_pipelined_requests_are_answered_in_order(gateways, db):
    gw = gateways.start()
    body = b'{"kind": "piped"}'
    with connect(gw) as s:
        s.sendall(b"POST /api/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body) +
                  b"GET /api/jobs?kind=piped HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /api/nope HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        status1, _, body1, rest = recv_response(s)
        status2, _, body2, rest = recv_response(s, rest)
        status3, _, body3, rest = recv_response(s, rest)
        status4, headers4, body4, rest = recv_response(s, rest)
        assert rest == b""
        assert closed_by_peer(s)
    assert status1 == 201, body1
    created = json.loads(body1)["id"]
    assert status2 == 200 and [j["id"] for j in json.loads(body2)["jobs"]] == [created], body2
    assert status3 == 404 and json.loads(body3)["error"]["code"] == "not_found"
    assert status4 == 200 and json.loads(body4) == {"status": "ok"}
    assert count(db) == 1


def test_http_1_0_without_keep_alive_is_closed_after_the_answer(gateways, db):
    gw = gateways.start()
    with connect(gw) as s:
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        data = b""
        s.settimeout(5)
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200"), data
    assert data.endswith(b'{"status":"ok"}'), data


def test_expect_100_continue(gateways, db):
    gw = gateways.start()
    body = json.dumps({"kind": "expected", "payload": {"pad": "z" * 2000}}).encode()
    with connect(gw) as s:
        s.sendall(b"POST /api/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        status, _, _, rest = recv_response(s)
        assert status == 100
        s.sendall(body)
        status, _, answer, _ = recv_response(s, rest)
    assert status == 201, answer
    assert one(db, "SELECT kind FROM jobwheel.jobs WHERE id = %s", json.loads(answer)["id"]) == "expected"

    # Too large: refused at once, without 100 Continue and without waiting for the body.
    gw2 = gateways.start(gateway__max_body="1KiB")
    with connect(gw2) as s:
        s.sendall(b"POST /api/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        status, _, answer, _ = recv_response(s)
    assert_error(status, json.loads(answer), 413, "too_large")


def test_curl_posts_a_job_as_documented(gateways, db, tmp_path):
    gw = gateways.start()
    body = tmp_path / "job.json"
    body.write_text(json.dumps({"kind": "email", "payload": {"to": "a@example.com", "pad": "p" * 3000},
                                "queue": "mail"}))
    t0 = time.monotonic()
    # curl sends Expect: 100-continue when asked to, and waits up to 5 s for it.
    r = subprocess.run(["curl", "-s", "-S", "-X", "POST", f"{gw.url}/api/jobs", "-H", "Content-Type: application/json",
                        "-H", "Expect: 100-continue", "--expect100-timeout", "5", "--data-binary", f"@{body}",
                        "-w", "\n%{http_code}"], capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    text, code = r.stdout.rsplit("\n", 1)
    assert code == "201", r.stdout
    assert elapsed < 3, f"curl waited {elapsed:.1f} s: no 100 Continue"
    job = json.loads(text)["id"]
    assert one(db, "SELECT queue FROM jobwheel.jobs WHERE id = %s", job) == "mail"


def test_concurrent_enqueues_get_distinct_ids(gateways, db):
    gw = gateways.start()
    results, errors = [], []

    def client():
        try:
            c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
            for i in range(50):
                c.request("POST", "/api/jobs", body=json.dumps({"kind": "conc", "payload": {"i": i}}),
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                if r.status != 201:
                    errors.append((r.status, data))
                else:
                    results.append(json.loads(data)["id"])
            c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(results) == 400 and len(set(results)) == 400
    assert count(db) == 400
    assert one(db, "SELECT count(*) FROM jobwheel.jobs WHERE id = ANY(%s)", results) == 400


# ---------------------------------------------------------------- timestamps

def test_timestamps_are_utc_whatever_the_database_time_zone(dsn, gateways, db):
    dbname = dsn.rsplit("/", 1)[1]
    db.execute(f"ALTER DATABASE {dbname} SET TimeZone = 'Asia/Kolkata'")
    gw = gateways.start()
    job = enqueue(gw, kind="a")
    status, value = gw.get(f"/api/jobs/{job}")
    assert status == 200
    created = one(db, "SELECT created_at FROM jobwheel.jobs WHERE id = %s", job)
    for key in ("created_at", "run_at"):
        assert parse_ts(value[key]) - created < timedelta(seconds=2), value
    assert parse_ts(value["created_at"]) == created


# ---------------------------------------------------------------- /metrics

def metrics(gw):
    """/metrics as {name{labels}: value}, checking the text format as it goes."""
    status, text, headers = gw.request("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain"), headers
    samples, typed = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            typed[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"'
                         r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? (\S+)', line)
        assert m, f"not a Prometheus sample line: {line!r}"
        name = m.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or base in typed, f"{name} has no # TYPE line"
        assert name.startswith("jobwheel_"), line
        samples[name + (m.group(2) or "")] = float(m.group(3))
    return samples


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
