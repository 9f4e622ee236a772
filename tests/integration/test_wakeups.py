# SPDX-License-Identifier: MIT
"""Wake-ups: a queue gets at most one NOTIFY per 10 ms whatever the enqueue
rate (SPEC §13), and no job waits for the fallback poll because its
producer skipped the NOTIFY."""
import threading
import time

import psycopg

from conftest import one, wait_for


def test_at_most_one_notify_per_queue_per_10_ms(dsn, db):
    got = {}
    listener = psycopg.connect(dsn, autocommit=True)
    listener.add_notify_handler(lambda n: got.__setitem__(n.payload, got.get(n.payload, 0) + 1))
    listener.execute("LISTEN jobwheel_wake")
    producers, per_producer = 4, 150

    def produce():
        with psycopg.connect(dsn, autocommit=True) as c:
            for _ in range(per_producer):
                c.execute("SELECT jobwheel.enqueue('noop', '{}', 'burst')")

    threads = [threading.Thread(target=produce) for _ in range(producers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed_ms = (time.monotonic() - started) * 1000
    # Another queue is woken on its own clock; its NOTIFY, sent last, tells
    # that every earlier one has been read (a query reads what is pending).
    db.execute("SELECT jobwheel.enqueue('noop', '{}', 'other')")
    wait_for(lambda: listener.execute("SELECT 1") and "other" in got, what="the NOTIFY of queue other")
    listener.close()
    assert one(db, "SELECT count(*) FROM jobwheel.jobs WHERE queue = 'burst'") == producers * per_producer
    assert 1 <= got.get("burst", 0) <= elapsed_ms / 10 + 1, (got, elapsed_ms)
    assert got.get("other") == 1


def test_jobs_that_skipped_the_notify_do_not_wait_for_the_poll(dsn, db, workers):
    # No fallback poll for a minute: only wake-ups and the claim that trails
    # each of them can start these jobs.
    workers.start(concurrency=8, worker__poll_ms=60000)
    for _ in range(20):
        ids = [one(db, "SELECT jobwheel.enqueue('noop')") for _ in range(3)]  # 2 of 3 in the window
        wait_for(lambda: one(db, "SELECT count(*) FROM jobwheel.jobs WHERE id = ANY(%s) AND state = 'succeeded'",
                             ids) == 3, timeout=5, what=f"jobs {ids} to succeed without the poll")
