-- SPDX-License-Identifier: MIT
-- Cursor claims (0008) read from the start less often when that read is slow.
--
-- While a long transaction holds the xmin horizon, a read of the claim index
-- from its start walks every dead entry left since the transaction began:
-- after 3 minutes at 10 000 jobs/s, some 400 ms. 0008 made each worker do
-- one such read a second, so two workers spent most of a core on them. Now a
-- worker's next read from the start is due max(1 s, 10 x its last one's
-- duration) after it: never more than about a tenth of a worker's time.
-- What this costs: a job that enters the index before a worker's position
-- (a higher priority, an aged job, a retry due earlier) may wait that long
-- for the worker's next full read, if the others keep it busy. A
-- continuation that comes back short still reads from the start at once.

ALTER TABLE jobwheel.claim_cursors ADD COLUMN full_read_took interval NOT NULL DEFAULT '0';

CREATE OR REPLACE FUNCTION jobwheel.claim(worker text, queues text[], n int, lease_ms int DEFAULT 30000)
RETURNS SETOF jobwheel.jobs
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
	v_queues text[];
	v_cursor jobwheel.claim_cursors;
	v_started timestamptz := clock_timestamp();
	v_full_began timestamptz := v_started;
	v_slow interval := make_interval(secs => jobwheel._setting('jobwheel.claim_slow_ms', 20) / 1000.0);
	v_full boolean;
	v_rows jobwheel._claimed[];
	v_more jobwheel._claimed[];
BEGIN
	IF worker IS NULL OR worker = '' THEN
		PERFORM jobwheel._bad('worker', 'must be a non-empty worker id');
	END IF;
	IF n IS NULL OR n NOT BETWEEN 1 AND 10000 THEN
		PERFORM jobwheel._bad('n', format('%s is out of range 1..10000', n));
	END IF;
	IF lease_ms IS NULL OR lease_ms < 1000 THEN
		PERFORM jobwheel._bad('lease_ms', format('%s must be at least 1000', lease_ms));
	END IF;
	SELECT array_agg(q) INTO v_queues FROM unnest(queues) q
	WHERE NOT EXISTS (SELECT 1 FROM jobwheel.queues p WHERE p.name = q AND p.paused);
	IF v_queues IS NULL THEN
		RETURN;
	END IF;
	SELECT * INTO v_cursor FROM jobwheel.claim_cursors c WHERE c.worker = claim.worker;

	IF NOT FOUND THEN
		-- The usual claim: every queue from its start.
		RETURN QUERY SELECT (r.job).* FROM jobwheel._claim_from(worker, v_queues, n, lease_ms, '{}', false) r;
		IF clock_timestamp() - v_started >= v_slow THEN
			IF jobwheel._horizon_held() THEN
				INSERT INTO jobwheel.claim_cursors VALUES (worker, '{}', v_started, clock_timestamp() - v_started)
				ON CONFLICT DO NOTHING;
			END IF;
		END IF;
		RETURN;
	END IF;

	-- Cursor claims: from each queue's position; from the start when one is
	-- due, and when the read from the positions comes back short (maybe
	-- nothing is left after them, maybe something entered before them).
	v_full := v_cursor.full_read_at < v_started - greatest(interval '1 s', 10 * v_cursor.full_read_took);
	SELECT coalesce(array_agg(r), '{}') INTO v_rows
	FROM jobwheel._claim_from(worker, v_queues, n, lease_ms, v_cursor.positions, NOT v_full) r;
	IF NOT v_full AND cardinality(v_rows) < n THEN
		v_full_began := clock_timestamp();
		SELECT coalesce(array_agg(r), '{}') INTO v_more
		FROM jobwheel._claim_from(worker, v_queues, n - cardinality(v_rows), lease_ms, '{}', false) r;
		v_rows := v_rows || v_more;
		v_full := true;
	END IF;
	IF v_full AND clock_timestamp() - v_started < v_slow THEN
		DELETE FROM jobwheel.claim_cursors c WHERE c.worker = claim.worker; -- fast again
	ELSE
		-- Each queue's new position: its last job claimed now, in claim order.
		UPDATE jobwheel.claim_cursors c
		SET positions = c.positions || coalesce((
		        SELECT jsonb_object_agg(p.queue, jsonb_build_array(p.key_priority, p.run_at, p.id))
		        FROM (SELECT DISTINCT ON ((r.job).queue) (r.job).queue, r.key_priority, (r.job).run_at, (r.job).id
		              FROM unnest(v_rows) r
		              ORDER BY (r.job).queue, r.key_priority DESC, (r.job).run_at DESC, (r.job).id DESC) p), '{}'),
		    full_read_at = CASE WHEN v_full THEN v_full_began ELSE c.full_read_at END,
		    full_read_took = CASE WHEN v_full THEN clock_timestamp() - v_full_began ELSE c.full_read_took END
		WHERE c.worker = claim.worker;
	END IF;
	RETURN QUERY SELECT (r.job).* FROM unnest(v_rows) r;
END $$;
