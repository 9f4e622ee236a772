# SPDX-License-Identifier: MIT
"""The jobwheel CLI against a real database: enqueue (one and --batch), status,
job ID and dlq, asserting on what the user sees and on the rows left behind."""
import json

import psycopg
import pytest

from conftest import cli, one, wait_for


def jobs_count(db):
    return one(db, "SELECT count(*) FROM jobwheel.jobs")


def make_dead(db, dsn, kind="email", queue="default", error="boom"):
    """Enqueues a job with the CLI, claims it as worker w1 and fails it for good."""
    job_id = int(cli(dsn, "enqueue", kind, "--queue", queue).stdout)
    claimed = db.execute("SELECT id, attempt FROM jobwheel.claim('w1', ARRAY[%s], 1)", (queue,)).fetchone()
    assert claimed[0] == job_id
    assert one(db, "SELECT jobwheel.fail(%s, %s, %s, false)", job_id, claimed[1], error) is True
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", job_id) == "dead"
    return job_id


# ------------------------------------------------------------------ enqueue KIND

def test_enqueue_prints_the_id_of_a_job_with_the_given_fields(dsn, db):
    r = cli(dsn, "enqueue", "email", "--payload", '{"to": "a@example.com", "n": [1, 2]}', "--queue", "mail",
            "--priority", "-5", "--max-attempts", "7", "--timeout-ms", "1500", "--backoff-base-ms", "250")
    assert r.stdout.strip().isdigit() and r.stderr == ""
    row = db.execute("SELECT kind, queue, priority, payload, max_attempts, timeout_ms, backoff_base_ms, state "
                     "FROM jobwheel.jobs WHERE id = %s", (int(r.stdout),)).fetchone()
    assert row == ("email", "mail", -5, {"to": "a@example.com", "n": [1, 2]}, 7, 1500, 250, "ready")


def test_enqueue_defaults_and_json_output(dsn, db):
    r = cli(dsn, "--json", "enqueue", "noop")
    job_id = json.loads(r.stdout)["id"]
    row = db.execute("SELECT queue, priority, payload, max_attempts, state FROM jobwheel.jobs WHERE id = %s",
                     (job_id,)).fetchone()
    assert row == ("default", 0, {}, 4, "ready")


def test_enqueue_unique_key_returns_the_held_job(dsn, db):
    first = cli(dsn, "enqueue", "email", "--unique-key", "welcome:42").stdout
    second = cli(dsn, "enqueue", "email", "--unique-key=welcome:42", "--priority", "3").stdout
    assert first == second
    assert jobs_count(db) == 1
    assert one(db, "SELECT unique_key FROM jobwheel.jobs") == "welcome:42"


@pytest.mark.parametrize("delay,ms", [("5s", 5000), ("500ms", 500), ("2m", 120000)])
def test_enqueue_delay_schedules_the_job(dsn, db, delay, ms):
    job_id = int(cli(dsn, "enqueue", "report", "--delay", delay).stdout)
    state, delta_ms = db.execute(
        "SELECT state, extract(epoch FROM run_at - created_at) * 1000 FROM jobwheel.jobs WHERE id = %s",
        (job_id,)).fetchone()
    assert state == "scheduled"
    assert abs(float(delta_ms) - ms) < 1  # run_at = enqueue time + delay, on the database clock


def test_enqueue_at_a_time(dsn, db):
    job_id = int(cli(dsn, "enqueue", "report", "--at", "2999-01-02T03:04:05Z").stdout)
    state, run_at = db.execute("SELECT state, to_char(run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') "
                               "FROM jobwheel.jobs WHERE id = %s", (job_id,)).fetchone()
    assert (state, run_at) == ("scheduled", "2999-01-02 03:04:05")


@pytest.mark.parametrize("args,code,message", [
    (["--payload", '{"to": '], 2, "--payload: not valid JSON"),
    (["--payload", '{"a": 1} trailing'], 2, "--payload: not valid JSON"),
    (["--payload", "[1, 2]"], 2, "--payload: must be a JSON object"),
    (["--queue", "Bad"], 1, 'queue: "Bad" is not a valid name'),
    (["--delay", "5s", "--at", "2030-01-01T00:00:00Z"], 2, "--delay and --at cannot be used together"),
    (["--delay", "soon"], 2, '--delay: "soon" is not a duration'),
    (["--at", "next tuesday"], 1, "--at: invalid input syntax"),
    (["--frobnicate"], 2, 'unknown flag "--frobnicate"'),
    (["--priority", "high"], 2, '--priority: "high" is not an integer'),
    (["--priority", "1.5"], 2, '--priority: "1.5" is not an integer'),
    (["--priority", "99999999999"], 2, "--priority: \"99999999999\" is out of range"),
    (["--priority"], 2, "--priority needs a value"),
    (["--max-attempts", "0"], 1, "max_attempts: 0 is out of range"),
    (["--depends-on", "1,x"], 2, "--depends-on: \"1,x\" is not a comma-separated list of job ids"),
    (["--queue", "a", "--queue", "b"], 2, "--queue given twice"),
])
def test_enqueue_rejects_bad_input_and_inserts_nothing(dsn, db, args, code, message):
    r = cli(dsn, "enqueue", "email", *args, check=False)
    assert r.returncode == code, r.stderr
    assert message in r.stderr
    assert r.stdout == ""
    assert jobs_count(db) == 0


def test_enqueue_without_kind_is_a_usage_error(dsn, db):
    r = cli(dsn, "enqueue", check=False)
    assert r.returncode == 2 and "missing KIND" in r.stderr and "usage:" in r.stderr
    r = cli(dsn, "enqueue", "a", "b", check=False)
    assert r.returncode == 2 and 'unexpected argument "b"' in r.stderr
    assert jobs_count(db) == 0


def test_enqueue_bad_database_url_fails_cleanly(pg):
    r = cli(pg.dsn("no_such_database"), "enqueue", "email", check=False)
    assert r.returncode == 1 and "cannot connect" in r.stderr and r.stdout == ""


# ------------------------------------------------------------------ enqueue --batch

def test_batch_inserts_every_line_in_order(dsn, db):
    lines = [json.dumps({"kind": "noop", "payload": {"i": i}, "priority": i % 3}) for i in range(2500)]
    lines.insert(10, "")        # blank lines are skipped
    lines.insert(20, "   \r")
    lines.append(json.dumps({"kind": "report", "queue": "slow", "delay_ms": 60000}))
    r = cli(dsn, "enqueue", "--batch", input="\n".join(lines) + "\n")
    assert r.stdout == "enqueued 2501 jobs\n"
    rows = db.execute("SELECT payload->'i', priority, kind, queue, state FROM jobwheel.jobs ORDER BY id").fetchall()
    assert len(rows) == 2501
    assert [row[0] for row in rows[:2500]] == list(range(2500))  # input order across chunks of 1000
    assert rows[7][1] == 1
    assert rows[-1][2:] == ("report", "slow", "scheduled")


def test_batch_json_prints_the_ids(dsn, db):
    r = cli(dsn, "--json", "enqueue", "--batch", input='{"kind": "a"}\n{"kind": "b"}\n')
    ids = json.loads(r.stdout)["ids"]
    assert [one(db, "SELECT kind FROM jobwheel.jobs WHERE id = %s", i) for i in ids] == ["a", "b"]


def test_batch_empty_input(dsn, db):
    assert cli(dsn, "enqueue", "--batch", input="").stdout == "enqueued 0 jobs\n"


@pytest.mark.parametrize("bad,code,message", [
    ('{"kind": "noop"', 2, "line 1502: not valid JSON"),
    ('["noop"]', 2, "line 1502: must be a JSON object"),
    ('{"kind": "noop"} {"kind": "x"}', 2, "line 1502: not valid JSON"),
    ('{"kind": "NoOp"}', 1, 'line 1502: jobwheel: kind: "NoOp" is not a valid name'),
    ('{"kind": "noop", "colour": "red"}', 1, "line 1502: jobwheel: colour: unknown field"),
    # plain jobs, sent by COPY: the table refuses them, enqueue_batch() names the field
    ('{"kind": "noop", "max_attempts": 0}', 1, "line 1502: jobwheel: max_attempts: 0 is out of range 1..1000"),
    ('{"kind": "noop", "queue": "Bad q"}', 1, 'line 1502: jobwheel: queue: "Bad q" is not a valid name'),
    ('{"kind": "noop", "payload": [1]}', 1, "line 1502: jobwheel: payload: must be a JSON object, not array"),
    ('{"kind": "noop", "priority": 2147483648}', 1, "line 1502: jobwheel: priority: 2147483648 is out of range"),
    # a control byte between the tokens: whitespace to cJSON, an error to PostgreSQL (and so on either path)
    ('{"kind":\x01"noop"}', 1, "lines 1001-1507: invalid input syntax for type json"),
])
def test_batch_bad_line_inserts_nothing_and_names_the_line(dsn, db, bad, code, message):
    # 1500 good lines (a chunk of 1000 already sent), a blank line, the bad one, more good ones.
    good = [json.dumps({"kind": "noop", "payload": {"i": i}}) for i in range(1500)]
    text = "\n".join(good + ["", bad] + good[:5]) + "\n"
    r = cli(dsn, "enqueue", "--batch", input=text, check=False)
    assert r.returncode == code, r.stderr
    assert message in r.stderr
    assert r.stdout == ""
    assert jobs_count(db) == 0


# Plain jobs go in by COPY, others (and all under --json) through
# jobwheel.enqueue_batch(): both must store the same rows.
SAME_JOBS = [
    {"kind": "noop"},
    {"kind": "email", "queue": "mail", "priority": -7, "max_attempts": 9, "timeout_ms": 1, "backoff_base_ms": 0},
    {"payload": {"big": 123456789012345678901234567890, "pi": 3.14159265358979323846, "e": 1.5e300},
     "kind": "noop"},
    {"kind": "noop", "payload": {"text": "tab\there, back\\slash, quote \" and \u00e9 \ud83d\ude00",
                                 "deep": {"a": [1, {"b": None}, True]}}},
    {"kind": "noop", "payload": {}, "priority": 2147483647},
]
SAME_COLUMNS = ("kind, queue, payload::text, priority, max_attempts, timeout_ms, backoff_base_ms, state, trigger, "
                "attempt, run_at = created_at")


def test_batch_copy_and_enqueue_batch_store_the_same_jobs(dsn, db):
    # json.dumps would turn the huge numbers into floats: write them as text.
    lines = [json.dumps(j).replace("1.2345678901234568e+29", "123456789012345678901234567890")
             .replace("3.141592653589793", "3.14159265358979323846") for j in SAME_JOBS]
    lines.append('{\t"kind" :\t"noop" , "payload" : { "a" : "x\\ty" } }')  # tabs between the tokens
    text = "\n".join(lines) + "\n"
    assert cli(dsn, "enqueue", "--batch", input=text).stdout == f"enqueued {len(lines)} jobs\n"
    copied = db.execute(f"SELECT {SAME_COLUMNS} FROM jobwheel.jobs ORDER BY id").fetchall()
    db.execute("DELETE FROM jobwheel.jobs")
    ids = json.loads(cli(dsn, "--json", "enqueue", "--batch", input=text).stdout)["ids"]
    through_function = db.execute(f"SELECT {SAME_COLUMNS} FROM jobwheel.jobs ORDER BY id").fetchall()
    assert len(ids) == len(lines) and copied == through_function
    assert '"big": 123456789012345678901234567890' in copied[2][2]  # every digit kept
    assert copied[3][2].startswith('{"deep": {"a": [1, {"b": null}, true]}, "text": "tab\\there, back\\\\slash')


def test_batch_wakes_the_queues_it_fills(dsn, db):
    woken = set()
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.add_notify_handler(lambda n: woken.add(n.payload))
        listener.execute("LISTEN jobwheel_wake")
        lines = [json.dumps({"kind": "noop", "queue": q}) for q in ("mail", "mail", "reports", "mail")]
        cli(dsn, "enqueue", "--batch", input="\n".join(lines) + "\n")
        wait_for(lambda: listener.execute("SELECT 1") and woken >= {"mail", "reports"}, what="both wake-ups")
    assert woken == {"mail", "reports"}


def test_batch_refuses_kind_and_flags(dsn, db):
    r = cli(dsn, "enqueue", "--batch", "noop", input='{"kind": "a"}\n', check=False)
    assert r.returncode == 2 and "--batch" in r.stderr
    assert jobs_count(db) == 0


# ------------------------------------------------------------------ enqueue --workflow

WORKFLOW = {"name": "monthly", "jobs": [
    {"key": "sales", "kind": "noop", "payload": {"echo": 1}},
    {"key": "refunds", "kind": "noop", "queue": "slow"},
    {"key": "merge-all", "kind": "noop", "depends_on": ["sales", "refunds"]},
    {"key": "cleanup", "kind": "noop", "depends_on": ["merge-all"], "trigger": "all_done"},
]}


def workflow_tables(db):
    return tuple(one(db, f"SELECT count(*) FROM jobwheel.{t}") for t in ("jobs", "workflows", "job_deps"))


def test_workflow_file_submits_the_graph_and_prints_the_ids(dsn, db, tmp_path):
    path = tmp_path / "monthly.json"
    path.write_text(json.dumps(WORKFLOW, indent=2))
    r = cli(dsn, "enqueue", "--workflow", str(path))
    lines = r.stdout.splitlines()
    wf = one(db, "SELECT id FROM jobwheel.workflows WHERE name = 'monthly'")
    assert lines[0] == f"workflow {wf}: 4 jobs" and r.stderr == ""
    ids = dict(line.split() for line in lines[1:])
    assert list(ids) == ["sales", "refunds", "merge-all", "cleanup"]  # in the file's order
    rows = db.execute("SELECT id, kind, queue, state, trigger, depends_on, workflow_id FROM jobwheel.jobs "
                      "ORDER BY id").fetchall()
    i = {k: int(v) for k, v in ids.items()}
    assert rows == [(i["sales"], "noop", "default", "ready", "all_success", None, wf),
                    (i["refunds"], "noop", "slow", "ready", "all_success", None, wf),
                    (i["merge-all"], "noop", "default", "blocked", "all_success", [i["sales"], i["refunds"]], wf),
                    (i["cleanup"], "noop", "default", "blocked", "all_done", [i["merge-all"]], wf)]

    # --json, from stdin: submit_workflow()'s answer as it is, on one line
    r = cli(dsn, "--json", "enqueue", "--workflow", "-", input=json.dumps(WORKFLOW))
    assert r.stdout.count("\n") == 1
    out = json.loads(r.stdout)
    assert out["workflow_id"] == wf + 1 and set(out["jobs"]) == set(ids)
    assert one(db, "SELECT count(*) FROM jobwheel.jobs WHERE workflow_id = %s", out["workflow_id"]) == 4
    assert workflow_tables(db) == (8, 2, 6)


def test_workflow_with_a_cycle_fails_naming_it_and_inserts_nothing(dsn, db, tmp_path):
    path = tmp_path / "cycle.json"
    path.write_text(json.dumps({"jobs": [{"key": "a", "kind": "noop", "depends_on": ["c"]},
                                         {"key": "b", "kind": "noop", "depends_on": ["a"]},
                                         {"key": "c", "kind": "noop", "depends_on": ["b"]}]}))
    r = cli(dsn, "enqueue", "--workflow", str(path), check=False)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "jobwheel enqueue: depends_on: cycle: a -> c -> b -> a (each job depends on the next)\n"
    assert workflow_tables(db) == (0, 0, 0)


@pytest.mark.parametrize("text,message", [
    ('{"jobs": [{"key": "a", "kind": "noop"}', "not valid JSON at offset"),
    ("", "not valid JSON at offset 0"),
    ('[{"key": "a", "kind": "noop"}]', "must be a JSON object"),
    ('{"jobs": []} {"jobs": []}', "not valid JSON at offset 13 (after the value)"),
    ('{"jobs": [{"key": "a\x00", "kind": "noop"}]}', "not valid JSON at offset 20"),  # libpq would cut at NUL
])
def test_workflow_file_that_is_not_a_json_object_exits_2(dsn, db, tmp_path, text, message):
    path = tmp_path / "broken.json"
    path.write_text(text)
    r = cli(dsn, "enqueue", "--workflow", str(path), check=False)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"jobwheel enqueue: {path}: ") and message in r.stderr, r.stderr
    r = cli(dsn, "enqueue", "--workflow", "-", input=text, check=False)
    assert r.returncode == 2 and r.stderr.startswith("jobwheel enqueue: stdin: ")
    assert workflow_tables(db) == (0, 0, 0)


def test_workflow_larger_than_64_mib_exits_2(dsn, db):
    r = cli(dsn, "enqueue", "--workflow", "-", input=" " * (64 * 1024 * 1024) + "{}", check=False)
    assert r.returncode == 2 and r.stderr == "jobwheel enqueue: stdin: larger than 64 MiB\n"
    assert workflow_tables(db) == (0, 0, 0)


@pytest.mark.parametrize("args,code,message", [
    (["noop", "--workflow", "wf.json"], 2, "--workflow reads every job from FILE: no KIND, --batch or job flags"),
    (["--workflow", "wf.json", "--batch"], 2, "--workflow reads every job from FILE"),
    (["--workflow=wf.json", "--queue", "q"], 2, "--workflow reads every job from FILE"),
    (["--workflow"], 2, "--workflow needs a value"),
    (["--workflow="], 2, "--workflow needs a value"),
    (["--workflow", "wf.json", "--workflow", "wf.json"], 2, "--workflow given twice"),
    (["--workflow", "no-such.json"], 1, "jobwheel enqueue: no-such.json: No such file or directory"),
])
def test_workflow_usage_errors(dsn, db, tmp_path, monkeypatch, args, code, message):
    (tmp_path / "wf.json").write_text(json.dumps(WORKFLOW))
    monkeypatch.chdir(tmp_path)
    r = cli(dsn, "enqueue", *args, check=False)
    assert r.returncode == code and message in r.stderr, r.stderr
    assert r.stdout == ""
    assert workflow_tables(db) == (0, 0, 0)


# ------------------------------------------------------------------ status

def test_status_shows_counts_per_queue_and_workers(dsn, db):
    for _ in range(3):
        cli(dsn, "enqueue", "noop", "--queue", "alpha")
    cli(dsn, "enqueue", "noop", "--queue", "alpha", "--delay", "1h")
    db.execute("SELECT jobwheel.register_worker('w-1', 'host-a', 4242, '{alpha}', 8)")
    db.execute("SELECT * FROM jobwheel.claim('w-1', '{alpha}', 1)")
    db.execute("SELECT jobwheel.pause_queue('beta')")

    r = cli(dsn, "status")
    lines = r.stdout.splitlines()
    header = lines[0].split()
    assert header[:9] == ["QUEUE", "PAUSED", "BLOCKED", "SCHEDULED", "READY", "RUNNING", "SUCCEEDED", "DEAD",
                          "CANCELLED"]
    alpha = next(line.split() for line in lines if line.startswith("alpha "))
    assert alpha[:9] == ["alpha", "no", "0", "1", "2", "1", "0", "0", "0"]
    beta = next(line.split() for line in lines if line.startswith("beta "))
    assert beta[:2] == ["beta", "yes"] and beta[-1] == "-"  # paused, nothing ready
    worker = next(line.split() for line in lines if line.startswith("w-1 "))
    assert worker[:5] == ["w-1", "host-a", "4242", "active", "alpha"]
    assert worker[-1] == "1/8"  # running jobs / concurrency

    data = json.loads(cli(dsn, "--json", "status").stdout)
    queues = {q["queue"]: q for q in data["queues"]}
    assert queues["alpha"]["counts"] == {"blocked": 0, "scheduled": 1, "ready": 2, "running": 1,
                                         "succeeded": 0, "dead": 0, "cancelled": 0}
    assert queues["alpha"]["paused"] is False and queues["alpha"]["oldest_ready_s"] >= 0
    assert queues["beta"]["paused"] is True and queues["beta"]["oldest_ready_s"] is None
    assert data["workers"][0]["id"] == "w-1" and data["workers"][0]["running_jobs"] == 1
    assert data["workers"][0]["queues"] == ["alpha"]


def test_status_on_an_empty_database(dsn):
    assert "no queues yet" in cli(dsn, "status").stdout
    assert json.loads(cli(dsn, "status", "--json").stdout) == {"queues": [], "workers": []}


# ------------------------------------------------------------------ job ID

def test_job_shows_fields_and_attempt_errors(dsn, db):
    job_id = make_dead(db, dsn, kind="email", queue="mail", error="smtp said no\nsecond line")
    r = cli(dsn, "job", str(job_id))
    fields = dict(line.split(None, 1) for line in r.stdout.splitlines()[:16] if line.strip())
    assert fields["id"] == str(job_id) and fields["state"] == "dead" and fields["queue"] == "mail"
    assert fields["attempt"] == "1/4" and fields["worker"] == "w1"
    assert fields["last_error"] == "smtp said no\\nsecond line"  # one line per value
    assert "ATTEMPT" in r.stdout and "smtp said no" in r.stdout.split("ATTEMPT", 1)[1]

    data = json.loads(cli(dsn, "--json", "job", str(job_id)).stdout)
    assert data["id"] == job_id and data["state"] == "dead" and data["kind"] == "email"
    assert data["attempt"] == 1 and data["max_attempts"] == 4 and data["payload"] == {}
    assert data["result"] is None and data["finished_at"]
    assert len(data["errors"]) == 1
    assert data["errors"][0]["error"] == "smtp said no\nsecond line"
    assert data["errors"][0]["attempt"] == 1 and data["errors"][0]["worker"] == "w1"


def test_job_unknown_and_bad_ids(dsn):
    r = cli(dsn, "job", "424242", check=False)
    assert r.returncode == 1 and "jobwheel job: job 424242 does not exist" in r.stderr
    r = cli(dsn, "job", "abc", check=False)
    assert r.returncode == 2 and '"abc"' in r.stderr
    assert cli(dsn, "job", check=False).returncode == 2


# ------------------------------------------------------------------ dlq

def test_dlq_list_newest_first(dsn, db):
    first = make_dead(db, dsn, queue="default", error="first failure")
    second = make_dead(db, dsn, queue="other", error="second failure")
    r = cli(dsn, "dlq", "list")
    rows = [line.split() for line in r.stdout.splitlines()[1:]]
    assert [int(row[0]) for row in rows] == [second, first]
    assert "second failure" in r.stdout.splitlines()[1]

    data = json.loads(cli(dsn, "--json", "dlq", "list", "--queue", "default").stdout)
    assert [d["id"] for d in data] == [first]
    assert data[0]["errors"][0]["error"] == "first failure" and data[0]["last_error"] == "first failure"

    limited = json.loads(cli(dsn, "--json", "dlq", "list", "--limit", "1").stdout)
    assert [d["id"] for d in limited] == [second]


def test_dlq_requeue_ids_moves_them_back_to_ready(dsn, db):
    a, b, c = (make_dead(db, dsn) for _ in range(3))
    r = cli(dsn, "dlq", "requeue", str(a), str(b))
    assert r.stdout == "requeued 2\n"
    rows = db.execute("SELECT id, state, attempt FROM jobwheel.jobs ORDER BY id").fetchall()
    assert rows == [(a, "ready", 0), (b, "ready", 0), (c, "dead", 1)]


def test_dlq_requeue_of_a_live_job_changes_nothing(dsn, db):
    dead = make_dead(db, dsn)
    live = int(cli(dsn, "enqueue", "noop").stdout)
    r = cli(dsn, "dlq", "requeue", str(dead), str(live), check=False)
    assert r.returncode == 1
    assert f"job {live} is ready" in r.stderr and r.stdout == ""
    assert one(db, "SELECT state FROM jobwheel.jobs WHERE id = %s", dead) == "dead"  # rolled back

    r = cli(dsn, "dlq", "requeue", "987654", check=False)
    assert r.returncode == 1 and "987654 does not exist" in r.stderr


def test_dlq_requeue_all_optionally_per_queue(dsn, db):
    d1 = make_dead(db, dsn, queue="q1")
    d2 = make_dead(db, dsn, queue="q2")
    d3 = make_dead(db, dsn, queue="q2")
    assert cli(dsn, "dlq", "requeue", "--all", "--queue", "q2").stdout == "requeued 2\n"
    states = dict(db.execute("SELECT id, state FROM jobwheel.jobs").fetchall())
    assert states == {d1: "dead", d2: "ready", d3: "ready"}
    assert json.loads(cli(dsn, "--json", "dlq", "requeue", "--all").stdout) == {"requeued": 1}
    assert one(db, "SELECT count(*) FROM jobwheel.jobs WHERE state = 'ready'") == 3
    assert "empty" in cli(dsn, "dlq", "list").stdout


@pytest.mark.parametrize("args", [[], ["frob"], ["requeue"], ["requeue", "--all", "1"], ["requeue", "x"],
                                  ["list", "--limit", "0"], ["list", "--queue", "Bad"], ["list", "--bogus"]])
def test_dlq_usage_errors(dsn, args):
    r = cli(dsn, "dlq", *args, check=False)
    assert r.returncode == 2 and "usage: dlq" in r.stderr


def test_enqueue_depends_on_blocks_the_child_until_its_parents_succeed(dsn, db):
    parents = [cli(dsn, "enqueue", "noop").stdout.strip() for _ in range(2)]
    child = cli(dsn, "enqueue", "noop", "--depends-on", ",".join(parents)).stdout.strip()
    row = db.execute("SELECT state, pending_parents, depends_on FROM jobwheel.jobs WHERE id = %s",
                     (int(child),)).fetchone()
    assert row == ("blocked", 2, [int(p) for p in parents])
    r = cli(dsn, "enqueue", "noop", "--depends-on", "999999", check=False)
    assert r.returncode == 1 and "unknown parent job 999999" in r.stderr
    assert one(db, "SELECT count(*) FROM jobwheel.jobs") == 3
