-- SPDX-License-Identifier: MIT
-- Least-privilege group roles for jobwheel's processes (SPEC §12): worker, gateway, readonly.
--
-- Who is who
--   The owner: the role that ran `jobwheel migrate` owns schema jobwheel and
--   everything in it. jobwheel-coordinator, `jobwheel migrate` and the CLI's
--   admin commands (token create|revoke, schedule, dlq requeue, enqueue...)
--   connect as the owner. Make it a dedicated LOGIN role (say `jobwheel`,
--   with CREATE on the database), not a superuser.
--   There is no coordinator role: the coordinator deletes any job and event
--   (retention), fails and promotes any job, fires schedules and holds the
--   leader lock, which is most of what the owner may do; a separate role
--   would protect little and be one more list to keep in step. There is no
--   jobwheel_owner group either: `jobwheel migrate` creates objects as the
--   role it connects as, so membership in a group would not make the group
--   their owner.
--
--   jobwheel_worker    jobwheel-worker, or a worker in any language using
--                      jobwheel.claim/complete/fail: claim, heartbeat, report,
--                      release, register. It cannot insert jobs, delete them,
--                      or change a job's kind, payload or queue, so a worker
--                      host taken over cannot make the other workers run an
--                      exec or http job of its choosing. No tokens.
--   jobwheel_gateway   jobwheel-gateway: the REST API (enqueue, workflows,
--                      cancel, retry, pause/resume, reads), token checks and
--                      the SSE feed. It cannot claim, complete or fail jobs,
--                      write a job's result or worker, delete jobs, or create
--                      tokens (only the owner does, with `jobwheel token create`).
--                      An application that enqueues with SQL in its own
--                      transactions can use this role too.
--   jobwheel_readonly  dashboards and people: SELECT on every table and view
--                      (tokens without their hash); no function that writes.
--
-- How functions are checked
--   No jobwheel function is SECURITY DEFINER: each runs with the rights of
--   its caller. So a role needs EXECUTE on every function a call reaches
--   (the helpers `_bad`, `_wake`, `_parents_done`... included) and the table
--   privileges of every statement inside, trigger bodies included (the
--   triggers on jobs and workers insert into jobwheel.events). EXECUTE on the
--   trigger functions themselves is not needed. PostgreSQL lets PUBLIC
--   execute every new function; this file revokes that for the whole schema,
--   or none of the grants below would mean anything. LISTEN/NOTIFY, advisory
--   locks and the pg_current_snapshot() family need no grant; nothing reads
--   pg_stat_* views.
--
-- Running it
--   psql -X -v ON_ERROR_STOP=1 -d DBNAME -f roles.sql
--   as a superuser (or as the owner, if it also has CREATEROLE or the three
--   roles exist already), after the first `jobwheel migrate`, and again after
--   every `jobwheel migrate` that applied something: until then a new function
--   is executable by PUBLIC and a new table readable by none of these roles
--   (workers may fail on it). Use the roles.sql of the release whose
--   migrations you ran. It starts from no privileges and runs in one
--   transaction (running processes see the old grants or the new, never
--   none), so it may run any number of times and leaves exactly what is
--   written here. It uses \set: run it with psql. Roles are per cluster,
--   grants per database: run it in every database that holds schema jobwheel.
--   It ends with a WARNING for any object in schema jobwheel this file does
--   not know (a migration newer than this file).
--
--   No ALTER DEFAULT PRIVILEGES: defaults given per schema can only add
--   privileges, never take away PUBLIC's EXECUTE; a global one for the owner
--   would change every function it creates in this database (often the
--   application's own); and default grants would hand each new table to
--   these roles before anyone decided who should see it (think of tokens).
--
-- Login users: one per host, so that pg_stat_activity and pg_hba.conf tell
-- hosts apart and a host can be shut out alone (ALTER ROLE ... NOLOGIN):
--   CREATE ROLE worker_host1 LOGIN PASSWORD '...' IN ROLE jobwheel_worker;
--   CREATE ROLE gateway_web1 LOGIN PASSWORD '...' IN ROLE jobwheel_gateway;
--   CREATE ROLE ops_alice LOGIN PASSWORD '...' IN ROLE jobwheel_readonly;
-- (members must INHERIT, the default), then database.url=postgresql://worker_host1@db/app.

\set ON_ERROR_STOP on

BEGIN;

DO $$
BEGIN
	IF to_regnamespace('jobwheel') IS NULL OR to_regclass('jobwheel.jobs') IS NULL THEN
		RAISE EXCEPTION 'schema jobwheel is missing from database %', current_database()
			USING HINT = 'run `jobwheel migrate` on this database first, then this file';
	END IF;
END $$;

-- ---------------------------------------------------------------- the roles

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['jobwheel_worker', 'jobwheel_gateway', 'jobwheel_readonly'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
	EXECUTE format('GRANT CONNECT ON DATABASE %I TO jobwheel_worker, jobwheel_gateway, jobwheel_readonly',
	               current_database());
END $$;

-- ---------------------------------------------------------------- from nothing

REVOKE ALL ON SCHEMA jobwheel FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA jobwheel FROM PUBLIC, jobwheel_worker, jobwheel_gateway, jobwheel_readonly;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA jobwheel FROM PUBLIC, jobwheel_worker, jobwheel_gateway, jobwheel_readonly;
REVOKE ALL ON ALL ROUTINES IN SCHEMA jobwheel FROM PUBLIC, jobwheel_worker, jobwheel_gateway, jobwheel_readonly;

GRANT USAGE ON SCHEMA jobwheel TO jobwheel_worker, jobwheel_gateway, jobwheel_readonly;

-- ---------------------------------------------------------------- jobwheel_worker

GRANT EXECUTE ON FUNCTION
	jobwheel.register_worker, jobwheel.heartbeat, jobwheel.set_worker_state, jobwheel.deregister_worker,
	jobwheel.claim, jobwheel.report_and_claim, jobwheel.complete_many, jobwheel.fail_many,
	jobwheel.complete, jobwheel.fail, jobwheel.release_many, jobwheel.parent_results,
	jobwheel.promote_due, jobwheel.expire_leases, -- the fallbacks for a missing coordinator
	-- reached from the above
	jobwheel._claim_from, jobwheel._claim_start, jobwheel._setting, jobwheel._horizon_held,
	jobwheel._parents_done, jobwheel.backoff, jobwheel._wake, jobwheel._event, jobwheel._bad
TO jobwheel_worker;

GRANT SELECT ON jobwheel.jobs, jobwheel.queues TO jobwheel_worker;
-- Exactly the columns claim, heartbeat, complete, fail, release, promotion,
-- lease expiry and the release of DAG children write.
GRANT UPDATE (state, attempt, run_at, started_at, finished_at, lease_until, worker, last_error, result,
              priority, aged_from, sched_xid, pending_parents) ON jobwheel.jobs TO jobwheel_worker;
GRANT INSERT ON jobwheel.job_errors, jobwheel.events TO jobwheel_worker;
GRANT SELECT, DELETE ON jobwheel.job_deps TO jobwheel_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobwheel.workers, jobwheel.claim_cursors TO jobwheel_worker;
GRANT SELECT, INSERT, UPDATE ON jobwheel.queue_wakeups TO jobwheel_worker;

-- ---------------------------------------------------------------- jobwheel_gateway

GRANT EXECUTE ON FUNCTION
	jobwheel.enqueue, jobwheel.enqueue_batch, jobwheel.submit_workflow, jobwheel.cancel, jobwheel.requeue,
	jobwheel.pause_queue, jobwheel.resume_queue, jobwheel.job_state,
	jobwheel.token_scope, jobwheel.feed, jobwheel.feed_head,
	-- reached from the above
	jobwheel._check_job, jobwheel._check_name, jobwheel._job_problem, jobwheel._int_problem,
	jobwheel._parents_done, jobwheel._wake, jobwheel._event, jobwheel._bad
TO jobwheel_gateway;

GRANT SELECT, INSERT ON jobwheel.jobs, jobwheel.workflows, jobwheel.events TO jobwheel_gateway;
-- What enqueue (has_children of parents), cancel, retry and the release of
-- DAG children write; not result, worker, priority, payload...
GRANT UPDATE (state, attempt, run_at, started_at, finished_at, lease_until, last_error, sched_xid,
              pending_parents, has_children) ON jobwheel.jobs TO jobwheel_gateway;
GRANT SELECT, INSERT, DELETE ON jobwheel.job_deps TO jobwheel_gateway;
GRANT SELECT, INSERT, UPDATE ON jobwheel.queues, jobwheel.queue_wakeups TO jobwheel_gateway;
GRANT SELECT ON jobwheel.job_errors, jobwheel.workers, jobwheel.dlq, jobwheel.workflow_status TO jobwheel_gateway;
GRANT SELECT (scope, hash, revoked_at) ON jobwheel.tokens TO jobwheel_gateway; -- token_scope()
GRANT USAGE ON SEQUENCE jobwheel.jobs_id_seq TO jobwheel_gateway; -- submit_workflow() draws ids first

-- ---------------------------------------------------------------- jobwheel_readonly

GRANT SELECT ON
	jobwheel.jobs, jobwheel.job_errors, jobwheel.job_deps, jobwheel.queues, jobwheel.workers,
	jobwheel.coordinators, jobwheel.events, jobwheel.workflows, jobwheel.schedules,
	jobwheel.schema_migrations, jobwheel.queue_wakeups, jobwheel.claim_cursors,
	jobwheel.queue_stats, jobwheel.dlq, jobwheel.leader, jobwheel.workflow_status
TO jobwheel_readonly;
GRANT SELECT (id, name, scope, created_at, revoked_at) ON jobwheel.tokens TO jobwheel_readonly;
GRANT EXECUTE ON FUNCTION
	jobwheel._leader_key, -- used by the view jobwheel.leader, checked as its reader
	jobwheel.parent_results, jobwheel.job_state, jobwheel.feed, jobwheel.feed_head
TO jobwheel_readonly;

-- ---------------------------------------------------------------- objects this file does not know

DO $$
DECLARE
	-- Functions no role above calls, on purpose: the coordinator's, the
	-- admin commands' (run as the owner) and trigger functions.
	owner_only constant text[] := ARRAY[
		'register_coordinator', 'try_lead', 'deregister_coordinator', 'coordinator_heartbeat',
		'scheduled_between', 'scheduled_since', 'promote_ids', 'age_priorities', 'mark_lost_workers',
		'fail_hung', 'prune', 'prune_events', 'fire_schedule', 'schedule', 'unschedule', '_cron_problem',
		'cancel_workflow', 'create_token', 'revoke_token',
		'_feed_inserted', '_feed_updated', '_feed_worker'];
	roles constant text[] := ARRAY['jobwheel_worker', 'jobwheel_gateway', 'jobwheel_readonly'];
	v record;
BEGIN
	FOR v IN
		SELECT 'function ' || p.oid::regprocedure::text AS what
		FROM pg_proc p
		WHERE p.pronamespace = 'jobwheel'::regnamespace AND p.proname <> ALL (owner_only)
		  AND NOT EXISTS (SELECT 1 FROM unnest(roles) r WHERE has_function_privilege(r, p.oid, 'EXECUTE'))
		UNION ALL
		SELECT 'relation ' || c.oid::regclass::text
		FROM pg_class c
		WHERE c.relnamespace = 'jobwheel'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
		  AND NOT has_any_column_privilege('jobwheel_readonly', c.oid, 'SELECT')
		ORDER BY 1
	LOOP
		RAISE WARNING 'roles.sql: % is granted to no jobwheel role', v.what
			USING HINT = 'it is newer than this roles.sql: add it to roles.sql (or to owner_only there)';
	END LOOP;
END $$;

COMMIT;
