-- SPDX-License-Identifier: MIT
-- 0002: the SQL API of jobs and the job state machine: enqueue, claim,
-- complete, fail, retry, cancel, requeue, and the release of DAG children.
-- Every state transition lives in this file's functions.

-- ---------------------------------------------------------------- helpers

-- Raises invalid_parameter_value naming the offending argument in COLUMN.
CREATE FUNCTION jobwheel._bad(field text, msg text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'jobwheel: ' || field || ': ' || msg,
		COLUMN = field;
END $$;

CREATE FUNCTION jobwheel._check_name(field text, val text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF val IS NULL THEN
		PERFORM jobwheel._bad(field, 'must not be null');
	ELSIF val !~ '^[a-z0-9_.-]{1,64}$' THEN
		PERFORM jobwheel._bad(field, format('%s is not a valid name (1-64 of a-z 0-9 _ . -)',
		                                    to_json(val)));
	END IF;
END $$;

-- Validates the arguments of one job; raises naming the first bad one.
CREATE FUNCTION jobwheel._check_job(kind text, payload jsonb, queue text, priority int,
                                    max_attempts int, timeout_ms int, backoff_base_ms int,
                                    trigger text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM jobwheel._check_name('kind', kind);
	PERFORM jobwheel._check_name('queue', queue);
	IF payload IS NULL THEN
		PERFORM jobwheel._bad('payload', 'must not be null');
	ELSIF jsonb_typeof(payload) <> 'object' THEN
		PERFORM jobwheel._bad('payload', 'must be a JSON object, not ' || jsonb_typeof(payload));
	END IF;
	IF priority IS NULL THEN
		PERFORM jobwheel._bad('priority', 'must not be null');
	END IF;
	IF max_attempts IS NULL OR max_attempts NOT BETWEEN 1 AND 1000 THEN
		PERFORM jobwheel._bad('max_attempts', format('%s is out of range 1..1000', max_attempts));
	END IF;
	IF timeout_ms IS NOT NULL AND timeout_ms < 1 THEN
		PERFORM jobwheel._bad('timeout_ms', format('%s must be at least 1', timeout_ms));
	END IF;
	IF backoff_base_ms IS NOT NULL AND backoff_base_ms NOT BETWEEN 0 AND 3600000 THEN
		PERFORM jobwheel._bad('backoff_base_ms', format('%s is out of range 0..3600000', backoff_base_ms));
	END IF;
	IF trigger IS NULL OR trigger NOT IN ('all_success', 'all_done') THEN
		PERFORM jobwheel._bad('trigger', format('%s is not all_success or all_done',
		                                        coalesce(to_json(trigger)::text, 'null')));
	END IF;
END $$;

-- Wakes the workers of a queue. PostgreSQL folds identical notifications of
-- one transaction into one, so a batch enqueue costs one NOTIFY per queue.
CREATE FUNCTION jobwheel._wake(queue text) RETURNS void
LANGUAGE sql AS $$ SELECT pg_notify('jobwheel_wake', queue) $$;

CREATE FUNCTION jobwheel._event(type text, data jsonb) RETURNS void
LANGUAGE sql AS $$ INSERT INTO jobwheel.events (type, data) VALUES (type, data) $$;

-- Delay before retry k: base * 5^(k-1), times uniform [0.8, 1.2], capped at 1 h.
CREATE FUNCTION jobwheel.backoff(base_ms int, attempt int) RETURNS interval
LANGUAGE sql VOLATILE AS $$
	SELECT make_interval(secs => least(base_ms * power(5::float8, greatest(attempt - 1, 0)), 3600000)
	                             * (0.8 + random() * 0.4) / 1000.0)
$$;

-- ---------------------------------------------------------------- enqueue

-- Enqueues one job, inside the caller's transaction. With depends_on (parent
-- job ids) the parents are locked (in id order) for the rest of the
-- transaction, so a parent that finishes meanwhile waits for the edge to
-- exist and then releases the child; a parent already succeeded counts as
-- done; one already dead or cancelled cancels an all_success child at once;
-- an unknown parent is an error. A live job holding unique_key is returned
-- instead of inserting.
CREATE FUNCTION jobwheel.enqueue(kind text, payload jsonb DEFAULT '{}', queue text DEFAULT 'default',
                                            priority int DEFAULT 0, run_at timestamptz DEFAULT NULL,
                                            max_attempts int DEFAULT 4, depends_on bigint[] DEFAULT NULL,
                                            unique_key text DEFAULT NULL, timeout_ms int DEFAULT NULL,
                                            backoff_base_ms int DEFAULT NULL, trigger text DEFAULT 'all_success')
RETURNS bigint
LANGUAGE plpgsql AS $$
-- use_column: the ON CONFLICT predicate names columns; VALUES has none in scope.
#variable_conflict use_column
DECLARE
	v_id bigint;
	v_state text := CASE WHEN run_at > now() THEN 'scheduled' ELSE 'ready' END;
	v_parents bigint[];
	v_missing bigint;
	v_pending int := 0;
	v_culprit bigint;
	v_culprit_state text;
BEGIN
	PERFORM jobwheel._check_job(kind, payload, queue, priority, max_attempts, timeout_ms,
	                            backoff_base_ms, trigger);
	IF unique_key IS NOT NULL THEN
		SELECT j.id INTO v_id FROM jobwheel.jobs j
		WHERE j.unique_key = enqueue.unique_key
		  AND j.state IN ('blocked', 'scheduled', 'ready', 'running');
		IF FOUND THEN
			RETURN v_id;
		END IF;
	END IF;
	IF cardinality(depends_on) > 0 THEN
		SELECT array_agg(DISTINCT d ORDER BY d) INTO v_parents FROM unnest(depends_on) d;
		IF array_position(v_parents, NULL) IS NOT NULL THEN
			PERFORM jobwheel._bad('depends_on', 'must not contain null');
		END IF;
		PERFORM 1 FROM jobwheel.jobs p WHERE p.id = ANY (v_parents) ORDER BY p.id FOR NO KEY UPDATE;
		SELECT d INTO v_missing FROM unnest(v_parents) d
		WHERE NOT EXISTS (SELECT 1 FROM jobwheel.jobs p WHERE p.id = d) LIMIT 1;
		IF FOUND THEN
			PERFORM jobwheel._bad('depends_on', format('unknown parent job %s', v_missing));
		END IF;
		SELECT count(*) FILTER (WHERE CASE WHEN enqueue.trigger = 'all_done'
		                                   THEN p.state NOT IN ('succeeded', 'dead', 'cancelled')
		                                   ELSE p.state <> 'succeeded' END),
		       min(p.id) FILTER (WHERE p.state IN ('dead', 'cancelled'))
		INTO v_pending, v_culprit
		FROM jobwheel.jobs p WHERE p.id = ANY (v_parents);
		IF v_culprit IS NOT NULL AND enqueue.trigger = 'all_success' THEN
			SELECT p.state INTO v_culprit_state FROM jobwheel.jobs p WHERE p.id = v_culprit;
			v_state := 'cancelled';
		ELSIF v_pending > 0 THEN
			v_state := 'blocked';
		END IF;
	END IF;

	INSERT INTO jobwheel.jobs AS j (kind, payload, queue, priority, state, run_at, max_attempts,
	                                unique_key, timeout_ms, backoff_base_ms, trigger, depends_on,
	                                pending_parents, finished_at, last_error)
	VALUES (kind, payload, queue, priority, v_state, coalesce(run_at, now()), max_attempts,
	        unique_key, coalesce(timeout_ms, 300000), coalesce(backoff_base_ms, 1000), trigger, v_parents,
	        CASE WHEN v_state = 'cancelled' THEN 0 ELSE v_pending END,
	        CASE WHEN v_state = 'cancelled' THEN now() END,
	        CASE WHEN v_state = 'cancelled' THEN format('upstream job %s %s', v_culprit, v_culprit_state) END)
	ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL
	                           AND state IN ('blocked', 'scheduled', 'ready', 'running') DO NOTHING
	RETURNING j.id INTO v_id;

	IF v_id IS NULL THEN -- a concurrent transaction inserted the same unique_key first
		SELECT j.id INTO v_id FROM jobwheel.jobs j
		WHERE j.unique_key = enqueue.unique_key
		  AND j.state IN ('blocked', 'scheduled', 'ready', 'running');
		RETURN v_id;
	END IF;
	IF v_state = 'blocked' THEN
		-- Edges to the parents still to wait for; the others count as done.
		WITH waiting AS (
			INSERT INTO jobwheel.job_deps (parent_id, child_id)
			SELECT p.id, v_id FROM jobwheel.jobs p
			WHERE p.id = ANY (v_parents)
			  AND CASE WHEN enqueue.trigger = 'all_done' THEN p.state NOT IN ('succeeded', 'dead', 'cancelled')
			           ELSE p.state <> 'succeeded' END
			RETURNING parent_id)
		UPDATE jobwheel.jobs p SET has_children = true
		FROM waiting WHERE p.id = waiting.parent_id AND NOT p.has_children;
	ELSIF v_state = 'cancelled' THEN
		PERFORM jobwheel._event('job', jsonb_build_object('id', v_id, 'queue', queue, 'kind', kind,
		                                                  'state', 'cancelled', 'error',
		                                                  format('upstream job %s %s', v_culprit, v_culprit_state)));
	END IF;
	IF v_state = 'ready' THEN
		PERFORM jobwheel._wake(queue);
	END IF;
	RETURN v_id;
END $$;

-- What is wrong with an integer field of a batch job, or NULL.
-- (STABLE, not IMMUTABLE, like format() inside: so that PostgreSQL inlines it.)
CREATE FUNCTION jobwheel._int_problem(v jsonb, field text, lo numeric, hi numeric) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE
		WHEN v IS NULL OR jsonb_typeof(v) = 'null' THEN NULL
		WHEN jsonb_typeof(v) <> 'number' OR v::text !~ '^-?[0-9]+$' THEN field || ': must be an integer'
		WHEN v::text::numeric NOT BETWEEN lo AND hi THEN format('%s: %s is out of range %s..%s', field, v, lo, hi)
	END
$$;

-- What is wrong with one job object of enqueue_batch(), as "field: message",
-- or NULL: the checks of _check_job(), without raising, so that a whole batch
-- is checked in one set-based pass.
CREATE FUNCTION jobwheel._job_problem(j jsonb) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE
		WHEN jsonb_typeof(j) <> 'object' THEN 'jobs: element must be an object, not ' || jsonb_typeof(j)
		ELSE coalesce(
			-- (jsonpath, not a sub-SELECT: a sub-SELECT would stop PostgreSQL inlining this)
			jsonb_path_query_first(j - ARRAY['kind', 'payload', 'queue', 'priority', 'run_at', 'delay_ms',
			                                 'max_attempts', 'depends_on', 'unique_key', 'timeout_ms',
			                                 'backoff_base_ms', 'trigger'], '$.keyvalue().key') #>> '{}'
			|| ': unknown field',
			CASE WHEN jsonb_typeof(j->'kind') IS DISTINCT FROM 'string' THEN 'kind: must be a string'
			     WHEN j->>'kind' !~ '^[a-z0-9_.-]{1,64}$'
			     THEN format('kind: %s is not a valid name (1-64 of a-z 0-9 _ . -)', j->'kind') END,
			CASE WHEN j ? 'queue' AND (jsonb_typeof(j->'queue') <> 'string' OR j->>'queue' !~ '^[a-z0-9_.-]{1,64}$')
			     THEN format('queue: %s is not a valid name (1-64 of a-z 0-9 _ . -)', j->'queue') END,
			CASE WHEN j ? 'payload' AND jsonb_typeof(j->'payload') <> 'object'
			     THEN 'payload: must be a JSON object, not ' || jsonb_typeof(j->'payload') END,
			jobwheel._int_problem(j->'priority', 'priority', -2147483648, 2147483647),
			jobwheel._int_problem(j->'max_attempts', 'max_attempts', 1, 1000),
			jobwheel._int_problem(j->'timeout_ms', 'timeout_ms', 1, 2147483647),
			jobwheel._int_problem(j->'backoff_base_ms', 'backoff_base_ms', 0, 3600000),
			jobwheel._int_problem(j->'delay_ms', 'delay_ms', 0, 315360000000),
			CASE WHEN j ? 'run_at' AND j ? 'delay_ms' THEN 'run_at: give run_at or delay_ms, not both'
			     WHEN j ? 'run_at' AND jsonb_typeof(j->'run_at') NOT IN ('string', 'null')
			     THEN 'run_at: must be an RFC 3339 timestamp string' END,
			CASE WHEN j ? 'trigger' AND j->>'trigger' NOT IN ('all_success', 'all_done')
			     THEN format('trigger: %s is not all_success or all_done', j->'trigger') END,
			CASE WHEN j ? 'unique_key' AND jsonb_typeof(j->'unique_key') NOT IN ('string', 'null')
			     THEN 'unique_key: must be a string' END,
			CASE WHEN j ? 'depends_on' AND jsonb_typeof(j->'depends_on') NOT IN ('array', 'null')
			     THEN 'depends_on: must be an array of job ids' END)
	END
$$;

-- jobs: array of objects with the arguments of enqueue() as fields (run_at as
-- RFC 3339, or delay_ms). Returns the ids in input order; all or nothing; an
-- error names the element (jobs[i], from 0) and the field.
CREATE FUNCTION jobwheel.enqueue_batch(jobs jsonb) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_job jsonb;
	v_i int;
	v_problem text;
	v_column text;
	v_ids bigint[];
	v_queues text[];
BEGIN
	IF jobs IS NULL OR jsonb_typeof(jobs) <> 'array' THEN
		PERFORM jobwheel._bad('jobs', 'must be a JSON array of job objects');
	END IF;
	SELECT e.i - 1, p.problem INTO v_i, v_problem
	FROM jsonb_array_elements(jobs) WITH ORDINALITY e(j, i), LATERAL (SELECT jobwheel._job_problem(e.j)) p(problem)
	WHERE p.problem IS NOT NULL
	ORDER BY e.i LIMIT 1;
	IF v_problem IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22023', COLUMN = split_part(v_problem, ':', 1),
			MESSAGE = format('jobs[%s]: jobwheel: %s', v_i, v_problem);
	END IF;

	IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(jobs) e(j)
	               WHERE e.j->>'unique_key' IS NOT NULL OR jsonb_array_length(coalesce(e.j->'depends_on', '[]')) > 0) THEN
		-- The common case, set-based: one INSERT for the whole batch. Rows
		-- are inserted in input order, so their ids ascend in that order.
		WITH ins AS (
			INSERT INTO jobwheel.jobs (kind, payload, queue, priority, state, run_at, max_attempts,
			                           timeout_ms, backoff_base_ms, trigger)
			SELECT x.j->>'kind', coalesce(x.j->'payload', '{}'), coalesce(x.j->>'queue', 'default'),
			       coalesce((x.j->>'priority')::int, 0),
			       CASE WHEN x.run_at > now() THEN 'scheduled' ELSE 'ready' END, x.run_at,
			       coalesce((x.j->>'max_attempts')::int, 4), coalesce((x.j->>'timeout_ms')::int, 300000),
			       coalesce((x.j->>'backoff_base_ms')::int, 1000), coalesce(x.j->>'trigger', 'all_success')
			FROM (SELECT e.j, e.i,
			             CASE WHEN e.j ? 'delay_ms'
			                  THEN now() + make_interval(secs => (e.j->>'delay_ms')::float8 / 1000)
			                  ELSE coalesce((e.j->>'run_at')::timestamptz, now()) END AS run_at
			      FROM jsonb_array_elements(jobs) WITH ORDINALITY e(j, i)) x
			ORDER BY x.i
			RETURNING id, queue, state)
		SELECT array_agg(id ORDER BY id), array_agg(DISTINCT queue) FILTER (WHERE state = 'ready')
		INTO v_ids, v_queues FROM ins;
		PERFORM jobwheel._wake(q) FROM unnest(v_queues) q;
		RETURN QUERY SELECT unnest(v_ids);
		RETURN;
	END IF;

	-- Unique keys and dependencies need enqueue()'s per-job logic. One
	-- exception block around the loop (not one per job: each block is a
	-- subtransaction) so that an error can name the element it came from.
	v_i := 0;
	BEGIN
		FOR v_job IN SELECT value FROM jsonb_array_elements(jobs) LOOP
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
			v_i := v_i + 1;
		END LOOP;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS v_column = COLUMN_NAME;
		RAISE EXCEPTION USING ERRCODE = SQLSTATE, COLUMN = v_column,
			MESSAGE = format('jobs[%s]: %s', v_i, SQLERRM);
	END;
END $$;

-- ---------------------------------------------------------------- workers

CREATE FUNCTION jobwheel.register_worker(id text, host text, pid int, queues text[], concurrency int)
RETURNS void
LANGUAGE sql AS $$
	INSERT INTO jobwheel.workers AS w (id, host, pid, queues, concurrency)
	VALUES (id, host, pid, queues, concurrency)
	ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, queues = excluded.queues,
		concurrency = excluded.concurrency, heartbeat_at = now(), state = 'active'
$$;

-- Records the heartbeat, extends the leases of this worker's long-running jobs
-- (only those past half their lease: short jobs cost no extra row version),
-- and returns the ids among `running` that this worker no longer holds
-- (cancelled, or reclaimed after a lost lease): the worker aborts those.
CREATE FUNCTION jobwheel.heartbeat(worker text, running bigint[], lease_ms int) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
BEGIN
	UPDATE jobwheel.workers w SET heartbeat_at = now(),
		state = CASE WHEN w.state = 'lost' THEN 'active' ELSE w.state END
	WHERE w.id = worker;
	UPDATE jobwheel.jobs j SET lease_until = now() + make_interval(secs => lease_ms / 1000.0)
	WHERE j.id = ANY (running) AND j.state = 'running' AND j.worker = worker
	  AND j.lease_until < now() + make_interval(secs => lease_ms / 2000.0);
	RETURN QUERY
	SELECT r.id FROM unnest(running) r(id)
	WHERE NOT EXISTS (SELECT 1 FROM jobwheel.jobs j
	                  WHERE j.id = r.id AND j.state = 'running' AND j.worker = worker);
END $$;

CREATE FUNCTION jobwheel.set_worker_state(id text, state text) RETURNS void
LANGUAGE sql AS $$ UPDATE jobwheel.workers w SET state = set_worker_state.state WHERE w.id = set_worker_state.id $$;

CREATE FUNCTION jobwheel.deregister_worker(id text) RETURNS void
LANGUAGE sql AS $$ DELETE FROM jobwheel.workers w WHERE w.id = deregister_worker.id $$;

-- ---------------------------------------------------------------- dependencies

-- Called in the transaction that made `ids` terminal (jobs with children
-- only). For every blocked child: subtract the parents that finished; a
-- child whose trigger is all_success and a parent of which did not succeed
-- is cancelled ("upstream job N dead"); one with nothing left to wait for
-- becomes ready (or scheduled, if its own run_at is later). Cancelled
-- children are processed the same way in turn, so propagation is
-- transitive, in this one transaction. Children are locked in id order, so
-- two transactions finishing parents of the same children cannot deadlock;
-- the row lock also makes concurrent decrements of one child safe.
CREATE FUNCTION jobwheel._parents_done(ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_frontier bigint[] := ids;
	v_children bigint[];
	v_cancelled bigint[];
	v_queues text[];
BEGIN
	WHILE cardinality(v_frontier) > 0 LOOP
		SELECT array_agg(c.id ORDER BY c.id) INTO v_children
		FROM (SELECT c.id FROM jobwheel.jobs c
		      WHERE c.id IN (SELECT d.child_id FROM jobwheel.job_deps d WHERE d.parent_id = ANY (v_frontier))
		        AND c.state = 'blocked'
		      ORDER BY c.id FOR UPDATE) c;
		EXIT WHEN v_children IS NULL;
		-- Each edge is consumed (deleted) as it is counted, so it counts once
		-- even if its parent ends a second time after a requeue.
		WITH consumed AS (
			DELETE FROM jobwheel.job_deps d WHERE d.parent_id = ANY (v_frontier)
			RETURNING d.parent_id, d.child_id),
		done AS (
			SELECT e.child_id, count(*) AS n,
			       min(p.id) FILTER (WHERE p.state <> 'succeeded') AS culprit
			FROM consumed e JOIN jobwheel.jobs p ON p.id = e.parent_id
			WHERE e.child_id = ANY (v_children)
			GROUP BY e.child_id),
		upd AS (
			UPDATE jobwheel.jobs c
			SET pending_parents = c.pending_parents - done.n,
			    state = CASE WHEN c.trigger = 'all_success' AND done.culprit IS NOT NULL THEN 'cancelled'
			                 WHEN c.pending_parents > done.n THEN 'blocked'
			                 WHEN c.run_at > now() THEN 'scheduled'
			                 ELSE 'ready' END,
			    finished_at = CASE WHEN c.trigger = 'all_success' AND done.culprit IS NOT NULL THEN now() END,
			    last_error = CASE WHEN c.trigger = 'all_success' AND done.culprit IS NOT NULL
			                      THEN format('upstream job %s %s', done.culprit,
			                                  (SELECT p.state FROM jobwheel.jobs p WHERE p.id = done.culprit))
			                      ELSE c.last_error END,
			    -- a released job has waited since now, not since it was enqueued
			    run_at = CASE WHEN (c.trigger = 'all_done' OR done.culprit IS NULL)
			                       AND c.pending_parents <= done.n AND c.run_at <= now()
			                  THEN now() ELSE c.run_at END,
			    sched_xid = pg_current_xact_id()
			FROM done WHERE c.id = done.child_id
			RETURNING c.id, c.state, c.queue, c.kind, c.last_error, c.has_children),
		ev AS (
			INSERT INTO jobwheel.events (type, data)
			SELECT 'job', jsonb_build_object('id', id, 'queue', queue, 'kind', kind, 'state', 'cancelled',
			                                 'error', last_error)
			FROM upd WHERE state = 'cancelled'
			RETURNING 1)
		SELECT array_agg(id) FILTER (WHERE state = 'cancelled' AND has_children),
		       array_agg(DISTINCT queue) FILTER (WHERE state = 'ready')
		INTO v_cancelled, v_queues
		FROM upd, (SELECT count(*) FROM ev) e;
		PERFORM jobwheel._wake(q) FROM unnest(v_queues) q;
		v_frontier := coalesce(v_cancelled, '{}');
	END LOOP;
END $$;

-- The results of a job's parents, {"parent id": result}, for its handler.
CREATE FUNCTION jobwheel.parent_results(parents bigint[]) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT coalesce(jsonb_object_agg(p.id::text, p.result), '{}') FROM jobwheel.jobs p WHERE p.id = ANY (parents)
$$;

-- ---------------------------------------------------------------- claim / complete / fail

-- Claims up to n ready jobs of the given queues (paused ones skipped) in the
-- order priority, run_at, id, and leases them to `worker` for lease_ms.
-- Aged jobs get their own priority back.
CREATE FUNCTION jobwheel.claim(worker text, queues text[], n int, lease_ms int DEFAULT 30000)
RETURNS SETOF jobwheel.jobs
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
	v_queues text[];
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
	-- One index range scan per queue (LATERAL), each already in claim order:
	-- `queue = ANY (...)` would make the planner sort every ready row instead.
	RETURN QUERY
	-- started_at is the clock when the row is taken, not now() (the start of
	-- the transaction): report_and_claim() claims after reporting, in the
	-- same transaction, and a job promoted meanwhile must not appear to have
	-- started before its run_at.
	UPDATE jobwheel.jobs j
	SET state = 'running', attempt = j.attempt + 1, started_at = clock_timestamp(), worker = claim.worker,
	    lease_until = clock_timestamp() + make_interval(secs => lease_ms / 1000.0),
	    priority = coalesce(j.aged_from, j.priority), aged_from = NULL
	FROM (SELECT c.id
	      FROM unnest(v_queues) q(name)
	      CROSS JOIN LATERAL (SELECT c.id, c.priority, c.run_at FROM jobwheel.jobs c
	                          WHERE c.state = 'ready' AND c.queue = q.name
	                          ORDER BY c.priority, c.run_at, c.id
	                          LIMIT n
	                          FOR UPDATE SKIP LOCKED) c
	      ORDER BY c.priority, c.run_at, c.id
	      LIMIT n) picked
	WHERE j.id = picked.id
	RETURNING j.*;
END $$;

-- Completes many jobs at once; a pair (id, attempt) that no longer holds the
-- job (lease lost, cancelled) changes nothing. Returns how many applied.
-- Children of the completed jobs are released in the same transaction.
CREATE FUNCTION jobwheel.complete_many(ids bigint[], attempts int[], results jsonb[]) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	v_n int;
	v_parents bigint[];
BEGIN
	WITH done AS (
		UPDATE jobwheel.jobs j
		SET state = 'succeeded', finished_at = now(), result = d.result, lease_until = NULL
		FROM unnest(ids, attempts, results) AS d(id, attempt, result)
		WHERE j.id = d.id AND j.attempt = d.attempt AND j.lease_until IS NOT NULL -- running
		RETURNING j.id, j.has_children)
	SELECT count(*), array_agg(id) FILTER (WHERE has_children) INTO v_n, v_parents FROM done;
	IF v_parents IS NOT NULL THEN
		PERFORM jobwheel._parents_done(v_parents);
	END IF;
	RETURN v_n;
END $$;

CREATE FUNCTION jobwheel.complete(id bigint, attempt int, result jsonb DEFAULT NULL) RETURNS boolean
LANGUAGE sql AS $$ SELECT jobwheel.complete_many(ARRAY[id], ARRAY[attempt], ARRAY[result]) = 1 $$;

-- Fails many attempts at once: retryable ones with attempts left go to
-- `scheduled` after the backoff (no earlier than retry_after_ms from now: a
-- handler's Retry-After, measured on the database clock), or
-- straight to `ready` when that moment has passed; the others go to `dead`.
-- Every failure is recorded in job_errors. Fenced like complete_many.
-- A retry records its transaction for the coordinator's scheduled-job cursor;
-- a job that dies writes a `dlq` event and its dependants are cancelled.
CREATE FUNCTION jobwheel.fail_many(ids bigint[], attempts int[], errors text[],
                                              retryable boolean[], retry_after_ms bigint[] DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	v_n int;
	v_queues text[];
	v_parents bigint[];
BEGIN
	WITH f AS (
		SELECT f.*, CASE WHEN f.retryable AND j.attempt < j.max_attempts
		                 THEN greatest(now() + jobwheel.backoff(j.backoff_base_ms, j.attempt),
		                               now() + make_interval(secs => f.retry_after_ms / 1000.0))
		            END AS next_run
		FROM unnest(ids, attempts, errors, retryable,
		            coalesce(retry_after_ms, array_fill(NULL::bigint, ARRAY[cardinality(ids)])))
		     AS f(id, attempt, error, retryable, retry_after_ms)
		JOIN jobwheel.jobs j ON j.id = f.id AND j.attempt = f.attempt AND j.lease_until IS NOT NULL),
	failed AS (
		UPDATE jobwheel.jobs j
		SET state = CASE WHEN f.next_run IS NULL THEN 'dead'
		                 WHEN f.next_run <= now() THEN 'ready' ELSE 'scheduled' END,
		    run_at = coalesce(f.next_run, j.run_at),
		    finished_at = CASE WHEN f.next_run IS NULL THEN now() END,
		    last_error = f.error, lease_until = NULL, sched_xid = pg_current_xact_id()
		FROM f
		WHERE j.id = f.id AND j.attempt = f.attempt AND j.lease_until IS NOT NULL -- running
		RETURNING j.id, j.attempt, j.worker, j.queue, j.kind, j.state, j.has_children, f.error),
	logged AS (
		INSERT INTO jobwheel.job_errors (job_id, attempt, worker, error)
		SELECT failed.id, failed.attempt, failed.worker, coalesce(failed.error, 'unknown error') FROM failed
		RETURNING 1),
	died AS (
		INSERT INTO jobwheel.events (type, data)
		SELECT 'dlq', jsonb_build_object('id', id, 'queue', queue, 'kind', kind, 'attempt', attempt,
		                                 'error', error)
		FROM failed WHERE state = 'dead'
		RETURNING 1)
	SELECT (SELECT count(*) FROM logged) + 0 * (SELECT count(*) FROM died),
	       array_agg(DISTINCT queue) FILTER (WHERE state = 'ready'),
	       array_agg(id) FILTER (WHERE state = 'dead' AND has_children)
	INTO v_n, v_queues, v_parents FROM failed;
	PERFORM jobwheel._wake(q) FROM unnest(v_queues) q;
	IF v_parents IS NOT NULL THEN
		PERFORM jobwheel._parents_done(v_parents);
	END IF;
	RETURN v_n;
END $$;

CREATE FUNCTION jobwheel.fail(id bigint, attempt int, error text, retryable boolean DEFAULT true,
                              retry_after_ms bigint DEFAULT NULL) RETURNS boolean
LANGUAGE sql AS $$
	SELECT jobwheel.fail_many(ARRAY[id], ARRAY[attempt], ARRAY[error], ARRAY[retryable],
	                          ARRAY[retry_after_ms]) = 1
$$;

-- Reports outcomes and claims the next jobs in one transaction: one commit
-- (one WAL flush) per worker cycle instead of two. Same arguments as
-- complete_many, fail_many and claim, in that order.
CREATE FUNCTION jobwheel.report_and_claim(ok_ids bigint[], ok_attempts int[], ok_results jsonb[],
                                          fail_ids bigint[], fail_attempts int[], fail_errors text[],
                                          fail_retryable boolean[], fail_retry_after_ms bigint[],
                                          worker text, queues text[], n int, lease_ms int)
RETURNS SETOF jobwheel.jobs
LANGUAGE plpgsql AS $$
BEGIN
	IF cardinality(ok_ids) > 0 THEN
		PERFORM jobwheel.complete_many(ok_ids, ok_attempts, ok_results);
	END IF;
	IF cardinality(fail_ids) > 0 THEN -- rare: no need to plan it every cycle
		PERFORM jobwheel.fail_many(fail_ids, fail_attempts, fail_errors, fail_retryable, fail_retry_after_ms);
	END IF;
	RETURN QUERY SELECT * FROM jobwheel.claim(worker, queues, n, lease_ms);
END $$;

-- Gives running jobs back without spending an attempt (graceful shutdown).
CREATE FUNCTION jobwheel.release_many(ids bigint[], attempts int[]) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	v_n int;
	v_queues text[];
BEGIN
	WITH released AS (
		UPDATE jobwheel.jobs j
		SET state = 'ready', attempt = j.attempt - 1, started_at = NULL, lease_until = NULL
		FROM unnest(ids, attempts) AS r(id, attempt)
		WHERE j.id = r.id AND j.attempt = r.attempt AND j.lease_until IS NOT NULL -- running
		RETURNING j.queue)
	SELECT count(*), array_agg(DISTINCT queue) INTO v_n, v_queues FROM released;
	PERFORM jobwheel._wake(q) FROM unnest(v_queues) q;
	RETURN v_n;
END $$;

-- ---------------------------------------------------------------- timers (worker fallback; the coordinator calls them too)

-- Makes due scheduled jobs ready and wakes their queues. Returns how many.
CREATE FUNCTION jobwheel.promote_due(n int DEFAULT 1000) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	v_n int;
	v_queues text[];
BEGIN
	WITH due AS (
		SELECT id FROM jobwheel.jobs
		WHERE state = 'scheduled' AND run_at <= now()
		ORDER BY run_at LIMIT n
		FOR UPDATE SKIP LOCKED),
	promoted AS (
		UPDATE jobwheel.jobs j SET state = 'ready' FROM due WHERE j.id = due.id RETURNING j.queue)
	SELECT count(*), array_agg(DISTINCT queue) INTO v_n, v_queues FROM promoted;
	PERFORM jobwheel._wake(q) FROM unnest(v_queues) q;
	RETURN v_n;
END $$;

-- Turns expired leases into failed attempts ("lease expired (worker X)")
-- that follow the retry policy. Returns how many.
CREATE FUNCTION jobwheel.expire_leases(n int DEFAULT 1000) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	v_ids bigint[];
	v_attempts int[];
	v_errors text[];
BEGIN
	SELECT array_agg(id), array_agg(attempt), array_agg(format('lease expired (worker %s)', worker))
	INTO v_ids, v_attempts, v_errors
	FROM (SELECT id, attempt, worker FROM jobwheel.jobs
	      WHERE state = 'running' AND lease_until < now()
	      ORDER BY lease_until LIMIT n
	      FOR UPDATE SKIP LOCKED) expired;
	IF v_ids IS NULL THEN
		RETURN 0;
	END IF;
	RETURN jobwheel.fail_many(v_ids, v_attempts, v_errors, array_fill(true, ARRAY[cardinality(v_ids)]));
END $$;

-- ---------------------------------------------------------------- user operations

-- Cancels a job that is not terminal; a running job's worker is told at once.
-- Returns false if the job was already terminal; raises if it does not exist.
-- Its dependants are cancelled too (all_success) or released (all_done).
CREATE FUNCTION jobwheel.cancel(id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
	v_state text;
	v_has_children boolean;
BEGIN
	SELECT j.state, j.has_children INTO v_state, v_has_children FROM jobwheel.jobs j WHERE j.id = cancel.id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'P0002', COLUMN = 'id',
			MESSAGE = format('jobwheel: id: job %s does not exist', id);
	END IF;
	IF v_state IN ('succeeded', 'dead', 'cancelled') THEN
		RETURN false;
	END IF;
	UPDATE jobwheel.jobs j SET state = 'cancelled', finished_at = now(), lease_until = NULL,
		last_error = 'cancelled'
	WHERE j.id = cancel.id;
	IF v_state = 'running' THEN
		PERFORM pg_notify('jobwheel_cancel', id::text);
	END IF;
	IF v_has_children THEN
		PERFORM jobwheel._parents_done(ARRAY[id]);
	END IF;
	RETURN true;
END $$;

-- Puts a dead or cancelled job back to ready with its attempts reset.
-- Returns false for any other state; raises if it does not exist.
CREATE FUNCTION jobwheel.requeue(id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
	v_job jobwheel.jobs;
BEGIN
	SELECT * INTO v_job FROM jobwheel.jobs j WHERE j.id = requeue.id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'P0002', COLUMN = 'id',
			MESSAGE = format('jobwheel: id: job %s does not exist', id);
	END IF;
	IF v_job.state NOT IN ('dead', 'cancelled') THEN
		RETURN false;
	END IF;
	BEGIN
		UPDATE jobwheel.jobs j SET state = 'ready', attempt = 0, run_at = now(), started_at = NULL,
			finished_at = NULL, lease_until = NULL
		WHERE j.id = requeue.id;
	EXCEPTION WHEN unique_violation THEN
		RAISE EXCEPTION USING ERRCODE = '23505', COLUMN = 'unique_key',
			MESSAGE = format('jobwheel: unique_key: job %s cannot be requeued: another live job holds unique_key %s',
			                 id, to_json(v_job.unique_key));
	END;
	PERFORM jobwheel._wake(v_job.queue);
	RETURN true;
END $$;

CREATE FUNCTION jobwheel.pause_queue(queue text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM jobwheel._check_name('queue', queue);
	INSERT INTO jobwheel.queues AS q (name, paused) VALUES (queue, true)
	ON CONFLICT (name) DO UPDATE SET paused = true, updated_at = now();
END $$;

CREATE FUNCTION jobwheel.resume_queue(queue text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM jobwheel._check_name('queue', queue);
	INSERT INTO jobwheel.queues AS q (name, paused) VALUES (queue, false)
	ON CONFLICT (name) DO UPDATE SET paused = false, updated_at = now();
	PERFORM jobwheel._wake(queue);
END $$;
