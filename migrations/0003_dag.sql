-- SPDX-License-Identifier: MIT
-- 0003: DAG workflows (SPEC §7): dependencies, release by counter, failure
-- propagation, atomic workflow submission.

CREATE TABLE jobwheel.workflows (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name       text,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_workflow_idx ON jobwheel.jobs (workflow_id) WHERE workflow_id IS NOT NULL;

-- One row per dependency edge still to be satisfied (jobs.depends_on keeps
-- every parent). A child's pending_parents counts its edges; each parent's
-- terminal transition consumes its edges and decrements the counts in the
-- same transaction, so readiness needs no scan and no poll.
CREATE TABLE jobwheel.job_deps (
	parent_id bigint NOT NULL REFERENCES jobwheel.jobs (id) ON DELETE CASCADE,
	child_id  bigint NOT NULL REFERENCES jobwheel.jobs (id) ON DELETE CASCADE,
	PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX job_deps_child_idx ON jobwheel.job_deps (child_id);

-- Set on a job once it has a child: only such jobs pay for the edge lookup
-- when they finish, so jobs outside workflows cost nothing extra.
ALTER TABLE jobwheel.jobs ADD COLUMN has_children boolean NOT NULL DEFAULT false;

-- A workflow's state, derived from its jobs: running while any is not
-- terminal; then succeeded if all succeeded, failed if any died, else cancelled.
CREATE VIEW jobwheel.workflow_status AS
SELECT w.id, w.name, w.created_at,
       CASE WHEN s.active > 0 THEN 'running'
            WHEN s.succeeded = s.jobs THEN 'succeeded'
            WHEN s.dead > 0 THEN 'failed'
            ELSE 'cancelled' END AS state,
       s.jobs, s.succeeded, s.dead, s.cancelled, s.active
FROM jobwheel.workflows w
CROSS JOIN LATERAL (
	SELECT count(*) AS jobs,
	       count(*) FILTER (WHERE j.state = 'succeeded') AS succeeded,
	       count(*) FILTER (WHERE j.state = 'dead') AS dead,
	       count(*) FILTER (WHERE j.state = 'cancelled') AS cancelled,
	       count(*) FILTER (WHERE j.state NOT IN ('succeeded', 'dead', 'cancelled')) AS active
	FROM jobwheel.jobs j WHERE j.workflow_id = w.id) s;

-- ---------------------------------------------------------------- release and propagation

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

-- complete_many of 0001, plus the release of children.
CREATE OR REPLACE FUNCTION jobwheel.complete_many(ids bigint[], attempts int[], results jsonb[]) RETURNS int
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

-- fail_many of 0002, plus propagation from jobs that died.
CREATE OR REPLACE FUNCTION jobwheel.fail_many(ids bigint[], attempts int[], errors text[],
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

-- cancel of 0001, plus propagation.
CREATE OR REPLACE FUNCTION jobwheel.cancel(id bigint) RETURNS boolean
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

-- Cancels every job of a workflow that has not finished. Returns how many.
-- Locks them all first, in id order (parents before children), as every
-- other path does, so it cannot deadlock with a worker finishing one.
CREATE FUNCTION jobwheel.cancel_workflow(workflow_id bigint) RETURNS int
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
	v_live bigint[];
	v_id bigint;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM jobwheel.workflows w WHERE w.id = workflow_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'P0002', COLUMN = 'workflow_id',
			MESSAGE = format('jobwheel: workflow_id: workflow %s does not exist', workflow_id);
	END IF;
	SELECT array_agg(l.id) INTO v_live
	FROM (SELECT j.id FROM jobwheel.jobs j
	      WHERE j.workflow_id = cancel_workflow.workflow_id
	        AND j.state IN ('blocked', 'scheduled', 'ready', 'running')
	      ORDER BY j.id FOR UPDATE) l;
	FOREACH v_id IN ARRAY coalesce(v_live, '{}') LOOP
		PERFORM jobwheel.cancel(v_id); -- false for those a parent's cancellation already took
	END LOOP;
	RETURN coalesce(cardinality(v_live), 0);
END $$;

-- The results of a job's parents, {"parent id": result}, for its handler.
CREATE FUNCTION jobwheel.parent_results(parents bigint[]) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT coalesce(jsonb_object_agg(p.id::text, p.result), '{}') FROM jobwheel.jobs p WHERE p.id = ANY (parents)
$$;

-- ---------------------------------------------------------------- enqueue with dependencies

-- enqueue of 0001, now with depends_on: parent job ids. The parents are
-- locked (in id order) for the rest of the transaction, so a parent that
-- finishes meanwhile waits for the edge to exist and then releases the child;
-- a parent already succeeded counts as done; one already dead or cancelled
-- cancels an all_success child at once; an unknown parent is an error.
CREATE OR REPLACE FUNCTION jobwheel.enqueue(kind text, payload jsonb DEFAULT '{}', queue text DEFAULT 'default',
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

-- ---------------------------------------------------------------- workflows

-- Submits a whole graph atomically:
--   {"name"?: s, "jobs": [{"key": "a", "kind": ..., "depends_on"?: ["b", ...], <enqueue fields>}, ...]}
-- returns {"workflow_id": N, "jobs": {"a": id, ...}}. Rejects, naming the
-- keys, unknown and duplicate keys, self-dependencies and cycles (with the
-- cycle's path). Set-based: one INSERT for the jobs, one for the edges; the
-- cycle check is Kahn's algorithm over integer arrays (O(jobs + edges)).
CREATE FUNCTION jobwheel.submit_workflow(spec jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	v_n int;
	v_keys text[];
	v_pos jsonb;         -- key -> position (1-based)
	v_problem text;
	v_at int;
	v_key text;
	v_ep int[];          -- edges (parent position, child position), by parent
	v_ec int[];
	v_first int[];       -- per position: index of its first outgoing edge in v_ep/v_ec
	v_indeg int[];
	v_queue int[];
	v_head int := 1;
	v_seen int := 0;
	v_node int;
	v_path text[];
	v_ids bigint[];
	v_k int;
	v_drawn bigint;
	v_workflow bigint;
	v_queues text[];
BEGIN
	IF spec IS NULL OR jsonb_typeof(spec) <> 'object' THEN
		PERFORM jobwheel._bad('spec', 'must be a JSON object {"name"?, "jobs": [...]}');
	END IF;
	IF jsonb_typeof(spec->'jobs') IS DISTINCT FROM 'array' OR jsonb_array_length(spec->'jobs') = 0 THEN
		PERFORM jobwheel._bad('jobs', 'must be a non-empty array of job objects');
	END IF;
	IF spec ? 'name' AND jsonb_typeof(spec->'name') NOT IN ('string', 'null') THEN
		PERFORM jobwheel._bad('name', 'must be a string');
	END IF;
	IF (SELECT count(*) FROM jsonb_object_keys(spec) k WHERE k NOT IN ('name', 'jobs')) > 0 THEN
		PERFORM jobwheel._bad('spec', 'unknown field ' || (SELECT to_json(k)::text FROM jsonb_object_keys(spec) k
		                                                  WHERE k NOT IN ('name', 'jobs') LIMIT 1));
	END IF;
	v_n := jsonb_array_length(spec->'jobs');

	-- Each job: a key, its fields (the checks of enqueue_batch), depends_on keys.
	SELECT x.i, x.problem INTO v_at, v_problem
	FROM (SELECT e.i, CASE
		WHEN jsonb_typeof(e.j) <> 'object' THEN 'must be an object'
		WHEN jsonb_typeof(e.j->'key') IS DISTINCT FROM 'string' OR e.j->>'key' !~ '^[^\s]{1,128}$'
		THEN 'key: must be a string of 1-128 characters without spaces'
		WHEN e.j ? 'depends_on' AND (jsonb_typeof(e.j->'depends_on') <> 'array' OR EXISTS (
			SELECT 1 FROM jsonb_array_elements(e.j->'depends_on') d WHERE jsonb_typeof(d) <> 'string'))
		THEN 'depends_on: must be an array of job keys'
		ELSE jobwheel._job_problem(e.j - 'key' - 'depends_on') END AS problem
	      FROM jsonb_array_elements(spec->'jobs') WITH ORDINALITY e(j, i)) x
	WHERE x.problem IS NOT NULL
	ORDER BY x.i LIMIT 1;
	IF v_problem IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22023', COLUMN = split_part(v_problem, ':', 1),
			MESSAGE = format('jobwheel: jobs[%s]%s: %s', v_at - 1,
			                 coalesce(' (' || to_json(spec->'jobs'->(v_at - 1)->>'key')::text || ')', ''), v_problem);
	END IF;

	SELECT array_agg(e.j->>'key' ORDER BY e.i), jsonb_object_agg(e.j->>'key', e.i)
	INTO v_keys, v_pos
	FROM jsonb_array_elements(spec->'jobs') WITH ORDINALITY e(j, i);
	SELECT k INTO v_key FROM unnest(v_keys) k GROUP BY k HAVING count(*) > 1 LIMIT 1;
	IF FOUND THEN
		PERFORM jobwheel._bad('key', format('duplicate key %s', to_json(v_key)));
	END IF;

	SELECT format('unique_key %s is %s', to_json(u), CASE WHEN count(*) > 1 THEN 'given to two jobs'
	                                                   ELSE 'held by a live job' END)
	INTO v_problem
	FROM (SELECT e.j->>'unique_key' AS u FROM jsonb_array_elements(spec->'jobs') e(j)
	      WHERE e.j->>'unique_key' IS NOT NULL) k
	GROUP BY u
	HAVING count(*) > 1 OR EXISTS (SELECT 1 FROM jobwheel.jobs j WHERE j.unique_key = u
	                               AND j.state IN ('blocked', 'scheduled', 'ready', 'running'))
	LIMIT 1;
	IF FOUND THEN
		PERFORM jobwheel._bad('unique_key', v_problem);
	END IF;

	-- Edges by position; unknown keys and self-dependencies are refused.
	SELECT format('job %s depends on unknown key %s', to_json(e.j->>'key'), to_json(d)) INTO v_problem
	FROM jsonb_array_elements(spec->'jobs') e(j), jsonb_array_elements_text(e.j->'depends_on') d
	WHERE NOT v_pos ? d LIMIT 1;
	IF FOUND THEN
		PERFORM jobwheel._bad('depends_on', v_problem);
	END IF;
	SELECT format('job %s depends on itself', to_json(e.j->>'key')) INTO v_problem
	FROM jsonb_array_elements(spec->'jobs') e(j), jsonb_array_elements_text(e.j->'depends_on') d
	WHERE d = e.j->>'key' LIMIT 1;
	IF FOUND THEN
		PERFORM jobwheel._bad('depends_on', v_problem);
	END IF;
	SELECT coalesce(array_agg(p ORDER BY p, c), '{}'), coalesce(array_agg(c ORDER BY p, c), '{}')
	INTO v_ep, v_ec
	FROM (SELECT DISTINCT (v_pos->>d)::int AS p, e.i::int AS c
	      FROM jsonb_array_elements(spec->'jobs') WITH ORDINALITY e(j, i),
	           jsonb_array_elements_text(e.j->'depends_on') d) edges;

	-- Kahn: repeatedly take jobs with no unfinished parent. Jobs never taken
	-- lie on (or behind) a cycle.
	v_indeg := array_fill(0, ARRAY[v_n]);
	v_first := array_fill(0, ARRAY[v_n + 1]);
	FOR i IN 1 .. cardinality(v_ec) LOOP
		v_indeg[v_ec[i]] := v_indeg[v_ec[i]] + 1;
	END LOOP;
	FOR i IN REVERSE cardinality(v_ep) .. 1 LOOP
		v_first[v_ep[i]] := i;
	END LOOP;
	v_queue := array_fill(0, ARRAY[v_n]);
	FOR i IN 1 .. v_n LOOP
		IF v_indeg[i] = 0 THEN
			v_seen := v_seen + 1;
			v_queue[v_seen] := i;
		END IF;
	END LOOP;
	WHILE v_head <= v_seen LOOP
		v_node := v_queue[v_head];
		v_head := v_head + 1;
		IF v_first[v_node] > 0 THEN
			FOR i IN v_first[v_node] .. cardinality(v_ep) LOOP
				EXIT WHEN v_ep[i] <> v_node;
				v_indeg[v_ec[i]] := v_indeg[v_ec[i]] - 1;
				IF v_indeg[v_ec[i]] = 0 THEN
					v_seen := v_seen + 1;
					v_queue[v_seen] := v_ec[i];
				END IF;
			END LOOP;
		END IF;
	END LOOP;
	IF v_seen < v_n THEN
		-- Walk from a job left over along parents that are left over too,
		-- until a job repeats: that stretch is a cycle.
		v_node := array_position(v_indeg, (SELECT max(x) FROM unnest(v_indeg) x));
		v_path := ARRAY[v_keys[v_node]];
		LOOP
			SELECT (v_pos->>d)::int INTO v_node
			FROM jsonb_array_elements_text(spec->'jobs'->(v_node - 1)->'depends_on') d
			WHERE v_indeg[(v_pos->>d)::int] > 0 LIMIT 1;
			EXIT WHEN v_keys[v_node] = ANY (v_path);
			v_path := v_path || v_keys[v_node];
		END LOOP;
		v_path := v_path[array_position(v_path, v_keys[v_node]):] || v_keys[v_node];
		PERFORM jobwheel._bad('depends_on', 'cycle: ' || array_to_string(v_path, ' -> ')
		                                    || ' (each job depends on the next)');
	END IF;

	-- Ids in topological order (Kahn's queue): a parent's id is always lower
	-- than its children's, as with jobs enqueued one by one, so everything
	-- that locks jobs in id order also locks parents before children.
	INSERT INTO jobwheel.workflows (name) VALUES (spec->>'name') RETURNING id INTO v_workflow;
	v_ids := array_fill(0::bigint, ARRAY[v_n]);
	v_k := 0;
	FOR v_drawn IN SELECT nextval(pg_get_serial_sequence('jobwheel.jobs', 'id')) FROM generate_series(1, v_n) LOOP
		v_k := v_k + 1;
		v_ids[v_queue[v_k]] := v_drawn;
	END LOOP;
	WITH src AS (
		SELECT e.i, e.j, v_ids[e.i] AS id,
		       (SELECT array_agg(DISTINCT v_ids[(v_pos->>d)::int])
		        FROM jsonb_array_elements_text(e.j->'depends_on') d) AS parents,
		       CASE WHEN e.j ? 'delay_ms'
		            THEN now() + make_interval(secs => (e.j->>'delay_ms')::float8 / 1000)
		            ELSE coalesce((e.j->>'run_at')::timestamptz, now()) END AS run_at
		FROM jsonb_array_elements(spec->'jobs') WITH ORDINALITY e(j, i)),
	ins AS (
		INSERT INTO jobwheel.jobs (id, kind, payload, queue, priority, state, run_at, max_attempts,
		                           timeout_ms, backoff_base_ms, trigger, unique_key, workflow_id,
		                           depends_on, pending_parents, has_children)
		SELECT src.id, src.j->>'kind', coalesce(src.j->'payload', '{}'), coalesce(src.j->>'queue', 'default'),
		       coalesce((src.j->>'priority')::int, 0),
		       CASE WHEN src.parents IS NOT NULL THEN 'blocked'
		            WHEN src.run_at > now() THEN 'scheduled' ELSE 'ready' END,
		       src.run_at, coalesce((src.j->>'max_attempts')::int, 4),
		       coalesce((src.j->>'timeout_ms')::int, 300000), coalesce((src.j->>'backoff_base_ms')::int, 1000),
		       coalesce(src.j->>'trigger', 'all_success'), src.j->>'unique_key', v_workflow,
		       src.parents, coalesce(cardinality(src.parents), 0),
		       v_first[src.i] > 0 -- has an outgoing edge
		FROM src ORDER BY src.id
		RETURNING queue, state)
	SELECT array_agg(DISTINCT queue) FILTER (WHERE state = 'ready') INTO v_queues FROM ins;
	INSERT INTO jobwheel.job_deps (parent_id, child_id)
	SELECT v_ids[p], v_ids[c] FROM unnest(v_ep, v_ec) AS e(p, c);
	PERFORM jobwheel._wake(q) FROM unnest(v_queues) q;
	RETURN jsonb_build_object('workflow_id', v_workflow,
	                          'jobs', (SELECT jsonb_object_agg(k, v_ids[i]) FROM unnest(v_keys) WITH ORDINALITY u(k, i)));
END $$;
