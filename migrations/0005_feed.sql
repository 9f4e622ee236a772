-- SPDX-License-Identifier: MIT
-- The change feed the gateway relays as Server-Sent Events, and API tokens.
--
-- Every statement that changes job states writes one row to jobwheel.events
-- (type 'jobs') listing the jobs it changed, from statement-level triggers
-- with transition tables: one place covers every transition (the functions
-- of 0002-0004 and an operator's hand-written UPDATE alike), in the same
-- transaction, at one row per batch rather than one per job. The gateway
-- reads the feed by (xid, id) up to the oldest running transaction, so it
-- sees committed rows only, each once, in an order that never goes back.

ALTER TABLE jobwheel.events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_xid_idx ON jobwheel.events (xid, id);
-- json, not jsonb: the feed is written and read as text tens of thousands
-- of jobs a second, and never searched by containment (->> still works).
ALTER TABLE jobwheel.events ALTER COLUMN data TYPE json USING data::json;

-- One element per job: [id, queue, kind, state, attempt, priority,
-- workflow_id, error, old_state, ms]. error is set for scheduled (retry),
-- dead and cancelled; ms is the pickup latency (run_at -> started_at) on
-- the way to running and the run time on the way out of running.
CREATE FUNCTION jobwheel._feed_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO jobwheel.events (type, data)
	SELECT 'jobs', json_agg(json_build_array(n.id, n.queue, n.kind, n.state, n.attempt, n.priority,
	                                         n.workflow_id, n.last_error, NULL, NULL))
	FROM new_jobs n
	HAVING count(*) > 0;
	RETURN NULL;
END $$;

CREATE FUNCTION jobwheel._feed_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO jobwheel.events (type, data)
	SELECT 'jobs', json_agg(json_build_array(n.id, n.queue, n.kind, n.state, n.attempt, n.priority,
	                                         n.workflow_id,
	                                         CASE WHEN n.state IN ('scheduled', 'dead', 'cancelled')
	                                              THEN n.last_error END,
	                                         o.state,
	                                         CASE WHEN n.state = 'running' THEN
	                                                   round(extract(epoch FROM n.started_at - o.run_at) * 1000)
	                                              WHEN o.state = 'running' THEN
	                                                   round(extract(epoch FROM clock_timestamp() - o.started_at) * 1000)
	                                         END))
	FROM new_jobs n JOIN old_jobs o ON o.id = n.id
	WHERE n.state <> o.state
	HAVING count(*) > 0;
	RETURN NULL;
END $$;

CREATE TRIGGER jobs_feed_insert AFTER INSERT ON jobwheel.jobs
	REFERENCING NEW TABLE AS new_jobs
	FOR EACH STATEMENT EXECUTE FUNCTION jobwheel._feed_inserted();
CREATE TRIGGER jobs_feed_update AFTER UPDATE ON jobwheel.jobs
	REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
	FOR EACH STATEMENT EXECUTE FUNCTION jobwheel._feed_updated();

-- Workers joining, stopping, getting lost and leaving, as 'worker' events
-- ({"id", "host", "state"}; state 'left' when the row is deleted). The
-- coordinator's lost sweep already writes its own event, so 'lost' is left
-- to it.
CREATE FUNCTION jobwheel._feed_worker() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		PERFORM jobwheel._event('worker', jsonb_build_object('id', OLD.id, 'host', OLD.host, 'state', 'left'));
	ELSIF NEW.state <> 'lost' THEN
		PERFORM jobwheel._event('worker', jsonb_build_object('id', NEW.id, 'host', NEW.host, 'state', NEW.state));
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER workers_feed_insert AFTER INSERT ON jobwheel.workers
	FOR EACH ROW EXECUTE FUNCTION jobwheel._feed_worker();
CREATE TRIGGER workers_feed_update AFTER UPDATE OF state ON jobwheel.workers
	FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION jobwheel._feed_worker();
CREATE TRIGGER workers_feed_delete AFTER DELETE ON jobwheel.workers
	FOR EACH ROW EXECUTE FUNCTION jobwheel._feed_worker();

-- The feed from a position on: events with (xid, id) after (after_xid,
-- after_id) whose transactions have all ended, at most n rows. The upper
-- bound is the oldest transaction still running, taken in this statement's
-- snapshot, so a row that commits later can never land behind the cursor.
CREATE FUNCTION jobwheel.feed(after_xid xid8, after_id bigint, n int)
RETURNS TABLE (xid xid8, id bigint, at timestamptz, type text, data json)
LANGUAGE sql STABLE AS $$
	SELECT e.xid, e.id, e.at, e.type, e.data
	FROM jobwheel.events e
	WHERE (e.xid, e.id) > (after_xid, after_id)
	  AND e.xid < pg_snapshot_xmin(pg_current_snapshot())
	ORDER BY e.xid, e.id
	LIMIT n
$$;

-- The position the live feed starts from: everything before the oldest
-- running transaction has been written already.
CREATE FUNCTION jobwheel.feed_head() RETURNS xid8
LANGUAGE sql STABLE AS $$ SELECT pg_snapshot_xmin(pg_current_snapshot()) $$;

-- ---------------------------------------------------------------- tokens

-- API tokens: 256 random bits shown once; only their SHA-256 is stored.
CREATE TABLE jobwheel.tokens (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name       text NOT NULL,
	scope      text NOT NULL CONSTRAINT tokens_scope_check CHECK (scope IN ('read', 'write', 'admin')),
	hash       bytea NOT NULL UNIQUE,
	created_at timestamptz NOT NULL DEFAULT now(),
	revoked_at timestamptz
);

CREATE UNIQUE INDEX tokens_active_name_idx ON jobwheel.tokens (name) WHERE revoked_at IS NULL;

CREATE FUNCTION jobwheel.create_token(name text, scope text, token text) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
	v_id bigint;
BEGIN
	PERFORM jobwheel._check_name('name', name);
	IF scope IS NULL OR scope NOT IN ('read', 'write', 'admin') THEN
		PERFORM jobwheel._bad('scope', format('must be read, write or admin, not %s', coalesce(scope, 'null')));
	END IF;
	IF length(token) < 32 THEN
		PERFORM jobwheel._bad('token', 'must be at least 32 characters');
	END IF;
	IF EXISTS (SELECT 1 FROM jobwheel.tokens t WHERE t.name = name AND t.revoked_at IS NULL) THEN
		RAISE EXCEPTION 'a token named % exists already', name
			USING ERRCODE = 'unique_violation', HINT = 'revoke it first, or choose another name';
	END IF;
	INSERT INTO jobwheel.tokens (name, scope, hash)
	VALUES (name, scope, sha256(convert_to(token, 'UTF8')))
	RETURNING id INTO v_id;
	RETURN v_id;
END $$;

CREATE FUNCTION jobwheel.revoke_token(name text) RETURNS boolean
LANGUAGE sql AS $$
	WITH r AS (UPDATE jobwheel.tokens t SET revoked_at = now()
	           WHERE t.name = revoke_token.name AND t.revoked_at IS NULL RETURNING 1)
	SELECT count(*) > 0 FROM r
$$;

-- What a request presenting `token` may do: 'open' while no token exists
-- (a fresh install), the token's scope, or NULL for an unknown or revoked
-- token (and for no token once tokens exist).
CREATE FUNCTION jobwheel.token_scope(token text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM jobwheel.tokens WHERE revoked_at IS NULL) THEN 'open'
	            ELSE (SELECT t.scope FROM jobwheel.tokens t
	                  WHERE t.hash = sha256(convert_to(coalesce(token, ''), 'UTF8')) AND t.revoked_at IS NULL)
	       END
$$;

-- ---------------------------------------------------------------- for the gateway

-- The state of a job, read afresh (VOLATILE: it sees rows the calling
-- statement inserted, as in `SELECT jobwheel.job_state(id) FROM enqueue_batch(...)`).
CREATE FUNCTION jobwheel.job_state(id bigint) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	RETURN (SELECT j.state FROM jobwheel.jobs j WHERE j.id = job_state.id);
END $$;

-- ---------------------------------------------------------------- fixes of earlier functions

-- Aging now wakes the queues it touched. The UPDATE holds its rows' locks
-- for a moment; a worker whose claim ran into them (SKIP LOCKED) got fewer
-- jobs than it asked for and waits for a wake-up: without one it slept until
-- its next poll (found by the gateway issue's CI, once the feed trigger made
-- the UPDATE a little longer).
CREATE OR REPLACE FUNCTION jobwheel.age_priorities(max_wait_ms bigint, n int DEFAULT 10000) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	v_queues text[];
	v_count int;
BEGIN
	WITH starving AS (
		SELECT c.id FROM jobwheel.jobs c
		WHERE c.state = 'ready' AND c.run_at < now() - make_interval(secs => max_wait_ms / 1000.0)
		  AND c.priority > -2147483648
		ORDER BY c.run_at LIMIT n
		FOR UPDATE SKIP LOCKED),
	aged AS (
		UPDATE jobwheel.jobs j SET aged_from = j.priority, priority = -2147483648
		FROM starving WHERE j.id = starving.id
		RETURNING j.queue)
	SELECT count(*)::int, array_agg(DISTINCT queue) INTO v_count, v_queues FROM aged;
	PERFORM jobwheel._wake(q) FROM unnest(v_queues) q;
	RETURN v_count;
END $$;
