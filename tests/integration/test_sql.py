# SPDX-License-Identifier: MIT
"""The SQL API of SPEC §5 on a real PostgreSQL: behaviour, bad inputs, fencing."""
import json

import psycopg
import pytest

from conftest import one, wait_for


def count_jobs(db):
    return one(db, "SELECT count(*) FROM jobwheel.jobs")


def claim(db, n=10, queues=("default",), worker="w1"):
    return db.execute("SELECT id, attempt FROM jobwheel.claim(%s, %s, %s)", (worker, list(queues), n)).fetchall()


BAD_CALLS = [
    ("SELECT jobwheel.enqueue('Bad Kind')", "kind", "is not a valid name"),
    ("SELECT jobwheel.enqueue(NULL)", "kind", "must not be null"),
    ("SELECT jobwheel.enqueue('noop', queue => 'UPPER')", "queue", "is not a valid name"),
    ("SELECT jobwheel.enqueue('noop', queue => repeat('q', 65))", "queue", "is not a valid name"),
    ("SELECT jobwheel.enqueue('noop', '[1,2]')", "payload", "must be a JSON object, not array"),
    ("SELECT jobwheel.enqueue('noop', '\"s\"')", "payload", "must be a JSON object, not string"),
    ("SELECT jobwheel.enqueue('noop', NULL)", "payload", "must not be null"),
    ("SELECT jobwheel.enqueue('noop', max_attempts => 0)", "max_attempts", "out of range"),
    ("SELECT jobwheel.enqueue('noop', timeout_ms => 0)", "timeout_ms", "at least 1"),
    ("SELECT jobwheel.enqueue('noop', backoff_base_ms => -1)", "backoff_base_ms", "out of range"),
    ("SELECT jobwheel.enqueue('noop', trigger => 'sometimes')", "trigger", "all_success or all_done"),
    ("SELECT jobwheel.enqueue('noop', priority => NULL)", "priority", "must not be null"),
    ("SELECT jobwheel.enqueue_batch('{}')", "jobs", "must be a JSON array"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\"}, 3]')", "jobs[1]", "must be an object"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\"}, {\"kind\":\"noop\",\"prio\":1}]')",
     "jobs[1]", "prio: unknown field"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\"}, {\"kind\":\"noop\",\"queue\":\"B!\"}]')",
     "jobs[1]", "queue"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"priority\":1.5}]')", "jobs[0]",
     "priority: must be an integer"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"max_attempts\":0}]')", "jobs[0]",
     "max_attempts: 0 is out of range 1..1000"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"delay_ms\":5,\"run_at\":\"2030-01-01\"}]')",
     "jobs[0]", "run_at: give run_at or delay_ms, not both"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"payload\":[]}]')", "jobs[0]",
     "payload: must be a JSON object, not array"),
    ("SELECT jobwheel.enqueue_batch('[{\"queue\":\"q\"}]')", "jobs[0]", "kind: must be a string"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"a\",\"unique_key\":\"k\"},{\"kind\":\"B\"}]')",
     "jobs[1]", "kind"),
    # the set-based path of enqueue_batch names the same problems as enqueue()
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\"}, {\"kind\":\"noop\",\"priority\":\"5\"}]')",
     "jobs[1]", "priority: must be an integer"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":5}]')", "jobs[0]", "kind: must be a string"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"queue\":null}]')", "jobs[0]", "queue"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"queue\":7}]')", "jobs[0]", "queue"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"delay_ms\":-1}]')", "jobs[0]",
     "delay_ms: -1 is out of range"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"delay_ms\":\"5\"}]')", "jobs[0]",
     "delay_ms: must be an integer"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"timeout_ms\":0}]')", "jobs[0]",
     "timeout_ms: 0 is out of range"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"backoff_base_ms\":3600001}]')", "jobs[0]",
     "backoff_base_ms"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"priority\":3000000000}]')", "jobs[0]",
     "priority: 3000000000 is out of range"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"run_at\":5}]')", "jobs[0]", "run_at: must be"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"trigger\":\"sometimes\"}]')", "jobs[0]",
     "trigger"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"depends_on\":5}]')", "jobs[0]",
     "depends_on: must be an array"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\",\"unique_key\":5}]')", "jobs[0]",
     "unique_key: must be a string"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"noop\"}, [1], {\"kind\":\"X\"}]')", "jobs[1]",
     "must be an object"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"a\"}, {\"kind\":\"a\",\"unique_key\":\"u\",\"x\":1}, "
     "{\"kind\":\"B\"}]')", "jobs[1]", "x: unknown field"),
    ("SELECT jobwheel.enqueue_batch('[{\"kind\":\"a\",\"unique_key\":\"u\"}, {\"kind\":\"a\"}, "
     "{\"kind\":\"a\",\"depends_on\":[424242]}]')", "jobs[2]", "unknown parent job 424242"),
    ("SELECT * FROM jobwheel.claim('w', '{default}', 0)", "n", "out of range"),
    ("SELECT * FROM jobwheel.claim('', '{default}', 1)", "worker", "non-empty"),
    ("SELECT jobwheel.cancel(424242)", "id", "job 424242 does not exist"),
    ("SELECT jobwheel.requeue(424242)", "id", "job 424242 does not exist"),
    ("SELECT jobwheel.pause_queue('Not OK')", "queue", "is not a valid name"),
]


@pytest.mark.parametrize("sql,field,message", BAD_CALLS, ids=[c[0][7:60] for c in BAD_CALLS])
def test_bad_input_names_the_problem_and_changes_nothing(db, sql, field, message):
    one(db, "SELECT jobwheel.enqueue('noop', '{\"keep\": 1}')")
    before = db.execute("SELECT id, state, attempt, run_at FROM jobwheel.jobs ORDER BY id").fetchall()
    with pytest.raises(psycopg.Error) as err:
        db.execute(sql)
    text = str(err.value)
    assert field in text and message in text, text
    assert err.value.sqlstate in ("22023", "P0002", "0A000", "22P02"), err.value.sqlstate
    after = db.execute("SELECT id, state, attempt, run_at FROM jobwheel.jobs ORDER BY id").fetchall()
    assert after == before
    assert one(db, "SELECT count(*) FROM jobwheel.queues") == 0


def test_enqueue_inside_the_callers_transaction(dsn):
    with psycopg.connect(dsn) as c:
        c.execute("SELECT jobwheel.enqueue('noop')")
        c.rollback()
        assert one(c, "SELECT count(*) FROM jobwheel.jobs") == 0
        c.execute("SELECT jobwheel.enqueue('noop')")
        c.commit()
        assert one(c, "SELECT count(*) FROM jobwheel.jobs") == 1


def test_enqueue_defaults_and_delayed_state(db):
    a = one(db, "SELECT jobwheel.enqueue('noop')")
    b = one(db, "SELECT jobwheel.enqueue('noop', run_at => now() + interval '1 hour')")
    row = db.execute("SELECT state, queue, priority, max_attempts, attempt, timeout_ms, backoff_base_ms "
                     "FROM jobwheel.jobs WHERE id = %s", (a,)).fetchone()
    assert row == ("ready", "default", 0, 4, 0, 300000, 1000)
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", b) == "scheduled"


def test_batch_returns_ids_in_order_and_is_all_or_nothing(db):
    ids = [r[0] for r in db.execute(
        "SELECT * FROM jobwheel.enqueue_batch(%s)",
        ('[{"kind":"a"},{"kind":"b","queue":"q2","priority":3},{"kind":"c","delay_ms":60000}]',)).fetchall()]
    kinds = db.execute("SELECT kind, state FROM jobwheel.jobs WHERE id = ANY(%s) ORDER BY id", (ids,)).fetchall()
    assert ids == sorted(ids) and kinds == [("a", "ready"), ("b", "ready"), ("c", "scheduled")]
    with pytest.raises(psycopg.Error, match=r"jobs\[2\]"):
        db.execute("SELECT * FROM jobwheel.enqueue_batch(%s)", ('[{"kind":"a"},{"kind":"b"},{"kind":"C"}]',))
    assert count_jobs(db) == 3


def test_batch_mixes_plain_jobs_with_unique_keys_and_dependencies_in_input_order(db):
    parent = one(db, "SELECT jobwheel.enqueue('noop')")
    held = one(db, "SELECT jobwheel.enqueue('noop', unique_key => 'k1')")
    jobs = [{"kind": "a0"}, {"kind": "a1", "unique_key": "k1"}, {"kind": "a2", "queue": "q2"},
            {"kind": "a3", "depends_on": [parent]}, {"kind": "a4", "depends_on": []},
            {"kind": "a5", "unique_key": "k2"}, {"kind": "a6", "delay_ms": 60000}]
    ids = [r[0] for r in db.execute("SELECT * FROM jobwheel.enqueue_batch(%s)", (json.dumps(jobs),))]
    assert len(ids) == 7 and ids[1] == held
    rows = {r[0]: r[1:] for r in db.execute(
        "SELECT id, kind, state, unique_key, depends_on FROM jobwheel.jobs WHERE id = ANY(%s)", (ids,))}
    assert [rows[i][0] for i in ids] == ["a0", "noop", "a2", "a3", "a4", "a5", "a6"]
    assert rows[ids[3]][1:] == ("blocked", None, [parent])
    assert rows[ids[5]][1:3] == ("ready", "k2")
    assert rows[ids[6]][1] == "scheduled"
    assert count_jobs(db) == 2 + 6


def test_batch_accepts_null_fields_as_defaults(db):
    job = {"kind": "noop", "payload": {"x": 1}, "priority": None, "max_attempts": None, "timeout_ms": None,
           "backoff_base_ms": None, "delay_ms": None, "unique_key": None, "depends_on": None, "trigger": None}
    other = {"kind": "noop", "run_at": None}
    ids = [r[0] for r in db.execute("SELECT * FROM jobwheel.enqueue_batch(%s)", (json.dumps([job, other]),))]
    rows = db.execute("SELECT state, queue, priority, max_attempts, timeout_ms, backoff_base_ms, trigger, "
                      "run_at <= now() FROM jobwheel.jobs WHERE id = ANY(%s)", (ids,)).fetchall()
    assert rows == [("ready", "default", 0, 4, 300000, 1000, "all_success", True)] * 2


def test_big_batch_writes_one_feed_event_wakes_each_queue_once_and_fails_as_a_whole(dsn, db):
    jobs = [{"kind": "noop", "payload": {"i": i}, "queue": "q%d" % (i % 2)} for i in range(5000)]
    jobs.append({"kind": "later", "queue": "q9", "delay_ms": 60000})
    wakes = []
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.add_notify_handler(lambda n: wakes.append(n.payload))
        listener.execute("LISTEN jobwheel_wake")
        ids = [r[0] for r in db.execute("SELECT * FROM jobwheel.enqueue_batch(%s)", (json.dumps(jobs),))]
        db.execute("SELECT jobwheel.enqueue('noop', queue => 'last')")  # its NOTIFY comes after the batch's
        wait_for(lambda: listener.execute("SELECT 1") and "last" in wakes, what="the NOTIFY of queue last")
    assert sorted(wakes) == ["last", "q0", "q1"]  # one per queue with ready jobs; none for the delayed one
    assert ids == sorted(ids) and len(set(ids)) == 5001
    got = db.execute("SELECT id, payload->'i', queue FROM jobwheel.jobs ORDER BY id").fetchall()
    assert [r[1] for r in got[:5000]] == list(range(5000)) and got[5000][2] == "q9"
    feed = db.execute("SELECT data::text FROM jobwheel.events WHERE type = 'jobs' ORDER BY id LIMIT 1").fetchall()
    assert len(feed) == 1 and [e[0] for e in json.loads(feed[0][0])] == ids
    # one bad job deep in a batch: named, and nothing of the batch is left
    bad = jobs[:4000] + [{"kind": "noop", "queue": "Bad Queue"}] + jobs[:10]
    with pytest.raises(psycopg.Error, match=r"jobs\[4000\]: jobwheel: queue: \"Bad Queue\" is not a valid name"):
        db.execute("SELECT * FROM jobwheel.enqueue_batch(%s)", (json.dumps(bad),))
    assert count_jobs(db) == 5002
    assert one(db, "SELECT count(*) FROM jobwheel.events WHERE type = 'jobs'") == 2


def test_a_session_promotes_a_burst_after_a_single_job_in_linear_time(dsn, db):
    # The feed trigger's plan is cached with the row counts of its first use
    # in a session; a one-row promotion must not leave a plan that compares
    # every row of a 30 000-job burst with every other (minutes, rows locked).
    n = 30000
    with psycopg.connect(dsn, autocommit=True) as setup:  # its big update plans in its own session
        setup.execute("SELECT count(*) FROM jobwheel.enqueue_batch((SELECT jsonb_agg(jsonb_build_object("
                      "'kind', 'noop', 'run_at', now() + interval '1 hour')) FROM generate_series(0, %s)))", (n,))
        setup.execute("UPDATE jobwheel.jobs SET run_at = now() - interval '1 s'")
    first, *burst = [r[0] for r in db.execute("SELECT id FROM jobwheel.jobs ORDER BY id")]
    db.execute("SELECT * FROM jobwheel.promote_ids(%s)", ([first],))
    db.execute("SET statement_timeout = '20s'")
    assert db.execute("SELECT * FROM jobwheel.promote_ids(%s)", (burst,)).fetchall() == []
    assert one(db, "SELECT count(*) FROM jobwheel.jobs WHERE state = 'ready'") == n + 1
    changes = json.loads(one(db, "SELECT data::text FROM jobwheel.events WHERE type = 'jobs' ORDER BY id DESC LIMIT 1"))
    assert sorted(c[0] for c in changes) == burst and {(c[3], c[8]) for c in changes} == {("ready", "scheduled")}


def test_batch_with_unique_keys_dedupes_within_and_across_batches(db):
    first = one(db, "SELECT jobwheel.enqueue('noop', unique_key => 'k1')")
    ids = [r[0] for r in db.execute(
        "SELECT * FROM jobwheel.enqueue_batch(%s)",
        ('[{"kind":"a","unique_key":"k1"},{"kind":"b","unique_key":"k2"},{"kind":"c","unique_key":"k2"}]',))]
    assert ids[0] == first and ids[1] == ids[2] != first
    assert count_jobs(db) == 2


def test_unique_key_returns_the_live_job(db):
    a = one(db, "SELECT jobwheel.enqueue('noop', unique_key => 'report-42')")
    b = one(db, "SELECT jobwheel.enqueue('noop', unique_key => 'report-42')")
    assert a == b and count_jobs(db) == 1
    # once the holder is terminal the key is free again
    assert one(db, "SELECT jobwheel.cancel(%s)", a) is True
    c = one(db, "SELECT jobwheel.enqueue('noop', unique_key => 'report-42')")
    assert c != a and count_jobs(db) == 2
    # requeueing the cancelled one would make two live holders: refused, nothing changes
    with pytest.raises(psycopg.errors.UniqueViolation, match="unique_key"):
        db.execute("SELECT jobwheel.requeue(%s)", (a,))
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", a) == "cancelled"


def test_claim_order_priority_then_run_at_then_id(db):
    ids = {}
    for name, prio, ago in [("p5", 5, 0), ("p0-new", 0, 1), ("p0-old", 0, 60), ("pm1", -1, 0), ("p0-new2", 0, 1)]:
        ids[name] = one(db, "SELECT jobwheel.enqueue('noop', priority => %s, run_at => now() - %s * interval '1 s')",
                        prio, ago)
    order = [r[0] for r in claim(db, 1) + claim(db, 1) + claim(db, 1) + claim(db, 1) + claim(db, 1)]
    assert order == [ids["pm1"], ids["p0-old"], ids["p0-new"], ids["p0-new2"], ids["p5"]]


def test_completion_is_fenced_by_attempt(db):
    job = one(db, "SELECT jobwheel.enqueue('noop')")
    (jid, attempt), = claim(db)
    assert attempt == 1
    assert one(db, "SELECT jobwheel.complete(%s, 2, '{}')", jid) is False  # wrong attempt
    assert one(db, "SELECT jobwheel.complete(%s, 1, '{\"r\": 1}')", jid) is True
    assert one(db, "SELECT jobwheel.complete(%s, 1, '{\"r\": 2}')", jid) is False  # already done
    assert one(db, "SELECT jobwheel.fail(%s, 1, 'late')", jid) is False
    row = db.execute("SELECT state, result FROM jobwheel.jobs WHERE id = %s", (job,)).fetchone()
    assert row == ("succeeded", {"r": 1})
    assert one(db, "SELECT count(*) FROM jobwheel.job_errors") == 0


def test_fail_retries_then_dead_with_every_error_in_dlq(db):
    job = one(db, "SELECT jobwheel.enqueue('noop', max_attempts => 3, backoff_base_ms => 0)")
    for attempt in (1, 2, 3):
        (jid, a), = claim(db)
        assert (jid, a) == (job, attempt)
        assert one(db, "SELECT jobwheel.fail(%s, %s, %s)", jid, a, f"err {attempt}") is True
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", job) == "dead"
    row = db.execute("SELECT attempt, last_error, errors FROM jobwheel.dlq WHERE id = %s", (job,)).fetchone()
    assert row[0] == 3 and row[1] == "err 3"
    assert [(e["attempt"], e["worker"], e["error"]) for e in row[2]] == [
        (1, "w1", "err 1"), (2, "w1", "err 2"), (3, "w1", "err 3")]


def test_retry_delay_follows_backoff_and_retry_after(db):
    job = one(db, "SELECT jobwheel.enqueue('noop', backoff_base_ms => 1000)")
    claim(db)
    db.execute("SELECT jobwheel.fail(%s, 1, 'x')", (job,))
    delay = one(db, "SELECT extract(epoch FROM run_at - now()) FROM jobwheel.jobs WHERE id = %s", job)
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", job) == "scheduled"
    assert 0.75 <= float(delay) <= 1.25
    # second failure: 5 s x [0.8, 1.2]; a Retry-After of 60 s wins over it
    db.execute("UPDATE jobwheel.jobs SET state = 'ready' WHERE id = %s", (job,))
    claim(db)
    db.execute("SELECT jobwheel.fail(%s, 2, 'x', true, 60000)", (job,))
    delay = one(db, "SELECT extract(epoch FROM run_at - now()) FROM jobwheel.jobs WHERE id = %s", job)
    assert 59 <= float(delay) <= 61


def test_non_retryable_failure_goes_straight_to_dead(db):
    job = one(db, "SELECT jobwheel.enqueue('noop')")
    claim(db)
    db.execute("SELECT jobwheel.fail(%s, 1, 'bad request', false)", (job,))
    assert db.execute("SELECT state, attempt FROM jobwheel.jobs WHERE id = %s", (job,)).fetchone() == ("dead", 1)


def test_requeue_resets_attempts(db):
    job = one(db, "SELECT jobwheel.enqueue('noop', max_attempts => 1)")
    claim(db)
    db.execute("SELECT jobwheel.fail(%s, 1, 'x')", (job,))
    assert one(db, "SELECT jobwheel.requeue(%s)", job) is True
    assert db.execute("SELECT state, attempt FROM jobwheel.jobs WHERE id = %s", (job,)).fetchone() == ("ready", 0)
    assert one(db, "SELECT jobwheel.requeue(%s)", job) is False  # ready is not requeueable
    assert one(db, "SELECT count(*) FROM jobwheel.dlq") == 0


def test_pause_and_resume(db):
    job = one(db, "SELECT jobwheel.enqueue('noop', queue => 'mail')")
    db.execute("SELECT jobwheel.pause_queue('mail')")
    assert claim(db, queues=["mail"]) == []
    db.execute("SELECT jobwheel.resume_queue('mail')")
    assert [r[0] for r in claim(db, queues=["mail"])] == [job]


def test_lease_expiry_is_a_failed_attempt_and_fences_the_old_worker(db):
    job = one(db, "SELECT jobwheel.enqueue('noop', backoff_base_ms => 0)")
    db.execute("SELECT * FROM jobwheel.claim('old-worker', '{default}', 1, 1000)")
    db.execute("UPDATE jobwheel.jobs SET lease_until = now() - interval '1 s' WHERE id = %s", (job,))
    assert one(db, "SELECT jobwheel.expire_leases()") == 1
    assert db.execute("SELECT state, last_error FROM jobwheel.jobs WHERE id = %s", (job,)).fetchone() == (
        "ready", "lease expired (worker old-worker)")
    (jid, attempt), = claim(db, worker="new-worker")
    assert attempt == 2
    assert one(db, "SELECT jobwheel.complete(%s, 1, '{\"late\": true}')", job) is False
    assert one(db, "SELECT jobwheel.complete(%s, 2, '{}')", job) is True


def test_claim_uses_the_partial_index_whatever_the_history(db):
    db.execute("INSERT INTO jobwheel.jobs (kind, state, finished_at) "
               "SELECT 'noop', 'succeeded', now() FROM generate_series(1, 50000)")
    one(db, "SELECT jobwheel.enqueue('noop')")
    db.execute("ANALYZE jobwheel.jobs")
    # the candidate scan of jobwheel.claim(), one queue
    plan = "\n".join(r[0] for r in db.execute(
        "EXPLAIN SELECT id FROM jobwheel.jobs WHERE state = 'ready' AND queue = 'default' "
        "ORDER BY priority, run_at, id LIMIT 10 FOR UPDATE SKIP LOCKED").fetchall())
    assert "Index Scan using jobs_claim_idx" in plan and "Sort" not in plan, plan


def test_queue_stats_and_worker_registration(db):
    one(db, "SELECT jobwheel.enqueue('noop')")
    one(db, "SELECT jobwheel.enqueue('noop', queue => 'q2')")
    stats = db.execute("SELECT queue, state, jobs FROM jobwheel.queue_stats ORDER BY queue").fetchall()
    assert stats == [("default", "ready", 1), ("q2", "ready", 1)]
    db.execute("SELECT jobwheel.register_worker('w9', 'h', 1, '{default}', 4)")
    claim(db, worker="w9")
    lost = [r[0] for r in db.execute("SELECT * FROM jobwheel.heartbeat('w9', '{1, 999}', 30000)")]
    assert lost == [999]
