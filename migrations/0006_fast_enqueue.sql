-- SPDX-License-Identifier: MIT
-- 0006: a faster enqueue_batch(), and delayed-job reads that never skip a
-- job at a page boundary.

-- ---------------------------------------------------------------- name checks

-- The same rule as in 0001, cheaper: PostgreSQL's regular expressions
-- expand a bounded repetition such as {1,64} into a large automaton, and
-- matching it cost about 1.2 us per value, twice per inserted job (a
-- fifth of a batch insert). An unbounded + with a length test accepts
-- exactly the same values (every accepted character is one byte) at a
-- quarter of the cost. Re-adding a constraint checks the existing rows once.
ALTER TABLE jobwheel.jobs
	DROP CONSTRAINT jobs_queue_check,
	ADD CONSTRAINT jobs_queue_check CHECK (queue ~ '^[a-z0-9_.-]+$' AND length(queue) <= 64),
	DROP CONSTRAINT jobs_kind_check,
	ADD CONSTRAINT jobs_kind_check CHECK (kind ~ '^[a-z0-9_.-]+$' AND length(kind) <= 64);

-- ---------------------------------------------------------------- enqueue_batch

-- Same contract as in 0002: jobs is an array of objects with the arguments
-- of enqueue() as fields (run_at as RFC 3339, or delay_ms); returns the ids
-- in input order; all or nothing; an error names the element (jobs[i], from
-- 0) and the field, and is the first problem in input order.
--
-- Where 0002 spent its time: a full _job_problem() pass over every element
-- (a regular expression and a jsonpath query per job) before inserting, a
-- third pass to look for unique keys and dependencies, and the table's
-- CHECK constraints on names (see above). Now the common batch is an
-- INSERT ... SELECT per slice of the array that validates as it goes: a
-- cheap test of the JSON types per row, with the names and ranges left to
-- the CHECK constraints and the integer casts. Whatever fails there (rare: bad input) is caught
-- once for the whole call, everything inserted is rolled back with it, and
-- the precise _job_problem() pass then names the first bad element. Jobs
-- with a unique_key or depends_on still go through enqueue(), one by one.
CREATE OR REPLACE FUNCTION jobwheel.enqueue_batch(jobs jsonb) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_job jsonb;
	v_slow boolean;
	v_i int;
	v_k int := 0;
	v_lo int;
	v_len int;
	v_n bigint := 0;
	v_n1 bigint;
	v_ids1 bigint[];
	v_queues1 text[];
	v_problem text;
	v_column text;
	v_ids bigint[];
	v_queues text[];
BEGIN
	IF jobs IS NULL OR jsonb_typeof(jobs) <> 'array' THEN
		PERFORM jobwheel._bad('jobs', 'must be a JSON array of job objects');
	END IF;
	v_len := jsonb_array_length(jobs);

	-- One exception block (one subtransaction) for the whole call. The
	-- INSERT goes slice by slice: 10^5 rows in one statement cost more per
	-- row than in a few (bigger sort, transition table and feed event, all
	-- spilling past work_mem), and below some 10^4 rows the cost per
	-- statement shows.
	BEGIN
		FOR v_lo IN 0 .. v_len - 1 BY 20000 LOOP
			WITH ins AS (
				INSERT INTO jobwheel.jobs (kind, payload, queue, priority, state, run_at, max_attempts,
				                           timeout_ms, backoff_base_ms, trigger)
				-- A row failing the type test gets a NULL kind: the NOT NULL
				-- constraint then stops the INSERT.
				SELECT CASE WHEN x.ok THEN x.j->>'kind' END, coalesce(x.j->'payload', '{}'),
				       coalesce(x.j->>'queue', 'default'), coalesce((x.j->>'priority')::int, 0),
				       CASE WHEN x.run_at > now() THEN 'scheduled' ELSE 'ready' END, x.run_at,
				       coalesce((x.j->>'max_attempts')::int, 4), coalesce((x.j->>'timeout_ms')::int, 300000),
				       coalesce((x.j->>'backoff_base_ms')::int, 1000), coalesce(x.j->>'trigger', 'all_success')
				FROM (SELECT e.j,
				             coalesce(now() + (e.j->>'delay_ms')::bigint * interval '1 millisecond',
				                      (e.j->>'run_at')::timestamptz, now()) AS run_at,
				             -- The problems of _job_problem() that neither a CHECK
				             -- constraint nor a cast catches: types, unknown fields,
				             -- the range of delay_ms, run_at with delay_ms.
				             jsonb_typeof(e.j) = 'object'
				             AND (e.j - ARRAY['kind', 'payload', 'queue', 'priority', 'run_at', 'delay_ms',
				                              'max_attempts', 'depends_on', 'unique_key', 'timeout_ms',
				                              'backoff_base_ms', 'trigger']) = '{}'
				             AND jsonb_typeof(e.j->'kind') = 'string'
				             AND coalesce(jsonb_typeof(e.j->'queue'), 'string') = 'string'
				             AND coalesce(jsonb_typeof(e.j->'priority'), 'null') IN ('number', 'null')
				             AND coalesce(jsonb_typeof(e.j->'max_attempts'), 'null') IN ('number', 'null')
				             AND coalesce(jsonb_typeof(e.j->'timeout_ms'), 'null') IN ('number', 'null')
				             AND coalesce(jsonb_typeof(e.j->'backoff_base_ms'), 'null') IN ('number', 'null')
				             AND coalesce(jsonb_typeof(e.j->'delay_ms'), 'null') IN ('number', 'null')
				             AND coalesce((e.j->>'delay_ms')::bigint BETWEEN 0 AND 315360000000, true)
				             AND coalesce(jsonb_typeof(e.j->'run_at'), 'null') IN ('string', 'null')
				             AND NOT (e.j ? 'run_at' AND e.j ? 'delay_ms') AS ok
				      -- (one pass over the slice: jobs -> i in a loop would detoast
				      -- the whole array for each job when it is stored out of line)
				      FROM jsonb_path_query(jobs, '$[$lo to $hi]',
				                            jsonb_build_object('lo', v_lo, 'hi', least(v_lo + 20000, v_len) - 1)) e(j)
				      -- not the jobs that need enqueue() (below)
				      WHERE e.j->>'unique_key' IS NULL AND coalesce(e.j->'depends_on', 'null') IN ('null', '[]')) x
				-- (no ORDER BY: the rows come in input order, so the ids ascend
				-- in input order; a sort would cost more than the rest of the SELECT)
				RETURNING id, queue, state)
			SELECT count(*), array_agg(id ORDER BY id), array_agg(DISTINCT queue) FILTER (WHERE state = 'ready')
			INTO v_n1, v_ids1, v_queues1 FROM ins;
			v_n := v_n + v_n1;
			v_ids := v_ids || v_ids1;
			v_queues := v_queues || v_queues1;
		END LOOP;
	EXCEPTION WHEN OTHERS THEN
		-- Name the first bad element; an error no check explains (a run_at
		-- that is no timestamp, say) is raised as it came.
		SELECT e.i - 1, p.problem INTO v_i, v_problem
		FROM jsonb_array_elements(jobs) WITH ORDINALITY e(j, i),
		     LATERAL (SELECT jobwheel._job_problem(e.j)) p(problem)
		WHERE p.problem IS NOT NULL
		ORDER BY e.i LIMIT 1;
		IF v_problem IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = '22023', COLUMN = split_part(v_problem, ':', 1),
				MESSAGE = format('jobs[%s]: jobwheel: %s', v_i, v_problem);
		END IF;
		RAISE;
	END;
	PERFORM jobwheel._wake(q) FROM (SELECT DISTINCT q FROM unnest(v_queues) q) d;
	IF v_n = v_len THEN -- the common case: done
		RETURN QUERY SELECT unnest(v_ids);
		RETURN;
	END IF;

	-- The jobs left need enqueue()'s per-job logic. The others passed, so
	-- the first problem in input order is among these.
	SELECT e.i - 1, p.problem INTO v_i, v_problem
	FROM jsonb_array_elements(jobs) WITH ORDINALITY e(j, i),
	     LATERAL (SELECT jobwheel._job_problem(e.j)) p(problem)
	WHERE p.problem IS NOT NULL
	  AND NOT (e.j->>'unique_key' IS NULL AND coalesce(e.j->'depends_on', 'null') IN ('null', '[]'))
	ORDER BY e.i LIMIT 1;
	IF v_problem IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22023', COLUMN = split_part(v_problem, ':', 1),
			MESSAGE = format('jobs[%s]: jobwheel: %s', v_i, v_problem);
	END IF;
	-- Ids in input order: the next id of the INSERT above for each job it
	-- took, enqueue()'s for the others. One exception block around the loop
	-- (not one per job) so that an error can name the element.
	v_i := 0;
	BEGIN
		FOR v_job, v_slow IN
			SELECT e.j, NOT (e.j->>'unique_key' IS NULL AND coalesce(e.j->'depends_on', 'null') IN ('null', '[]'))
			FROM jsonb_array_elements(jobs) WITH ORDINALITY e(j, i) ORDER BY e.i
		LOOP
			IF NOT v_slow THEN
				v_k := v_k + 1;
				RETURN NEXT v_ids[v_k];
			ELSE
				RETURN NEXT jobwheel.enqueue(
					kind => v_job->>'kind',
					payload => coalesce(v_job->'payload', '{}'),
					queue => coalesce(v_job->>'queue', 'default'),
					priority => coalesce((v_job->>'priority')::int, 0),
					run_at => CASE WHEN v_job ? 'delay_ms'
					               THEN now() + make_interval(secs => (v_job->>'delay_ms')::float8 / 1000)
					               ELSE (v_job->>'run_at')::timestamptz END,
					max_attempts => coalesce((v_job->>'max_attempts')::int, 4),
					depends_on => (SELECT array_agg(d::bigint) FROM jsonb_array_elements_text(v_job->'depends_on') d),
					unique_key => v_job->>'unique_key',
					timeout_ms => (v_job->>'timeout_ms')::int,
					backoff_base_ms => (v_job->>'backoff_base_ms')::int,
					trigger => coalesce(v_job->>'trigger', 'all_success'));
			END IF;
			v_i := v_i + 1;
		END LOOP;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS v_column = COLUMN_NAME;
		RAISE EXCEPTION USING ERRCODE = SQLSTATE, COLUMN = v_column,
			MESSAGE = format('jobs[%s]: %s', v_i, SQLERRM);
	END;
END $$;

-- ---------------------------------------------------------------- delayed jobs

-- As in 0003, with a fix for the coordinator's paging. A full page of
-- scheduled_between() is continued from the last row's ms (delayed.c), and
-- that ms used to be rounded to nearest: a job due in the half millisecond
-- below a rounded-up value fell between two pages (it still ran, via
-- promote_due(), up to a second late). Now ms is rounded up (a timer never
-- fires before run_at), and a full page ends with the whole millisecond of
-- its n-th row, so that the next page, from that ms on, misses nothing. (A
-- page may thus hold a few rows more than n; one that ended inside a
-- millisecond would instead have to be continued from that millisecond
-- again, and a millisecond holding n jobs would stall the reads.) Both
-- reads are ranges on the index on (run_at) WHERE state = 'scheduled'.
CREATE OR REPLACE FUNCTION jobwheel.scheduled_between(from_ms bigint, until_ms bigint, n int DEFAULT 100000)
RETURNS TABLE (next_xid xid8, db_now_ms bigint, ids bigint[], run_at_ms bigint[])
LANGUAGE sql STABLE AS $$
	SELECT pg_snapshot_xmin(pg_current_snapshot()), (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
	       array_agg(s.id), array_agg(s.ms)
	FROM (SELECT j.id, ceil(extract(epoch FROM j.run_at) * 1000)::bigint AS ms FROM jobwheel.jobs j
	      WHERE j.state = 'scheduled' AND j.run_at >= to_timestamp(from_ms / 1000.0)
	        AND j.run_at < to_timestamp(until_ms / 1000.0)
	        -- the end of the millisecond of the n-th row, if there are n
	        AND j.run_at <= coalesce(
	            (SELECT to_timestamp(ceil(extract(epoch FROM k.run_at) * 1000) / 1000.0) FROM jobwheel.jobs k
	             WHERE k.state = 'scheduled' AND k.run_at >= to_timestamp(from_ms / 1000.0)
	               AND k.run_at < to_timestamp(until_ms / 1000.0)
	             ORDER BY k.run_at OFFSET n - 1 LIMIT 1), 'infinity')
	      ORDER BY j.run_at) s
$$;

CREATE OR REPLACE FUNCTION jobwheel.scheduled_since(since_xid xid8, until_ms bigint, n int DEFAULT 100000)
RETURNS TABLE (next_xid xid8, db_now_ms bigint, ids bigint[], run_at_ms bigint[])
LANGUAGE sql STABLE AS $$
	SELECT pg_snapshot_xmin(pg_current_snapshot()), (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
	       array_agg(s.id), array_agg(s.ms)
	FROM (SELECT j.id, ceil(extract(epoch FROM j.run_at) * 1000)::bigint AS ms FROM jobwheel.jobs j
	      WHERE j.state = 'scheduled' AND j.sched_xid >= since_xid
	        AND j.run_at < to_timestamp(until_ms / 1000.0)
	      LIMIT n) s
$$;
