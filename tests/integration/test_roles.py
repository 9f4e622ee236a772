# SPDX-License-Identifier: MIT
"""deploy/sql/roles.sql: a worker logged in as a member of jobwheel_worker and
a gateway as a member of jobwheel_gateway run every job to its end (delayed,
retried, dead, DAG, cancelled, released on shutdown) next to a coordinator
that runs as the owner; each role is refused what it does not need; the file
runs again and again to the same privileges, and flags what a newer
migration adds."""
import os
import signal
import subprocess

import psycopg
import pytest
from psycopg import errors

from conftest import PG_BIN, ROOT, Gateway, Worker, cli, job_errors, one, wait_for, wait_state
from gateway_client import make_token
from test_gateway_sse import SSE, wait_live

ROLES_SQL = os.path.join(ROOT, "deploy", "sql", "roles.sql")
GROUPS = ("jobwheel_worker", "jobwheel_gateway", "jobwheel_readonly")
LOGINS = {"w1": "jobwheel_worker", "g1": "jobwheel_gateway", "r1": "jobwheel_readonly"}


def apply_roles(dsn, check=True):
    """Runs roles.sql with psql as the superuser (the owner here), as an operator would."""
    r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn,
                        "-f", ROLES_SQL], capture_output=True, text=True)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def as_user(dsn, user):
    assert "://postgres@" in dsn
    return dsn.replace("://postgres@", f"://{user}@")


def drop_roles(admin, names):
    for name in names:
        try:
            admin.execute(f"DROP ROLE IF EXISTS {name}")
        except errors.DependentObjectsStillExist:
            pass  # granted in a database of another test still alive: it stays


@pytest.fixture
def roles(pg, dsn):
    """roles.sql applied to the test's database, and login roles w1, g1, r1
    in its three groups. Yields psql's result of that first run."""
    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        # So that this run creates the groups (the databases of earlier tests are gone).
        drop_roles(admin, list(LOGINS) + list(GROUPS))
        first = apply_roles(dsn)
        for user, group in LOGINS.items():
            admin.execute(f"CREATE ROLE {user} LOGIN IN ROLE {group}")
        yield first
        drop_roles(admin, LOGINS)


@pytest.fixture
def procs(roles, tmp_path):
    """Starts a jobwheel process with a dsn of its own: procs(Worker, dsn, concurrency=4)."""
    started = []

    def start(cls, dsn, *args, **settings):
        p = cls(dsn, tmp_path, *args, **settings)
        started.append(p)
        return p
    yield start
    for p in started:
        p.kill()


@pytest.fixture
def conns(roles, dsn):
    """Autocommit connections as w1, g1 and r1."""
    opened = {u: psycopg.connect(as_user(dsn, u), autocommit=True) for u in LOGINS}
    yield opened
    for c in opened.values():
        c.close()


def refused(conn, sql, *params, naming):
    """sql fails with insufficient_privilege, and the message names the object refused."""
    with pytest.raises(errors.InsufficientPrivilege) as e:
        conn.execute(sql, params)
    assert naming in str(e.value), str(e.value)


def post(gw, path, body, token, want=201):
    status, value = gw.post(path, body, token=token)
    assert status == want, (path, status, value)
    return value


def get(gw, path, token):
    status, value = gw.get(path, token=token)
    assert status == 200, (path, status, value)
    return value


def acl_snapshot(db):
    """Every privilege in schema jobwheel, and the three groups' attributes."""
    return db.execute("""
        SELECT 'schema', nspname, nspacl::text FROM pg_namespace WHERE nspname = 'jobwheel'
        UNION ALL SELECT 'relation', relname, relacl::text FROM pg_class WHERE relnamespace = 'jobwheel'::regnamespace
        UNION ALL SELECT 'column', attrelid::regclass::text || '.' || attname, attacl::text FROM pg_attribute
                  WHERE attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'jobwheel'::regnamespace)
                    AND attacl IS NOT NULL
        UNION ALL SELECT 'function', oid::regprocedure::text, proacl::text FROM pg_proc
                  WHERE pronamespace = 'jobwheel'::regnamespace
        UNION ALL SELECT 'role', rolname, concat_ws(',', rolcanlogin, rolinherit, rolsuper, rolcreaterole)
                  FROM pg_roles WHERE rolname LIKE 'jobwheel\\_%'
        ORDER BY 1, 2""").fetchall()


# ---------------------------------------------------------------- the processes under their roles

def test_worker_and_gateway_run_every_job_to_its_end_under_their_roles(dsn, db, roles, procs, coordinators):
    coordinator = coordinators.start()  # as the owner (the superuser that migrated)
    worker = procs(Worker, as_user(dsn, "w1"), concurrency=4, lease_ms=2000, heartbeat_ms=200, poll_ms=200,
                   shutdown_grace_ms=200).wait_registered(db)
    gw = wait_live(procs(Gateway, as_user(dsn, "g1")).wait_registered())

    # Each process's sessions really are its login role's.
    sessions = set(db.execute("SELECT usename, application_name FROM pg_stat_activity "
                              "WHERE datname = current_database() AND application_name LIKE 'jobwheel-%'"))
    assert {("w1", "jobwheel-worker"), ("w1", "jobwheel-worker-claims"), ("g1", "jobwheel-gateway"),
            ("g1", "jobwheel-gateway feed"), ("postgres", "jobwheel-coordinator")} <= sessions, sessions
    assert {u for u, app in sessions if app.startswith(("jobwheel-worker", "jobwheel-gateway"))} == {"w1", "g1"}

    # Tokens exist from now on: the gateway checks each (token_scope() as g1).
    read, write, admin = (make_token(dsn, n, s) for n, s in (("dash", "read"), ("app", "write"), ("ops", "admin")))
    assert gw.get("/api/jobs")[0] == 401
    assert gw.get("/api/jobs", token="jw_" + "0" * 64)[0] == 401
    assert gw.post("/api/queues/default/pause", token=write)[0] == 403
    sse = SSE(gw, "types=job", token=read).ready()

    # Enqueued through the REST API (g1) ...
    noop = post(gw, "/api/jobs", {"kind": "noop"}, write)
    assert noop["state"] == "ready"
    delayed = post(gw, "/api/jobs", {"kind": "noop", "delay_ms": 300}, write)
    assert delayed["state"] == "scheduled"
    flaky = post(gw, "/api/jobs", {"kind": "fail", "payload": {"message": "flaky", "retryable": True},
                                   "max_attempts": 2, "backoff_base_ms": 100}, write)["id"]
    batch = post(gw, "/api/jobs/batch", {"jobs": [{"kind": "noop"}, {"kind": "noop", "unique_key": "once"}]},
                 write)["ids"]
    wf = post(gw, "/api/workflows", {"name": "roles", "jobs": [
        {"key": "a", "kind": "noop"},
        {"key": "b", "kind": "noop", "depends_on": ["a"]},
        {"key": "c", "kind": "fail", "payload": {"message": "no", "retryable": False}},
        {"key": "d", "kind": "noop", "depends_on": ["c"]}]}, write)
    far = post(gw, "/api/jobs", {"kind": "noop", "delay_ms": 3600000}, write)["id"]
    long = post(gw, "/api/jobs", {"kind": "sleep", "payload": {"ms": 60000}}, write)["id"]
    # ... and with SQL by the owner.
    sql_now = one(db, "SELECT jobwheel.enqueue('noop')")
    sql_delayed = one(db, "SELECT jobwheel.enqueue('noop', run_at => now() + interval '300 ms')")

    # The sleeping job's lease is renewed by w1's heartbeats, then it is cancelled through g1.
    wait_state(db, long, "running")
    lease = one(db, "SELECT lease_until FROM jobwheel.jobs WHERE id = %s", long)
    wait_for(lambda: one(db, "SELECT lease_until FROM jobwheel.jobs WHERE id = %s", long) > lease,
             what="the heartbeat to renew the lease")
    assert post(gw, f"/api/jobs/{long}/cancel", None, write, want=200) == {"id": long, "state": "cancelled"}
    assert post(gw, f"/api/jobs/{far}/cancel", None, write, want=200)["state"] == "cancelled"

    # Pause and resume (admin): a job enqueued meanwhile runs after the resume.
    assert post(gw, "/api/queues/default/pause", None, admin, want=200)["paused"] is True
    queues = {q["name"]: q for q in get(gw, "/api/queues", read)["queues"]}
    assert queues["default"]["paused"] is True
    after_pause = post(gw, "/api/jobs", {"kind": "noop"}, write)["id"]
    assert post(gw, "/api/queues/default/resume", None, admin, want=200)["paused"] is False

    succeeded = [noop["id"], delayed["id"], *batch, wf["jobs"]["a"], wf["jobs"]["b"], sql_now, sql_delayed,
                 after_pause]
    for job in succeeded:
        wait_state(db, job, "succeeded")
    for job in (flaky, wf["jobs"]["c"]):
        wait_state(db, job, "dead")
    for job in (wf["jobs"]["d"], long, far):
        wait_state(db, job, "cancelled")
    assert job_errors(db, flaky) == ["flaky", "flaky"]
    assert one(db, "SELECT last_error FROM jobwheel.jobs WHERE id = %s", wf["jobs"]["d"]) == \
        f"upstream job {wf['jobs']['c']} dead"
    ran = succeeded + [flaky, wf["jobs"]["c"], long]
    assert {w for (w,) in db.execute("SELECT DISTINCT worker FROM jobwheel.jobs WHERE id = ANY (%s)", (ran,))} == \
        {worker.name}
    for job in (delayed["id"], sql_delayed):
        assert one(db, "SELECT started_at >= run_at FROM jobwheel.jobs WHERE id = %s", job)

    # Retry of a dead job through g1: it runs its two attempts again.
    assert post(gw, f"/api/jobs/{flaky}/retry", None, write, want=200)["state"] == "ready"
    wait_for(lambda: len(job_errors(db, flaky)) == 4 and one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s",
                                                              flaky) == "dead", what="the retried job to die again")

    # The SSE feed as g1 relayed the jobs' lives.
    log = []

    def seen(e):
        log.append((e.data["id"], e.data["state"]))
        return (noop["id"], "succeeded") in log and (wf["jobs"]["d"], "cancelled") in log and \
            log.count((flaky, "dead")) == 2
    sse.until(lambda e: e.event == "job" and seen(e), timeout=15, what="the jobs' events")
    assert [s for i, s in log if i == noop["id"]] == ["ready", "running", "succeeded"]
    assert [s for i, s in log if i == delayed["id"]] == ["scheduled", "ready", "running", "succeeded"]
    sse.close()

    # Reads as g1.
    job = get(gw, f"/api/jobs/{flaky}", read)
    assert job["state"] == "dead" and [e["error"] for e in job["errors"]] == ["flaky"] * 4
    assert job["worker"] == worker.name
    assert {j["id"] for j in get(gw, "/api/dlq", read)["jobs"]} >= {flaky, wf["jobs"]["c"]}
    assert worker.name in {w["id"] for w in get(gw, "/api/workers", read)["workers"]}
    assert get(gw, f"/api/workflows/{wf['workflow_id']}", read)["state"] == "failed"
    page = get(gw, "/api/jobs?state=succeeded&limit=1000", read)["jobs"]
    assert set(succeeded) <= {j["id"] for j in page}
    status, metrics = gw.get("/metrics")
    assert status == 200 and 'jobwheel_jobs{queue="default",state="succeeded"}' in metrics

    # SIGTERM: w1 marks itself stopping, gives back the running job without
    # spending an attempt, deregisters and exits 0.
    held = post(gw, "/api/jobs", {"kind": "sleep", "payload": {"ms": 60000}}, write)["id"]
    wait_state(db, held, "running")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()
    assert db.execute("SELECT state, attempt FROM jobwheel.jobs WHERE id = %s", (held,)).fetchone() == ("ready", 0)
    assert one(db, "SELECT count(*) FROM jobwheel.workers WHERE id = %s", worker.name) == 0

    for p in (worker, gw, coordinator):
        assert "permission denied" not in p.output(), p.output()


# ---------------------------------------------------------------- what each role is refused

def test_each_role_is_refused_what_it_does_not_need(dsn, db, conns):
    make_token(dsn, "ops", "admin")
    job = one(db, "SELECT jobwheel.enqueue('noop', payload => '{\"a\": 1}')")
    w1, g1, r1 = conns["w1"], conns["g1"], conns["r1"]
    before = db.execute("SELECT count(*), sum(hashtext(j::text)) FROM jobwheel.jobs j").fetchone()

    # jobwheel_worker: no deleting, inserting or rewriting jobs, no token reads, no DDL.
    refused(w1, "DELETE FROM jobwheel.jobs", naming="table jobs")
    refused(w1, "INSERT INTO jobwheel.jobs (kind, payload) VALUES ('exec', '{\"command\": \"sh\"}')",
            naming="table jobs")
    refused(w1, "UPDATE jobwheel.jobs SET payload = '{\"command\": \"sh\"}' WHERE id = %s", job, naming="table jobs")
    refused(w1, "SELECT jobwheel.enqueue('exec')", naming="function enqueue")
    refused(w1, "SELECT * FROM jobwheel.tokens", naming="table tokens")
    refused(w1, "DROP TABLE jobwheel.jobs", naming="must be owner of table jobs")

    # jobwheel_gateway: no claiming or completing, no forged results, no deletes.
    refused(g1, "SELECT * FROM jobwheel.claim('g1', '{default}', 1)", naming="function claim")
    refused(g1, "SELECT jobwheel.complete(%s, 1)", job, naming="function complete")
    refused(g1, "UPDATE jobwheel.jobs SET result = '{\"forged\": true}' WHERE id = %s", job, naming="table jobs")
    refused(g1, "UPDATE jobwheel.jobs SET worker = 'nobody' WHERE id = %s", job, naming="table jobs")
    refused(g1, "DELETE FROM jobwheel.jobs", naming="table jobs")
    refused(g1, "DROP TABLE jobwheel.events", naming="must be owner of table events")

    # Neither mints tokens (only the owner does) nor prunes.
    for conn in (w1, g1):
        refused(conn, "SELECT jobwheel.create_token('evil', 'admin', repeat('x', 40))", naming="function create_token")
        refused(conn, "INSERT INTO jobwheel.tokens (name, scope, hash) VALUES ('evil', 'admin', sha256('x'))",
                naming="table tokens")
        refused(conn, "SELECT jobwheel.prune(0, 0)", naming="function prune")

    # jobwheel_readonly: reads everything but token hashes; writes nothing.
    assert r1.execute("SELECT queue, state, jobs FROM jobwheel.queue_stats").fetchall() == [("default", "ready", 1)]
    assert one(r1, "SELECT payload FROM jobwheel.jobs WHERE id = %s", job) == {"a": 1}
    for rel in ("dlq", "leader", "workers", "events", "job_errors", "coordinators", "schedules", "workflow_status"):
        r1.execute(f"SELECT * FROM jobwheel.{rel}").fetchall()
    assert r1.execute("SELECT name, scope FROM jobwheel.tokens").fetchall() == [("ops", "admin")]
    refused(r1, "SELECT hash FROM jobwheel.tokens", naming="table tokens")
    refused(r1, "SELECT jobwheel.enqueue('noop')", naming="function enqueue")
    refused(r1, "SELECT * FROM jobwheel.enqueue_batch('[{\"kind\": \"noop\"}]')", naming="function enqueue_batch")
    refused(r1, "SELECT jobwheel.cancel(%s)", job, naming="function cancel")
    refused(r1, "UPDATE jobwheel.jobs SET state = 'cancelled' WHERE id = %s", job, naming="table jobs")
    refused(r1, "INSERT INTO jobwheel.jobs (kind) VALUES ('noop')", naming="table jobs")

    # Nothing changed, and the tables are all there.
    assert db.execute("SELECT count(*), sum(hashtext(j::text)) FROM jobwheel.jobs j").fetchone() == before
    assert one(db, "SELECT count(*) FROM jobwheel.tokens") == 1
    assert one(db, "SELECT to_regclass('jobwheel.events') IS NOT NULL")


def test_what_the_roles_need_they_may_do(dsn, db, conns):
    """The other side of the refusals: the same sessions can do their work."""
    w1, g1, r1 = conns["w1"], conns["g1"], conns["r1"]
    job = one(g1, "SELECT jobwheel.enqueue('noop')")
    w1.execute("SELECT jobwheel.register_worker('w1-test', 'host', 1, '{default}', 1)")
    assert [r[0] for r in w1.execute("SELECT id FROM jobwheel.claim('w1-test', '{default}', 10)")] == [job]
    assert one(w1, "SELECT jobwheel.complete(%s, 1, '{\"ok\": true}')", job) is True
    assert one(r1, "SELECT result FROM jobwheel.jobs WHERE id = %s", job) == {"ok": True}
    assert one(g1, "SELECT jobwheel.token_scope(NULL)") == "open"


def test_the_cli_as_readonly_shows_status_and_cannot_enqueue(dsn, db, roles):
    one(db, "SELECT jobwheel.enqueue('noop')")
    r1 = as_user(dsn, "r1")
    out = cli(r1, "status").stdout
    assert "default" in out
    r = cli(r1, "enqueue", "noop", check=False)
    assert r.returncode != 0 and "permission denied for function enqueue" in r.stderr, (r.returncode, r.stderr)
    assert one(db, "SELECT count(*) FROM jobwheel.jobs") == 1


# ---------------------------------------------------------------- roles.sql itself

def test_roles_sql_runs_again_to_the_same_privileges(dsn, db, roles):
    assert roles.stderr == ""  # no WARNING: it knows every object of the schema
    before = acl_snapshot(db)
    for _ in range(2):
        again = apply_roles(dsn)
        assert again.stderr == ""
        assert acl_snapshot(db) == before
    assert db.execute("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY (%s) ORDER BY 1",
                      (list(GROUPS),)).fetchall() == [(g, False) for g in sorted(GROUPS)]
    # PostgreSQL's default EXECUTE for PUBLIC is gone from every function of the schema.
    public = db.execute("SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = "
                        "'jobwheel'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE')")
    assert public.fetchall() == []


def test_a_function_and_table_a_newer_migration_adds_are_flagged_and_closed(dsn, db, conns):
    r1 = conns["r1"]
    db.execute("CREATE FUNCTION jobwheel.newer() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    db.execute("CREATE TABLE jobwheel.newer_things (id int)")
    assert one(r1, "SELECT jobwheel.newer()") == 1  # PostgreSQL's default, until roles.sql runs again
    r = apply_roles(dsn)
    assert "WARNING:  roles.sql: function jobwheel.newer() is granted to no jobwheel role" in r.stderr, r.stderr
    assert "relation jobwheel.newer_things is granted to no jobwheel role" in r.stderr, r.stderr
    refused(r1, "SELECT jobwheel.newer()", naming="function newer")
    refused(r1, "SELECT * FROM jobwheel.newer_things", naming="table newer_things")


def test_roles_sql_before_migrate_fails_and_says_to_migrate(pg):
    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS jw_roles_empty")
        admin.execute("CREATE DATABASE jw_roles_empty")
        try:
            r = apply_roles(pg.dsn("jw_roles_empty"), check=False)
            assert r.returncode != 0
            assert "schema jobwheel is missing" in r.stderr and "jobwheel migrate" in r.stderr, r.stderr
        finally:
            admin.execute("DROP DATABASE jw_roles_empty")
