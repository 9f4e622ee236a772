# SPDX-License-Identifier: MIT
"""The exec kind: allow-listed programs without a shell, stdin, bounded
outputs, a scrubbed environment, and the whole process group killed on
timeout and cancel."""
import json
import signal
import subprocess
import time

from conftest import job_state, one, wait_for, wait_state, job_result as result

ALLOW = "echo=/bin/echo,sh=/bin/sh,cat=/bin/cat,sleep=/bin/sleep"
FAST = dict(queues="x", exec__allow=ALLOW, worker__poll_ms=100, worker__heartbeat_ms=200)


def enqueue(db, payload, **kw):
    args = "".join(f", {k} => %s" for k in kw)
    return one(db, f"SELECT jobwheel.enqueue('exec', %s::jsonb, 'x'{args})", json.dumps(payload), *kw.values())


def last_error(db, job):
    return one(db, "SELECT last_error FROM jobwheel.jobs WHERE id = %s", job)


def processes(pattern):
    r = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return r.stdout.split()


def test_echo_with_args(db, workers):
    workers.start(**FAST)
    job = enqueue(db, {"command": "echo", "args": ["a", "b"]})
    wait_state(db, job, "succeeded")
    assert result(db, job) == {"exit_code": 0, "stdout": "a b\n", "stderr": "",
                               "stdout_truncated": False, "stderr_truncated": False}


def test_stdin_round_trips_through_cat(db, workers):
    workers.start(**FAST)
    text = "line one\nzwei – ünïcode\n" + "x" * 100000  # more than a pipe buffer
    job = enqueue(db, {"command": "cat", "stdin": text})
    wait_state(db, job, "succeeded")
    r = result(db, job)
    assert r["stdout"] == text.encode()[:65536].decode() and r["stdout_truncated"] is True
    small = enqueue(db, {"command": "cat", "stdin": "hello\nworld"})
    wait_state(db, small, "succeeded")
    assert result(db, small)["stdout"] == "hello\nworld"


def test_unlisted_command_is_dead_at_once(db, workers):
    workers.start(**FAST)
    job = enqueue(db, {"command": "rm", "args": ["-rf", "/tmp/nothing"]})
    wait_state(db, job, "dead")
    assert one(db, "SELECT attempt FROM jobwheel.jobs WHERE id = %s", job) == 1
    assert '"rm"' in last_error(db, job) and "exec.allow" in last_error(db, job)
    # a path is not a name
    job = enqueue(db, {"command": "/bin/echo"})
    wait_state(db, job, "dead")
    assert "/bin/echo" in last_error(db, job)


def test_exit_code_fails_with_first_line_of_stderr(db, workers):
    workers.start(**FAST)
    job = enqueue(db, {"command": "sh", "args": ["-c", "echo oops >&2; echo more >&2; exit 3"]}, max_attempts=1)
    wait_state(db, job, "dead")
    assert last_error(db, job) == "exit 3: oops"


def test_invalid_utf8_and_nul_bytes_stay_valid_json(db, workers):
    workers.start(**FAST)
    job = enqueue(db, {"command": "sh", "args": ["-c", r"printf 'a\377b\000c\303\251'"]})
    wait_state(db, job, "succeeded")
    assert result(db, job)["stdout"] == "a\ufffdb\ufffdc\u00e9"


def test_environment_is_scrubbed(db, workers, monkeypatch):
    monkeypatch.setenv("JW_EXEC_SECRET_TEST", "hunter2")  # in the worker's environment
    workers.start(**FAST)
    job = enqueue(db, {"command": "sh", "args": ["-c", "env"]})
    wait_state(db, job, "succeeded")
    out = result(db, job)["stdout"]
    assert "hunter2" not in out and "JW_EXEC_SECRET_TEST" not in out
    names = {line.split("=", 1)[0] for line in out.splitlines()}
    # sh itself adds PWD (and some shells SHLVL, _); nothing comes from the worker
    assert {"PATH", "LANG"} <= names <= {"PATH", "LANG", "PWD", "SHLVL", "_"}, out
    assert "PATH=/usr/bin:/bin" in out.splitlines() and "LANG=C.UTF-8" in out.splitlines()


def test_timeout_kills_the_whole_process_group(db, workers):
    workers.start(**FAST)
    job = enqueue(db, {"command": "sh", "args": ["-c", "sleep 3017 & sleep 3017"]}, timeout_ms=500, max_attempts=1)
    wait_for(lambda: len(processes("sleep 3017")) >= 2, 10, what="the program to start")
    wait_state(db, job, "dead")
    assert last_error(db, job) == "timeout"
    wait_for(lambda: not processes("sleep 3017"), 3, what="the process group to be gone")


def test_cancel_kills_a_running_program(db, workers):
    w = workers.start(**FAST)
    job = enqueue(db, {"command": "sleep", "args": ["3018"]})
    wait_for(lambda: processes("sleep 3018"), 10, what="the program to start")
    wait_state(db, job, "running")
    t0 = time.monotonic()
    assert one(db, "SELECT jobwheel.cancel(%s)", job) is True
    wait_for(lambda: not processes("sleep 3018"), 1.5, what="the program to be killed")
    assert time.monotonic() - t0 < 1.5
    wait_for(lambda: f"job {job} cancelled" in w.output(), 2, what="the worker to abort the job")
    assert job_state(db, job) == "cancelled"
    # the worker goes on running jobs, and reaped the child (no zombie)
    nxt = enqueue(db, {"command": "echo", "args": ["next"]})
    wait_state(db, nxt, "succeeded")
    zombies = subprocess.run(["ps", "-o", "stat=,pid=", "--ppid", str(w.proc.pid)], capture_output=True,
                             text=True).stdout.split("\n")
    assert not [z for z in zombies if z.strip().startswith("Z")], zombies


def test_outputs_are_bounded(db, workers):
    workers.start(**FAST)
    job = enqueue(db, {"command": "sh", "args": ["-c", "head -c 200000 /dev/zero | tr '\\0' a; echo err >&2"]})
    wait_state(db, job, "succeeded")
    r = result(db, job)
    assert r["stdout"] == "a" * 65536 and r["stdout_truncated"] is True
    assert r["stderr"] == "err\n" and r["stderr_truncated"] is False


def test_shutdown_kills_a_program_that_ignores_sigterm(db, workers):
    w = workers.start(worker__shutdown_grace_ms=200, **FAST)
    job = enqueue(db, {"command": "sh", "args": ["-c", "trap '' TERM; sleep 3019 & sleep 3019"]})
    wait_for(lambda: len(processes("sleep 3019")) >= 2, 10, what="the program to start")
    wait_state(db, job, "running")
    w.signal(signal.SIGTERM)
    assert w.wait(10) == 0, w.output()
    wait_for(lambda: not processes("sleep 3019"), 3, what="the program to be killed")
    assert job_state(db, job) == "ready"  # given back without spending the attempt
