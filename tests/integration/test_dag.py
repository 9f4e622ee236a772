# SPDX-License-Identifier: MIT
"""DAG workflows (SPEC §7) with real workers: release order, fan-out/fan-in,
all_done, failure propagation, cancellation, rejected graphs, depends_on in
enqueue(), concurrent parent completion, and parents' results."""
import json
import threading

import psycopg
import pytest

from conftest import job_state, one, wait_for

FAST = dict(concurrency=8, worker__poll_ms=100)


def job(key, kind="noop", payload=None, depends_on=None, **fields):
    """One job object of a workflow spec."""
    j = {"key": key, "kind": kind, **fields}
    if payload is not None:
        j["payload"] = payload
    if depends_on is not None:
        j["depends_on"] = depends_on
    return j


def submit(db, *jobs, name=None):
    """Submits a workflow; returns (workflow id, {key: job id})."""
    spec = {"jobs": list(jobs)}
    if name is not None:
        spec["name"] = name
    out = one(db, "SELECT jobwheel.submit_workflow(%s::jsonb)", json.dumps(spec))
    assert set(out) == {"workflow_id", "jobs"} and set(out["jobs"]) == {j["key"] for j in jobs}
    return out["workflow_id"], out["jobs"]


def enqueue(db, kind="noop", payload="{}", **kw):
    args = "".join(f", {k} => %s" for k in kw)
    return one(db, f"SELECT jobwheel.enqueue(%s, %s::jsonb{args})", kind, payload, *kw.values())


def jobs_by_id(db, ids):
    """{id: row} with the columns a user looks at."""
    rows = db.execute("SELECT id, state, attempt, pending_parents, started_at, finished_at, last_error, result "
                      "FROM jobwheel.jobs WHERE id = ANY (%s)", (list(ids),)).fetchall()
    cols = ("id", "state", "attempt", "pending_parents", "started_at", "finished_at", "last_error", "result")
    return {r[0]: dict(zip(cols, r)) for r in rows}


def jobs_by_key(db, ids):
    """{key: row} for a workflow's {key: id}."""
    rows = jobs_by_id(db, ids.values())
    return {k: rows[i] for k, i in ids.items()}


def workflow_status(db, wf):
    row = db.execute("SELECT state, jobs, succeeded, dead, cancelled, active FROM jobwheel.workflow_status "
                     "WHERE id = %s", (wf,)).fetchone()
    return row[0], dict(zip(("jobs", "succeeded", "dead", "cancelled", "active"), row[1:]))


def wait_workflow_done(db, wf, timeout=20):
    """Waits until the workflow has no unfinished job; returns its state."""
    def finished():
        state = workflow_status(db, wf)[0]
        return state if state != "running" else None
    return wait_for(finished, timeout, what=f"workflow {wf} to finish")


def claim(db, queue, n=1, worker="w1"):
    return db.execute("SELECT id, attempt FROM jobwheel.claim(%s, %s, %s)", (worker, [queue], n)).fetchall()


def finish(db, job_id, queue, outcome="complete"):
    """Claims job_id (the only ready job of queue) and completes or kills it."""
    (claimed, attempt), = claim(db, queue)
    assert claimed == job_id
    if outcome == "complete":
        assert one(db, "SELECT jobwheel.complete(%s, %s)", job_id, attempt) is True
    else:
        assert one(db, "SELECT jobwheel.fail(%s, %s, 'boom', false)", job_id, attempt) is True


def table_counts(db):
    return tuple(one(db, f"SELECT count(*) FROM jobwheel.{t}") for t in ("jobs", "workflows", "job_deps"))


# ------------------------------------------------------------------ shapes run by a worker

def test_diamond_runs_the_join_after_both_branches(db, workers):
    wf, ids = submit(db, job("a"), job("b", "sleep", {"ms": 300}, ["a"]), job("c", "sleep", {"ms": 300}, ["a"]),
                     job("d", depends_on=["b", "c"]), name="diamond")
    before = jobs_by_key(db, ids)
    assert [(before[k]["state"], before[k]["pending_parents"]) for k in "abcd"] == \
        [("ready", 0), ("blocked", 1), ("blocked", 1), ("blocked", 2)]
    assert workflow_status(db, wf) == ("running", dict(jobs=4, succeeded=0, dead=0, cancelled=0, active=4))

    workers.start(**FAST)
    assert wait_workflow_done(db, wf) == "succeeded"
    j = jobs_by_key(db, ids)
    assert all(r["state"] == "succeeded" and r["attempt"] == 1 and r["pending_parents"] == 0 for r in j.values())
    assert j["a"]["finished_at"] <= j["b"]["started_at"] and j["a"]["finished_at"] <= j["c"]["started_at"]
    # b and c ran side by side, d only after both
    assert max(j["b"]["started_at"], j["c"]["started_at"]) < min(j["b"]["finished_at"], j["c"]["finished_at"])
    assert j["d"]["started_at"] >= max(j["b"]["finished_at"], j["c"]["finished_at"])
    assert workflow_status(db, wf) == ("succeeded", dict(jobs=4, succeeded=4, dead=0, cancelled=0, active=0))
    assert one(db, "SELECT name FROM jobwheel.workflow_status WHERE id = %s", wf) == "diamond"


def test_fan_out_fan_in_sink_starts_after_every_child(db, workers):
    children = [f"c{i}" for i in range(50)]
    wf, ids = submit(db, job("root"), *(job(c, "sleep", {"ms": 20}, ["root"]) for c in children),
                     job("sink", payload={"echo_parents": True}, depends_on=children))
    assert jobs_by_id(db, [ids["sink"]])[ids["sink"]]["pending_parents"] == 50

    workers.start(**FAST)
    assert wait_workflow_done(db, wf, timeout=30) == "succeeded"
    rows = jobs_by_key(db, ids)
    root, sink, kids = rows["root"], rows["sink"], [rows[c] for c in children]
    assert all(k["started_at"] >= root["finished_at"] for k in kids)
    assert sink["started_at"] >= max(k["finished_at"] for k in kids)
    assert sink["result"] == {"parents": {str(ids[c]): None for c in children}}  # sleep has no result
    assert workflow_status(db, wf)[1] == dict(jobs=52, succeeded=52, dead=0, cancelled=0, active=0)


def test_chain_of_20_runs_each_after_its_parent(db, workers):
    keys = [f"step{i:02d}" for i in range(20)]
    wf, ids = submit(db, job(keys[0], payload={"echo": 0}),
                     *(job(k, payload={"echo": i}, depends_on=[keys[i - 1]]) for i, k in enumerate(keys) if i))
    assert [job_state(db, ids[k]) for k in keys] == ["ready"] + ["blocked"] * 19

    workers.start(**FAST)
    assert wait_workflow_done(db, wf) == "succeeded"
    rows = jobs_by_key(db, ids)
    chain = [rows[k] for k in keys]
    for parent, child in zip(chain, chain[1:]):
        assert child["started_at"] >= parent["finished_at"], (parent, child)
    assert [r["result"] for r in chain] == [{"echo": i} for i in range(20)]


def test_all_done_child_runs_after_a_dead_parent_and_sees_its_null_result(db, workers):
    wf, ids = submit(db, job("ok", payload={"echo": {"rows": 3}}),
                     job("bad", "fail", {"message": "no such table", "retryable": False}),
                     job("cleanup", payload={"echo_parents": True}, depends_on=["ok", "bad"], trigger="all_done"),
                     job("strict", depends_on=["ok", "bad"]))
    workers.start(**FAST)
    assert wait_workflow_done(db, wf) == "failed"
    rows = jobs_by_key(db, ids)
    ok, bad, cleanup, strict = (rows[k] for k in ("ok", "bad", "cleanup", "strict"))
    assert (bad["state"], bad["attempt"], bad["last_error"]) == ("dead", 1, "no such table")
    assert cleanup["state"] == "succeeded"
    assert cleanup["started_at"] >= max(ok["finished_at"], bad["finished_at"])
    assert cleanup["result"] == {"parents": {str(ids["ok"]): {"echo": {"rows": 3}}, str(ids["bad"]): None}}
    # the all_success sibling of the same parents does not run
    assert (strict["state"], strict["started_at"], strict["last_error"]) == \
        ("cancelled", None, f"upstream job {ids['bad']} dead")
    assert workflow_status(db, wf) == ("failed", dict(jobs=4, succeeded=2, dead=1, cancelled=1, active=0))


def test_dead_parent_cancels_every_descendant_through_three_levels(db, workers):
    wf, ids = submit(db, job("ok"), job("bad", "fail", {"message": "upstream broke", "retryable": False}),
                     job("l1", depends_on=["bad"]), job("l1b", depends_on=["ok", "bad"]),
                     job("l2", depends_on=["l1"]), job("l3", depends_on=["l2", "l1b"]),
                     name="doomed")
    workers.start(**FAST)
    assert wait_workflow_done(db, wf) == "failed"
    rows = jobs_by_key(db, ids)
    expected = {"l1": f"upstream job {ids['bad']} dead", "l1b": f"upstream job {ids['bad']} dead",
                "l2": f"upstream job {ids['l1']} cancelled", "l3": f"upstream job {ids['l1b']} cancelled"}
    got = {k: rows[k]["last_error"] for k in expected}
    # l3 has two cancelled parents; whichever was cancelled first is named
    assert got["l3"] in (expected["l3"], f"upstream job {ids['l2']} cancelled")
    expected["l3"] = got["l3"]
    assert got == expected
    for k in expected:  # never started, finished when cancelled
        r = rows[k]
        assert (r["state"], r["attempt"], r["started_at"], r["result"]) == ("cancelled", 0, None, None), k
        assert r["finished_at"] >= rows["bad"]["finished_at"]
    assert rows["ok"]["state"] == "succeeded" and rows["bad"]["state"] == "dead"
    assert workflow_status(db, wf) == ("failed", dict(jobs=6, succeeded=1, dead=1, cancelled=4, active=0))
    assert one(db, "SELECT count(*) FROM jobwheel.dlq WHERE id = %s AND last_error = 'upstream broke'",
               ids["bad"]) == 1

    events = [(t, d) for t, d in db.execute("SELECT type, data FROM jobwheel.events "
                                            "WHERE type IN ('dlq', 'job') ORDER BY id")]
    assert events[0] == ("dlq", {"id": ids["bad"], "queue": "default", "kind": "fail", "attempt": 1,
                                 "error": "upstream broke"})
    assert sorted((d["id"], d["state"], d["error"], d["kind"]) for t, d in events[1:] if t == "job") == \
        sorted((ids[k], "cancelled", expected[k], "noop") for k in expected)
    assert len(events) == 1 + len(expected)


def test_cancel_workflow_mid_run_aborts_the_running_job_and_cancels_the_rest(db, workers):
    wf, ids = submit(db, job("first"), job("long", "sleep", {"ms": 60000}, ["first"]),
                     job("after1", depends_on=["long"]), job("after2", depends_on=["long"]),
                     job("last", depends_on=["after1", "after2"]))
    w = workers.start(**FAST)
    wait_for(lambda: job_state(db, ids["long"]) == "running", what="the sleep job to run")

    one(db, "SELECT jobwheel.cancel_workflow(%s)", wf)
    wait_for(lambda: f"job {ids['long']} cancelled" in w.output(), 1.0, what="the worker to abort the job")
    rows = jobs_by_key(db, ids)
    assert rows["first"]["state"] == "succeeded"
    assert (rows["long"]["state"], rows["long"]["attempt"], rows["long"]["last_error"]) == ("cancelled", 1, "cancelled")
    parents = {"after1": ["long"], "after2": ["long"], "last": ["after1", "after2"]}
    for k, ps in parents.items():
        r = rows[k]
        assert (r["state"], r["started_at"]) == ("cancelled", None), k
        # cancelled by the user, or because its parent was: either way it says so
        assert r["last_error"] in ["cancelled"] + [f"upstream job {ids[p]} cancelled" for p in ps], r
    assert workflow_status(db, wf) == ("cancelled", dict(jobs=5, succeeded=1, dead=0, cancelled=4, active=0))

    # the aborted job's slot is free and its late outcome changes nothing
    nxt = enqueue(db)
    wait_for(lambda: job_state(db, nxt) == "succeeded")
    assert job_state(db, ids["long"]) == "cancelled"
    assert one(db, "SELECT count(*) FROM jobwheel.job_errors") == 0
    assert one(db, "SELECT jobwheel.cancel_workflow(%s)", wf) == 0  # nothing left to cancel


def test_parent_results_reach_the_child(db, workers):
    wf, ids = submit(db, job("a", payload={"echo": {"n": 1}}), job("b", payload={"echo": "two"}),
                     job("c", payload={"echo_parents": True, "echo": "mine"}, depends_on=["a", "b"]))
    workers.start(**FAST)
    assert wait_workflow_done(db, wf) == "succeeded"
    result = one(db, "SELECT result FROM jobwheel.jobs WHERE id = %s", ids["c"])
    assert result == {"echo": "mine", "parents": {str(ids["a"]): {"echo": {"n": 1}}, str(ids["b"]): {"echo": "two"}}}

    # the same through enqueue(depends_on), outside any workflow
    child = enqueue(db, payload='{"echo_parents": true}', depends_on=[ids["b"], ids["c"]])
    wait_for(lambda: job_state(db, child) == "succeeded")
    assert one(db, "SELECT result FROM jobwheel.jobs WHERE id = %s", child) == \
        {"parents": {str(ids["b"]): {"echo": "two"}, str(ids["c"]): result}}
    assert one(db, "SELECT workflow_id FROM jobwheel.jobs WHERE id = %s", child) is None


# ------------------------------------------------------------------ release without a worker

def test_released_child_waits_for_its_own_run_at(db):
    wf, ids = submit(db, job("a", queue="parents"), job("now", depends_on=["a"]),
                     job("later", depends_on=["a"], delay_ms=3600000))
    finish(db, ids["a"], "parents")
    rows = db.execute("SELECT id, state, run_at > now() + interval '50 minutes', run_at <= clock_timestamp() "
                      "FROM jobwheel.jobs WHERE id = ANY (%s)", ([ids["now"], ids["later"]],)).fetchall()
    assert sorted(rows) == sorted([(ids["now"], "ready", False, True), (ids["later"], "scheduled", True, False)])
    assert workflow_status(db, wf)[0] == "running"


# ------------------------------------------------------------------ rejected workflows

REJECTED = {
    "cycle": ([job("a", depends_on=["c"]), job("b", depends_on=["a"]), job("c", depends_on=["b"]),
               job("ok"), job("behind", depends_on=["b", "ok"])],
              "jobwheel: depends_on: cycle: a -> c -> b -> a (each job depends on the next)"),
    "unknown key": ([job("a"), job("b", depends_on=["a", "x"])],
                    'jobwheel: depends_on: job "b" depends on unknown key "x"'),
    "duplicate key": ([job("a"), job("b", depends_on=["a"]), job("a", "sleep")],
                      'jobwheel: key: duplicate key "a"'),
    "self-dependency": ([job("a"), job("b", depends_on=["a", "b"])],
                        'jobwheel: depends_on: job "b" depends on itself'),
    "bad kind": ([job("a"), job("b", "Bad Kind", depends_on=["a"])],
                 'jobwheel: jobs[1] ("b"): kind: "Bad Kind" is not a valid name (1-64 of a-z 0-9 _ . -)'),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_rejected_workflow_inserts_nothing(db, case):
    jobs, message = REJECTED[case]
    with pytest.raises(psycopg.Error) as err:
        submit(db, *jobs, name=case)
    assert err.value.sqlstate == "22023"
    assert err.value.diag.message_primary == message
    assert table_counts(db) == (0, 0, 0)


# ------------------------------------------------------------------ enqueue(depends_on)

def test_enqueue_depends_on_parents_in_every_state(db):
    done = enqueue(db, queue="done")
    finish(db, done, "done")
    dead = enqueue(db, queue="dead")
    finish(db, dead, "dead", outcome="fail")
    running = enqueue(db, queue="running")
    claim(db, "running")

    ready = enqueue(db, queue="kids", depends_on=[done])
    blocked = enqueue(db, queue="kids", depends_on=[done, running])
    cancelled = enqueue(db, queue="kids", depends_on=[running, dead, done])
    all_done = enqueue(db, queue="kids", depends_on=[dead, running], trigger="all_done")
    rows = jobs_by_id(db, [ready, blocked, cancelled, all_done])
    assert (rows[ready]["state"], rows[ready]["pending_parents"]) == ("ready", 0)  # succeeded counts as done
    assert (rows[blocked]["state"], rows[blocked]["pending_parents"]) == ("blocked", 1)
    assert (rows[cancelled]["state"], rows[cancelled]["last_error"]) == ("cancelled", f"upstream job {dead} dead")
    assert rows[cancelled]["finished_at"] is not None
    assert (rows[all_done]["state"], rows[all_done]["pending_parents"]) == ("blocked", 1)

    (rid, attempt), = db.execute("SELECT id, attempt FROM jobwheel.jobs WHERE id = %s", (running,)).fetchall()
    assert one(db, "SELECT jobwheel.complete(%s, %s)", rid, attempt) is True
    rows = jobs_by_id(db, [blocked, all_done, cancelled])
    assert [(rows[i]["state"], rows[i]["pending_parents"]) for i in (blocked, all_done)] == [("ready", 0)] * 2
    assert rows[cancelled]["state"] == "cancelled"
    assert sorted(i for i, _ in claim(db, "kids", n=10)) == sorted([ready, blocked, all_done])


def test_enqueue_depends_on_unknown_parent_is_an_error_and_inserts_nothing(db):
    parent = enqueue(db)
    with pytest.raises(psycopg.Error) as err:
        enqueue(db, depends_on=[parent, 987654])
    assert err.value.sqlstate == "22023"
    assert err.value.diag.message_primary == "jobwheel: depends_on: unknown parent job 987654"
    assert err.value.diag.column_name == "depends_on"
    assert table_counts(db) == (1, 0, 0)
    assert one(db, "SELECT has_children FROM jobwheel.jobs WHERE id = %s", parent) is False


def test_enqueue_inside_a_transaction_with_its_parent(dsn, db):
    with psycopg.connect(dsn) as conn:  # one transaction: parent and child, then rolled back
        parent = enqueue(conn)
        child = enqueue(conn, depends_on=[parent])
        assert job_state(conn, child) == "blocked"
        conn.rollback()
    assert table_counts(db) == (0, 0, 0)
    with psycopg.connect(dsn) as conn:
        parent = enqueue(conn)
        child = enqueue(conn, depends_on=[parent])
    assert (job_state(db, parent), job_state(db, child)) == ("ready", "blocked")


# ------------------------------------------------------------------ concurrency

RACES = {
    # (trigger, outcome of P1, outcome of P2) -> the child's end state and last_error
    "both succeed": ("all_success", "complete", "complete", "ready", None),
    "one dies, all_done": ("all_done", "fail", "complete", "ready", None),
    "one dies, all_success": ("all_success", "fail", "complete", "cancelled", "upstream job {p1} dead"),
}


def report(conn, barrier, job_id, attempt, outcome, results, errors):
    """One parent's outcome, sent the moment the other thread sends its own."""
    try:
        barrier.wait(5)
        sql = ("SELECT jobwheel.complete(%s, %s, '{\"ok\": true}')" if outcome == "complete"
               else "SELECT jobwheel.fail(%s, %s, 'boom', false)")
        results[job_id] = one(conn, sql, job_id, attempt)
    except Exception as e:  # a deadlock or any other error fails the test
        errors.append(e)


@pytest.mark.parametrize("race", list(RACES))
def test_concurrent_completion_of_two_parents_releases_the_child_once(dsn, db, race):
    trigger, out1, out2, want_state, want_error = RACES[race]
    conns = [psycopg.connect(dsn, autocommit=True) for _ in range(2)]
    children = []
    try:
        for _ in range(100):
            p1 = enqueue(db, queue="parents")
            p2 = enqueue(db, queue="parents")
            child = enqueue(db, queue="children", depends_on=[p1, p2], trigger=trigger)
            children.append((child, p1))
            claimed = dict(claim(db, "parents", n=2))
            assert set(claimed) == {p1, p2}
            barrier, results, errors = threading.Barrier(2), {}, []
            threads = [threading.Thread(target=report, args=(conn, barrier, p, claimed[p], out, results, errors))
                       for conn, p, out in ((conns[0], p1, out1), (conns[1], p2, out2))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert not errors, errors
            assert results == {p1: True, p2: True}
    finally:
        for c in conns:
            c.close()

    ids = [c for c, _ in children]
    rows = jobs_by_id(db, ids)
    want = {c: (want_state, want_error.format(p1=p1) if want_error else None) for c, p1 in children}
    assert {c: (rows[c]["state"], rows[c]["last_error"]) for c in ids} == want
    assert one(db, "SELECT count(*) FROM jobwheel.jobs WHERE state = 'blocked'") == 0
    cancel_events = [r[0] for r in db.execute("SELECT (data->>'id')::bigint FROM jobwheel.events WHERE type = 'job'")]
    if want_state == "ready":  # released exactly once: no lost and no double decrement
        assert {rows[c]["pending_parents"] for c in ids} == {0}
        assert cancel_events == []
        taken = claim(db, "children", n=1000)
        assert sorted(i for i, _ in taken) == sorted(ids) and {a for _, a in taken} == {1}
    else:  # cancelled exactly once
        assert sorted(cancel_events) == sorted(ids)


# ------------------------------------------------------------------ found by review: requeue, counts, lock order

def test_cancel_workflow_returns_how_many_jobs_it_cancelled(db):
    wf, ids = submit(db, job("a"), job("b", depends_on=["a"]), job("c", depends_on=["b"]))
    n = one(db, "SELECT jobwheel.cancel_workflow(%s)", wf)
    assert [job_state(db, ids[k]) for k in "abc"] == ["cancelled"] * 3
    assert n == 3


def test_all_done_child_waits_for_every_parent_even_when_one_is_requeued(db):
    p1 = enqueue(db, queue="p1")
    p2 = enqueue(db, queue="p2")
    child = enqueue(db, queue="kids", depends_on=[p1, p2], trigger="all_done")
    finish(db, p1, "p1", outcome="fail")
    claim(db, "p2")  # p2 runs (for a long time)
    assert one(db, "SELECT jobwheel.requeue(%s)", p1) is True
    finish(db, p1, "p1")
    assert job_state(db, p2) == "running"
    assert job_state(db, child) == "blocked"


def test_cancel_workflow_does_not_deadlock_with_a_completing_sibling(dsn, db):
    wf, ids = submit(db, job("a"), job("b", depends_on=["a"]), job("c", depends_on=["a"]),
                     job("d", depends_on=["b", "c"]))
    finish(db, ids["a"], "default")
    attempts = dict(claim(db, "default", n=2))
    assert set(attempts) == {ids["b"], ids["c"]}
    errors = []

    def cancel():
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                one(c, "SELECT jobwheel.cancel_workflow(%s)", wf)
        except psycopg.Error as e:
            errors.append(e)

    # A worker completing c: its UPDATE holds c; next it locks c's children (d).
    with psycopg.connect(dsn) as worker:
        worker.execute("SELECT 1 FROM jobwheel.jobs WHERE id = %s FOR NO KEY UPDATE", (ids["c"],))
        t = threading.Thread(target=cancel)
        t.start()
        # cancel_workflow() cancelled b, and with it d, and now waits for c
        wait_for(lambda: one(db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND query LIKE '%%cancel_workflow%%'") == 1 or not t.is_alive(),
                 what="cancel_workflow to wait for c")
        try:
            one(worker, "SELECT jobwheel.complete(%s, %s)", ids["c"], attempts[ids["c"]])
            worker.commit()
        except psycopg.Error as e:
            errors.append(e)
        t.join(30)
    assert errors == []
