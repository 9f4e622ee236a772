-- SPDX-License-Identifier: MIT
-- Claims that stay fast while a long transaction holds back vacuum.
--
-- The claim reads the partial index jobs_claim_idx from its start, and the
-- start is where every job claimed since the oldest running transaction
-- began still has its dead entry: nothing may remove them while that
-- transaction could see them, and each costs the scan a heap visit. Claims
-- then grow with the dead entries, and throughput falls the longer the
-- transaction lasts (measured: -75% over 3 minutes at 11 000 jobs/s).
--
-- So when a claim is slow and the xmin horizon is held back, the worker's
-- claims continue from where its last one ended (per queue, in claim order)
-- instead of from the start, and re-read from the start only once a second
-- and whenever the continuation comes back short. What this costs: while it
-- lasts, a job that enters the index before a worker's position (a higher
-- priority, an aged job, a retry due earlier) waits for that worker's next
-- full read, at most about a second, if the others keep it busy. A claim
-- still returns fewer jobs than asked only when no other job is claimable.

-- Per worker: its position in each queue, when cursor claims are on.
-- UNLOGGED: after a crash they are simply off until the next slow claim.
CREATE UNLOGGED TABLE jobwheel.claim_cursors (
	worker       text PRIMARY KEY,
	positions    jsonb NOT NULL DEFAULT '{}', -- {"queue": [priority, run_at, id]}
	full_read_at timestamptz NOT NULL
);

-- The lowest claim position, before every job.
CREATE FUNCTION jobwheel._claim_start() RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$ SELECT '[-2147483648, "-infinity", 0]'::jsonb $$;

-- The thresholds, settable per session or database for tests and tuning:
-- a claim is slow after jobwheel.claim_slow_ms (default 20), and the
-- horizon is held when a transaction still running began
-- jobwheel.horizon_lag (default 1000) or more transaction ids ago.
CREATE FUNCTION jobwheel._setting(name text, fallback int) RETURNS int
LANGUAGE sql STABLE AS $$ SELECT coalesce(nullif(current_setting(name, true), '')::int, fallback) $$;

-- True when the xmin horizon is held back (read from our own snapshot:
-- needs no privilege, unlike pg_stat_activity).
CREATE FUNCTION jobwheel._horizon_held() RETURNS boolean
LANGUAGE sql VOLATILE AS $$
	SELECT pg_snapshot_xmax(s)::text::bigint - pg_snapshot_xmin(s)::text::bigint
	       >= jobwheel._setting('jobwheel.horizon_lag', 1000)
	FROM pg_current_snapshot() s
$$;

-- Claims up to n ready jobs of the queues for worker, in claim order
-- (priority, run_at, id), each queue read from the start or, with
-- from_positions, after its position in positions. Returns the jobs and the
-- priority each had in the index (an aged job's is the lowest; the job row
-- has its own priority back).
CREATE TYPE jobwheel._claimed AS (job jobwheel.jobs, key_priority int);

CREATE FUNCTION jobwheel._claim_from(worker text, queues text[], n int, lease_ms int, positions jsonb,
                                     from_positions boolean)
RETURNS SETOF jobwheel._claimed
LANGUAGE plpgsql AS $$ -- not sql: PL/pgSQL keeps the plan for the session
#variable_conflict use_variable
BEGIN
	-- One index range scan per queue (LATERAL), each already in claim order:
	-- `queue = ANY (...)` would make the planner sort every ready row instead.
	-- started_at is the clock when the row is taken, not now() (the start of
	-- the transaction): report_and_claim() claims after reporting, in the
	-- same transaction, and a job promoted meanwhile must not appear to have
	-- started before its run_at.
	RETURN QUERY
	UPDATE jobwheel.jobs j
	SET state = 'running', attempt = j.attempt + 1, started_at = clock_timestamp(), worker = _claim_from.worker,
	    lease_until = clock_timestamp() + make_interval(secs => lease_ms / 1000.0),
	    priority = coalesce(j.aged_from, j.priority), aged_from = NULL
	FROM (SELECT c.id, c.priority
	      FROM unnest(queues) q(name)
	      CROSS JOIN LATERAL (SELECT coalesce(CASE WHEN from_positions THEN positions -> q.name END,
	                                          jobwheel._claim_start()) AS p) pos
	      CROSS JOIN LATERAL (SELECT c.id, c.priority, c.run_at FROM jobwheel.jobs c
	                          WHERE c.state = 'ready' AND c.queue = q.name
	                            AND (c.priority, c.run_at, c.id)
	                                > ((pos.p ->> 0)::int, (pos.p ->> 1)::timestamptz, (pos.p ->> 2)::bigint)
	                          ORDER BY c.priority, c.run_at, c.id
	                          LIMIT n
	                          FOR UPDATE SKIP LOCKED) c
	      ORDER BY c.priority, c.run_at, c.id
	      LIMIT n) picked
	WHERE j.id = picked.id
	RETURNING j, picked.priority;
END $$;

CREATE OR REPLACE FUNCTION jobwheel.claim(worker text, queues text[], n int, lease_ms int DEFAULT 30000)
RETURNS SETOF jobwheel.jobs
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
	v_queues text[];
	v_cursor jobwheel.claim_cursors;
	v_started timestamptz := clock_timestamp();
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
				INSERT INTO jobwheel.claim_cursors VALUES (worker, '{}', v_started) ON CONFLICT DO NOTHING;
			END IF;
		END IF;
		RETURN;
	END IF;

	-- Cursor claims: from each queue's position; from the start once a
	-- second, and when the read from the positions comes back short (maybe
	-- nothing is left after them, maybe something entered before them).
	v_full := v_cursor.full_read_at < v_started - interval '1 s';
	SELECT coalesce(array_agg(r), '{}') INTO v_rows
	FROM jobwheel._claim_from(worker, v_queues, n, lease_ms, v_cursor.positions, NOT v_full) r;
	IF NOT v_full AND cardinality(v_rows) < n THEN
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
		    full_read_at = CASE WHEN v_full THEN v_started ELSE c.full_read_at END
		WHERE c.worker = claim.worker;
	END IF;
	RETURN QUERY SELECT (r.job).* FROM unnest(v_rows) r;
END $$;
