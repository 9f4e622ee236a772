# SPDX-License-Identifier: MIT
"""The SQL API of SPEC §5 on a real PostgreSQL: behaviour, bad inputs, fencing."""
import psycopg
import pytest

from conftest import one


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
