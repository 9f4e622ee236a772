-- SPDX-License-Identifier: MIT
-- 0003: what the coordinator runs: leadership, the scheduled-job cursor and
-- promotion, the starvation daemon, retention and cron.

-- ---------------------------------------------------------------- leadership

CREATE FUNCTION jobwheel.register_coordinator(id text, host text, pid int) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO jobwheel.coordinators AS c (id, host, pid, backend_pid)
	VALUES (id, host, pid, pg_backend_pid())
	ON CONFLICT (id) DO UPDATE SET backend_pid = pg_backend_pid(), heartbeat_at = now()
$$;

-- Tries to become leader on this session. True if this session holds the
-- lock (now or already). Leadership changes are recorded as an event.
CREATE FUNCTION jobwheel.try_lead(id text) RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
	v_host text;
BEGIN
	IF NOT pg_try_advisory_lock(jobwheel._leader_key()) THEN
		RETURN false;
	END IF;
	UPDATE jobwheel.coordinators c SET leader_since = now(), heartbeat_at = now()
	WHERE c.id = try_lead.id AND c.leader_since IS NULL
	RETURNING c.host INTO v_host;
	IF FOUND THEN
		UPDATE jobwheel.coordinators c SET leader_since = NULL WHERE c.id <> try_lead.id;
		PERFORM jobwheel._event('coordinator', jsonb_build_object('id', id, 'host', v_host, 'event', 'leader'));
	END IF;
	RETURN true;
END $$;

CREATE FUNCTION jobwheel.deregister_coordinator(id text) RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
BEGIN
	DELETE FROM jobwheel.coordinators c WHERE c.id = deregister_coordinator.id;
	IF pg_advisory_unlock(jobwheel._leader_key()) THEN
		PERFORM jobwheel._event('coordinator', jsonb_build_object('id', id, 'event', 'resigned'));
	END IF;
END $$;

CREATE FUNCTION jobwheel.coordinator_heartbeat(id text) RETURNS void
LANGUAGE sql AS $$ UPDATE jobwheel.coordinators c SET heartbeat_at = now() WHERE c.id = coordinator_heartbeat.id $$;

-- ---------------------------------------------------------------- delayed jobs

-- The coordinator's two reads of scheduled jobs. Each is one statement, so
-- the cursor it returns (the xmin of the statement's snapshot) and the rows
-- come from the same snapshot; db_now_ms lets the coordinator align its
-- clock with the database's, which owns run_at.
--   scheduled_between: jobs due in [from_ms, until_ms): the horizon.
--   scheduled_since: jobs due before until_ms made scheduled by a
--     transaction at or after since_xid: what is new inside the horizon.
CREATE FUNCTION jobwheel.scheduled_between(from_ms bigint, until_ms bigint, n int DEFAULT 100000)
RETURNS TABLE (next_xid xid8, db_now_ms bigint, ids bigint[], run_at_ms bigint[])
LANGUAGE sql STABLE AS $$
	SELECT pg_snapshot_xmin(pg_current_snapshot()), (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
	       array_agg(s.id), array_agg(s.ms)
	FROM (SELECT j.id, (extract(epoch FROM j.run_at) * 1000)::bigint AS ms FROM jobwheel.jobs j
	      WHERE j.state = 'scheduled' AND j.run_at >= to_timestamp(from_ms / 1000.0)
	        AND j.run_at < to_timestamp(until_ms / 1000.0)
	      ORDER BY j.run_at LIMIT n) s
$$;

CREATE FUNCTION jobwheel.scheduled_since(since_xid xid8, until_ms bigint, n int DEFAULT 100000)
RETURNS TABLE (next_xid xid8, db_now_ms bigint, ids bigint[], run_at_ms bigint[])
LANGUAGE sql STABLE AS $$
	SELECT pg_snapshot_xmin(pg_current_snapshot()), (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
	       array_agg(s.id), array_agg(s.ms)
	FROM (SELECT j.id, (extract(epoch FROM j.run_at) * 1000)::bigint AS ms FROM jobwheel.jobs j
	      WHERE j.state = 'scheduled' AND j.sched_xid >= since_xid
	        AND j.run_at < to_timestamp(until_ms / 1000.0)
	      LIMIT n) s
$$;

-- Makes the given scheduled jobs ready if they are due, wakes their queues,
-- and returns those still scheduled in the future (the caller's clock ran
-- ahead of the database's, or run_at moved) so that it can re-arm them.
--
-- A promotion commits without waiting for the WAL flush: it can be redone
-- from run_at at any time, so one lost in a crash is simply redone by the
-- next leader, while a job due now does not wait for an fsync to start.
CREATE FUNCTION jobwheel.promote_ids(ids bigint[]) RETURNS TABLE (id bigint, run_at_ms bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_queues text[];
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true); -- this transaction only
	WITH due AS (
		UPDATE jobwheel.jobs j SET state = 'ready'
		WHERE j.id = ANY (ids) AND j.state = 'scheduled' AND j.run_at <= now()
		RETURNING j.queue)
	SELECT array_agg(DISTINCT due.queue) INTO v_queues FROM due;
	PERFORM jobwheel._wake(q) FROM unnest(v_queues) q;
	RETURN QUERY
	SELECT j.id, (extract(epoch FROM j.run_at) * 1000)::bigint FROM jobwheel.jobs j
	WHERE j.id = ANY (ids) AND j.state = 'scheduled';
END $$;

-- ---------------------------------------------------------------- starvation daemon

-- A ready job that has waited max_wait goes before every job that has
-- waited less: it gets the smallest priority, so the claim index (priority,
-- run_at, id) serves aged jobs first, oldest first, without computing ages
-- in the claim. Its own priority is kept in aged_from and restored by claim().
CREATE FUNCTION jobwheel.age_priorities(max_wait_ms bigint, n int DEFAULT 10000) RETURNS int
LANGUAGE sql AS $$
	WITH starving AS (
		SELECT c.id FROM jobwheel.jobs c
		WHERE c.state = 'ready' AND c.run_at < now() - make_interval(secs => max_wait_ms / 1000.0)
		  AND c.priority > -2147483648
		ORDER BY c.run_at LIMIT n
		FOR UPDATE SKIP LOCKED),
	aged AS (
		UPDATE jobwheel.jobs j SET aged_from = j.priority, priority = -2147483648
		FROM starving WHERE j.id = starving.id
		RETURNING 1)
	SELECT count(*)::int FROM aged
$$;

-- Workers silent for longer than stale_ms become `lost` (with an event) and
-- their running jobs fail at once: "lease expired (worker X)".
CREATE FUNCTION jobwheel.mark_lost_workers(stale_ms bigint) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	v_lost text[];
	v_ids bigint[];
	v_attempts int[];
	v_errors text[];
BEGIN
	WITH lost AS (
		UPDATE jobwheel.workers w SET state = 'lost'
		WHERE w.state <> 'lost' AND w.heartbeat_at < now() - make_interval(secs => stale_ms / 1000.0)
		RETURNING w.id, w.host),
	ev AS (
		INSERT INTO jobwheel.events (type, data)
		SELECT 'worker', jsonb_build_object('id', id, 'host', host, 'state', 'lost') FROM lost
		RETURNING 1)
	SELECT array_agg(id) INTO v_lost FROM lost, (SELECT count(*) FROM ev) e;
	IF v_lost IS NULL THEN
		RETURN 0;
	END IF;
	SELECT array_agg(id), array_agg(attempt), array_agg(format('lease expired (worker %s)', worker))
	INTO v_ids, v_attempts, v_errors
	FROM jobwheel.jobs WHERE state = 'running' AND worker = ANY (v_lost);
	IF v_ids IS NOT NULL THEN
		PERFORM jobwheel.fail_many(v_ids, v_attempts, v_errors, array_fill(true, ARRAY[cardinality(v_ids)]));
	END IF;
	RETURN cardinality(v_lost);
END $$;

-- Jobs still running long after their own timeout plus a lease (a handler
-- hung in a worker that still heartbeats) fail with "timeout".
CREATE FUNCTION jobwheel.fail_hung(lease_ms bigint, n int DEFAULT 1000) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	v_ids bigint[];
	v_attempts int[];
BEGIN
	SELECT array_agg(id), array_agg(attempt) INTO v_ids, v_attempts
	FROM (SELECT id, attempt FROM jobwheel.jobs
	      WHERE state = 'running'
	        AND started_at + make_interval(secs => (timeout_ms + lease_ms) / 1000.0) < now()
	      LIMIT n FOR UPDATE SKIP LOCKED) hung;
	IF v_ids IS NULL THEN
		RETURN 0;
	END IF;
	RETURN jobwheel.fail_many(v_ids, v_attempts, array_fill('timeout'::text, ARRAY[cardinality(v_ids)]),
	                          array_fill(true, ARRAY[cardinality(v_ids)]));
END $$;

-- ---------------------------------------------------------------- retention

-- Deletes at most n finished jobs older than their retention (one short
-- transaction per call; the coordinator calls again while it returns n).
-- Walks the primary key from the oldest id: no extra index on the hot path.
CREATE FUNCTION jobwheel.prune(succeeded_ms bigint, dead_ms bigint, n int DEFAULT 10000) RETURNS int
LANGUAGE sql AS $$
	WITH old AS (
		(SELECT id FROM jobwheel.jobs
		 WHERE state IN ('succeeded', 'cancelled')
		   AND finished_at < now() - make_interval(secs => succeeded_ms / 1000.0)
		 ORDER BY id LIMIT n)
		UNION ALL
		(SELECT id FROM jobwheel.jobs
		 WHERE state = 'dead' AND finished_at < now() - make_interval(secs => dead_ms / 1000.0)
		 ORDER BY finished_at LIMIT n)),
	gone AS (
		DELETE FROM jobwheel.jobs j USING (SELECT id FROM old LIMIT n) o WHERE j.id = o.id RETURNING 1)
	SELECT count(*)::int FROM gone
$$;

CREATE FUNCTION jobwheel.prune_events(keep_ms bigint, n int DEFAULT 10000) RETURNS int
LANGUAGE sql AS $$
	WITH gone AS (
		DELETE FROM jobwheel.events e USING (
			SELECT id FROM jobwheel.events WHERE at < now() - make_interval(secs => keep_ms / 1000.0)
			ORDER BY id LIMIT n) o
		WHERE e.id = o.id RETURNING 1)
	SELECT count(*)::int FROM gone
$$;

-- ---------------------------------------------------------------- cron

-- What is wrong with a cron expression, naming the field, or NULL. The
-- coordinator parses expressions with common/cron.c; this check mirrors it
-- so that a bad expression is refused when it is written, not when it runs.
CREATE FUNCTION jobwheel._cron_problem(expr text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	v_expr text := lower(btrim(expr));
	v_fields text[];
	v_names constant text[] := ARRAY['second', 'minute', 'hour', 'day-of-month', 'month', 'day-of-week'];
	v_lo constant int[] := ARRAY[0, 0, 0, 1, 1, 0];
	v_hi constant int[] := ARRAY[59, 59, 23, 31, 12, 7];
	v_months constant text[] := ARRAY['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
	v_days constant text[] := ARRAY['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
	v_field text;
	v_item text;
	v_m text[];
	k int;
BEGIN
	IF v_expr IS NULL OR v_expr = '' OR length(v_expr) > 256 THEN
		RETURN 'cron: must be a non-empty expression of at most 256 characters';
	END IF;
	IF v_expr IN ('@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly', '@minutely') THEN
		RETURN NULL;
	END IF;
	IF v_expr LIKE '@every%' THEN
		IF v_expr !~ '^@every\s+([0-9]+(ms|s|m|h|d))+$' THEN
			RETURN format('@every: bad duration %s', to_json(btrim(substr(v_expr, 7))));
		END IF;
		RETURN NULL;
	END IF;
	IF v_expr LIKE '@%' THEN
		RETURN format('unknown macro %s', to_json(v_expr));
	END IF;
	v_fields := regexp_split_to_array(v_expr, '\s+');
	IF cardinality(v_fields) NOT IN (5, 6) THEN
		RETURN format('expected 5 or 6 fields, got %s', cardinality(v_fields));
	END IF;
	FOR i IN 1 .. cardinality(v_fields) LOOP
		k := i + 6 - cardinality(v_fields); -- 5 fields start at the minute
		v_field := v_fields[i];
		IF k = 5 THEN
			FOR m IN 1 .. 12 LOOP
				v_field := replace(v_field, v_months[m], m::text);
			END LOOP;
		ELSIF k = 6 THEN
			FOR d IN 1 .. 7 LOOP
				v_field := replace(v_field, v_days[d], (d - 1)::text);
			END LOOP;
		END IF;
		FOREACH v_item IN ARRAY string_to_array(v_field, ',') LOOP
			v_m := regexp_match(v_item, '^(\*|([0-9]{1,4})(-([0-9]{1,4}))?)(/([0-9]{1,4}))?$');
			IF v_m IS NULL THEN
				RETURN format('%s field: bad value %s', v_names[k], to_json(v_item));
			ELSIF v_m[2]::int NOT BETWEEN v_lo[k] AND v_hi[k] THEN
				RETURN format('%s field: %s is out of range %s-%s', v_names[k], v_m[2], v_lo[k], v_hi[k]);
			ELSIF v_m[4]::int NOT BETWEEN v_lo[k] AND v_hi[k] THEN
				RETURN format('%s field: %s is out of range %s-%s', v_names[k], v_m[4], v_lo[k], v_hi[k]);
			ELSIF v_m[4]::int < v_m[2]::int THEN
				RETURN format('%s field: range %s is backwards', v_names[k], v_item);
			ELSIF v_m[6]::int = 0 THEN
				RETURN format('%s field: bad step %s', v_names[k], to_json(v_item));
			END IF;
		END LOOP;
	END LOOP;
	RETURN NULL;
END $$;

-- Creates or replaces a cron schedule (UTC). Changing one keeps its last
-- tick, so an edit never fires a tick twice.
CREATE FUNCTION jobwheel.schedule(name text, cron text, kind text, payload jsonb DEFAULT '{}',
                                  queue text DEFAULT 'default') RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
	v_problem text := jobwheel._cron_problem(cron);
BEGIN
	IF name IS NULL OR name !~ '^[A-Za-z0-9_.:-]{1,128}$' THEN
		PERFORM jobwheel._bad('name', format('%s is not a valid schedule name (1-128 of A-Z a-z 0-9 _ . : -)',
		                                     coalesce(to_json(name)::text, 'null')));
	END IF;
	IF v_problem IS NOT NULL THEN
		PERFORM jobwheel._bad('cron', v_problem);
	END IF;
	PERFORM jobwheel._check_job(kind, payload, queue, 0, 1, NULL, NULL, 'all_success');
	INSERT INTO jobwheel.schedules AS s (name, cron, kind, payload, queue)
	VALUES (name, btrim(cron), kind, payload, queue)
	ON CONFLICT ON CONSTRAINT schedules_pkey DO UPDATE
	SET cron = excluded.cron, kind = excluded.kind, payload = excluded.payload, queue = excluded.queue,
	    updated_at = now();
	PERFORM pg_notify('jobwheel_schedules', name);
END $$;

CREATE FUNCTION jobwheel.unschedule(name text) RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
BEGIN
	DELETE FROM jobwheel.schedules s WHERE s.name = unschedule.name;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM pg_notify('jobwheel_schedules', name);
	RETURN true;
END $$;

-- Fires one tick of a schedule: enqueues its job unless this tick (or a
-- later one) already fired. The conditional update makes each tick fire
-- once, whichever coordinator, before or after a fail-over, gets there.
-- Returns the job id, or NULL when the tick had already fired.
CREATE FUNCTION jobwheel.fire_schedule(name text, tick timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
	v_s jobwheel.schedules;
	v_id bigint;
BEGIN
	UPDATE jobwheel.schedules s SET last_tick = tick
	WHERE s.name = fire_schedule.name AND (s.last_tick IS NULL OR s.last_tick < tick)
	RETURNING * INTO v_s;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	v_id := jobwheel.enqueue(v_s.kind, v_s.payload, v_s.queue,
	                         unique_key => format('cron:%s:%s', v_s.name, extract(epoch FROM tick)::bigint));
	UPDATE jobwheel.schedules s SET last_job_id = v_id WHERE s.name = fire_schedule.name;
	RETURN v_id;
END $$;
