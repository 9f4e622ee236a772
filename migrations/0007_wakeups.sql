-- SPDX-License-Identifier: MIT
-- Wake-ups without the NOTIFY commit lock on every enqueue.
--
-- A transaction that sends a NOTIFY holds one database-wide lock from its
-- commit until the commit is flushed, so notifying committers go one at a
-- time: single-row enqueues ran at a third of the same INSERT without a
-- NOTIFY (8 producers, durable commits). Now a queue is notified at most
-- once per 10 ms (SPEC: "at most one wake-up NOTIFY per queue per 10 ms,
-- whatever the enqueue rate"); a wake-up reaches every worker of the queue,
-- which claims at once and twice more, 5 and 12 ms later (worker.c), and
-- those trailing claims pick up the jobs whose producers skipped their
-- NOTIFY in the window and committed since. A job whose transaction stays
-- open longer is found by the next wake-up or the worker's fallback poll
-- (worker.poll_ms).

-- When each queue was last notified. UNLOGGED: no WAL for a row rewritten
-- up to 100 times a second; after a crash it is empty, and the first
-- wake-up of each queue simply recreates its row.
CREATE UNLOGGED TABLE jobwheel.queue_wakeups (
	queue       text PRIMARY KEY,
	notified_at timestamptz NOT NULL
);
ALTER TABLE jobwheel.queue_wakeups SET (fillfactor = 50); -- room for HOT updates

-- Wakes the workers of a queue unless it was woken in the last 10 ms. A
-- producer never waits here: the row of a wake-up in progress is skipped
-- (SKIP LOCKED), as that wake-up is as recent as ours would be.
CREATE OR REPLACE FUNCTION jobwheel._wake(queue text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE jobwheel.queue_wakeups w SET notified_at = clock_timestamp()
	FROM (SELECT l.queue FROM jobwheel.queue_wakeups l
	      WHERE l.queue = _wake.queue AND l.notified_at <= clock_timestamp() - interval '10 ms'
	      FOR UPDATE SKIP LOCKED) due
	WHERE w.queue = due.queue;
	IF NOT FOUND THEN
		IF EXISTS (SELECT 1 FROM jobwheel.queue_wakeups l WHERE l.queue = _wake.queue) THEN
			RETURN; -- woken in the last 10 ms, or being woken now
		END IF;
		-- The first wake-up of this queue (since the last crash).
		INSERT INTO jobwheel.queue_wakeups VALUES (_wake.queue, clock_timestamp()) ON CONFLICT DO NOTHING;
		IF NOT FOUND THEN
			RETURN; -- a concurrent first wake-up won
		END IF;
	END IF;
	PERFORM pg_notify('jobwheel_wake', _wake.queue);
END $$;
