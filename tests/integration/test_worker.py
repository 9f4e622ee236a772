# SPDX-License-Identifier: MIT
"""jobwheel-worker against a real PostgreSQL: running, retrying, dead-lettering,
cancelling, draining, surviving crashes and a database restart."""
import os
import signal
import time
from datetime import datetime

import psycopg

from conftest import job_state, one, wait_for, wait_state

FAST = dict(worker__poll_ms=100, worker__heartbeat_ms=200)


def enqueue(db, kind, payload="{}", **kw):
    args = ", ".join(f"{k} => %s" for k in kw)
    sql = f"SELECT jobwheel.enqueue(%s, %s{', ' + args if args else ''})"
    return one(db, sql, kind, payload, *kw.values())


def test_job_runs_to_succeeded_with_its_result(db, workers):
    workers.start(**FAST)
    job = enqueue(db, "noop", '{"echo": {"x": [1, 2]}}')
    wait_state(db, job, "succeeded")
    row = db.execute("SELECT attempt, result, worker IS NOT NULL, started_at <= finished_at "
                     "FROM jobwheel.jobs WHERE id = %s", (job,)).fetchone()
    assert row == (1, {"echo": {"x": [1, 2]}}, True, True)


def test_priority_order_with_one_slot(db, workers):
    jobs = {p: enqueue(db, "noop", priority=p) for p in (5, 0, 3, -1)}
    workers.start(concurrency=1, **FAST)
    wait_for(lambda: one(db, "SELECT count(*) FROM jobwheel.jobs WHERE state = 'succeeded'") == 4)
    order = [r[0] for r in db.execute("SELECT priority FROM jobwheel.jobs ORDER BY started_at, id")]
    assert order == [-1, 0, 3, 5], jobs


def test_failing_job_retries_with_backoff_then_dies_with_every_error(db, workers):
    workers.start(**FAST)
    job = enqueue(db, "fail", '{"message": "smtp said no"}', backoff_base_ms=200)
    wait_state(db, job, "dead", timeout=20)
    errors = db.execute("SELECT attempt, error, at FROM jobwheel.job_errors WHERE job_id = %s ORDER BY id",
                        (job,)).fetchall()
    assert [(a, e) for a, e, _ in errors] == [(k, "smtp said no") for k in (1, 2, 3, 4)]
    gaps = [(errors[k + 1][2] - errors[k][2]).total_seconds() for k in range(3)]
    for k, gap in enumerate(gaps):  # 0.2 s, 1 s, 5 s x [0.8, 1.2], plus up to one poll
        base = 0.2 * 5 ** k
        assert 0.8 * base <= gap <= 1.2 * base + 0.5, gaps
    dlq = db.execute("SELECT attempt, last_error, jsonb_array_length(errors) FROM jobwheel.dlq WHERE id = %s",
                     (job,)).fetchone()
    assert dlq == (4, "smtp said no", 4)


def test_non_retryable_and_retry_after(db, workers):
    workers.start(**FAST)
    dead = enqueue(db, "fail", '{"retryable": false}')
    later = enqueue(db, "fail", '{"retry_after_ms": 1500}', max_attempts=2, backoff_base_ms=10)
    wait_state(db, dead, "dead")
    assert one(db, "SELECT attempt FROM jobwheel.jobs WHERE id = %s", dead) == 1
    wait_state(db, later, "dead", timeout=10)
    gap = one(db, "SELECT extract(epoch FROM max(at) - min(at)) FROM jobwheel.job_errors WHERE job_id = %s", later)
    assert float(gap) >= 1.5


def test_requeue_from_the_dlq_runs_the_job_again(db, workers):
    workers.start(**FAST)
    job = enqueue(db, "fail", '{"retryable": false}')
    wait_state(db, job, "dead")
    assert one(db, "SELECT jobwheel.requeue(%s)", job) is True
    wait_for(lambda: one(db, "SELECT count(*) FROM jobwheel.job_errors WHERE job_id = %s", job) == 2)
    wait_state(db, job, "dead")


def test_timeout_aborts_the_attempt(db, workers):
    workers.start(**FAST)
    job = enqueue(db, "sleep", '{"ms": 60000}', timeout_ms=300, max_attempts=1)
    wait_state(db, job, "dead")
    assert one(db, "SELECT last_error FROM jobwheel.jobs WHERE id = %s", job) == "timeout"


def test_unknown_kind_is_a_retryable_failure(db, workers):
    workers.start(**FAST)
    job = enqueue(db, "no-such-kind", max_attempts=1)
    wait_state(db, job, "dead")
    assert "unknown kind no-such-kind" in one(db, "SELECT last_error FROM jobwheel.jobs WHERE id = %s", job)


def test_cancel_ready_and_running_jobs(db, workers):
    ready = enqueue(db, "noop", queue="later")
    assert one(db, "SELECT jobwheel.cancel(%s)", ready) is True
    w = workers.start(queues="default,later", concurrency=1, **FAST)
    running = enqueue(db, "sleep", '{"ms": 60000}')
    wait_state(db, running, "running")
    t0 = time.monotonic()
    assert one(db, "SELECT jobwheel.cancel(%s)", running) is True
    wait_for(lambda: f"job {running} cancelled" in w.output(), 1.0, what="the worker to abort the job")
    assert time.monotonic() - t0 < 1.0
    # the slot is free again: with concurrency 1 the next job runs
    nxt = enqueue(db, "noop")
    wait_state(db, nxt, "succeeded")
    assert job_state(db, running) == "cancelled" and job_state(db, ready) == "cancelled"
    assert one(db, "SELECT started_at FROM jobwheel.jobs WHERE id = %s", ready) is None


def test_paused_queue_is_not_claimed_until_resumed(db, workers):
    workers.start(queues="a,b", **FAST)
    db.execute("SELECT jobwheel.pause_queue('a')")
    held = enqueue(db, "noop", queue="a")
    passed = enqueue(db, "noop", queue="b")
    wait_state(db, passed, "succeeded")
    # the worker claimed after `held` was enqueued and still left it alone
    assert job_state(db, held) == "ready"
    db.execute("SELECT jobwheel.resume_queue('a')")
    wait_state(db, held, "succeeded")


def test_delayed_job_runs_without_a_coordinator(db, workers):
    workers.start()  # default poll_ms = 1000
    job = one(db, "SELECT jobwheel.enqueue('noop', run_at => now() + interval '1 s')")
    assert job_state(db, job) == "scheduled"
    wait_state(db, job, "succeeded", timeout=5)
    late = one(db, "SELECT extract(epoch FROM started_at - run_at) FROM jobwheel.jobs WHERE id = %s", job)
    assert 0 <= float(late) <= 2.0


def test_two_workers_never_run_the_same_job(db, workers):
    db.execute("SELECT jobwheel.enqueue_batch(jsonb_agg(jsonb_build_object('kind', 'sleep', "
               "'payload', jsonb_build_object('ms', 2)))) FROM generate_series(1, 600)")
    workers.start(concurrency=8, **FAST)
    workers.start(concurrency=8, **FAST)
    wait_for(lambda: one(db, "SELECT count(*) FROM jobwheel.jobs WHERE state = 'succeeded'") == 600, 30)
    assert one(db, "SELECT max(attempt) FROM jobwheel.jobs") == 1
    assert one(db, "SELECT count(*) FROM jobwheel.job_errors") == 0
    assert one(db, "SELECT count(DISTINCT worker) FROM jobwheel.jobs") == 2


def test_killed_worker_job_is_retried_after_its_lease(db, workers):
    victim = workers.start(worker__lease_ms=1000, **FAST)
    job = enqueue(db, "sleep", '{"ms": 1500}', backoff_base_ms=10)
    wait_state(db, job, "running")
    victim.kill()
    workers.start(**FAST)  # its heartbeat reclaims expired leases
    wait_state(db, job, "succeeded", timeout=15)
    row = db.execute("SELECT attempt, last_error FROM jobwheel.jobs WHERE id = %s", (job,)).fetchone()
    assert row == (2, f"lease expired (worker {victim.name})")


def test_a_worker_cut_off_from_the_database_gives_its_job_up_before_the_lease_expires(db, workers):
    """The database stops answering this worker (its session is frozen, as
    when the network to it is cut and TCP has not noticed yet). Its job's
    lease runs out and another worker runs the job again: by then the first
    worker must have stopped it, or the job would run twice at once."""
    cut = workers.start(concurrency=1, worker__lease_ms=2000, **FAST)
    job = enqueue(db, "sleep", '{"ms": 6000}', backoff_base_ms=10)
    wait_state(db, job, "running")
    session = one(db, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                      "AND application_name = 'jobwheel-worker'")
    os.kill(session, signal.SIGSTOP)
    try:
        other = workers.start(**FAST)  # its heartbeat reclaims expired leases
        wait_state(db, job, "succeeded", timeout=20)
        attempt, worker, started = db.execute(
            "SELECT attempt, worker, started_at FROM jobwheel.jobs WHERE id = %s", (job,)).fetchone()
        assert (attempt, worker) == (2, other.name)
        gave_up = wait_for(lambda: [line for line in cut.output().splitlines() if "giving up 1 running job" in line],
                           what="the cut-off worker to give its job up")
        at = datetime.fromisoformat(gave_up[0].split()[0].replace("Z", "+00:00"))
        assert at < started, f"attempt 2 started at {started}, the first still ran until {at}"
        assert f"job {job} (sleep) attempt 1 succeeded" not in cut.output()
    finally:
        os.kill(session, signal.SIGCONT)
    assert cut.proc.poll() is None, cut.output()


def test_a_frozen_worker_gives_its_job_up_before_the_job_can_finish(db, workers):
    """The worker itself is frozen (SIGSTOP) past the time its leases surely
    last, and its job's timer falls due meanwhile. On SIGCONT the first loop
    pass holds both that timer and the lease guard's, the job's earlier: the
    guard must still run first, so the job is given up and never reported by
    this worker. Its lease runs out and the job runs again as attempt 2."""
    # The guard holds min(6 s / 2, 3 heartbeats) * 0.95 = 2.85 s after a heartbeat
    # sent up to 1 s before the job started: at least 1.85 s, and the job ends after 1.5 s.
    frozen = workers.start(concurrency=1, worker__lease_ms=6000, worker__poll_ms=100, worker__heartbeat_ms=1000)
    job = enqueue(db, "sleep", '{"ms": 1500}', backoff_base_ms=10)
    wait_state(db, job, "running")
    frozen.signal(signal.SIGSTOP)
    try:
        running_for = one(db, "SELECT extract(epoch FROM now() - started_at) FROM jobwheel.jobs WHERE id = %s", job)
        assert float(running_for) < 1.3, f"frozen only {running_for} s after the job started: too late to test"
        # Frozen until the guard surely fell due: 2.85 s after the last heartbeat or the claim, plus a margin.
        wait_for(lambda: one(db, "SELECT extract(epoch FROM now() - greatest(w.heartbeat_at, j.started_at)) > 3.2 "
                                 "FROM jobwheel.workers w, jobwheel.jobs j WHERE w.id = %s AND j.id = %s",
                             frozen.name, job), what="the lease guard's time to pass")
    finally:
        frozen.signal(signal.SIGCONT)
    wait_state(db, job, "succeeded", timeout=20)
    assert one(db, "SELECT attempt FROM jobwheel.jobs WHERE id = %s", job) == 2, frozen.output()
    assert one(db, "SELECT error FROM jobwheel.job_errors WHERE job_id = %s AND attempt = 1", job) == \
        f"lease expired (worker {frozen.name})"
    assert "giving up 1 running job" in frozen.output()
    assert f"job {job} (sleep) attempt 1 succeeded" not in frozen.output()
    assert frozen.proc.poll() is None, frozen.output()


def test_sigterm_lets_running_jobs_finish(db, workers):
    w = workers.start(**FAST)
    jobs = [enqueue(db, "sleep", '{"ms": 700}') for _ in range(3)]
    wait_for(lambda: all(job_state(db, j) == "running" for j in jobs))
    w.signal(signal.SIGTERM)
    assert w.wait(10) == 0
    assert [job_state(db, j) for j in jobs] == ["succeeded"] * 3
    assert one(db, "SELECT count(*) FROM jobwheel.workers") == 0


def test_sigterm_grace_over_gives_jobs_back_without_an_attempt(db, workers):
    w = workers.start(worker__shutdown_grace_ms=300, **FAST)
    job = enqueue(db, "sleep", '{"ms": 60000}')
    wait_state(db, job, "running")
    w.signal(signal.SIGTERM)
    assert w.wait(10) == 0
    assert db.execute("SELECT state, attempt FROM jobwheel.jobs WHERE id = %s", (job,)).fetchone() == ("ready", 0)
    assert one(db, "SELECT count(*) FROM jobwheel.job_errors") == 0


def test_second_signal_exits_at_once(db, workers):
    w = workers.start(**FAST)
    job = enqueue(db, "sleep", '{"ms": 60000}')
    wait_state(db, job, "running")
    w.signal(signal.SIGTERM)
    wait_for(lambda: "draining" in w.output())
    w.signal(signal.SIGINT)
    assert w.wait(2) == 1


def test_postgres_restart_mid_run_loses_nothing(pg, db, dsn, workers):
    db.execute("SELECT jobwheel.enqueue_batch(jsonb_agg(jsonb_build_object('kind', 'sleep', "
               "'payload', jsonb_build_object('ms', 20), 'backoff_base_ms', 10))) FROM generate_series(1, 400)")
    ws = [workers.start(concurrency=16, worker__lease_ms=2000, **FAST) for _ in range(2)]
    wait_for(lambda: one(db, "SELECT count(*) FROM jobwheel.jobs WHERE state = 'succeeded'") >= 50)
    pg.stop("fast")
    pg.start()
    with psycopg.connect(dsn, autocommit=True) as c:
        wait_for(lambda: one(c, "SELECT count(*) FROM jobwheel.jobs WHERE state = 'succeeded'") == 400, 60,
                 what="all jobs to succeed after the restart")
        assert one(c, "SELECT count(*) FROM jobwheel.jobs WHERE state <> 'succeeded'") == 0
        # completions are fenced: no job finished twice, none ran more than once per lease loss
        assert one(c, "SELECT max(attempt) FROM jobwheel.jobs") <= 2
    for w in ws:
        assert w.proc.poll() is None, w.output()
        assert "database connection lost" in w.output()
