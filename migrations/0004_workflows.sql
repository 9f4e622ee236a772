-- SPDX-License-Identifier: MIT
-- 0004: DAG workflows (SPEC §7): atomic submission and cancellation.

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
