# SPDX-License-Identifier: MIT
"""The `http` kind (webhooks) against a scriptable fake server on loopback:
signatures, retries and Retry-After, permanent failures, timeouts, resets,
the outbound address policy, cancellation and bounded response bodies."""
import hashlib
import hmac
import json
import time

import pytest

from conftest import job_state, one, wait_for, wait_state, job_errors as errors
from fakes import FakeHTTP, Reply

SECRET = "whsec_integration_test"
POLICY_ERROR = "destination address refused by the outbound policy"


@pytest.fixture
def fake():
    server = FakeHTTP()
    yield server
    server.close()


def start_worker(workers, **settings):
    """A worker on queue hooks that may reach 127.0.0.1 and signs with SECRET."""
    opts = dict(queues="hooks", http__allow="127.0.0.1", http__signing_secret_env="HOOK_SECRET",
                worker__poll_ms=100, worker__heartbeat_ms=200, env={"HOOK_SECRET": SECRET})
    opts.update(settings)
    return workers.start(**{k: v for k, v in opts.items() if v is not None})


def enqueue(db, payload, **kw):
    args = "".join(f", {k} => %s" for k in kw)
    return one(db, f"SELECT jobwheel.enqueue('http', %s::jsonb, 'hooks', backoff_base_ms => 200{args})",
               json.dumps(payload), *kw.values())


def job_row(db, job):
    return db.execute("SELECT state, attempt, result, last_error FROM jobwheel.jobs WHERE id = %s",
                      (job,)).fetchone()


def test_webhook_succeeds_with_a_signature_the_receiver_verifies(db, workers, fake):
    fake.script("/hook", Reply(200, body={"received": True}))
    start_worker(workers)
    job = enqueue(db, {"url": fake.url("/hook"), "body": {"event": "order.paid", "id": 42},
                       "headers": {"X-Custom": "yes"}})
    wait_state(db, job, "succeeded")
    state, attempt, result, _ = job_row(db, job)
    assert attempt == 1
    assert result["status"] == 200 and json.loads(result["body"]) == {"received": True}
    assert result["duration_ms"] >= 0 and "truncated" not in result

    [req] = fake.requests("/hook")
    assert req.method == "POST"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-custom"] == "yes"
    assert req.json() == {"event": "order.paid", "id": 42}
    # The receiver's check, as a Stripe-style consumer would write it.
    fields = dict(part.split("=", 1) for part in req.headers["x-jobwheel-signature"].split(","))
    assert abs(int(fields["t"]) - time.time()) < 60
    expected = hmac.new(SECRET.encode(), fields["t"].encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)


def test_503_then_200_is_retried_once(db, workers, fake):
    fake.script("/flaky", Reply(503, body="busy"), Reply(200, body="ok"))
    start_worker(workers)
    job = enqueue(db, {"url": fake.url("/flaky"), "body": "plain text"})
    wait_state(db, job, "succeeded")
    state, attempt, result, _ = job_row(db, job)
    assert attempt == 2 and result["status"] == 200 and result["body"] == "ok"
    assert len(fake.requests("/flaky")) == 2
    [err] = errors(db, job)
    assert "503" in err


def test_429_retry_after_delays_the_next_attempt(db, workers, fake):
    fake.script("/limited", Reply(429, headers={"Retry-After": "3"}, body="slow down"), Reply(200))
    start_worker(workers)
    job = enqueue(db, {"url": fake.url("/limited")})
    wait_state(db, job, "succeeded", timeout=15)
    first, second = fake.requests("/limited")
    assert second.time - first.time >= 3.0, second.time - first.time
    assert job_row(db, job)[1] == 2
    assert "429" in errors(db, job)[0]


def test_404_is_dead_at_once_with_a_clear_error(db, workers, fake):
    fake.script("/missing", Reply(404, body="no such hook"))
    start_worker(workers)
    job = enqueue(db, {"url": fake.url("/missing"), "method": "PUT", "body": "x"})
    wait_state(db, job, "dead")
    state, attempt, _, last_error = job_row(db, job)
    assert attempt == 1
    assert "404" in last_error and "no such hook" in last_error
    assert [r.method for r in fake.requests("/missing")] == ["PUT"]


def test_timeout_is_retried(db, workers, fake):
    fake.script("/slow", Reply(hang=True), Reply(200, body="late but fine"))
    start_worker(workers)
    job = enqueue(db, {"url": fake.url("/slow"), "timeout_ms": 300})
    wait_state(db, job, "succeeded")
    assert job_row(db, job)[1] == 2
    first = fake.requests("/slow")[0]
    assert first.closed is not None and first.closed - first.time < 1.5  # aborted at the timeout
    [err] = errors(db, job)
    assert "time" in err.lower(), err


def test_connection_reset_is_retried(db, workers, fake):
    fake.script("/reset", Reply(reset=True), Reply(200, body="ok"))
    start_worker(workers)
    job = enqueue(db, {"url": fake.url("/reset")})
    wait_state(db, job, "succeeded")
    assert job_row(db, job)[1] == 2
    assert len(fake.requests("/reset")) == 2
    assert len(errors(db, job)) == 1


def test_status_outside_expect_is_dead(db, workers, fake):
    fake.script("/created", Reply(200, body={"error": {"message": "quota exceeded"}}))
    start_worker(workers)
    job = enqueue(db, {"url": fake.url("/created"), "body": {}, "expect": [201, 201]})
    wait_state(db, job, "dead")
    state, attempt, _, last_error = job_row(db, job)
    assert attempt == 1
    assert "HTTP 200" in last_error and "201" in last_error and "quota exceeded" in last_error


def test_private_address_not_allowed_is_refused_before_connecting(db, workers, fake):
    start_worker(workers, http__allow=None, http__signing_secret_env=None, env=None)
    job = enqueue(db, {"url": fake.url("/private"), "body": "secret stuff"})
    wait_state(db, job, "dead")
    state, attempt, _, last_error = job_row(db, job)
    assert attempt == 1 and POLICY_ERROR in last_error
    assert fake.requests() == []


def test_cloud_metadata_address_is_refused(db, workers):
    start_worker(workers)  # 127.0.0.1 allowed; 169.254.169.254 never unless listed
    job = enqueue(db, {"url": "http://169.254.169.254/latest/meta-data/", "timeout_ms": 2000})
    wait_state(db, job, "dead")
    state, attempt, _, last_error = job_row(db, job)
    assert attempt == 1 and POLICY_ERROR in last_error


def test_cancel_aborts_a_hanging_call_at_once(db, workers, fake):
    fake.script("/hang", Reply(hang=True))
    fake.script("/after", Reply(200, body="next"))
    worker = start_worker(workers, concurrency=1)
    job = enqueue(db, {"url": fake.url("/hang"), "timeout_ms": 60000})
    [req] = fake.wait_requests("/hang", 1)
    assert job_state(db, job) == "running"
    cancelled = time.monotonic()
    assert one(db, "SELECT jobwheel.cancel(%s)", job) is True
    closed = fake.wait_closed(req, timeout=5)
    assert closed - cancelled < 1.5, closed - cancelled
    # The worker's only slot is free again: the next job runs straight away.
    nxt = enqueue(db, {"url": fake.url("/after")})
    wait_state(db, nxt, "succeeded", timeout=5)
    assert job_state(db, job) == "cancelled"
    assert one(db, "SELECT count(*) FROM jobwheel.jobs WHERE state = 'running'") == 0
    assert worker.proc.poll() is None


def test_large_response_body_is_truncated_in_the_result(db, workers, fake):
    fake.script("/big", Reply(200, body=b"a" * (100 * 1024)))
    start_worker(workers)
    job = enqueue(db, {"url": fake.url("/big")})
    wait_state(db, job, "succeeded")
    result = job_row(db, job)[2]
    assert result["status"] == 200 and result["truncated"] is True
    assert len(result["body"]) == 64 * 1024
