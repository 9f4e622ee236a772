# SPDX-License-Identifier: MIT
"""Claims while a long transaction holds back vacuum (migrations/0008):
a worker whose claims are slow continues from where its last claim ended,
reads from the start once a second (less often when that read is slow:
migrations/0012) and whenever the continuation comes back short, and stops
once a read from the start is fast again. The thresholds are lowered per
session here so that the mode can be entered on purpose."""
import time

from conftest import one, wait_for

CLAIM = "SELECT id FROM jobwheel.claim('w1', ARRAY['default'], %s)"


def claim(db, n):
    return [r[0] for r in db.execute(CLAIM, (n,)).fetchall()]


def enqueue(db, n, priority=0):
    return [r[0] for r in db.execute(
        "SELECT jobwheel.enqueue('noop', priority => %s) FROM generate_series(1, %s)", (priority, n)).fetchall()]


def slow_mode(db):
    db.execute("SET jobwheel.claim_slow_ms = 0")  # every claim counts as slow
    db.execute("SET jobwheel.horizon_lag = 0")     # and the horizon as held
    db.execute("SELECT jobwheel.register_worker('w1', 'h', 1, ARRAY['default'], 8)")


def test_a_fast_claim_never_enters_cursor_mode(db):
    db.execute("SELECT jobwheel.register_worker('w1', 'h', 1, ARRAY['default'], 8)")
    db.execute("SET jobwheel.horizon_lag = 0")  # held, but claims are fast
    db.execute("SET jobwheel.claim_slow_ms = 60000")
    enqueue(db, 3)
    assert len(claim(db, 2)) == 2
    assert one(db, "SELECT count(*) FROM jobwheel.claim_cursors") == 0


def test_cursor_claims_continue_and_a_higher_priority_job_waits_at_most_for_the_next_full_read(db):
    slow_mode(db)
    low = enqueue(db, 10)
    assert claim(db, 3) == low[0:3]  # from the start: cursor mode begins
    assert one(db, "SELECT count(*) FROM jobwheel.claim_cursors WHERE worker = 'w1'") == 1
    assert claim(db, 3) == low[3:6]  # a full read: sets the position
    urgent = enqueue(db, 1, priority=-5)
    assert claim(db, 3) == low[6:9]  # continues after the position: urgent is before it
    # Within a second a read from the start comes, and takes urgent first.
    seen = []
    wait_for(lambda: seen.extend(claim(db, 1)) or urgent[0] in seen, timeout=5, interval=0.05,
             what="the urgent job to be claimed by a full read")
    assert seen[-1] == urgent[0] and set(seen[:-1]) <= {low[9]}


def test_a_slow_read_from_the_start_pushes_the_next_one_back(db):
    slow_mode(db)
    low = enqueue(db, 10)
    assert claim(db, 2) == low[0:2]  # cursor mode begins
    assert claim(db, 2) == low[2:4]
    urgent = enqueue(db, 1, priority=-5)
    # The last read from the start took 0.2 s: the next is due 2 s after it.
    db.execute("UPDATE jobwheel.claim_cursors"
               " SET full_read_took = '0.2 s', full_read_at = clock_timestamp() - interval '1.5 s'")
    assert claim(db, 2) == low[4:6]
    db.execute("UPDATE jobwheel.claim_cursors SET full_read_at = clock_timestamp() - interval '2.1 s'")
    assert claim(db, 2) == [urgent[0], low[6]]
    # and this read's own duration sets the next period
    assert one(db, "SELECT full_read_took > '0' AND full_read_took < '0.2 s' FROM jobwheel.claim_cursors")


def test_a_short_continuation_reads_from_the_start_at_once(db):
    slow_mode(db)
    low = enqueue(db, 4)
    assert claim(db, 2) == low[0:2]
    assert claim(db, 1) == low[2:3]
    urgent = enqueue(db, 1, priority=-5)
    # One job is left after the position; asking for 3 comes back short
    # from there, so the same claim reads from the start and finds urgent.
    assert sorted(claim(db, 3)) == sorted([low[3], urgent[0]])


def test_cursor_mode_ends_when_a_full_read_is_fast(db):
    slow_mode(db)
    enqueue(db, 6)
    claim(db, 1)
    assert one(db, "SELECT count(*) FROM jobwheel.claim_cursors") == 1
    db.execute("SET jobwheel.claim_slow_ms = 60000")
    time.sleep(1.1)  # the rule under test is "once a second"
    claim(db, 1)
    assert one(db, "SELECT count(*) FROM jobwheel.claim_cursors") == 0


def test_aged_jobs_keep_their_place_in_the_positions(db):
    slow_mode(db)
    jobs = enqueue(db, 4, priority=3)
    db.execute("UPDATE jobwheel.jobs SET aged_from = priority, priority = -2147483648 WHERE id = %s", (jobs[3],))
    assert claim(db, 1) == [jobs[3]]  # aged first
    assert claim(db, 1) == [jobs[0]]  # full read from the start
    assert one(db, "SELECT priority FROM jobwheel.jobs WHERE id = %s", jobs[3]) == 3
    pos = one(db, "SELECT positions -> 'default' FROM jobwheel.claim_cursors WHERE worker = 'w1'")
    assert pos[0] == 3 and pos[2] == jobs[0]
    assert claim(db, 2) == jobs[1:3]
