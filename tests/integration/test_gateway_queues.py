# SPDX-License-Identifier: MIT
"""jobwheel-gateway's operator routes: GET /api/queues with counts and
throughput, pausing and resuming a queue, GET /api/workers, and the dead
letter queue (GET /api/dlq, POST /api/dlq/requeue)."""
import pytest

from conftest import one, wait_for
from gateway_client import ANY, assert_error, count, enqueue, enqueue_batch, kill_jobs, parse_ts, walk

STATES = ["blocked", "scheduled", "ready", "running", "succeeded", "dead", "cancelled"]


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

    assert [j["id"] for j in walk(gw, "/api/dlq", "jobs", 3)] == sorted(ids, reverse=True)

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
