# SPDX-License-Identifier: MIT
"""jobwheel-gateway's job routes over real HTTP against a real database:
POST /api/jobs and /api/jobs/batch, GET /api/jobs/{id}, cancel and retry,
GET /api/jobs with keyset paging and filters, and timestamps in UTC, each
with its JSON shape, status codes and the rows it writes."""
from datetime import datetime, timedelta, timezone

from conftest import one, wait_for
from gateway_client import (assert_error, count, enqueue, enqueue_batch, kill_jobs, parse_ts, submit_workflow, walk,
                            written)

JOB_KEYS = {"id", "queue", "kind", "state", "priority", "attempt", "max_attempts", "run_at", "created_at",
            "started_at", "finished_at", "last_error", "workflow_id"}
JOB_DETAIL_KEYS = JOB_KEYS | {"payload", "result", "unique_key", "timeout_ms", "worker", "errors", "parents",
                              "children"}


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
# ---------------------------------------------------------------- paging and filters

def test_list_jobs_newest_first_walks_every_job_exactly_once(gateways, db):
    gw = gateways.start()
    ids = enqueue_batch(gw, [{"kind": f"k{i % 3}", "queue": f"q{i % 2}"} for i in range(23)])
    jobs = walk(gw, "/api/jobs", "jobs", 5)
    assert [j["id"] for j in jobs] == sorted(ids, reverse=True)
    assert all(set(j) == JOB_KEYS for j in jobs), jobs[0]
    j = next(j for j in jobs if j["id"] == ids[4])
    assert (j["kind"], j["queue"], j["state"], j["priority"], j["attempt"], j["max_attempts"], j["workflow_id"],
            j["last_error"], j["started_at"], j["finished_at"]) == \
        ("k1", "q0", "ready", 0, 0, 4, None, None, None, None)
    assert parse_ts(j["created_at"]) <= parse_ts(j["run_at"]) + timedelta(seconds=1)

    # A page of exactly `limit` jobs at the end, and limit=1.
    assert [j["id"] for j in walk(gw, "/api/jobs", "jobs", 23)] == sorted(ids, reverse=True)
    assert [j["id"] for j in walk(gw, "/api/jobs", "jobs", 1)] == sorted(ids, reverse=True)
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
        assert [j["id"] for j in walk(gw, "/api/jobs", "jobs", 2, query)] == want, query
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
